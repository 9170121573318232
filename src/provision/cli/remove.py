"""provision remove quay|dockerhub|gcp: take a hub's registry away (credentials, optionally images) and its keys
out of the hub's files."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provision.cli.common import handled, make_reporter, read_token
from provision.cli.gcp import (
    AllowBinarySwitch,
    AllowUnrelated,
    BackendConfig,
    ClusterOrWord,
    LockTimeout,
    Repo,
    TerraformBin,
    TerraformDirOrSetting,
    VarFile,
    Workspace,
    gcp_request,
)
from provision.cli.layout import Place, place, required, setting_path
from provision.cli.options import (
    DEFAULT_DEADLINE,
    HUB_FILES,
    REGISTRY,
    RUN,
    AllowHttp,
    ChartChoice,
    ChartOption,
    DeadlineSeconds,
    Debug,
    DryRun,
    Quiet,
    TokenFile,
    Verbose,
)
from provision.cli.panels import PanelledCommand
from provision.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.hubconfig import Chart
    from provision.verbs.remove import HubFilesRequest, RemoveResult

remove = typer.Typer(
    name="remove",
    help="Decommission a hub's registry: delete its credentials (and, if asked, its images) and remove the keys "
    "provision wrote from the hub's files. Shows the plan and asks first; --dry-run changes nothing.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.", rich_help_panel=RUN)]
# The hub-file options of the registry commands, with what they mean for a removal.
_FILES = HUB_FILES
ValuesFile = Annotated[
    Path | None,
    typer.Option(
        "--values-file", help="Remove the registry keys from this <hub>.values.yaml (comments kept).",
        dir_okay=False, rich_help_panel=_FILES,
    ),
]  # fmt: skip
SecretFile = Annotated[
    Path | None,
    typer.Option(
        "--secret-file", help="Remove the registry secrets from this sops file (sops unset; recipients kept).",
        dir_okay=False, rich_help_panel=_FILES,
    ),
]  # fmt: skip
ClusterConfig = Annotated[
    Path | None,
    typer.Option(
        "--cluster-config", help="Unlist files left empty (then deleted) from the hub's helm_chart_values_files.",
        dir_okay=False, rich_help_panel=_FILES,
    ),
]  # fmt: skip


def confirm(question: str, word: str | None) -> bool:
    """Ask on stderr; `word` must be typed back exactly (destroying data), else yes/no. No answer (EOF) is no.
    Ctrl-C while asking is PromptInterrupted: nothing was removed yet, which is what the user is told."""
    from provision.console import ask, read_answer

    if word is None:
        return ask(question)
    return read_answer(f"{question}: ") == word


@dataclass(frozen=True)
class RemovalOptions:
    """The options every removal command shares (hub files, confirmation, verbosity), handed over as one object.

    Each field is a parameter of the same name in every removal command, declared with the alias of its name."""

    values_file: Path | None
    secret_file: Path | None
    cluster_config: Path | None
    chart: ChartChoice | None
    yes: bool
    dry_run: bool
    quiet: bool
    verbose: bool
    debug: bool

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> RemovalOptions:
        """The shared options among a command's parameters: call it with locals() first thing in the command."""
        return cls(**{f.name: parameters[f.name] for f in fields(cls)})

    def files(self) -> HubFilesRequest:
        from provision.verbs.remove import HubFilesRequest

        chart: Chart | None = self.chart.value if self.chart else None
        return HubFilesRequest(
            values_file=self.values_file,
            secret_file=self.secret_file,
            cluster_config=self.cluster_config,
            chart=chart,
            sops_bin=os.environ.get("SOPS_BIN") or None,
        )

    def run(self, removal: Callable[[Reporter], RemoveResult]) -> None:
        """Run one removal flow under the shared error mapping; a declined confirmation exits 1."""
        reporter = make_reporter(quiet=self.quiet, verbose=self.verbose)
        with handled(reporter, debug=self.debug):
            result = removal(reporter)
            if self.dry_run:
                reporter.always("dry run: nothing was changed")
            elif result.declined:
                reporter.always("declined: nothing was changed")
            elif result.applied:
                reporter.always("summary: " + "; ".join(result.applied))
        if result.declined:
            raise typer.Exit(EXIT_FAILURE)


@remove.command("quay", cls=PanelledCommand)
def remove_quay(
    where: Place = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Quay organization that holds the hub's images (default: quay.org in provision.toml).",
            rich_help_panel=REGISTRY,
        ),
    ] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="The hub to decommission.", rich_help_panel=REGISTRY)
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Cluster name, as given when provisioning.", rich_help_panel=REGISTRY),
    ] = None,
    robot: Annotated[
        str, typer.Option("--robot", help="Robot account short name.", rich_help_panel=REGISTRY)
    ] = "image_builder",
    api_url: Annotated[
        str, typer.Option("--api-url", help="Quay server.", rich_help_panel=REGISTRY)
    ] = "https://quay.io",
    allow_http: AllowHttp = False,
    shared_org: Annotated[
        bool,
        typer.Option(
            "--shared-org",
            help="The robot is shared with other hubs: keep it, clean only the files.",
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    delete_repositories: Annotated[
        bool,
        typer.Option(
            "--delete-repositories",
            help="Also delete the hub's repositories (every image under its prefix); asks for the hub name.",
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    token_file: TokenFile = None,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
    # The options every removal command shares (RemovalOptions):
    values_file: ValuesFile = None,
    secret_file: SecretFile = None,
    cluster_config: ClusterConfig = None,
    chart: ChartOption = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Delete a hub's Quay robot (and with --delete-repositories its repositories); remove its keys from the files.

    The API token comes from QUAY_TOKEN or --token-file (scopes org:admin and user:admin; repo:admin as well to
    delete repositories).
    """
    options = RemovalOptions.of(locals())

    def removal(reporter: Reporter) -> RemoveResult:
        from provision.registries.quay import remove as flow
        from provision.registries.quay.create import QuayRequest

        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        fleet = placed.settings.quay
        quay = QuayRequest(
            org=required(org or fleet.org, option="--org", setting="quay.org"), api_url=api_url, robot=robot,
            cluster=placed.cluster, hub=required(placed.hub, option="--hub (or CLUSTER HUB)"),
            shared_org=shared_org or bool(fleet.shared_org), token=read_token("QUAY_TOKEN", token_file),
            allow_http=allow_http,
        )  # fmt: skip
        request = flow.QuayRemoveRequest(
            quay=quay, files=placed.options.files(), delete_repositories=delete_repositories, yes=options.yes
        )
        return flow.remove_quay(request, reporter=reporter, confirm=confirm, dry_run=options.dry_run,
                                deadline=deadline)  # fmt: skip

    options.run(removal)


@remove.command("dockerhub", cls=PanelledCommand)
def remove_dockerhub(
    where: Place = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            help="Docker ID or organization that holds the images (default: dockerhub.namespace in provision.toml).",
            rich_help_panel=REGISTRY,
        ),
    ] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="The hub to decommission.", rich_help_panel=REGISTRY)
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Cluster name, as given when provisioning.", rich_help_panel=REGISTRY),
    ] = None,
    org: Annotated[
        bool, typer.Option("--org", help="The token is an organization access token.", rich_help_panel=REGISTRY)
    ] = False,
    token_label: Annotated[
        str | None,
        typer.Option(
            "--token-label", help="Token label (default binderhub-<cluster>-<hub>).", rich_help_panel=REGISTRY
        ),
    ] = None,
    api_url: Annotated[
        str, typer.Option("--api-url", help="Docker Hub API.", rich_help_panel=REGISTRY)
    ] = "https://hub.docker.com",
    allow_http: AllowHttp = False,
    token_file: TokenFile = None,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
    # The options every removal command shares (RemovalOptions):
    values_file: ValuesFile = None,
    secret_file: SecretFile = None,
    cluster_config: ClusterConfig = None,
    chart: ChartOption = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Delete a hub's Docker Hub access token (found by its label); remove its keys from the hub's files.

    The API login comes from DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file), never from an argument.
    """
    options = RemovalOptions.of(locals())

    def removal(reporter: Reporter) -> RemoveResult:
        from provision.registries.dockerhub import remove as flow
        from provision.registries.dockerhub.request import DockerHubRequest

        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        dockerhub = DockerHubRequest(
            namespace=required(namespace or placed.settings.dockerhub.namespace, option="--namespace",
                               setting="dockerhub.namespace"),
            hub=required(placed.hub, option="--hub (or CLUSTER HUB)"), cluster=placed.cluster, org=org,
            label=token_label, api_url=api_url,
            username=os.environ.get("DOCKERHUB_USERNAME", "").strip() or None,
            secret=read_token("DOCKERHUB_TOKEN", token_file), allow_http=allow_http,
        )  # fmt: skip
        request = flow.DockerHubRemoveRequest(dockerhub=dockerhub, files=placed.options.files(), yes=options.yes)
        return flow.remove_dockerhub(request, reporter=reporter, confirm=confirm, dry_run=options.dry_run,
                                     deadline=deadline)  # fmt: skip

    options.run(removal)


@remove.command("gcp", cls=PanelledCommand)
def remove_gcp(
    where: Place = None,
    cluster: ClusterOrWord = None,
    hub: Annotated[
        str | None,
        typer.Option(
            "--hub", help="The hub to decommission; also the repository unless --repo.", rich_help_panel=REGISTRY
        ),
    ] = None,
    repo: Repo = None,
    terraform_dir: TerraformDirOrSetting = None,
    var_file: VarFile = None,
    workspace: Workspace = None,
    backend_config: BackendConfig = None,
    terraform_bin: TerraformBin = None,
    allow_unrelated_changes: AllowUnrelated = False,
    allow_binary_switch: AllowBinarySwitch = False,
    lock_timeout: LockTimeout = 600.0,
    # The options every removal command shares (RemovalOptions):
    values_file: ValuesFile = None,
    secret_file: SecretFile = None,
    cluster_config: ClusterConfig = None,
    chart: ChartOption = None,
    yes: Yes = False,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Destroy a hub's Artifact Registry repository (with its images), service account, key and IAM bindings
    through terraform; remove its keys from the hub's files.

    Takes the hub out of container_repos in the cluster's tfvars, plans, refuses a plan that changes anything
    else, asks for the hub's name (unless --yes), applies.
    """
    options = RemovalOptions.of(locals())

    def removal(reporter: Reporter) -> RemoveResult:
        from provision.registries.artifact_registry import remove as flow

        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        folder = terraform_dir or setting_path(placed.settings.gcp.terraform_dir, placed.settings, "terraform/gcp")
        request = gcp_request(
            cluster=required(placed.cluster, option="--cluster (or CLUSTER HUB)"),
            hub=required(placed.hub, option="--hub (or CLUSTER HUB)"), repo=repo, terraform_dir=folder,
            var_file=var_file,
            workspace=workspace, backend_config=backend_config, terraform_bin=terraform_bin,
            allow_unrelated_changes=allow_unrelated_changes, allow_binary_switch=allow_binary_switch,
            lock_timeout=lock_timeout, yes=options.yes,
        )  # fmt: skip
        removal_request = flow.GcpRemoveRequest(gcp=request, files=placed.options.files())
        return flow.remove_gcp(removal_request, reporter=reporter, confirm=confirm, dry_run=options.dry_run)

    options.run(removal)
