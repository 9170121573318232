"""provision gcp: an Artifact Registry repository for a hub, through terraform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision.cli.common import (
    RegistryOptions,
    handled,
    publish,
    registry_command,
)


@registry_command
def gcp(
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster name: the tfvars file and workspace default.")],
    hub: Annotated[str, typer.Option("--hub", help="Hub name; also the repository name unless --repo is given.")],
    repo: Annotated[
        str | None, typer.Option("--repo", help="container_repos entry (<=18 chars), default the hub name.")
    ] = None,
    terraform_dir: Annotated[
        Path, typer.Option("--terraform-dir", help="The terraform root module.", file_okay=False)
    ] = Path("terraform/gcp"),
    var_file: Annotated[
        Path | None,
        typer.Option(
            "--var-file",
            help="tfvars file to edit (default: <terraform-dir>/projects/<cluster>.tfvars); also names the "
            "default workspace.",
            dir_okay=False,
        ),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Terraform workspace (default: the --var-file's name, else the cluster)."),
    ] = None,
    backend_config: Annotated[
        list[str] | None,
        typer.Option(
            "--backend-config",
            help="KEY=VALUE or a file (from the current folder), passed to init -reconfigure (repeatable). "
            "Without it, init returns to the module's own backend.",
        ),
    ] = None,
    terraform_bin: Annotated[
        str | None,
        typer.Option(
            "--terraform-bin",
            envvar="PROVISION_TERRAFORM_BIN",
            help="tofu or terraform (name or path). Default: the binary the module's lock file or state shows, "
            "else the only one on PATH.",
        ),
    ] = None,
    create_workspace: Annotated[
        bool, typer.Option("--create-workspace", help="Create the workspace when it does not exist.")
    ] = False,
    allow_unrelated_changes: Annotated[
        bool, typer.Option("--allow-unrelated-changes", help="Apply even if the plan changes other resources.")
    ] = False,
    allow_binary_switch: Annotated[
        bool,
        typer.Option(
            "--allow-binary-switch",
            help="Run --terraform-bin even on a state the other binary manages (migrates it).",
        ),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout", min=0, help="Seconds to wait for another provision run on the same module or tfvars."
        ),
    ] = 600.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")] = False,
    *,
    options: RegistryOptions,
) -> None:
    """Add an Artifact Registry repository for a hub through terraform; print its values.

    Edits container_repos in the cluster's tfvars, plans, asks, applies, then reads the service-account key from
    the sensitive output registry_sa_keys (username _json_key).
    """
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.console import ask
        from provision.flows import gcp as flow

        request = flow.GcpRequest(
            cluster=cluster,
            hub=hub,
            repo=repo,
            terraform_dir=terraform_dir,
            var_file=var_file,
            workspace=workspace,
            backend_configs=tuple(backend_config or ()),
            terraform_bin=terraform_bin,
            create_workspace=create_workspace,
            allow_unrelated_changes=allow_unrelated_changes,
            allow_binary_switch=allow_binary_switch,
            lock_timeout=lock_timeout,
            yes=yes,
        )
        flow.validate(request)
        prepared = options.prepare_hub_files(hub=hub)
        result = flow.run(request, reporter=reporter, confirm=ask, dry_run=options.dry_run)
        if not options.dry_run:
            applied = f"applied {len(result.plan.changes)} change(s)" if result.applied else "nothing applied"
            edited = "container_repos edited" if result.tfvars_changed else "container_repos unchanged"
            reporter.always(f"summary: {edited}; {applied}; {result.processes} terraform processes")
        summary = {
            "tfvars_changed": result.tfvars_changed,
            "applied": result.applied,
            "terraform_changes": [c.describe() for c in result.plan.changes],
        }
        publish(reporter, prepared, result.registry, fmt=options.fmt, dry_run=options.dry_run, summary=summary)
