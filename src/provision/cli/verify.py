"""provision verify: prove registry credentials work, without creating or changing anything: one hub from its values
or flags, or every image-building hub under a folder of the 2i2c layout (the fleet check)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision.cli import conflicts
from provision.cli.common import INTERRUPTED_READ_ONLY, handled, make_reporter
from provision.cli.conflicts import Rule
from provision.cli.options import DEFAULT_DEADLINE, LIMITS, OUTPUT, REGISTRY, Debug, Quiet, Verbose
from provision.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.verbs.fleet import FleetResult
    from provision.verbs.verify import Check, VerifyRequest

DEFAULT_JOBS = 16  # verbs.fleet.DEFAULT_JOBS, repeated here so --help imports no flow
DEFAULT_PER_HOST = 4  # hostlimit.DEFAULT_PER_HOST, likewise
DEFAULT_FLEET_DEADLINE = 600.0  # a folder of hubs: many requests, rate limits shared between them
RESULT_LABELS = {"pass": "pass", "fail": "FAIL", "could-not-check": "could not check"}


ONE_HUB = ("--values-file", "--secret-file", "--server", "--username", "--password-file", "--image-prefix",
           "--secret-stdin")  # fmt: skip
FLAGS = ("--server", "--username", "--password-file", "--image-prefix")  # one hub, without its values files
# The combinations verify refuses, in the order they are checked (cli/conflicts.py).
RULES = (
    Rule("PATH checks a whole folder; {names} are for one hub (use --hub)", when=("PATH",), refuse=ONE_HUB),
    Rule("with PATH, --registry-url takes HOST=URL: which registry host to reach elsewhere", when=("PATH",),
         refuse=("--registry-url URL",)),
    Rule("--cluster and --hub select hubs under PATH: give the folder too", unless=("PATH",),
         refuse=("--cluster", "--hub")),
    Rule("{names} report each hub's retention under PATH: give the folder too", unless=("PATH",),
         refuse=("--require-retention", "--api-url")),
    Rule("HOST=URL in --registry-url is for PATH; for one hub give the URL alone", unless=("PATH",),
         refuse=("--registry-url HOST=URL",)),
    Rule("--values-file and {names} are alternatives: give the hub's values or the flags", when=("--values-file",),
         refuse=FLAGS),
    Rule("--secret-file and --secret-stdin are alternatives", when=("--values-file", "--secret-file"),
         refuse=("--secret-stdin",)),
    Rule("{first} gives the secrets for --values-file; with --server give the password with --password-file "
         "(--password-file /dev/stdin reads it from a pipe)", unless=("PATH", "--values-file"),
         refuse=("--secret-stdin", "--secret-file")),
    Rule("give --values-file (and the secrets), or --server, --username, --password-file and --image-prefix, or a "
         "folder of clusters", unless=("PATH", "--values-file"), need=FLAGS),
)  # fmt: skip


FOLDER_PANEL = "With PATH"  # the fleet check's options
ONE_HUB_PANEL = "One hub"  # the hub to check, without PATH


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


def verify(
    path: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            readable=True,
            help="Check every image-building hub under this folder (config/clusters, one cluster's folder, or a "
            "cluster.yaml), secrets decrypted with sops (SOPS_BIN, PATH or provision[sops]) into memory.",
            show_default=False,
        ),
    ] = None,
    cluster: Annotated[
        list[str] | None,
        typer.Option("--cluster", help="With PATH: only this cluster (repeatable).", rich_help_panel=FOLDER_PANEL),
    ] = None,
    hub: Annotated[
        list[str] | None,
        typer.Option(
            "--hub", help="With PATH: only this hub, HUB or CLUSTER/HUB (repeatable).", rich_help_panel=FOLDER_PANEL
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="With PATH: hubs checked at once.", min=1, rich_help_panel=FOLDER_PANEL)
    ] = DEFAULT_JOBS,
    per_host: Annotated[
        int,
        typer.Option(
            "--per-host",
            help="With PATH: requests in flight per registry host, across hubs.",
            min=1,
            rich_help_panel=FOLDER_PANEL,
        ),
    ] = DEFAULT_PER_HOST,
    values_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--values-file",
            help="The hub's public values (<hub>.values.yaml); repeatable, merged in order as Helm does. For a "
            "z2jh hub, each release's file (found beside the given one when not given).",
            dir_okay=False,
            rich_help_panel=ONE_HUB_PANEL,
        ),
    ] = None,
    secret_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--secret-file",
            help="The hub's encrypted secrets, decrypted with sops into memory; repeatable (z2jh: each release's, "
            "found beside the given one when not given).",
            dir_okay=False,
            rich_help_panel=ONE_HUB_PANEL,
        ),
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="With --values-file: read the secret values (YAML; a stream of one document per release for "
            "z2jh) from stdin (sops decrypt …).",
            rich_help_panel=ONE_HUB_PANEL,
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option("--server", help="Registry server, instead of --values-file.", rich_help_panel=ONE_HUB_PANEL),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="Registry user name.", rich_help_panel=ONE_HUB_PANEL)
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help="File holding the registry password (/dev/stdin: a pipe).",
            dir_okay=False,
            rich_help_panel=ONE_HUB_PANEL,
        ),
    ] = None,
    image_prefix: Annotated[
        str | None, typer.Option("--image-prefix", help="BinderHub image_prefix.", rich_help_panel=ONE_HUB_PANEL)
    ] = None,
    registry_url: Annotated[
        list[str] | None,
        typer.Option(
            "--registry-url",
            help="Talk to this v2 endpoint instead of the configured registry (a mirror, a port-forward): URL for "
            "one hub; HOST=URL with PATH, for the hubs on that registry host (repeatable).",
            rich_help_panel=REGISTRY,
        ),
    ] = None,
    ar_endpoint: Annotated[
        str | None,
        typer.Option(
            "--ar-endpoint", help="Artifact Registry API endpoint (default: Google's).", rich_help_panel=REGISTRY
        ),
    ] = None,
    api_url: Annotated[
        list[str] | None,
        typer.Option("--api-url", metavar="HOST=URL", help="With PATH: the registry's own API (Quay's, read for "
                     "retention) for the hubs on HOST, elsewhere (repeatable).", rich_help_panel=REGISTRY),
    ] = None,
    require_retention: Annotated[
        bool,
        typer.Option("--require-retention", help="With PATH: a hub whose image retention is 'none' fails (a "
                     "nightly check); 'unknown' (e.g. Quay without QUAY_TOKEN) stays 'could not check'.",
                     rich_help_panel=FOLDER_PANEL),
    ] = False,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table on stderr, or JSON on stdout.", rich_help_panel=OUTPUT)
    ] = ReportFormat.table,
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline",
            min=1,
            help=f"Give up after this many seconds of registry requests in all (retries and 429 waits included); "
            f"what was pending is reported. Default: {DEFAULT_DEADLINE:g} for one hub, {DEFAULT_FLEET_DEADLINE:g} "
            "with PATH (hubs not reached are 'could not check').",
            show_default=False,
            rich_help_panel=LIMITS,
        ),
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Check that registries answer, accept the hubs' credentials and let them push, with no side effect.

    Exit 0 only when no check failed (a single check that could not be made does not fail). With PATH, also
    only when every hub could be checked: a hub whose secrets cannot be decrypted is "could not check".
    """
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug, on_interrupt=INTERRUPTED_READ_ONLY):
        urls = registry_urls(registry_url or [])
        conflicts.check(RULES, {
            "PATH": path, "--cluster": cluster, "--hub": hub, "--values-file": values_file,
            "--secret-file": secret_file, "--secret-stdin": secret_stdin, "--server": server, "--username": username,
            "--password-file": password_file, "--image-prefix": image_prefix,
            "--registry-url URL": "" in urls, "--registry-url HOST=URL": bool(set(urls) - {""}),
            "--api-url": api_url, "--require-retention": require_retention,
        })  # fmt: skip
        if path is not None:
            ok = _fleet(reporter, path, cluster=cluster, hub=hub, jobs=jobs, per_host=per_host, urls=urls,
                        ar_endpoint=ar_endpoint, fmt=fmt, deadline=deadline or DEFAULT_FLEET_DEADLINE,
                        api_urls=_api_urls(api_url or []), require_retention=require_retention)  # fmt: skip
        else:
            request = _single_request(
                values_files=values_file or [], secret_files=secret_file or [], secret_stdin=secret_stdin,
                server=server, username=username, password_file=password_file, image_prefix=image_prefix,
                registry_url=urls.get(""), ar_endpoint=ar_endpoint, reporter=reporter,
            )  # fmt: skip
            ok = _single(reporter, request, fmt=fmt, deadline=deadline or DEFAULT_DEADLINE)
    if not ok:
        raise typer.Exit(EXIT_FAILURE)


def registry_urls(values: list[str]) -> dict[str, str]:
    """HOST=URL entries by registry host (Docker Hub's aliases as one); a bare URL under the key ""."""
    from provision.registries.base import host_of

    urls: dict[str, str] = {}
    for value in values:
        host, sep, url = value.partition("=")
        if not sep or "://" in host:
            host, url = "", value
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--registry-url {value!r}: the URL must start with http:// or https://")
        urls[host_of(host) if host else ""] = url
    return urls


def _api_urls(values: list[str]) -> dict[str, str]:
    """--api-url HOST=URL entries by registry host."""
    urls = registry_urls(values)
    if "" in urls:
        raise UsageError("--api-url takes HOST=URL: which registry host's API to reach elsewhere")
    return urls


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _single_request(
    *,
    values_files: list[Path],
    secret_files: list[Path],
    secret_stdin: bool,
    server: str | None,
    username: str | None,
    password_file: Path | None,
    image_prefix: str | None,
    registry_url: str | None,
    ar_endpoint: str | None,
    reporter: Reporter,
) -> VerifyRequest:
    import os

    from provision.hubconfig import HubRegistry
    from provision.verbs import verify as flow

    if values_files:
        return flow.request_from_files(
            values_files,
            secret_files=secret_files,
            secret_text=_decode(sys.stdin.buffer.read(), "stdin (--secret-stdin)") if secret_stdin else None,
            sops_bin=os.environ.get("SOPS_BIN") or None,
            registry_url=registry_url,
            ar_endpoint=ar_endpoint,
            reporter=reporter,
        )
    assert server and username and password_file and image_prefix  # RULES: the flags are all given
    try:
        data = password_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --password-file {str(password_file)!r}: {exc.strerror}") from None
    password = _decode(data, f"--password-file {str(password_file)!r}").strip()
    if not password:
        raise UsageError(f"--password-file {str(password_file)!r} is empty")
    hub_registry = HubRegistry(
        kind=flow.kind_of(server, username), server=server, username=username,
        image_prefix=image_prefix, password=password,
    )  # fmt: skip
    return flow.VerifyRequest(hub_registry, None, registry_url, ar_endpoint, from_values=False)


def _single(reporter: Reporter, request: VerifyRequest, *, fmt: ReportFormat, deadline: float) -> bool:
    from provision.console import emit, to_json
    from provision.verbs import verify as flow

    checks = flow.run(request, reporter=reporter, deadline=deadline)
    for line in check_rows(checks):
        reporter.always(line)
    failed = [c for c in checks if c.status == "fail"]
    reporter.always(f"{len(checks)} checks: {len(failed)} failed")
    if fmt is ReportFormat.json:
        emit(reporter.redact(to_json([{"check": c.name, "status": c.status, "detail": c.detail} for c in checks])))
    return not failed


def check_rows(checks: list[Check]) -> list[str]:
    width = max(len(c.name) for c in checks)
    return [f"{c.status:<15} {c.name:<{width}}  {c.detail}" for c in checks]


def _fleet(
    reporter: Reporter,
    path: Path,
    *,
    cluster: list[str] | None,
    hub: list[str] | None,
    jobs: int,
    per_host: int,
    urls: dict[str, str],
    ar_endpoint: str | None,
    fmt: ReportFormat,
    deadline: float,
    api_urls: dict[str, str],
    require_retention: bool,
) -> bool:
    import os

    from provision.console import emit, to_json
    from provision.verbs import fleet

    request = fleet.FleetRequest(
        path, frozenset(cluster or ()), frozenset(hub or ()), jobs=jobs, per_host=per_host, registry_urls=urls,
        ar_endpoint=ar_endpoint, sops_bin=os.environ.get("SOPS_BIN") or None, deadline=deadline,
        api_urls=api_urls, environ=dict(os.environ), require_retention=require_retention,
    )  # fmt: skip
    result = fleet.run(request, reporter=reporter)
    for line in fleet_table(result):
        reporter.always(line)
    reporter.always(result.summary())
    if fmt is ReportFormat.json:
        emit(reporter.redact(to_json(result.as_dict())))
    return result.ok


def fleet_table(result: FleetResult) -> list[str]:
    """One row per hub: cluster, hub, registry, result, retention, and the failing check with its reason; then
    each hub's retention in words."""
    header = ("CLUSTER", "HUB", "REGISTRY", "RESULT", "RETENTION", "CHECK AND REASON")
    rows = [(h.cluster, h.hub, h.registry, RESULT_LABELS[h.result], h.retention.state if h.retention else "unknown",
             h.reason or "-") for h in result.hubs]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    table = [
        "  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])), row[5]]).rstrip()
        for row in [header, *rows]
    ]
    return [*table, "retention:", *(f"  {h.cluster}/{h.hub}: {h.retention_label}" for h in result.hubs)]
