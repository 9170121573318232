"""provision quay: Quay organization, robot and team for a hub."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from provision.cli.common import (
    DEFAULT_DEADLINE,
    AllowHttp,
    DeadlineSeconds,
    RegistryOptions,
    TokenFile,
    handled,
    read_token,
    registry_command,
)


class QuayTeam(StrEnum):
    owners = "owners"
    creator = "creator"


@registry_command
def quay(
    org: Annotated[str, typer.Option("--org", help="Quay organization that holds the hub's images.")],
    robot: Annotated[str, typer.Option("--robot", help="Robot account short name.")] = "image_builder",
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name, for the image prefix.")] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Hub name: image prefix <host>/<org>/<cluster>-<hub>-.")
    ] = None,
    member: Annotated[
        list[str] | None, typer.Option("--member", help="Quay user to add to the owners team (repeatable).")
    ] = None,
    team: Annotated[
        QuayTeam,
        typer.Option("--team", help="Team for the robot: owners (admin) or creator (may only create and push repos)."),
    ] = QuayTeam.owners,
    email: Annotated[str | None, typer.Option("--email", help="Organization e-mail (quay.io requires one).")] = None,
    api_url: Annotated[
        str, typer.Option("--api-url", help="Quay server (any self-hosted Quay works).")
    ] = "https://quay.io",
    shared_org: Annotated[
        bool,
        typer.Option("--shared-org", help="Only look up an existing organization and robot (no changes)."),
    ] = False,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Regenerate the robot token (the old one stops working).")
    ] = False,
    rotate_shared: Annotated[
        bool,
        typer.Option(
            "--rotate-shared",
            help="--rotate, and write the new token into the secret file of every other hub of --cluster-config "
            "that pushes as this robot (each checked before any change), then verify it for each.",
        ),
    ] = False,
    allow_http: AllowHttp = False,
    token_file: TokenFile = None,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
    *,
    options: RegistryOptions,
) -> None:
    """Create (or reuse) a Quay organization, robot and team for a hub; print its values.

    The API token comes from QUAY_TOKEN or --token-file and needs the scopes org:admin and user:admin.
    """
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.registries.quay import create as flow

        request = flow.QuayRequest(
            org=org,
            api_url=api_url,
            robot=robot,
            cluster=cluster,
            hub=hub,
            members=tuple(member or ()),
            team=team.value,
            email=email,
            shared_org=shared_org,
            rotate=rotate or rotate_shared,
            token=read_token("QUAY_TOKEN", token_file),
            allow_http=allow_http,
        )
        flow.validate(request)
        if rotate_shared:
            from provision.registries.quay import shared_rotation

            shared_rotation.validate(cluster_config=options.cluster_config, hub=hub)
        prepared = options.prepare_hub_files(hub=hub, cluster=cluster, reporter=reporter)
        shared = None
        if rotate_shared:
            shared = shared_rotation.prepare(request, prepared.files, sops_binary=prepared.sops_binary,
                                             reporter=reporter)  # fmt: skip
            shared_rotation.show(shared, reporter, dry_run=options.dry_run)
        else:
            flow.refuse_shared_rotation(request, prepared.files, reporter=reporter)
        result = flow.run(request, reporter=reporter, dry_run=options.dry_run, deadline=deadline)
        if options.dry_run and email is None and request.host == "quay.io":
            if any(c.kind == "create_org" for c in result.plan.changes):
                reporter.warn(
                    "quay.io requires an e-mail to create an organization: without --email the real run fails"
                )
        if not options.dry_run:
            reporter.always(
                "summary: " + ("; ".join(result.applied) if result.applied else "nothing to do, no change made")
            )
            for line in result.member_report:
                reporter.always(f"  {line}")
        summary = {
            "changes": [c.describe() for c in result.plan.changes],
            "present": list(result.plan.present),
            "members": list(result.member_report),
            **({"shared_hubs": shared.names} if shared is not None else {}),
        }
        # Rotation writes through, then proves the new credential (issue 13: cli/rotation.py).
        from provision.cli import rotation

        rotated = rotation.for_quay(request) if any(c.kind == "rotate" for c in result.plan.changes) else None
        if shared is not None and shared.hubs and rotated is not None and not options.dry_run:
            rotation.publish_shared(reporter, prepared, result.registry, options=options, summary=summary,
                                    rotated=rotated, shared=shared)  # fmt: skip
            return
        if shared is not None and shared.hubs and rotated is None and not options.dry_run:
            reporter.warn(f"nothing was rotated (the robot is new): the files of {', '.join(shared.names)} "
                          "were not written")  # fmt: skip
        rotation.publish(reporter, prepared, result.registry, options=options, summary=summary, rotated=rotated)
