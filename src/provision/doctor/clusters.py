"""Doctor's walk over clusters: each cluster.yaml, the files it lists or that lie beside it, then each hub on the
merged values of its files (view.py, hub.py); findings collected in report order.

The driver: it imports the rule families and hands them a findings collector; they never import it back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision.doctor import file_rules, hub
from provision.doctor.findings import NO_HUB, SEVERITIES, DoctorResult, Finding, Findings, HubChecked, Severity
from provision.doctor.hub import Prefix
from provision.doctor.view import Cluster, HubView
from provision.hubconfig import get_path
from provision.hubfiles import cluster as clusterfiles
from provision.hubfiles.cluster import CLUSTER_FILE, ValuesFile

SUPPORT = "support"  # cluster.yaml's `support:` chart also lists values files


class Doctor:
    """Walks clusters and hubs, keeps every file read once, and collects the findings in report order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, ValuesFile] = {}
        self.checked: set[Path] = set()  # files whose own checks ran (a file may be listed from two clusters)
        self.findings = Findings()
        self.hubs: list[HubChecked] = []
        self.prefixes: list[Prefix] = []
        self.order: dict[tuple[str, str], tuple[int, int]] = {}

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def load(self, path: Path) -> ValuesFile:
        if path not in self.files:
            self.files[path] = clusterfiles.load(path, self.rel(path))
        return self.files[path]

    def add(self, severity: Severity, code: str, cluster: str, hub: str, file: str, key: str, message: str) -> None:
        self.findings.add(severity, code, cluster, hub, file, key, message)

    def result(self, path: str) -> DoctorResult:
        def order(f: Finding) -> tuple[Any, ...]:
            cluster_index, hub_index = self.order.get((f.cluster, f.hub), (10**9, 10**9))
            return (cluster_index, hub_index, SEVERITIES.index(f.severity), f.file, f.key, f.code)

        return DoctorResult(path, tuple(self.hubs), tuple(sorted(self.findings.items, key=order)))

    def check_cluster(self, config: Path, *, index: int) -> None:
        folder = config.parent
        loaded = self.load(config)
        name = folder.name
        if loaded.doc is None:
            self.order[(name, NO_HUB)] = (index, 10**6)
            if loaded.template:
                message = f"{CLUSTER_FILE} is a Jinja template ({{{{ }}}}), not a cluster: skipped"
                self.add("info", "template-skipped", name, NO_HUB, loaded.rel, "", message)
            else:
                self.add("error", "invalid-yaml", name, NO_HUB, loaded.rel, "", f"{CLUSTER_FILE} {loaded.error}")
            return
        doc = loaded.doc
        name = str(doc.get("name") or name)
        project = get_path(doc, "gcp", "project")
        cluster = Cluster(
            name, folder, loaded.rel, str(doc.get("provider") or ""), str(project) if project else None, index
        )
        self.order[(name, NO_HUB)] = (index, 10**6)
        for key, message in clusterfiles.layout_problems(doc):
            self.add("error", "bad-cluster-layout", name, NO_HUB, loaded.rel, key, f"{CLUSTER_FILE}: {key} {message}")

        entries = doc.get("hubs")
        hubs = (
            [h for h in entries if isinstance(h, Mapping) and isinstance(h.get("name"), str)]
            if isinstance(entries, list)
            else []
        )
        listed: dict[Path, list[str]] = {}
        support_files = get_path(doc, SUPPORT, "helm_chart_values_files")
        for raw in support_files if isinstance(support_files, list) else ():
            listed.setdefault(clusterfiles.join(folder, raw), []).append(SUPPORT)
        for entry in hubs:
            for raw in clusterfiles.listed(entry):
                listed.setdefault(clusterfiles.join(folder, raw), []).append(str(entry["name"]))
        hub_names = [str(h["name"]) for h in hubs]

        # File by file: what does not need the merged view (syntax, plaintext secrets, unlisted files).
        in_folder = {clusterfiles.join(folder, p.name) for p in folder.glob("*.values.yaml")}
        for path in sorted(set(listed) | in_folder):
            listers = listed.get(path, [])
            if path in in_folder:
                file_rules.check_listed(
                    self.findings, path, self.rel(path), cluster=name, hub_names=hub_names, listers=listers
                )
            if path.suffix == ".jsonnet" or not path.is_file() or path in self.checked:
                continue
            self.checked.add(path)
            # A file's own findings go to the one hub that uses it; a shared file's go to the cluster ("-").
            users = [h for h in listers if h != SUPPORT]
            by_name = file_rules.owner_by_name(path.name, hub_names)
            owner = users[0] if len(listers) == 1 and users else None if listers else by_name
            file_rules.check_file(self.findings, self.load(path), cluster=name, hub=owner or NO_HUB, users=users)

        for hub_index, entry in enumerate(hubs):
            self.check_hub(cluster, entry, hub_index)

    def check_hub(self, cluster: Cluster, entry: Mapping[str, Any], hub_index: int) -> None:
        name = str(entry["name"])
        chart = str(entry.get("helm_chart") or "")
        self.hubs.append(HubChecked(cluster.name, name, chart or "-", cluster.config_rel))
        self.order[(cluster.name, name)] = (cluster.index, hub_index)
        files: list[ValuesFile] = []
        listed_rel: list[str] = []
        for raw in clusterfiles.listed(entry):
            path = clusterfiles.join(cluster.folder, raw)
            listed_rel.append(self.rel(path))
            if not path.is_file():
                self.add(
                    "error",
                    "missing-values-file",
                    cluster.name,
                    name,
                    cluster.config_rel,
                    f"hubs[name={name}].helm_chart_values_files",
                    f"lists {raw}, which does not exist: the deploy fails; create it or remove it from the list",
                )
            elif path.suffix == ".jsonnet":
                self.add(
                    "info",
                    "jsonnet-not-evaluated",
                    cluster.name,
                    name,
                    self.rel(path),
                    "",
                    f"{path.name} is jsonnet and was not evaluated: keys it sets are not seen by these checks",
                )
            else:
                loaded = self.load(path)
                if loaded.doc is not None:
                    files.append(loaded)
        view = HubView(cluster, name, chart, files, listed=listed_rel, rel=self.rel, findings=self.findings)
        used = hub.check(view)
        if used is not None:
            self.prefixes.append(used)

    def check_shared_prefixes(self) -> None:
        by_prefix: dict[str, list[Prefix]] = {}
        for p in self.prefixes:
            by_prefix.setdefault(p.prefix, []).append(p)
        for prefix, users in by_prefix.items():
            for p in users if len(users) > 1 else ():
                others = ", ".join(f"{o.cluster}/{o.hub}" for o in users if o is not p)
                self.add(
                    "info",
                    "shared-image-prefix",
                    p.cluster,
                    p.hub,
                    p.file,
                    p.key,
                    f"image_prefix {prefix!r} is also used by {others}: their images share repository names "
                    "(fine when intended; else give each hub its own <cluster>-<hub>- prefix)",
                )
