"""provision dockerhub: a Docker Hub access token for a hub (personal, or organization-owned)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from provision.cli.common import handled, read_token
from provision.cli.layout import Place, place, required
from provision.cli.options import (
    DEFAULT_DEADLINE,
    REGISTRY,
    AllowHttp,
    ChartOption,
    ClusterConfig,
    CopySharedProfiles,
    DaskGateway,
    DeadlineSeconds,
    Debug,
    DefaultImage,
    DryRun,
    Format,
    Images,
    ImagesFile,
    OutputFormat,
    ProfileFlag,
    Quiet,
    RegistryOptions,
    SecretFile,
    ShowSecrets,
    TokenFile,
    ValuesFile,
    Verbose,
    VerifyArEndpoint,
    VerifyRegistryUrl,
    VerifyRotation,
    VerifyTimeout,
)


def dockerhub(
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
        str | None,
        typer.Option("--hub", help="Hub name: image prefix <namespace>/<cluster>-<hub>-.", rich_help_panel=REGISTRY),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Cluster name, for the prefix and label.", rich_help_panel=REGISTRY),
    ] = None,
    org: Annotated[
        bool,
        typer.Option(
            "--org",
            help="The namespace is an organization: create an organization access token.",
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    token_label: Annotated[
        str | None,
        typer.Option(
            "--token-label", help="Token label (default binderhub-<cluster>-<hub>).", rich_help_panel=REGISTRY
        ),
    ] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate", help="Replace this hub's token (the old one stops working).", rich_help_panel=REGISTRY
        ),
    ] = False,
    private: Annotated[
        bool,
        typer.Option(
            "--private", help="The repositories are private: add an imagePullSecret.", rich_help_panel=REGISTRY
        ),
    ] = False,
    api_url: Annotated[
        str, typer.Option("--api-url", help="Docker Hub API.", rich_help_panel=REGISTRY)
    ] = "https://hub.docker.com",
    allow_http: AllowHttp = False,
    token_file: TokenFile = None,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
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
    """Create (or rotate) the Docker Hub access token a hub pushes with; print its values.

    The API login comes from DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file), never from an argument.
    """
    options = RegistryOptions.of(locals())
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.console import emit
        from provision.registries.dockerhub.request import DockerHubRequest
        from provision.registries.dockerhub.setup import DockerHubSetup
        from provision.verbs import create

        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        options, cluster = placed.options, placed.cluster
        hub = required(placed.hub, option="--hub (or CLUSTER HUB)")
        namespace = required(namespace or placed.settings.dockerhub.namespace, option="--namespace",
                             setting="dockerhub.namespace")  # fmt: skip
        request = DockerHubRequest(
            namespace=namespace, hub=hub, cluster=cluster, org=org, label=token_label, rotate=rotate,
            private=private, username=os.environ.get("DOCKERHUB_USERNAME", "").strip() or None,
            secret=read_token("DOCKERHUB_TOKEN", token_file), api_url=api_url, allow_http=allow_http,
        )  # fmt: skip
        create.run(DockerHubSetup(request, deadline=deadline), options.delivery(hub=hub), reporter=reporter, emit=emit)
