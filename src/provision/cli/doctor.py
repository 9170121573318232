"""provision doctor: check the image-building config of existing hubs (2i2c layout), offline, without decrypting."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision.cli.common import INTERRUPTED_READ_ONLY, handled, make_reporter
from provision.cli.options import OUTPUT, Debug, Quiet, Verbose
from provision.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from provision.doctor import DoctorResult, Finding


class DoctorFormat(StrEnum):
    table = "table"
    json = "json"


def doctor(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            readable=True,
            help="A cluster folder (config/clusters/<cluster>), any folder above some, or a cluster.yaml.",
        ),
    ],
    fmt: Annotated[
        DoctorFormat,
        typer.Option(
            "--format",
            help="table: the findings per hub on stderr; json: the findings on stdout.",
            rich_help_panel=OUTPUT,
        ),
    ] = DoctorFormat.table,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Find what keeps hubs from building, pushing and pulling images: registry settings, pull secrets,
    fancy-profiles, values files that are not listed, secrets in plaintext.

    Exits 1 when any finding is an error. Never prints a secret value.
    """
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug, on_interrupt=INTERRUPTED_READ_ONLY):
        from provision import doctor as flow
        from provision.console import emit, to_json

        result = flow.run(path, reporter=reporter)
        if fmt is DoctorFormat.json:
            emit(to_json(result.as_dict()))
        else:
            for line in table(result):
                reporter.always(line)
        reporter.always(result.summary())
    if result.has_errors:
        raise typer.Exit(EXIT_FAILURE)


def table(result: DoctorResult) -> list[str]:
    """The findings as text: one block per hub (then one per cluster for files no single hub owns)."""
    lines: list[str] = []
    groups: list[tuple[str, str, str]] = [(h.cluster, h.hub, f"{h.cluster}/{h.hub} ({h.chart})") for h in result.hubs]
    for cluster in dict.fromkeys(f.cluster for f in result.findings if f.hub == "-"):
        groups.append((cluster, "-", f"{cluster} (files no single hub uses)"))
    groups.sort(key=lambda g: (_cluster_order(result, g[0]), g[1] == "-"))
    for cluster, hub, heading in groups:
        found = [f for f in result.findings if f.cluster == cluster and f.hub == hub]
        lines.append(f"{heading}: {_counts(found)}")
        lines.extend(_rows(found))
    return lines


def _cluster_order(result: DoctorResult, cluster: str) -> int:
    clusters = list(dict.fromkeys([h.cluster for h in result.hubs] + [f.cluster for f in result.findings]))
    return clusters.index(cluster)


def _counts(findings: list[Finding]) -> str:
    if not findings:
        return "no findings"
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")}
    return ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}" for s, n in counts.items() if n)


def _rows(findings: list[Finding]) -> list[str]:
    if not findings:
        return []
    width_code = max(len(f.code) for f in findings)
    width_file = max(len(f.file) for f in findings)
    rows = []
    for f in findings:
        rows.append(f"  {f.severity:<7}  {f.code:<{width_code}}  {f.file:<{width_file}}  {f.key or '-'}")
        rows.append(f"  {'':<7}  {f.message}")
    return rows
