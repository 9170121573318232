"""provision gcp: an Artifact Registry repository for a hub, through terraform (and its key rotation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provision.cli.common import RegistryOptions, handled, registry_command

if TYPE_CHECKING:
    from provision.registries.artifact_registry.create import GcpRequest

# The terraform options, shared with `provision remove gcp`.
Cluster = Annotated[str, typer.Option("--cluster", help="Cluster name: the tfvars file and workspace default.")]
Hub = Annotated[str, typer.Option("--hub", help="Hub name; also the repository name unless --repo is given.")]
Repo = Annotated[str | None, typer.Option("--repo", help="container_repos entry (<=18 chars), default the hub name.")]
TerraformDir = Annotated[Path, typer.Option("--terraform-dir", help="The terraform root module.", file_okay=False)]
VarFile = Annotated[
    Path | None,
    typer.Option(
        "--var-file",
        help="tfvars file to edit (default: <terraform-dir>/projects/<cluster>.tfvars); also names the "
        "default workspace.",
        dir_okay=False,
    ),
]
Workspace = Annotated[
    str | None,
    typer.Option("--workspace", help="Terraform workspace (default: the --var-file's name, else the cluster)."),
]
BackendConfig = Annotated[
    list[str] | None,
    typer.Option(
        "--backend-config",
        help="KEY=VALUE or a file (from the current folder), passed to init -reconfigure (repeatable). "
        "Without it, init returns to the module's own backend.",
    ),
]
TerraformBin = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        envvar="PROVISION_TERRAFORM_BIN",
        help="tofu or terraform (name or path). Default: the binary the module's lock file or state shows, "
        "else the only one on PATH.",
    ),
]
AllowUnrelated = Annotated[
    bool, typer.Option("--allow-unrelated-changes", help="Apply even if the plan changes other resources.")
]
AllowBinarySwitch = Annotated[
    bool,
    typer.Option(
        "--allow-binary-switch",
        help="Run --terraform-bin even on a state the other binary manages (migrates it).",
    ),
]
LockTimeout = Annotated[
    float,
    typer.Option(
        "--lock-timeout", min=0, help="Seconds to wait for another provision run on the same module or tfvars."
    ),
]


def gcp_request(*, backend_config: list[str] | None, **fields: Any) -> GcpRequest:
    """The flow's request from the command's options (the same names, but --backend-config is repeatable)."""
    from provision.registries.artifact_registry.create import GcpRequest

    return GcpRequest(backend_configs=tuple(backend_config or ()), **fields)


@registry_command
def gcp(
    cluster: Cluster,
    hub: Hub,
    repo: Repo = None,
    terraform_dir: TerraformDir = Path("terraform/gcp"),
    var_file: VarFile = None,
    workspace: Workspace = None,
    backend_config: BackendConfig = None,
    terraform_bin: TerraformBin = None,
    create_workspace: Annotated[
        bool, typer.Option("--create-workspace", help="Create the workspace when it does not exist.")
    ] = False,
    allow_unrelated_changes: AllowUnrelated = False,
    allow_binary_switch: AllowBinarySwitch = False,
    lock_timeout: LockTimeout = 600.0,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Replace the hub's service-account key (terraform -replace of that key only; the old key is "
            "deleted), write the new one and verify it.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")] = False,
    *,
    options: RegistryOptions,
) -> None:
    """Add an Artifact Registry repository for a hub through terraform; print its values.

    Edits container_repos in the cluster's tfvars, plans, asks, applies, then reads the service-account key from
    the sensitive output registry_sa_keys (username _json_key). With --rotate, replaces only that key.
    """
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.cli import rotation
        from provision.console import ask
        from provision.registries.artifact_registry import create as flow
        from provision.registries.artifact_registry import rotate as gcp_rotate

        request = gcp_request(
            cluster=cluster, hub=hub, repo=repo, terraform_dir=terraform_dir, var_file=var_file,
            workspace=workspace, backend_config=backend_config, terraform_bin=terraform_bin,
            create_workspace=create_workspace, allow_unrelated_changes=allow_unrelated_changes,
            allow_binary_switch=allow_binary_switch, lock_timeout=lock_timeout, yes=yes,
        )  # fmt: skip
        flow.validate(request)
        if rotate and create_workspace:
            from provision.errors import UsageError

            raise UsageError("--rotate replaces the key of an existing registry: --create-workspace has no use here")
        prepared = options.prepare_hub_files(hub=hub, cluster=cluster, reporter=reporter)
        run = gcp_rotate.run if rotate else flow.run
        result = run(request, reporter=reporter, confirm=ask, dry_run=options.dry_run)
        if not options.dry_run:
            applied = f"applied {len(result.plan.changes)} change(s)" if result.applied else "nothing applied"
            edited = "container_repos edited" if result.tfvars_changed else "container_repos unchanged"
            reporter.always(f"summary: {edited}; {applied}; {result.processes} terraform processes")
        summary = {
            "tfvars_changed": result.tfvars_changed,
            "applied": result.applied,
            "terraform_changes": [c.describe() for c in result.plan.changes],
        }
        rotated = rotation.for_gcp(request) if rotate and result.applied else None
        kept = rotation.for_gcp(request, new=False)  # terraform holds the key: a failed write says where it is
        rotation.publish(reporter, prepared, result.registry, options=options, summary=summary, rotated=rotated,
                         kept=kept)  # fmt: skip
