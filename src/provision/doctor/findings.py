"""What doctor reports: one Finding per problem, the collector the rules add them to, the hubs examined, and the
result as text counts or JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
NO_HUB = "-"  # the hub of a finding about a file that no hub, or several hubs, use


@dataclass(frozen=True)
class Finding:
    """One problem: `file` is where the key is or should be (relative to the path examined), `key` a dotted path
    (empty when the finding is about the whole file). The message never holds a secret value."""

    severity: Severity
    code: str
    cluster: str
    hub: str
    file: str
    key: str
    message: str


class Findings:
    """The collector every rule is given: rules add to it and never see who reads it (the driver, clusters.py)."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, severity: Severity, code: str, cluster: str, hub: str, file: str, key: str, message: str) -> None:
        self.items.append(Finding(severity, code, cluster, hub, file, key, message))


@dataclass(frozen=True)
class HubChecked:
    cluster: str
    hub: str
    chart: str
    cluster_file: str


@dataclass(frozen=True)
class DoctorResult:
    """The hubs examined, in cluster.yaml order, and the findings, grouped by cluster and hub, errors first."""

    path: str
    hubs: tuple[HubChecked, ...]
    findings: tuple[Finding, ...]

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def has_errors(self) -> bool:
        return self.count("error") > 0

    def summary(self) -> str:
        e, w, i = (self.count(s) for s in SEVERITIES)
        return (
            f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}, {i} info "
            f"in {len(self.hubs)} hub{'s' * (len(self.hubs) != 1)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "summary": {
                "errors": self.count("error"),
                "warnings": self.count("warning"),
                "info": self.count("info"),
                "hubs": len(self.hubs),
            },
            "hubs": [asdict(h) for h in self.hubs],
            "findings": [asdict(f) for f in self.findings],
        }
