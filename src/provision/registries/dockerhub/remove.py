"""provision remove dockerhub: the Docker Hub side of a hub's removal (its access token, by label); the removal
verb (verbs/remove.py) does the rest."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from urllib3.util.retry import Retry

from provision import httpretry
from provision.console import Reporter
from provision.errors import UsageError
from provision.hubconfig import Chart
from provision.hubfiles.removal_target import RemovalTarget
from provision.plan import Change
from provision.registries.dockerhub.request import SERVER as DOCKERHUB_SERVER
from provision.registries.dockerhub.request import DockerHubRequest
from provision.registries.dockerhub.request import registry_for as dockerhub_registry
from provision.registries.dockerhub.request import validate as validate_dockerhub
from provision.verbs import remove
from provision.verbs.remove import Confirm, HubFilesRequest, RemotePlan, RemoveResult

DOCKERHUB_PULL_HOSTS = (DOCKERHUB_SERVER, "docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class DockerHubRemoveRequest:
    dockerhub: DockerHubRequest  # namespace, hub, cluster, org, label, username, secret, api_url
    files: HubFilesRequest = field(default_factory=HubFilesRequest)
    yes: bool = False


def remove_dockerhub(
    req: DockerHubRemoveRequest,
    *,
    reporter: Reporter,
    confirm: Confirm,
    dry_run: bool = False,
    retry: Retry | None = None,
    deadline: float = httpretry.DEFAULT_DEADLINE,
) -> RemoveResult:
    """Remove a hub's Docker Hub token (by label) and its files' keys. Raises UsageError, DockerHubError..."""
    side = DockerHubRemoval(req, retry=retry, deadline=deadline)
    return remove.run(side, req.files, yes=req.yes, reporter=reporter, confirm=confirm, dry_run=dry_run)


class DockerHubRemoval:
    """The Docker Hub side of a hub's removal (verbs/remove.RemoteSide): every token labelled for the hub (its
    label, and the pending and delivered labels a creation or rotation left)."""

    destroys_data = False

    def __init__(self, req: DockerHubRemoveRequest, *, retry: Retry | None, deadline: float) -> None:
        self.req, self.retry, self.deadline = req, retry, deadline
        self.hub = req.dockerhub.hub
        self.client: Any = None
        self.tokens: list[Any] = []

    @property
    def _kind(self) -> str:
        return "organization access token" if self.req.dockerhub.org else "personal access token"

    def validate(self) -> None:
        validate_dockerhub(self.req.dockerhub)

    def target(self, chart: Chart) -> RemovalTarget:
        d = self.req.dockerhub
        registry = dockerhub_registry(d, password="")
        if not d.org and d.username is None:
            registry = replace(registry, username="")  # unknown: any user name in the files matches
        return RemovalTarget(registry, chart, pull_hosts=DOCKERHUB_PULL_HOSTS)

    def read(self, reporter: Reporter, *, clock: httpretry.Deadline, dry_run: bool) -> RemotePlan:
        from provision.registries.dockerhub.client import DockerHubClient, DockerHubError

        d = self.req.dockerhub
        subject = f"{self._kind} {d.token_label!r}"
        if d.username is None or d.secret is None:
            if not dry_run:
                raise UsageError(
                    "no Docker Hub credentials: set DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file)"
                )
            return RemotePlan(
                (Change("delete_token", "delete", subject, "it stops working"),),
                notes=("no Docker Hub credentials: nothing was read; the token is assumed to exist",),
            )
        reporter.add_secret(d.secret)
        self.client = DockerHubClient(d.api_url, identifier=d.username, secret=d.secret, retry=self.retry,
                                      deadline=clock)  # fmt: skip
        with reporter.step(f"log in to Docker Hub as {d.username}"):
            self.client.login()
        try:
            # A token still under its pending label (its secret was never stored), or a rotation's new one whose
            # old one was not deleted yet (delivered label), belongs to the hub too.
            labels = (d.token_label, d.pending_label, d.delivered_label)
            self.tokens = [t for t in self.client.list_tokens(org=self._org) if t.label in labels]
        except DockerHubError as exc:
            if exc.status == 403 and d.org:
                exc.hint = f"DOCKERHUB_USERNAME must be an owner of {d.namespace!r}, logged in with a password or PAT"
            raise
        if not self.tokens:
            return RemotePlan(present=(f"no {self._kind} labelled {d.token_label!r}",))
        return RemotePlan((Change("delete_token", "delete", subject, "it stops working"),))

    @property
    def _org(self) -> str | None:
        d = self.req.dockerhub
        return d.namespace if d.org else None

    def apply(self, change: Change) -> None:
        for token in self.tokens:
            self.client.delete_token(token, org=self._org)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
