"""provision remove quay|dockerhub|gcp: take a hub's registry away (credentials, optionally images) and its keys
out of the hub's files."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision.cli.common import (
    ChartChoice,
    ChartOption,
    ClusterConfig,
    Debug,
    DryRun,
    Quiet,
    SecretFile,
    TokenFile,
    ValuesFile,
    Verbose,
    handled,
    make_reporter,
    read_token,
)
from provision.errors import EXIT_FAILURE, UsageError

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.flows.remove import HubFilesRequest, RemoveResult
    from provision.hubconfig import Chart

remove = typer.Typer(
    name="remove",
    help="Decommission a hub's registry: delete its credentials (and, if asked, its images) and remove the keys "
    "provision wrote from the hub's files. Shows the plan and asks first; --dry-run changes nothing.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm(question: str, word: str | None) -> bool:
    """Ask on stderr; `word` must be typed back exactly (destroying data), else yes/no. No answer (EOF) is no."""
    from provision.console import ask

    if word is None:
        return ask(question)
    sys.stderr.write(f"{question}: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.strip() == word


def _files(
    values_file: Path | None, secret_file: Path | None, cluster_config: Path | None, chart: ChartChoice | None
) -> HubFilesRequest:
    from provision.flows.remove import HubFilesRequest

    chart_name: Chart | None = chart.value if chart else None
    return HubFilesRequest(
        values_file=values_file,
        secret_file=secret_file,
        cluster_config=cluster_config,
        chart=chart_name,
        sops_bin=os.environ.get("SOPS_BIN") or None,
    )


def _report(reporter: Reporter, result: RemoveResult, *, dry_run: bool) -> None:
    if dry_run:
        reporter.always("dry run: nothing was changed")
    elif result.declined:
        reporter.always("declined: nothing was changed")
    elif result.applied:
        reporter.always("summary: " + "; ".join(result.applied))


@remove.command("quay")
def remove_quay(
    org: Annotated[str, typer.Option("--org", help="Quay organization that holds the hub's images.")],
    hub: Annotated[str, typer.Option("--hub", help="The hub to decommission.")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name, as given when provisioning.")] = None,
    robot: Annotated[str, typer.Option("--robot", help="Robot account short name.")] = "image_builder",
    api_url: Annotated[str, typer.Option("--api-url", help="Quay server.")] = "https://quay.io",
    shared_org: Annotated[
        bool, typer.Option("--shared-org", help="The robot is shared with other hubs: keep it, clean only the files.")
    ] = False,
    delete_repositories: Annotated[
        bool,
        typer.Option(
            "--delete-repositories",
            help="Also delete the hub's repositories (every image under its prefix); asks for the hub name.",
        ),
    ] = False,
    token_file: TokenFile = None,
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
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        from provision.flows import remove as flow
        from provision.flows.quay import QuayRequest

        request = flow.QuayRemoveRequest(
            quay=QuayRequest(
                org=org, api_url=api_url, robot=robot, cluster=cluster, hub=hub, shared_org=shared_org,
                token=read_token("QUAY_TOKEN", token_file),
            ),
            files=_files(values_file, secret_file, cluster_config, chart),
            delete_repositories=delete_repositories,
            yes=yes,
        )  # fmt: skip
        result = flow.remove_quay(request, reporter=reporter, confirm=confirm, dry_run=dry_run)
        _report(reporter, result, dry_run=dry_run)
    if result.declined:
        raise typer.Exit(EXIT_FAILURE)


@remove.command("dockerhub")
def remove_dockerhub(
    namespace: Annotated[str, typer.Option("--namespace", help="Docker ID or organization that holds the images.")],
    hub: Annotated[str, typer.Option("--hub", help="The hub to decommission.")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name, as given when provisioning.")] = None,
    org: Annotated[bool, typer.Option("--org", help="The token is an organization access token.")] = False,
    token_label: Annotated[
        str | None, typer.Option("--token-label", help="Token label (default binderhub-<cluster>-<hub>).")
    ] = None,
    api_url: Annotated[str, typer.Option("--api-url", help="Docker Hub API.")] = "https://hub.docker.com",
    token_file: TokenFile = None,
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
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        from provision.flows import remove as flow
        from provision.flows.dockerhub import DockerHubRequest

        request = flow.DockerHubRemoveRequest(
            dockerhub=DockerHubRequest(
                namespace=namespace, hub=hub, cluster=cluster, org=org, label=token_label, api_url=api_url,
                username=os.environ.get("DOCKERHUB_USERNAME", "").strip() or None,
                secret=read_token("DOCKERHUB_TOKEN", token_file),
            ),
            files=_files(values_file, secret_file, cluster_config, chart),
            yes=yes,
        )  # fmt: skip
        result = flow.remove_dockerhub(request, reporter=reporter, confirm=confirm, dry_run=dry_run)
        _report(reporter, result, dry_run=dry_run)
    if result.declined:
        raise typer.Exit(EXIT_FAILURE)


@remove.command("gcp", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def remove_gcp(debug: Debug = False) -> None:
    """Not yet: removing an Artifact Registry repository through terraform comes with the next release."""
    reporter = make_reporter(quiet=False, verbose=False)
    with handled(reporter, debug=debug):
        raise UsageError(
            "provision remove gcp is not available yet: it needs the resource-based plan guard of `provision gcp`",
            hint="for now remove the hub from container_repos in the cluster's tfvars, check that `terraform plan` "
            "destroys only that hub's repository, service account, key and IAM bindings, apply, then remove the "
            "registry keys from the hub's files by hand",
        )
