"""The 2i2c layout's YAML files: merge values into `<hub>.values.yaml`, register files in `cluster.yaml`.

Edits are round trips with ruamel.yaml that keep comments, order, quotes and indentation. A file that does not
survive an unmodified round trip byte for byte is refused rather than reformatted.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.files import FileEdit, read_text

# Lists of mappings merged entry by entry on this key instead of being replaced (profileList entries).
LIST_KEYS = ("slug", "name")


class ClusterRepoError(ProvisionError):
    """A values file or cluster.yaml cannot be read or edited safely."""

    def __init__(self, message: str, *, path: Path, line: int | None = None, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line


@dataclass
class MergeReport:
    """Dotted paths of what a merge added and what it replaced (never the values)."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)  # replaced values that were YAML anchors (aliases keep the old)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)


@dataclass(frozen=True)
class Style:
    indent: int = 2
    sequence_indent: int = 4
    offset: int = 2
    explicit_start: bool = False


def _yaml(style: Style) -> Any:
    from ruamel.yaml import YAML  # lazy: keeps start-up fast

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=style.indent, sequence=style.sequence_indent, offset=style.offset)
    yaml.explicit_start = style.explicit_start
    return yaml


# Indentation styles tried in order; the 2i2c files use the first (`key:` then `  - item`).
STYLES = tuple(
    Style(indent=m, sequence_indent=s, offset=o)
    for m, s, o in ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 4, 0), (2, 4, 0), (4, 6, 4), (4, 6, 2), (2, 3, 1))
)


def load(text: str, *, path: Path) -> tuple[Any, Style]:
    """Parse YAML for a round trip; returns the document and the indentation style that writes it back as it was.

    When no known style reproduces the text, the first style is returned (see `identical`).
    """
    from ruamel.yaml.error import MarkedYAMLError

    explicit = text.lstrip().startswith("---")
    try:
        doc = _yaml(STYLES[0]).load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ClusterRepoError(f"not valid YAML ({exc.problem})", path=path, line=line) from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, MutableMapping):
        raise ClusterRepoError("the top level is not a mapping", path=path)
    for style in STYLES:
        style = Style(style.indent, style.sequence_indent, style.offset, explicit)
        if dump(doc, style) == text:
            return doc, style
    return doc, Style(explicit_start=explicit)


def load_documents(text: str, *, path: Path) -> list[Any]:
    """Every document of a YAML stream (`---` between them, as provision prints z2jh values: one per Helm release),
    for reading only. Empty documents (nothing, or comments only) are left out. Raises ClusterRepoError."""
    from ruamel.yaml.error import MarkedYAMLError

    try:
        docs = list(_yaml(STYLES[0]).load_all(text))
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ClusterRepoError(f"not valid YAML ({exc.problem})", path=path, line=line) from None
    for number, doc in enumerate(docs, 1):
        if doc is not None and not isinstance(doc, Mapping):
            where = f"document {number}" if len(docs) > 1 else "the top level"
            raise ClusterRepoError(f"{where} is not a mapping", path=path)
    return [doc for doc in docs if doc]


def dump(doc: Any, style: Style) -> str:
    out = io.StringIO()
    _yaml(style).dump(doc, out)
    return out.getvalue()


def _round_trippable(text: str, *, path: Path) -> tuple[Any, Style]:
    doc, style = load(text, path=path)
    if dump(doc, style) != text:
        raise ClusterRepoError(
            "cannot be edited without reformatting other lines (ruamel.yaml would not write it back byte for byte)",
            path=path,
            hint="add the values by hand (--dry-run shows them), or normalise the file's formatting first",
        )
    return doc, style


def deep_merge(target: MutableMapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> MergeReport:
    """Merge `new` into `target` in place: maps key by key, keyed lists entry by entry, other values replaced.

    Returns the paths added and replaced; keys of `target` that `new` does not mention are never touched.
    """
    report = MergeReport()
    for key, value in new.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in target:
            target[key] = value
            report.added.append(path)
        elif isinstance(value, Mapping) and isinstance(target[key], MutableMapping):
            sub = deep_merge(target[key], value, path)
            report.added += sub.added
            report.replaced += sub.replaced
            report.anchored += sub.anchored
        elif _keyed_list(value) and _keyed_list(target[key]):
            sub = _merge_keyed_list(target[key], value, path)
            report.added += sub.added
            report.replaced += sub.replaced
        elif _plain(target[key]) != _plain(value):
            anchor = getattr(target[key], "anchor", None)
            if anchor is not None and getattr(anchor, "value", None):
                report.anchored.append(path)
            target[key] = value
            report.replaced.append(path)
    return report


def _keyed_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, Mapping) and any(k in v for k in LIST_KEYS) for v in value)
    )


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, Any]:
    name = next(k for k in LIST_KEYS if k in entry)
    return name, entry[name]


def _merge_keyed_list(target: list[Any], new: list[Any], prefix: str) -> MergeReport:
    report = MergeReport()
    for entry in new:
        name, key = _entry_key(entry)
        path = f"{prefix}[{name}={key}]"
        match = next((t for t in target if isinstance(t, Mapping) and t.get(name) == key), None)
        if match is None:
            target.append(entry)
            report.added.append(path)
        elif isinstance(match, MutableMapping):
            sub = deep_merge(match, entry, path)
            report.added += sub.added
            report.replaced += sub.replaced
    return report


def _plain(value: Any) -> Any:
    """Compare values, not ruamel's wrapper types (quoted strings, commented maps)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def plan_values_edit(path: Path, values: Mapping[str, Any]) -> tuple[FileEdit, MergeReport]:
    """The edit that deep-merges `values` into the file (created when missing). Writes nothing."""
    original = read_text(path)
    if original is None or not original.strip():
        doc, style = load(original or "", path=path)
    else:
        doc, style = _round_trippable(original, path=path)
    report = deep_merge(doc, values)
    return FileEdit(path, original, dump(doc, style) if report.changed else (original or "")), report


def hub_entry(doc: Any, hub: str, *, path: Path) -> MutableMapping[str, Any]:
    hubs = doc.get("hubs") if isinstance(doc, Mapping) else None
    for entry in hubs or ():
        if isinstance(entry, MutableMapping) and entry.get("name") == hub:
            return entry
    names = [str(e.get("name")) for e in hubs or () if isinstance(e, Mapping)]
    raise ClusterRepoError(
        f"no hub named {hub!r} under `hubs:`" + (f" (hubs: {', '.join(names)})" if names else ""),
        path=path,
        hint="check --hub, or pass the right --cluster-config",
    )


def hub_chart(path: Path, hub: str) -> str | None:
    """The hub's `helm_chart` in cluster.yaml (basehub or daskhub in the 2i2c layout), or None if unset."""
    text = read_text(path)
    if text is None:
        raise ClusterRepoError("does not exist", path=path)
    doc, _ = load(text, path=path)
    chart = hub_entry(doc, hub, path=path).get("helm_chart")
    return str(chart) if chart is not None else None


def plan_registration(path: Path, hub: str, files: Sequence[Path]) -> FileEdit:
    """The edit that lists `files` in the hub's `helm_chart_values_files` when missing. Writes nothing.

    Plain files go before the first encrypted (`enc-`) file, encrypted ones at the end: later files win.
    """
    original = read_text(path)
    if original is None:
        raise ClusterRepoError("does not exist", path=path)
    doc, style = _round_trippable(original, path=path)
    entry = hub_entry(doc, hub, path=path)
    listed = entry.get("helm_chart_values_files")
    if listed is None:
        from ruamel.yaml.comments import CommentedSeq

        listed = entry["helm_chart_values_files"] = CommentedSeq()
    changed = False
    for file in files:
        name = os.path.relpath(file.resolve(), path.resolve().parent)
        if name in [str(x) for x in listed]:
            continue
        if file.name.startswith("enc-"):
            listed.append(name)
        else:
            first_enc = next((i for i, x in enumerate(listed) if os.path.basename(str(x)).startswith("enc-")), None)
            listed.insert(len(listed) if first_enc is None else first_enc, name)
        changed = True
    return FileEdit(path, original, dump(doc, style) if changed else original)
