"""One hub as doctor sees it: the merged values of its listed files (the `basehub:` wrapper of daskhub hubs
removed), where each key is or belongs, and the rule groups run on it (profile_rules, registry_rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.doctor import profile_rules, registry_rules
from provision.doctor.findings import Severity
from provision.doctor.values import has, text
from provision.hubconfig import get_path
from provision.hubfiles import cluster as clusterfiles
from provision.hubfiles.cluster import ValuesFile

if TYPE_CHECKING:
    from provision.doctor.clusters import Doctor

# basehub's own subcharts: on a daskhub hub the parent chart ignores them unless they sit under `basehub:`.
BASEHUB_KEYS = ("jupyterhub", "binderhub-service", "dask-gateway")
PREFIX_KEY = registry_rules.PREFIX_KEY


@dataclass(frozen=True)
class Cluster:
    name: str
    folder: Path
    config_rel: str
    provider: str
    gcp_project: str | None
    index: int


@dataclass(frozen=True)
class Prefix:
    """An image_prefix in use, to find prefixes shared between hubs."""

    cluster: str
    hub: str
    prefix: str
    file: str
    key: str


class Hub:
    """The rules for one hub, on the merged values of its files."""

    def __init__(
        self, doctor: Doctor, cluster: Cluster, name: str, chart: str, files: list[ValuesFile], listed: list[str]
    ) -> None:
        self.doctor = doctor
        self.cluster = cluster
        self.name = name
        self.chart = chart
        self.files = files
        self.listed = listed
        self.daskhub = chart == "daskhub"
        self.base: tuple[str, ...] = ("basehub",) if self.daskhub else ()
        merged: dict[Any, Any] = {}
        for file in files:
            assert file.doc is not None
            merged = clusterfiles.merge(merged, file.doc)
        view = merged.get("basehub") if self.daskhub else merged
        self.values: Mapping[Any, Any] = view if isinstance(view, Mapping) else {}

    # -- helpers ---------------------------------------------------------------------------------------------

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
        return self.doctor.rel(self.cluster.folder / name)

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
        self.doctor.add(
            severity,
            code,
            self.cluster.name,
            self.name,
            file if file is not None else self.locate(keys, secret=secret),
            key if key is not None else self.key(*keys),
            message,
        )

    # -- rules ----------------------------------------------------------------------------------------------

    def check(self) -> None:
        if self.daskhub:
            self.check_basehub_wrapper()
        binder = self.get("binderhub-service", "enabled") is True
        profile_rules.check_profiles(self, binder=binder)
        prefix = self.get(*PREFIX_KEY)
        if text(prefix) is not None:
            where = self.locate(PREFIX_KEY)
            self.doctor.prefixes.append(
                Prefix(self.cluster.name, self.name, str(prefix).strip(), where, self.key(*PREFIX_KEY))
            )
            if not binder:
                self.add(
                    "info",
                    "image-prefix-without-binderhub",
                    PREFIX_KEY,
                    "image_prefix is set but binderhub-service is not enabled, so nothing builds images here",
                )
        if binder:
            registry_rules.check_registry(self, prefix)

    def check_basehub_wrapper(self) -> None:
        for file in self.files:
            assert file.doc is not None
            for top in BASEHUB_KEYS:
                if top in file.doc:
                    self.add(
                        "error",
                        "not-under-basehub",
                        (),
                        f"this hub uses the daskhub chart, which ignores a top-level {top}: key; "
                        f"move it under basehub: ({self.base[0]}.{top})",
                        key=top,
                        file=file.rel,
                    )
