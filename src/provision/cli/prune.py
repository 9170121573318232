"""provision prune: delete a hub's old images on a registry with no server-side retention (Docker Hub, any
registry v2 server), by rules, keeping every image the hub's values name; with PATH, every image-building hub under
a folder of the 2i2c layout (one plan, one confirmation)."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision.cli import conflicts
from provision.cli.common import handled, make_reporter
from provision.cli.conflicts import Rule
from provision.cli.options import (
    DEFAULT_DEADLINE,
    HUB_FILES,
    LIMITS,
    OUTPUT,
    REGISTRY,
    RUN,
    DeadlineSeconds,
    Debug,
    DryRun,
    Quiet,
    Verbose,
)
from provision.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.verbs.prune_rules import Rules

RETENTION = "Retention"  # the rules: at least one
FOLDER_PANEL = "With PATH"  # the fleet's options
DEFAULT_PER_HOST = 4  # hostlimit.DEFAULT_PER_HOST, repeated so --help imports no flow
DEFAULT_JOBS = 8  # verbs.prune.DEFAULT_JOBS, likewise


class PruneFormat(StrEnum):
    table = "table"
    json = "json"


def prune(
    path: Annotated[
        Path | None,
        typer.Argument(exists=True, readable=True, help="Prune every image-building hub under this folder "
                       "(config/clusters, one cluster's folder, or a cluster.yaml), as provision verify PATH finds "
                       "them; secrets decrypted with sops into memory.", show_default=False),
    ] = None,
    cluster: Annotated[
        list[str] | None,
        typer.Option("--cluster", help="With PATH: only this cluster (repeatable).", rich_help_panel=FOLDER_PANEL),
    ] = None,
    hub: Annotated[
        list[str] | None,
        typer.Option("--hub", help="With PATH: only this hub, HUB or CLUSTER/HUB (repeatable).",
                     rich_help_panel=FOLDER_PANEL),
    ] = None,
    values_file: Annotated[
        list[Path] | None,
        typer.Option("--values-file", help="The hub's public values (<hub>.values.yaml); repeatable, merged in "
                     "order as Helm does. Its images (singleuser, profiles, fancy-profiles choices) are never "
                     "deleted.", dir_okay=False, rich_help_panel=HUB_FILES, show_default=False),
    ] = None,
    secret_file: Annotated[
        list[Path] | None,
        typer.Option("--secret-file", help="The hub's encrypted secrets (the registry password), decrypted with "
                     "sops into memory; repeatable.", dir_okay=False, rich_help_panel=HUB_FILES),
    ] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option("--secret-stdin", help="Read the decrypted secret values from stdin (sops decrypt ...).",
                     rich_help_panel=HUB_FILES),
    ] = False,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep the newest N tags (by push time) of each repository.",
                     rich_help_panel=RETENTION),
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", metavar="DAYS", help="Delete tags pushed more than DAYS days ago.",
                     rich_help_panel=RETENTION),
    ] = None,
    unused_for: Annotated[
        float | None,
        typer.Option("--unused-for", metavar="DAYS", help="Delete tags neither pulled nor pushed for DAYS days "
                     "(registries that record pulls: Docker Hub). BinderHub pulls the manifest on every launch, so "
                     "this is 'not launched for DAYS days'.", rich_help_panel=RETENTION),
    ] = None,
    registry_url: Annotated[
        str | None,
        typer.Option("--registry-url", help="Talk to this v2 endpoint instead of the configured registry (with "
                     "PATH: HOST=URL, for the hubs on that registry host).", rich_help_panel=REGISTRY),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", help="Docker Hub API (default https://hub.docker.com).", rich_help_panel=REGISTRY),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (CI).",
                                      rich_help_panel=RUN)] = False,
    dry_run: DryRun = False,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
    per_host: Annotated[
        int, typer.Option("--per-host", min=1, help="Requests in flight per registry host.", rich_help_panel=LIMITS)
    ] = DEFAULT_PER_HOST,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Repositories listed, tags deleted, at once.",
                          rich_help_panel=LIMITS),
    ] = DEFAULT_JOBS,
    fmt: Annotated[
        PruneFormat, typer.Option("--format", help="table on stderr, or also the plan and result as JSON on stdout.",
                                  rich_help_panel=OUTPUT),
    ] = PruneFormat.table,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Delete a hub's old images by retention rules: plan (stderr), confirm, delete tags and emptied repositories.

    Only repositories under the hub's image prefix are touched. A run after an interruption lists the registry
    again and deletes what is left.
    """  # fmt: skip
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        from provision.cli.remove import confirm
        from provision.console import emit, to_json
        from provision.verbs import prune as flow
        from provision.verbs.prune_rules import Rules

        conflicts.check(RULES, {"PATH": path, "--cluster": cluster, "--hub": hub, "--values-file": values_file,
                                "--secret-file": secret_file, "--secret-stdin": secret_stdin})  # fmt: skip
        if path is not None:
            ok = _fleet(reporter, path, cluster=cluster, hub=hub, rules=Rules(keep, older_than, unused_for),
                        registry_url=registry_url, api_url=api_url, deadline=deadline, per_host=per_host, jobs=jobs,
                        yes=yes, dry_run=dry_run, fmt=fmt)  # fmt: skip
            if not ok:
                raise typer.Exit(EXIT_FAILURE)
            return
        assert values_file  # RULES
        secrets = sys.stdin.buffer.read().decode("utf-8", errors="replace") if secret_stdin else None
        request = flow.PruneRequest(
            tuple(values_file), Rules(keep, older_than, unused_for), tuple(secret_file or ()),
            secret_text=secrets, sops_bin=os.environ.get("SOPS_BIN") or None, registry_url=registry_url,
            api_url=api_url, deadline=deadline, per_host=per_host, jobs=jobs, yes=yes, dry_run=dry_run,
        )  # fmt: skip
        result = flow.run(request, reporter=reporter, confirm=confirm)
        if dry_run:
            reporter.always("dry run: nothing was changed")
        elif result.declined:
            reporter.always("declined: nothing was changed")
        else:
            reporter.always(f"summary: deleted {result.deleted_tags} tag(s) and {result.deleted_repositories} empty "
                            f"repositories in {result.elapsed:.1f} s")  # fmt: skip
        if fmt is PruneFormat.json:
            emit(reporter.redact(to_json(result.as_dict())))
    if result.declined:
        raise typer.Exit(EXIT_FAILURE)


RULES = (
    Rule("PATH prunes every hub under a folder; {names} are for one hub (use --hub)", when=("PATH",),
         refuse=("--values-file", "--secret-file", "--secret-stdin")),
    Rule("--cluster and --hub select hubs under PATH: give the folder too", unless=("PATH",),
         refuse=("--cluster", "--hub")),
    Rule("give the hub's --values-file (and its secrets), or a folder of clusters (PATH)", unless=("PATH",),
         need=("--values-file",)),
)  # fmt: skip


def _fleet(reporter: Reporter, path: Path, *, cluster: list[str] | None, hub: list[str] | None, rules: Rules,
           registry_url: str | None, api_url: str | None, deadline: float, per_host: int, jobs: int, yes: bool,
           dry_run: bool, fmt: PruneFormat) -> bool:  # fmt: skip
    """provision prune PATH; whether every hub went well (none failed, nothing declined)."""
    from provision.cli.remove import confirm
    from provision.cli.verify import registry_urls
    from provision.console import emit, to_json
    from provision.verbs import fleet_prune

    urls = registry_urls([registry_url] if registry_url else [])
    if "" in urls:
        raise UsageError("with PATH, --registry-url takes HOST=URL: which registry host to reach elsewhere")
    request = fleet_prune.FleetPruneRequest(
        path, rules, frozenset(cluster or ()), frozenset(hub or ()), registry_urls=urls, api_url=api_url,
        environ=dict(os.environ), sops_bin=os.environ.get("SOPS_BIN") or None, deadline=deadline,
        per_host=per_host, jobs=jobs, yes=yes, dry_run=dry_run,
    )  # fmt: skip
    result = fleet_prune.run(request, reporter=reporter, confirm=confirm)
    if dry_run:
        reporter.always("dry run: nothing was changed")
    elif result.declined:
        reporter.always("declined: nothing was changed")
    reporter.always(result.summary())
    if fmt is PruneFormat.json:
        emit(reporter.redact(to_json(result.as_dict())))
    return result.ok
