"""The 2i2c layout as defaults: a repository with `config/clusters/<cluster>/cluster.yaml`, found from the current
folder upwards, names a hub's files in its `helm_chart_values_files`, so `provision quay <cluster> <hub>` needs no
file options (as the deployer takes `deploy <cluster> <hub>`).

A hub's own files are `<hub>.values.yaml` and `enc-<hub>.secret.values.yaml` when its entry lists them; a file
other hubs list too (`common.values.yaml`, a shared secret file) is never chosen: provision writes hub-specific
values. A hub whose entry lists no file of its own gets the layout's names, registered in its entry when written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provision.errors import UsageError
from provision.hubfiles.cluster import cluster_hubs

CLUSTERS = Path("config") / "clusters"


@dataclass(frozen=True)
class LayoutFiles:
    """A hub's files as the layout names them, and why (for the run's report)."""

    cluster_config: Path
    values_file: Path
    secret_file: Path
    chart: str | None  # the entry's helm_chart (basehub, daskhub), if any
    new: tuple[str, ...]  # the files the entry does not list yet (written and registered by the run)

    def describe(self) -> str:
        listed = [p.name for p in (self.values_file, self.secret_file) if p.name not in self.new]
        parts = [f"listed for the hub in {self.cluster_config}: {', '.join(listed)}"] if listed else []
        if self.new:
            parts.append(f"new, to be listed there: {', '.join(self.new)}")
        return "; ".join(parts)


def find_root(start: Path) -> Path | None:
    """The folder holding `config/clusters`, from `start` upwards (None outside such a repository)."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / CLUSTERS).is_dir():
            return folder
    return None


def hub_files(root: Path, cluster: str, hub: str) -> LayoutFiles:
    """The hub's values and secret files from its cluster.yaml entry. Raises UsageError for an unknown cluster or
    a hub the cluster.yaml does not list (its entry carries the domain and chart the deployer needs)."""
    folder = root / CLUSTERS / cluster
    config = folder / "cluster.yaml"
    if not config.is_file():
        known = sorted(p.parent.name for p in (root / CLUSTERS).glob("*/cluster.yaml"))
        raise UsageError(
            f"no cluster {cluster!r} in {root / CLUSTERS} (clusters: {', '.join(known) or 'none'})",
            hint="check the cluster's folder name (2i2c's cluster 2i2c is config/clusters/2i2c)",
        )
    entries = cluster_hubs(config)
    entry = next((e for e in entries if e.get("name") == hub), None)
    if entry is None:
        names = ", ".join(str(e.get("name")) for e in entries) or "none"
        raise UsageError(
            f"{config} lists no hub named {hub!r} (hubs: {names})",
            hint="add the hub's entry to cluster.yaml first (its domain, helm_chart and auth are the deployer's), "
            "then run this again: provision lists the files it writes in that entry",
        )
    listed = [str(name) for name in entry.get("helm_chart_values_files") or ()]
    shared = _listed_by_others(entries, hub)
    values = _own(listed, shared, f"{hub}.values.yaml", encrypted=False)
    secret = _own(listed, shared, f"enc-{hub}.secret.values.yaml", encrypted=True)
    new = tuple(name for name in (values, secret) if name not in listed)
    chart = entry.get("helm_chart")
    return LayoutFiles(config, folder / values, folder / secret, str(chart) if chart else None, new)


def _listed_by_others(entries: list[dict[str, object]], hub: str) -> set[str]:
    names: set[str] = set()
    for entry in entries:
        if entry.get("name") != hub:
            names.update(str(n) for n in entry.get("helm_chart_values_files") or ())  # type: ignore[attr-defined]
    return names


def _own(listed: list[str], shared: set[str], default: str, *, encrypted: bool) -> str:
    """The layout's name when the entry lists it; else the one file of that kind only this hub lists (a 2i2c hub
    named `staging` may list `staging.values.yaml` under another spelling); else the layout's name, new."""
    if default in listed:
        return default
    own = [
        name for name in listed
        if name not in shared and os.path.basename(name).startswith("enc-") == encrypted
        and name.endswith((".yaml", ".yml")) and "/" not in name
    ]  # fmt: skip
    return own[0] if len(own) == 1 else default
