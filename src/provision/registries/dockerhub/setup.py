"""provision dockerhub as the create verb drives it: the hub's access token (create.py), delivered by the flow
itself right after it is created: a token whose secret cannot be stored is deleted again (it is shown only once)."""

from __future__ import annotations

from provision.console import Reporter
from provision.registries.dockerhub import create as flow
from provision.registries.dockerhub.request import DockerHubRequest, rotated_credential, validate
from provision.verbs.create import Created, Handover
from provision.verbs.deliver import HubFiles


class DockerHubSetup:
    """Create (or rotate) the Docker Hub access token a hub pushes with."""

    def __init__(self, request: DockerHubRequest, *, deadline: float) -> None:
        self.request, self.deadline = request, deadline
        self.cluster: str | None = request.cluster

    def validate(self) -> None:
        validate(self.request)

    def check(self, prepared: HubFiles, reporter: Reporter, *, dry_run: bool) -> None:
        """Nothing more: every local input was checked by the verb before the token exists."""

    def run(self, handover: Handover, reporter: Reporter) -> Created:
        def deliver_values(result: flow.DockerHubResult) -> None:
            # Called by the flow right after the token is created: if this fails, the flow deletes the token.
            handover.publish(result.registry, {"changes": [c.describe() for c in result.plan.changes]})
            if not handover.dry_run:  # only once the secret is stored: a failure above deletes the token again
                reporter.always("summary: " + "; ".join(result.applied))

        result = flow.run(self.request, reporter=reporter, dry_run=handover.dry_run, deliver=deliver_values,
                          deadline=self.deadline, delivered_to=handover.destination)  # fmt: skip
        rotates = any(c.kind == "rotate" for c in result.plan.changes)
        rotated = rotated_credential(self.request) if rotates else None
        return Created(result.registry, rotated=rotated, delivered=True)
