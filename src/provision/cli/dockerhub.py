"""provision dockerhub: a Docker Hub access token for a hub (personal, or organization-owned)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from provision.cli.common import (
    ChartOption,
    ClusterConfig,
    DaskGateway,
    Debug,
    DryRun,
    Format,
    Images,
    ImagesFile,
    OutputFormat,
    ProfileFlag,
    Quiet,
    SecretFile,
    ShowSecrets,
    TokenFile,
    ValuesFile,
    Verbose,
    handled,
    make_reporter,
    prepare_hub_files,
    publish,
    read_token,
)


def dockerhub(
    namespace: Annotated[str, typer.Option("--namespace", help="Docker ID or organization that holds the images.")],
    hub: Annotated[str, typer.Option("--hub", help="Hub name: image prefix <namespace>/<cluster>-<hub>-.")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name, for the prefix and label.")] = None,
    org: Annotated[
        bool, typer.Option("--org", help="The namespace is an organization: create an organization access token.")
    ] = False,
    token_label: Annotated[
        str | None, typer.Option("--token-label", help="Token label (default binderhub-<cluster>-<hub>).")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Replace this hub's token (the old one stops working).")
    ] = False,
    private: Annotated[
        bool, typer.Option("--private", help="The repositories are private: add an imagePullSecret.")
    ] = False,
    api_url: Annotated[str, typer.Option("--api-url", help="Docker Hub API.")] = "https://hub.docker.com",
    token_file: TokenFile = None,
    values_file: ValuesFile = None,
    secret_file: SecretFile = None,
    cluster_config: ClusterConfig = None,
    chart: ChartOption = None,
    dask_gateway: DaskGateway = False,
    image: Images = None,
    images_file: ImagesFile = None,
    profile: ProfileFlag = False,
    dry_run: DryRun = False,
    show_secrets: ShowSecrets = False,
    fmt: Format = OutputFormat.yaml,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Create (or rotate) the Docker Hub access token a hub pushes with; print its values.

    The API login comes from DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file), never from an argument.
    """
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        from provision.flows import dockerhub as flow

        request = flow.DockerHubRequest(
            namespace=namespace,
            hub=hub,
            cluster=cluster,
            org=org,
            label=token_label,
            rotate=rotate,
            private=private,
            username=os.environ.get("DOCKERHUB_USERNAME", "").strip() or None,
            secret=read_token("DOCKERHUB_TOKEN", token_file),
            api_url=api_url,
        )
        flow.validate(request)
        prepared = prepare_hub_files(
            hub=hub,
            values_file=values_file,
            secret_file=secret_file,
            cluster_config=cluster_config,
            chart=chart,
            dask_gateway=dask_gateway,
            image=image,
            images_file=images_file,
            profile=profile,
            show_secrets=show_secrets,
            dry_run=dry_run,
        )
        result = flow.run(request, reporter=reporter, dry_run=dry_run)
        if not dry_run:
            reporter.always("summary: " + "; ".join(result.applied))
        summary = {"changes": [c.describe() for c in result.plan.changes]}
        publish(reporter, prepared, result.registry, fmt=fmt, dry_run=dry_run, summary=summary)
