"""The 2i2c layout's YAML files: merge values into `<hub>.values.yaml`, register files in `cluster.yaml`.

Edits are round trips with ruamel.yaml that keep comments, order, quotes and indentation. A file that does not
survive an unmodified round trip byte for byte is refused rather than reformatted.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.errors import EXIT_USAGE, ProvisionError
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
    # How the file is framed around the YAML ruamel reads and writes: a UTF-8 byte order mark, Windows line endings
    # (every line, else the file is refused: mixed endings cannot be written back byte for byte).
    bom: bool = False
    crlf: bool = False


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


BOM = "\ufeff"


def load(text: str, *, path: Path) -> tuple[Any, Style]:
    """Parse YAML for a round trip; returns the document and the indentation style that writes it back as it was.

    When no known style reproduces the text, the first style is returned (see `identical`).
    """
    from ruamel.yaml.error import MarkedYAMLError

    bom = text.startswith(BOM)
    body = text[len(BOM) :] if bom else text
    rest = body.replace("\r\n", "")
    crlf = "\r\n" in body and "\n" not in rest and "\r" not in rest
    if crlf:
        body = body.replace("\r\n", "\n")
    explicit = body.lstrip().startswith("---")
    try:
        doc = _yaml(STYLES[0]).load(body)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ClusterRepoError(f"not valid YAML ({exc.problem})", path=path, line=line) from None
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    if not isinstance(doc, MutableMapping):
        raise ClusterRepoError("the top level is not a mapping", path=path)
    for style in STYLES:
        style = Style(style.indent, style.sequence_indent, style.offset, explicit, bom, crlf)
        if dump(doc, style) == text:
            return doc, style
    return doc, Style(explicit_start=explicit, bom=bom, crlf=crlf)


def no_data(text: str) -> bool:
    """No YAML data at all: blank lines, comments, document markers (a new Zero to JupyterHub config.yaml may hold
    only comments). ruamel keeps no comment of such a document, so its text is kept as it is."""
    lines = text.removeprefix(BOM).splitlines()
    return all(not line.strip() or line.lstrip().startswith(("#", "---")) for line in lines)


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
    text = out.getvalue()
    return (BOM if style.bom else "") + (text.replace("\n", "\r\n") if style.crlf else text)


def dump_after(original: str | None, doc: Any, style: Style) -> str:
    """`doc` written into a file that held no data (see no_data): its comments (ruamel would drop them) and
    document marker lead, the values follow; a blank file is simply replaced."""
    if not original or not original.removeprefix(BOM).strip():
        return dump(doc, style)
    lead = original.rstrip("\r\n") + ("\r\n" if style.crlf else "\n")
    return lead + dump(doc, replace(style, explicit_start=False, bom=False))


def _round_trippable(text: str, *, path: Path) -> tuple[Any, Style]:
    doc, style = load(text, path=path)
    if dump(doc, style) != text:
        if "\r" in text and not style.crlf:
            raise ClusterRepoError(
                "mixes Windows (CRLF) and Unix (LF) line endings (or has a lone CR), which cannot be written back "
                "byte for byte",
                path=path,
                hint=f"give every line the same ending first, e.g. `dos2unix {path}` (or `unix2dos`), then run the "
                "command again",
            )
        raise ClusterRepoError(
            "cannot be edited without reformatting other lines (ruamel.yaml would not write it back byte for byte)",
            path=path,
            hint="add the values by hand (--dry-run shows them), or normalise the file's formatting first",
        )
    return doc, style


class ValuesConflict(ClusterRepoError):
    """The file holds, where provision writes, a value it cannot merge into without losing the user's data or
    changing another key: bad input, refused before any change (exit 2)."""

    exit_code = EXIT_USAGE


class _Conflict(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


def deep_merge(
    target: MutableMapping[str, Any], new: Mapping[str, Any], prefix: str = "", *, source: Path | None = None
) -> MergeReport:
    """Merge `new` into `target` in place: maps key by key, keyed lists entry by entry, other values replaced.

    Returns the paths added and replaced; keys of `target` that `new` does not mention are never touched. Raises
    ValuesConflict (naming `source` and the key path) instead of replacing a value of another kind (a scalar where
    a mapping or list goes, a list entry that is not a mapping) or changing a mapping or list shared through a YAML
    anchor; `target` may then be half merged (callers merge into a copy or a freshly loaded document).
    """
    try:
        return _merge(target, new, prefix)
    except _Conflict as exc:
        raise ValuesConflict(
            f"{exc.key}: {exc.message}",
            path=source or Path("<values>"),
            hint="fix that key by hand (or remove it), then run the command again",
        ) from None


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def _merge(target: MutableMapping[str, Any], new: Mapping[str, Any], prefix: str) -> MergeReport:
    report = MergeReport()
    for key, value in new.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in target:
            target[key] = value
            report.added.append(path)
            continue
        old = target[key]
        # null (`key:` with nothing after it) is the usual empty section: it is filled, as Helm would.
        if old is not None and _kind(old) != _kind(value):
            raise _Conflict(
                path,
                f"is {_kind(old)} where provision writes {_kind(value)}; replacing it would silently drop what "
                "is there",
            )
        if isinstance(value, Mapping) and isinstance(old, MutableMapping):
            sub = _merge(old, value, path)
            _refuse_shared(target, key, old, path, sub)
            report.added += sub.added
            report.replaced += sub.replaced
            report.anchored += sub.anchored
        elif _keyed_list(value) and isinstance(old, list):
            sub = _merge_keyed_list(old, value, path)
            _refuse_shared(target, key, old, path, sub)
            report.added += sub.added
            report.replaced += sub.replaced
            report.anchored += sub.anchored
        elif plain(old) != plain(value):
            anchor = getattr(old, "anchor", None)
            if anchor is not None and getattr(anchor, "value", None):
                report.anchored.append(path)
            target[key] = value  # a new node for this key only: aliases of the old one keep it
            report.replaced.append(path)
    return report


def _refuse_shared(parent: Any, key: Any, node: Any, path: str, sub: MergeReport) -> None:
    """Refuse a change made inside a mapping or list that other keys share through a YAML anchor (`&x` ... `*x`,
    or a `<<: *x` merge key): it would change them too.

    Refused rather than copied: un-aliasing writes a second copy of the whole anchored block into the file and
    silently ends the sharing the user set up (later edits of the anchor would no longer reach this key), and when
    the anchor sits on this key its aliases would change meaning. The user knows which of those they want.
    """
    if not sub.changed:
        return
    anchor = getattr(getattr(node, "anchor", None), "value", None)
    if anchor:
        raise _Conflict(
            path,
            f"is shared through the YAML anchor &{anchor}: adding {', '.join(sub.added + sub.replaced)} here would "
            f"change every key that uses *{anchor} too; write this key out without the alias (or move the anchor)",
        )
    own = getattr(parent, "_ok", None)
    merged_from = getattr(parent, "merge", None)
    if own is not None and merged_from and key not in own:
        names = [getattr(getattr(m, "anchor", None), "value", None) for m in _merge_sources(merged_from)]
        source = ", ".join(f"*{n}" for n in names if n) or "an alias"
        raise _Conflict(
            path,
            f"comes from the YAML merge key `<<: {source}`: changing it would change that anchor's mapping and every "
            "key that merges it; write this key out in this mapping first",
        )


def _merge_sources(merged_from: Any) -> list[Any]:
    """The mappings of a `<<:` merge key (ruamel keeps them as mappings or (index, mapping) pairs)."""
    return [m[1] if isinstance(m, tuple) else m for m in merged_from]


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
    """Entries matched by slug (or name) are merged, new ones appended; the others stay where they are."""
    for index, entry in enumerate(target):
        if not isinstance(entry, Mapping):
            raise _Conflict(
                f"{prefix}[{index}]",
                f"is {_kind(entry)} in a list of mappings (entries with a slug or name); provision would have to "
                "drop it",
            )
    report = MergeReport()
    for entry in new:
        name, key = _entry_key(entry)
        path = f"{prefix}[{name}={key}]"
        match = next((t for t in target if t.get(name) == key), None)
        if match is None:
            target.append(entry)
            report.added.append(path)
        else:
            sub = _merge(match, entry, path)
            _refuse_shared(None, None, match, path, sub)
            report.added += sub.added
            report.replaced += sub.replaced
            report.anchored += sub.anchored
    return report


def plain(value: Any) -> Any:
    """A copy of a ruamel node in plain types (dicts with str keys, lists, str), to compare or serialize values
    rather than ruamel's wrapper types (quoted strings, commented maps)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def plan_values_edit(path: Path, values: Mapping[str, Any]) -> tuple[FileEdit, MergeReport]:
    """The edit that deep-merges `values` into the file (created when missing). Writes nothing."""
    original = read_text(path)
    if original is None or no_data(original):
        doc, style = load(original or "", path=path)
        report = deep_merge(doc, values, source=path)
        updated = dump_after(original, doc, style) if report.changed else (original or "")
        return FileEdit(path, original, updated), report
    doc, style = _round_trippable(original, path=path)
    report = deep_merge(doc, values, source=path)
    return FileEdit(path, original, dump(doc, style) if report.changed else original), report


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
