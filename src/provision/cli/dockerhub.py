"""provision dockerhub: a Docker Hub access token for a hub (personal, or organization-owned)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from provision.cli.common import (
    DEFAULT_DEADLINE,
    AllowHttp,
    DeadlineSeconds,
    RegistryOptions,
    TokenFile,
    handled,
    publish,
    read_token,
    registry_command,
)


@registry_command
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
    allow_http: AllowHttp = False,
    token_file: TokenFile = None,
    deadline: DeadlineSeconds = DEFAULT_DEADLINE,
    *,
    options: RegistryOptions,
) -> None:
    """Create (or rotate) the Docker Hub access token a hub pushes with; print its values.

    The API login comes from DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file), never from an argument.
    """
    reporter = options.reporter()
    with handled(reporter, debug=options.debug):
        from provision.registries.dockerhub import create as flow

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
            allow_http=allow_http,
        )
        flow.validate(request)
        # Every local input is checked before the token exists: its secret can be shown only once.
        prepared = options.prepare_hub_files(hub=hub, cluster=cluster, reporter=reporter)

        def deliver(result: flow.DockerHubResult) -> None:
            # Called by the flow right after the token is created: if this fails, the flow deletes the token.
            summary = {"changes": [c.describe() for c in result.plan.changes]}
            publish(reporter, prepared, result.registry, fmt=options.fmt, dry_run=options.dry_run, summary=summary)
            if not options.dry_run:  # only once the secret is stored: a failure above deletes the token again
                reporter.always("summary: " + "; ".join(result.applied))

        from provision.verbs.rotate import destination

        result = flow.run(request, reporter=reporter, dry_run=options.dry_run, deliver=deliver, deadline=deadline,
                          delivered_to=destination(options.secret_file))  # fmt: skip
        # After a rotation, prove the new token with the verify checks (issue 13: cli/rotation.py).
        from provision.cli import rotation

        rotated = rotation.for_dockerhub(request) if any(c.kind == "rotate" for c in result.plan.changes) else None
        rotation.prove(reporter, prepared, result.registry, options=options, rotated=rotated)
