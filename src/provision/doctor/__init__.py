"""provision doctor: static, offline checks of the image-building config of hubs in the 2i2c layout.

Each hub's `helm_chart_values_files` are read in the order `cluster.yaml` lists them and merged as Helm merges values
files (maps key by key, later files win, lists replaced) before any rule looks at them (hubfiles/cluster.py).
sops-encrypted files are read as plain YAML: key names stay readable and an `ENC[...]` value counts as a present
value of the type sops recorded, so nothing is decrypted. Findings name keys and files, never values. Rules follow
../shared/facts/hub-config.md.

The package, by role: findings.py (what is reported, and the collector rules add to), clusters.py and hub.py (the
driver: the walk over clusters, files and hubs, running the rules), view.py (what hub rules see: one hub's merged
values, its cluster's facts), the rule families file_rules.py (single files), profile_rules.py and registry_rules.py
(what differs between registry kinds, the kinds answer: RegistryKind's doctor block), values.py (reading values that
may be encrypted or placeholders). Rules never import the driver.
"""

from __future__ import annotations

from pathlib import Path

from provision.console import Reporter
from provision.doctor.clusters import Doctor
from provision.doctor.findings import SEVERITIES, DoctorResult, Finding, HubChecked, Severity
from provision.hubfiles.cluster import cluster_configs

__all__ = ["SEVERITIES", "DoctorResult", "Finding", "HubChecked", "Severity", "run"]


def run(path: Path, *, reporter: Reporter | None = None) -> DoctorResult:
    """Check every hub of every `cluster.yaml` at or under `path` (a cluster folder, any folder above one, or a
    cluster.yaml). Reads files only. Raises UsageError when there is no cluster.yaml to check."""
    root, configs = cluster_configs(path)
    doctor = Doctor(root)
    for index, config in enumerate(configs, start=1):
        if reporter is not None:
            reporter.debug(f"{index}/{len(configs)}: {doctor.rel(config)}")
        doctor.check_cluster(config, index=index)
    doctor.check_shared_prefixes()
    return doctor.result(str(path))
