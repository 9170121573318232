"""provision quay: Quay organization, robot and team for a hub."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from provision.cli.common import handled, read_token
from provision.cli.layout import Place, place, required
from provision.cli.options import (
    DEFAULT_DEADLINE,
    REGISTRY,
    RETENTION,
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


class QuayTeam(StrEnum):
    owners = "owners"
    creator = "creator"


def quay(
    where: Place = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Quay organization that holds the hub's images (default: quay.org in provision.toml).",
            rich_help_panel=REGISTRY,
        ),
    ] = None,
    robot: Annotated[
        str, typer.Option("--robot", help="Robot account short name.", rich_help_panel=REGISTRY)
    ] = "image_builder",
    cluster: Annotated[
        str | None, typer.Option("--cluster", help="Cluster name, for the image prefix.", rich_help_panel=REGISTRY)
    ] = None,
    hub: Annotated[
        str | None,
        typer.Option("--hub", help="Hub name: image prefix <host>/<org>/<cluster>-<hub>-.", rich_help_panel=REGISTRY),
    ] = None,
    member: Annotated[
        list[str] | None,
        typer.Option("--member", help="Quay user to add to the owners team (repeatable).", rich_help_panel=REGISTRY),
    ] = None,
    team: Annotated[
        QuayTeam | None,
        typer.Option(
            "--team",
            help="Team for the robot: owners (admin) or creator (may only create and push repos); default: "
            "quay.team in provision.toml, else owners.",
            rich_help_panel=REGISTRY,
            show_default=False,
        ),
    ] = None,
    email: Annotated[
        str | None,
        typer.Option("--email", help="Organization e-mail (quay.io requires one).", rich_help_panel=REGISTRY),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="Quay server (any self-hosted Quay works); default: quay.api_url in provision.toml, else "
            "https://quay.io.",
            rich_help_panel=REGISTRY,
        ),
    ] = None,
    shared_org: Annotated[
        bool,
        typer.Option(
            "--shared-org",
            help="Only look up an existing organization and robot (no changes).",
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate", help="Regenerate the robot token (the old one stops working).", rich_help_panel=REGISTRY
        ),
    ] = False,
    rotate_shared: Annotated[
        bool,
        typer.Option(
            "--rotate-shared",
            help="--rotate, and write the new token into the secret file of every other hub of --cluster-config "
            "that pushes as this robot (each checked before any change), then verify it for each.",
            rich_help_panel=REGISTRY,
        ),
    ] = False,
    keep_tags: Annotated[
        int | None,
        typer.Option(
            "--keep-tags",
            min=1,
            help="Auto-prune policy of the organization: keep the N newest tags of each image repository (Quay "
            "prunes the rest; a pruned image is rebuilt on its next launch).",
            rich_help_panel=RETENTION,
        ),
    ] = None,
    prune_older_than: Annotated[
        int | None,
        typer.Option(
            "--prune-older-than",
            min=1,
            metavar="DAYS",
            help="Auto-prune policy of the organization: prune tags pushed more than DAYS days ago (not with "
            "--keep-tags).",
            rich_help_panel=RETENTION,
        ),
    ] = None,
    retention_for_whole_org: Annotated[
        bool,
        typer.Option(
            "--retention-for-whole-org",
            help="Confirm that the policy prunes every hub's images in the organization (required with "
            "--shared-org, or when other hubs of the cluster.yaml push to it).",
            rich_help_panel=RETENTION,
        ),
    ] = False,
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
    """Create (or reuse) a Quay organization, robot and team for a hub; print its values.

    The API token comes from QUAY_TOKEN or --token-file and needs the scopes org:admin and user:admin.
    """
    options = RegistryOptions.of(locals())
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        placed = place(where, cluster=cluster, hub=hub, options=options, reporter=reporter)
        cluster, hub, options, fleet = placed.cluster, placed.hub, placed.options, placed.settings.quay
        from provision.console import emit
        from provision.registries.quay.create import QuayRequest
        from provision.registries.quay.retention import Retention
        from provision.registries.quay.setup import QuaySetup
        from provision.verbs import create

        request = QuayRequest(
            org=required(org or fleet.org, option="--org", setting="quay.org"),
            api_url=api_url or fleet.api_url or "https://quay.io", robot=robot, cluster=cluster, hub=hub,
            members=tuple(member or fleet.members),
            team="creator" if (team.value if team else fleet.team) == "creator" else "owners",
            email=email or fleet.email, shared_org=shared_org or bool(fleet.shared_org), rotate=rotate or rotate_shared,
            token=read_token("QUAY_TOKEN", token_file), allow_http=allow_http,
            retention=Retention(keep_tags, prune_older_than, whole_org=retention_for_whole_org),
        )  # fmt: skip
        delivery = options.delivery(hub=hub)
        setup = QuaySetup(request, rotate_shared=rotate_shared, deadline=deadline,
                          cluster_config=delivery.files.cluster_config)  # fmt: skip
        create.run(setup, delivery, reporter=reporter, emit=emit)
