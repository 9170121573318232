"""The hubs of a folder in the 2i2c layout, as every fleet verb (verify PATH, prune PATH) walks them: each
`cluster.yaml` read as `provision doctor` reads it, a hub's listed values files merged in list order (Helm's merge),
the `basehub:` wrapper of daskhub hubs removed; a hub is selected when its merged values enable binderhub-service.
Its encrypted files are decrypted with sops into memory, each file once however many hubs list it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision import httpretry, sops
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import get_path
from provision.hubfiles import cluster as clusterfiles
from provision.registries.base import host_of

FILES_CHECK = "values files readable"
CLUSTER_CHECK = "cluster.yaml lists the hubs"
NO_HUB = "-"  # the hub column of a cluster.yaml problem that hides which hubs it holds
SECRET_KEY = re.compile(r"password|token|secret|key", re.I)


@dataclass(frozen=True)
class Target:
    """A hub to check: its listed files in order, which of them need sops, and what keeps it from being read."""

    cluster: str
    hub: str
    chart: str
    files: tuple[Path, ...]
    encrypted: frozenset[Path]
    plain: Mapping[Path, Mapping[Any, Any]]  # the unencrypted files as read when the hub was selected
    problem: str | None = None
    registry: str = "-"  # the host the public values name, shown even when the secrets cannot be read
    problem_check: str = FILES_CHECK  # the check `problem` fails
    folder: Path | None = None  # the cluster's folder (config/clusters/<cluster>), to find the repository


def unlisted(cluster: str, hub: str, problem: str) -> Target:
    """A cluster.yaml (or one of its `hubs` entries) the deployer cannot use: reported, never silently left out."""
    return Target(cluster, hub, "", (), frozenset(), {}, problem, problem_check=CLUSTER_CHECK)


# ---------------------------------------------------------------------------------------------------------------
# Finding the hubs


def strip_sops(doc: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in doc.items() if k != "sops"}


def hub_values(merged: Mapping[Any, Any], chart: str) -> Mapping[Any, Any]:
    view = merged.get("basehub") if chart == "daskhub" else merged
    return view if isinstance(view, Mapping) else {}


def find_hubs(
    path: Path, *, clusters: frozenset[str] = frozenset(), hubs: frozenset[str] = frozenset()
) -> tuple[list[Target], list[str]]:
    """The hubs to check (in cluster.yaml order) and the `cluster/hub` names skipped for lacking binderhub-service.

    Reads plain YAML only (encrypted files as they are, so nothing is decrypted for a hub that is skipped).
    Raises UsageError when there is no cluster.yaml, or a --cluster/--hub filter matches nothing.
    """
    targets: list[Target] = []
    skipped: list[str] = []
    seen_clusters: set[str] = set()
    seen_hubs: set[str] = set()
    root, configs = clusterfiles.cluster_configs(path)
    for config in configs:
        rel = relative(config, root)
        loaded = clusterfiles.load(config, rel)
        folder = config.parent
        if loaded.doc is None:
            if loaded.template:
                continue  # a Jinja template (config/clusters/templates), not a cluster
            # Its hubs cannot be known: the whole cluster is "could not check", so the run cannot pass without it.
            seen_clusters.add(folder.name)
            maybe_here = {h for h in hubs if "/" not in h or h.startswith(f"{folder.name}/")}
            if (clusters and folder.name not in clusters) or (hubs and not maybe_here):
                continue
            seen_hubs.update(maybe_here)
            targets.append(unlisted(folder.name, NO_HUB, f"{rel} {loaded.error}: none of this cluster's hubs "
                                     "is checked (provision doctor shows the problem)"))  # fmt: skip
            continue
        cluster = str(loaded.doc.get("name") or folder.name)
        seen_clusters.update({cluster, folder.name})
        if clusters and not clusters & {cluster, folder.name}:
            continue
        entries = loaded.doc.get("hubs")
        if entries is not None and not isinstance(entries, list) and not hubs:
            targets.append(unlisted(cluster, NO_HUB, f"{rel}: hubs {_layout(loaded.doc, 'hubs')}"))
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                if not hubs:  # a hub without a name matches no --hub
                    key = f"hubs[{index}]" + ("" if not isinstance(entry, Mapping) else ".name")
                    targets.append(unlisted(cluster, f"hubs[{index}]", f"{rel}: {key} {_layout(loaded.doc, key)}"))
                continue
            hub = entry["name"]
            seen_hubs.update({hub, f"{cluster}/{hub}"})
            if hubs and not hubs & {hub, f"{cluster}/{hub}"}:
                continue
            target = _target(cluster, hub, str(entry.get("helm_chart") or ""), folder, clusterfiles.listed(entry), root)
            if target is None:
                skipped.append(f"{cluster}/{hub}")
            else:
                targets.append(target)
    unknown = sorted((clusters - seen_clusters) | (hubs - seen_hubs))
    if unknown:
        raise UsageError(f"no cluster or hub named {', '.join(unknown)} under {str(path)!r}")
    if not targets:
        what = "none of the selected hubs" if clusters or hubs else "no hub"
        raise UsageError(
            f"{what} under {str(path)!r} enables binderhub-service: nothing to verify",
            hint="provision doctor lists the hubs and their image-building settings",
        )
    return targets, skipped


def _layout(doc: Mapping[str, Any], key: str) -> str:
    """clusterfiles' message for the part of cluster.yaml at `key` (the same words as provision doctor)."""
    return next(message for path, message in clusterfiles.layout_problems(doc) if path == key)


def _target(cluster: str, hub: str, chart: str, folder: Path, listed: list[str], root: Path) -> Target | None:
    """The hub's files, or None when its merged values do not enable binderhub-service."""
    files: list[Path] = []
    encrypted: set[Path] = set()
    plain: dict[Path, Mapping[Any, Any]] = {}
    merged: dict[Any, Any] = {}
    problems: list[str] = []
    for raw in listed:
        path = clusterfiles.join(folder, raw)
        rel = relative(path, root)
        if path.suffix == ".jsonnet":
            continue  # rendered by the deployer; registry credentials are never set there
        if not path.is_file():
            problems.append(f"{rel} is listed in cluster.yaml but does not exist")
            continue
        loaded = clusterfiles.load(path, rel)
        if loaded.doc is None:
            problems.append(f"{rel} {loaded.error}")
            continue
        files.append(path)
        if loaded.encrypted or loaded.secret_by_name:
            encrypted.add(path)
        else:
            plain[path] = loaded.doc
        merged = clusterfiles.merge(merged, strip_sops(loaded.doc))
    view = hub_values(merged, chart)
    if get_path(view, "binderhub-service", "enabled") is not True and not problems:
        return None  # (a missing file may hide the setting: such a hub is reported, not skipped)
    server = get_path(view, "binderhub-service", "buildPodsRegistryCredentials", "server")
    registry = host_of(server) if isinstance(server, str) and server.strip() else "-"
    return Target(cluster, hub, chart, tuple(files), frozenset(encrypted), plain, "; ".join(problems) or None,
                   registry, folder=folder)  # fmt: skip


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------------------
# Decrypting, each file once


@dataclass(frozen=True)
class Decrypted:
    doc: Mapping[Any, Any] | None
    error: str | None = None  # sops's reason, for the table
    hint: str | None = None  # what to do, for the JSON detail
    late: bool = False  # the deadline passed before sops finished (or started)


def parse_secret(text: str) -> Decrypted:
    """Decrypted YAML as a mapping. Parse errors never quote the text: it is plaintext secrets."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        doc = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        return Decrypted(None, f"the decrypted text is not valid YAML (line {mark.line + 1})" if mark else None)
    except YAMLError:
        return Decrypted(None, "the decrypted text is not valid YAML")
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        return Decrypted(None, "the decrypted text is not a YAML mapping")
    return Decrypted(strip_sops(doc))


def decrypt_one(runner: sops.Sops, path: Path, deadline: httpretry.Deadline | None = None) -> Decrypted:
    """Decrypt within the time left: a sops hung on its key service is killed at the deadline."""
    timeout = None if deadline is None else deadline.remaining()
    if timeout is not None and timeout <= 0:
        return Decrypted(None, late=True)
    try:
        return parse_secret(runner.decrypt(path, timeout=timeout))
    except sops.SopsTimeout:
        return Decrypted(None, late=True)
    except ProvisionError as exc:
        return Decrypted(None, exc.message, exc.hint)


def secret_leaves(doc: Any, key: str = "") -> Iterable[str]:
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            yield from secret_leaves(v, str(k))
    elif isinstance(doc, list):
        for item in doc:
            yield from secret_leaves(item, key)
    elif isinstance(doc, str) and SECRET_KEY.search(key) and len(doc) >= 4:
        yield doc
