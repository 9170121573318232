"""A cluster's files in the 2i2c layout, read as the deployer reads them: every `cluster.yaml` under a folder, each
hub's `helm_chart_values_files` in list order, merged as Helm merges values files.

Shared by `provision doctor` (offline checks), `provision verify PATH` (fleet) and the hub-file writers (which look
at the files listed before a hub's own). Files are read as plain YAML: an sops-encrypted file keeps its key names
readable and its values as `ENC[...]` strings, so nothing is decrypted here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import UsageError
from provision.files import read_text

CLUSTER_FILE = "cluster.yaml"


def find_cluster_files(path: Path) -> Iterator[Path]:
    """Every cluster.yaml under `path`, in a stable order, skipping hidden folders (.git) and node_modules."""
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        if CLUSTER_FILE in filenames:
            yield Path(dirpath) / CLUSTER_FILE


def cluster_configs(path: Path) -> tuple[Path, list[Path]]:
    """The folder paths are shown relative to, and the cluster.yaml files at or under `path` (a cluster folder, any
    folder above one, or a cluster.yaml). Raises UsageError when there is none."""
    if path.is_file():
        if path.name != CLUSTER_FILE:
            raise UsageError(f"{str(path)!r} is not a cluster.yaml: pass a cluster folder or a folder above some")
        return path.parent, [path]
    configs = list(find_cluster_files(path))
    if not configs:
        raise UsageError(
            f"no {CLUSTER_FILE} at or under {str(path)!r}: pass a cluster folder of the 2i2c layout "
            "(config/clusters/<cluster>) or a folder above some"
        )
    return path, configs


@dataclass
class ValuesFile:
    """A YAML file as read: `doc` is None when it cannot be used, and `error` then says why (never quoting it)."""

    path: Path
    rel: str
    doc: dict[Any, Any] | None = None
    error: str | None = None
    template: bool = False  # a Jinja template (config/clusters/templates), not a cluster

    @property
    def encrypted(self) -> bool:
        return self.doc is not None and isinstance(self.doc.get("sops"), Mapping)

    @property
    def secret_by_name(self) -> bool:
        """The deployer decrypts every listed file with `secret` in its name (facts §6.1)."""
        return "secret" in self.path.name


def load(path: Path, rel: str) -> ValuesFile:
    """Read one file (`rel`: how messages name it). Never raises for bad input: the problem goes into `error`."""
    from ruamel.yaml import YAML  # lazy: keeps start-up fast
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return ValuesFile(path, rel, error="is not UTF-8 text")
    except OSError as exc:
        return ValuesFile(path, rel, error=f"cannot be read ({exc.strerror})")
    # Never str(exc): ruamel quotes the offending line, and a duplicate-key error quotes both values.
    try:
        doc = YAML(typ="safe", pure=True).load(text)  # anchors, aliases and `<<:` merges are resolved here
    except DuplicateKeyError as exc:
        name = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "")
        what = f"the key {name.group(1)!r}" if name else "a key"
        return ValuesFile(path, rel, error=f"is not valid YAML: {what} appears twice in one mapping{_line(exc)}")
    except MarkedYAMLError as exc:
        return ValuesFile(path, rel, error=f"is not valid YAML: {exc.problem}{_line(exc)}", template="{{" in text)
    except YAMLError:
        return ValuesFile(path, rel, error="is not valid YAML", template="{{" in text)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return ValuesFile(path, rel, error="is not a YAML mapping at the top level")
    return ValuesFile(path, rel, doc=doc)


def _line(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def merge(base: Mapping[Any, Any], new: Mapping[Any, Any]) -> dict[Any, Any]:
    """Helm's merge of two values files: maps key by key, later wins, lists replaced. Builds new maps only, so
    objects shared through YAML aliases are never modified."""
    out = dict(base)
    for key, value in new.items():
        both_maps = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merge(out[key], value) if both_maps else value
    return out


def listed(entry: Mapping[str, Any]) -> list[str]:
    """A hub entry's `helm_chart_values_files`, as written in cluster.yaml (relative to its folder)."""
    files = entry.get("helm_chart_values_files")
    return [str(f) for f in files] if isinstance(files, list) else []


def join(folder: Path, name: Any) -> Path:
    """A listed file's path: `name` relative to the cluster folder, normalised (`../common.values.yaml`)."""
    return Path(os.path.normpath(folder / str(name)))


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a single value"


def layout_problems(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key path, message) for each part of a cluster.yaml the deployer cannot use as written: `hubs` not a list
    of mappings with a name, a `helm_chart_values_files` that is not a list of file names. Readers that skip such
    parts (listed(), doctor's hub walk) would otherwise stay silent about them."""
    problems: list[tuple[str, str]] = []

    def check_files(holder: Mapping[str, Any], key: str) -> None:
        files = holder.get("helm_chart_values_files")
        if files is not None and not isinstance(files, list):
            problems.append((
                f"{key}.helm_chart_values_files",
                f"is {_kind(files)}, not a list: the deployer uses no values file; write each file on its own "
                "`- name.values.yaml` line",
            ))  # fmt: skip
        elif isinstance(files, list):
            for index, name in enumerate(files):
                if not isinstance(name, str):
                    problems.append((f"{key}.helm_chart_values_files[{index}]", f"is {_kind(name)}, not a file name"))

    support = doc.get("support")
    if isinstance(support, Mapping):
        check_files(support, "support")
    hubs = doc.get("hubs")
    if hubs is not None and not isinstance(hubs, list):
        problems.append(("hubs", f"is {_kind(hubs)}, not a list of hubs (`- name: <hub>` mappings): none is deployed"))
        return problems
    for index, entry in enumerate(hubs or ()):
        if not isinstance(entry, Mapping):
            problems.append((
                f"hubs[{index}]",
                f"is {_kind(entry)}, not a hub: each entry of `hubs` is a mapping with name, domain, helm_chart and "
                "helm_chart_values_files; this one is not checked or deployed",
            ))  # fmt: skip
        elif not isinstance(entry.get("name"), str):
            problems.append((f"hubs[{index}].name", "is missing or not a string: this hub is not checked or deployed"))
        else:
            check_files(entry, f"hubs[name={entry['name']}]")
    return problems


def cluster_hubs(cluster_config: Path) -> list[dict[str, Any]]:
    """The `hubs:` entries of cluster.yaml (plain data)."""
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(read_text(cluster_config) or "")
    hubs = doc.get("hubs") if isinstance(doc, dict) else None
    return [h for h in hubs or () if isinstance(h, dict)]


def other_hubs_values(cluster_config: Path, hub: str) -> Iterator[tuple[str, Any]]:
    """(hub name, values) for each plain values file the other hubs of cluster.yaml list. Encrypted files cannot be
    read here, and a broken one is passed over (doctor reports it): these answers only say what others use."""
    from ruamel.yaml import YAML

    for entry in cluster_hubs(cluster_config):
        if entry.get("name") == hub:
            continue
        for name in entry.get("helm_chart_values_files") or ():
            path = cluster_config.parent / str(name)
            if Path(str(name)).name.startswith("enc-") or not path.is_file():
                continue
            try:
                values = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
            except Exception:  # noqa: BLE001 - doctor reports broken files; here they just tell nothing
                continue
            yield str(entry.get("name")), values


def binderhub_sections(values: Any) -> list[dict[str, Any]]:
    """A hub's binderhub-service values, at the top level and under daskhub's `basehub:`."""
    roots = (values, values.get("basehub")) if isinstance(values, dict) else ()
    sections = [root.get("binderhub-service") for root in roots if isinstance(root, dict)]
    return [section for section in sections if isinstance(section, dict)]


def other_hubs_using(cluster_config: Path | None, hub: str | None, username: str) -> list[str]:
    """Other hubs of cluster.yaml whose plain values files push as `username` (a shared robot must stay)."""
    if cluster_config is None or hub is None:
        return []
    users = {
        name
        for name, values in other_hubs_values(cluster_config, hub)
        for section in binderhub_sections(values)
        if isinstance(creds := section.get("buildPodsRegistryCredentials"), dict) and creds.get("username") == username
    }
    return sorted(users)
