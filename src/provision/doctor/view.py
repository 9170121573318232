"""What the hub rules are given: a read-only view of one hub's merged values (the `basehub:` wrapper of daskhub hubs
removed), the facts of its cluster, where each key is or belongs, and the findings collector they add to.

The rules import this module and findings.py only, never the driver (clusters.py, hub.py) that runs them: issue 19's
"rules never import the driver", so the package has no import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.doctor.findings import Findings, Severity
from provision.doctor.values import has
from provision.hubconfig import get_path
from provision.hubfiles import cluster as clusterfiles
from provision.hubfiles.cluster import ValuesFile


@dataclass(frozen=True)
class Cluster:
    """What cluster.yaml says about the cluster a hub runs on."""

    name: str
    folder: Path
    config_rel: str
    provider: str
    gcp_project: str | None
    index: int


class HubView:
    """One hub's merged values (later files win, as Helm merges them), read-only, and its findings' destination."""

    def __init__(
        self,
        cluster: Cluster,
        name: str,
        chart: str,
        files: Sequence[ValuesFile],
        *,
        listed: Sequence[str],
        rel: Callable[[Path], str],
        findings: Findings,
    ) -> None:
        self.cluster = cluster
        self.name = name
        self.chart = chart
        self.files = tuple(files)
        self.listed = tuple(listed)
        self.rel = rel  # a path as findings name it (relative to the path examined)
        self.findings = findings
        self.daskhub = chart == "daskhub"
        self.base: tuple[str, ...] = ("basehub",) if self.daskhub else ()
        merged: dict[Any, Any] = {}
        for file in files:
            assert file.doc is not None
            merged = clusterfiles.merge(merged, file.doc)
        view = merged.get("basehub") if self.daskhub else merged
        self.values: Mapping[Any, Any] = view if isinstance(view, Mapping) else {}

    def get(self, *keys: str) -> Any:
        return get_path(self.values, *keys)

    def key(self, *keys: str) -> str:
        return ".".join((*self.base, *keys))

    def locate(self, keys: Sequence[str], *, secret: bool = False) -> str:
        """The file where a key is, or should be: the last file that sets it; else the last that sets its closest
        parent; else the hub's own file. Secrets belong in encrypted files only."""
        full = (*self.base, *keys)
        candidates = [f for f in self.files if (f.encrypted or f.secret_by_name) == secret]
        if not secret:
            for file in reversed(self.files):
                if file.doc is not None and has(file.doc, full):
                    return file.rel
        for depth in range(len(full), len(self.base), -1):
            for file in reversed(candidates):
                if file.doc is not None and has(file.doc, full[:depth]):
                    return file.rel
        own = self.own(secret=secret)
        return own if own in self.listed or not candidates else candidates[-1].rel

    def own(self, *, secret: bool = False) -> str:
        """The hub's own file: `<hub>.values.yaml`, or `enc-<hub>.secret.values.yaml` for secrets."""
        name = f"enc-{self.name}.secret.values.yaml" if secret else f"{self.name}.values.yaml"
        return self.rel(self.cluster.folder / name)

    def add(
        self,
        severity: Severity,
        code: str,
        keys: Sequence[str],
        message: str,
        *,
        secret: bool = False,
        key: str | None = None,
        file: str | None = None,
    ) -> None:
        """A finding about this hub, at `keys` (its file found by locate) unless `key` or `file` say otherwise."""
        self.findings.add(
            severity,
            code,
            self.cluster.name,
            self.name,
            file if file is not None else self.locate(keys, secret=secret),
            key if key is not None else self.key(*keys),
            message,
        )
