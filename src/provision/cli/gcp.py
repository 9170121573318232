"""provision gcp: an Artifact Registry repository for a hub, through terraform (and its key rotation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provision.cli.common import handled
from provision.cli.layout import Place, place, required, setting_path
from provision.cli.options import (
    LIMITS,
    REGISTRY,
    RUN,
    ChartOption,
    ClusterConfig,
    CopySharedProfiles,
    DaskGateway,
    Debug,
    DefaultImage,
    DryRun,
    Format,
    Images,
    ImagesFile,
    KeepTags,
    OutputFormat,
    ProfileFlag,
    PruneOlderThan,
    Quiet,
    RegistryOptions,
    SecretFile,
    ShowSecrets,
    ValuesFile,
    Verbose,
    VerifyArEndpoint,
    VerifyRegistryUrl,
    VerifyRotation,
    VerifyTimeout,
)

if TYPE_CHECKING:
    from provision.registries.artifact_registry.create import GcpRequest

# The terraform options, shared with `provision remove gcp`.
Cluster = Annotated[
    str,
    typer.Option("--cluster", help="Cluster name: the tfvars file and workspace default.", rich_help_panel=REGISTRY),
]
Hub = Annotated[
    str,
    typer.Option("--hub", help="Hub name; also the repository name unless --repo is given.", rich_help_panel=REGISTRY),
]
# The same, for `provision gcp`, where [CLUSTER HUB] may give them (cli/layout.py) and provision.toml the folder.
ClusterOrWord = Annotated[
    str | None,
    typer.Option("--cluster", help="Cluster name: the tfvars file and workspace default.", rich_help_panel=REGISTRY),
]
HubOrWord = Annotated[
    str | None,
    typer.Option("--hub", help="Hub name; also the repository name unless --repo is given.", rich_help_panel=REGISTRY),
]
TerraformDirOrSetting = Annotated[
    Path | None,
    typer.Option(
        "--terraform-dir",
        help="The terraform root module (default: gcp.terraform_dir in provision.toml, else terraform/gcp).",
        file_okay=False,
        rich_help_panel=REGISTRY,
    ),
]
Repo = Annotated[
    str | None,
    typer.Option("--repo", help="container_repos entry (<=18 chars), default the hub name.", rich_help_panel=REGISTRY),
]
TerraformDir = Annotated[
    Path,
    typer.Option("--terraform-dir", help="The terraform root module.", file_okay=False, rich_help_panel=REGISTRY),
]
VarFile = Annotated[
    Path | None,
    typer.Option(
        "--var-file",
        help="tfvars file to edit (default: <terraform-dir>/projects/<cluster>.tfvars); also names the "
        "default workspace.",
        dir_okay=False,
        rich_help_panel=REGISTRY,
    ),
]
Workspace = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="Terraform workspace (default: the --var-file's name, else the cluster).",
        rich_help_panel=REGISTRY,
    ),
]
BackendConfig = Annotated[
    list[str] | None,
    typer.Option(
        "--backend-config",
        help="KEY=VALUE or a file (from the current folder), passed to init -reconfigure (repeatable). "
        "Without it, init returns to the module's own backend.",
        rich_help_panel=REGISTRY,
    ),
]
TerraformBin = Annotated[
    str | None,
    typer.Option(
        "--terraform-bin",
        envvar="PROVISION_TERRAFORM_BIN",
        help="tofu or terraform (name or path). Default: the binary the module's lock file or state shows, "
        "else the only one on PATH.",
        rich_help_panel=REGISTRY,
    ),
]
AllowUnrelated = Annotated[
    bool,
    typer.Option(
        "--allow-unrelated-changes", help="Apply even if the plan changes other resources.", rich_help_panel=RUN
    ),
]
AllowBinarySwitch = Annotated[
    bool,
    typer.Option(
        "--allow-binary-switch",
        help="Run --terraform-bin even on a state the other binary manages (migrates it).",
        rich_help_panel=RUN,
    ),
]
LockTimeout = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        help="Seconds to wait for another provision run on the same module or tfvars.",
        rich_help_panel=LIMITS,
    ),
]


def gcp_request(
    *,
    backend_config: list[str] | None,
    keep_tags: int | None = None,
    prune_older_than: int | None = None,
    **fields: Any,
) -> GcpRequest:
    """The flow's request from the command's options (the same names, but --backend-config is repeatable and the
    retention options make one Retention, None when neither is given: the hub's policy is then left as it is)."""
    from provision.registries.artifact_registry.create import GcpRequest
    from provision.registries.artifact_registry.retention import Retention

    wanted = keep_tags is not None or prune_older_than is not None
    retention = Retention(keep_tags, prune_older_than) if wanted else None
    return GcpRequest(backend_configs=tuple(backend_config or ()), retention=retention, **fields)


def gcp(
    where: Place = None,
    cluster: ClusterOrWord = None,
    hub: HubOrWord = None,
    repo: Repo = None,
    terraform_dir: TerraformDirOrSetting = None,
    var_file: VarFile = None,
    workspace: Workspace = None,
    backend_config: BackendConfig = None,
    terraform_bin: TerraformBin = None,
    create_workspace: Annotated[
        bool,
        typer.Option(
            "--create-workspace", help="Create the workspace when it does not exist.", rich_help_panel=REGISTRY
        ),
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
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.", rich_help_panel=RUN)
    ] = False,
    keep_tags: KeepTags = None,
    prune_older_than: PruneOlderThan = None,
    # The options every registry command shares (RegistryOptions):
    values_file: ValuesFile = None,
    secret_file: SecretFile = None,
    cluster_config: ClusterConfig = None,
    copy_shared_profiles: CopySharedProfiles = False,
    chart: ChartOption = None,
    dask_gateway: DaskGateway = False,
    image: Images = None,
    images_file: ImagesFile = None,
    profile: ProfileFlag = False,
    default_image: DefaultImage = None,
    dry_run: DryRun = False,
    show_secrets: ShowSecrets = False,
    fmt: Format = OutputFormat.yaml,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
    verify: VerifyRotation = True,
    verify_registry_url: VerifyRegistryUrl = None,
    verify_ar_endpoint: VerifyArEndpoint = None,
    verify_timeout: VerifyTimeout = 60.0,
) -> None:
    """Add an Artifact Registry repository for a hub through terraform; print its values.

    Edits container_repos in the cluster's tfvars, plans, asks, applies, then reads the service-account key from
    the sensitive output registry_sa_keys (username _json_key). With --rotate, replaces only that key. With
    --keep-tags/--prune-older-than, also sets the hub's cleanup policies (registry_retention in the tfvars).
    """
    options = RegistryOptions.of(locals())
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.console import ask, emit
        from provision.registries.artifact_registry.setup import GcpSetup
        from provision.verbs import create

        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        options, fleet = placed.options, placed.settings.gcp
        cluster = required(placed.cluster, option="--cluster (or CLUSTER HUB)")
        hub = required(placed.hub, option="--hub (or CLUSTER HUB)")
        folder = terraform_dir or setting_path(fleet.terraform_dir, placed.settings, "terraform/gcp")
        request = gcp_request(
            cluster=cluster, hub=hub, repo=repo, terraform_dir=folder, var_file=var_file,
            workspace=workspace, backend_config=backend_config, terraform_bin=terraform_bin,
            create_workspace=create_workspace, allow_unrelated_changes=allow_unrelated_changes,
            allow_binary_switch=allow_binary_switch, lock_timeout=lock_timeout, yes=yes, keep_tags=keep_tags,
            prune_older_than=prune_older_than,
        )  # fmt: skip
        setup = GcpSetup(request, rotate=rotate, confirm=ask)
        create.run(setup, options.delivery(hub=hub), reporter=reporter, emit=emit)
