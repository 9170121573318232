"""provision dockerhub: validate → log in → find this hub's token by label → plan → create (or rotate) → values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from urllib3.util.retry import Retry

from provision import names
from provision.console import Reporter
from provision.dockerhub import AccessToken, DockerHubClient, DockerHubError
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan

SERVER = "https://index.docker.io/v1/"  # the docker client's auth key for Docker Hub (and z2jh's default)
API_URL = "https://registry-1.docker.io"  # the v2 API BinderHub asks whether an image exists
PAT_SCOPES = ["repo:write"]  # Read & Write: push, pull, and create repositories where the account may


@dataclass(frozen=True)
class DockerHubRequest:
    namespace: str
    hub: str
    cluster: str | None = None
    org: bool = False
    label: str | None = None
    rotate: bool = False
    private: bool = False
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    api_url: str = "https://hub.docker.com"

    @property
    def token_label(self) -> str:
        return self.label or "-".join(["binderhub", *([self.cluster] if self.cluster else []), self.hub])

    @property
    def image_prefix(self) -> str:
        return f"{self.namespace}/{'-'.join([*([self.cluster] if self.cluster else []), self.hub])}-"

    @property
    def oat_resources(self) -> list[dict[str, Any]]:
        # Repository scopes cannot create repositories: BinderHub pushes each image to a new one, which needs the
        # organization-level Repository Create scope. The TYPE_ORG path being the org name is inferred.
        return [
            {"type": "TYPE_REPO", "path": f"{self.namespace}/*", "scopes": ["scope-image-pull", "scope-image-push"]},
            {"type": "TYPE_ORG", "path": self.namespace, "scopes": ["scope-repository-create"]},
        ]


@dataclass(frozen=True)
class DockerHubResult:
    plan: Plan
    applied: tuple[str, ...]
    registry: HubRegistry  # password empty on a dry run


def validate(req: DockerHubRequest) -> None:
    """Names and credentials' presence, before any request. Raises UsageError."""
    names.dockerhub_namespace("--namespace", req.namespace)  # before Docker Hub's own rule: BinderHub's is narrower
    names.hub_name("hub name", req.hub)
    if req.cluster is not None:
        names.hub_name("cluster name", req.cluster)
    if not (1 <= len(req.token_label) <= 100):
        raise UsageError(f"invalid --token-label: 1-100 characters, got {len(req.token_label)}")
    if req.org and req.username == req.namespace:
        raise UsageError(
            "an organization access token is managed as an organization owner: set DOCKERHUB_USERNAME to your "
            f"Docker ID (an owner of {req.namespace!r}); the token's own login name will be {req.namespace!r}"
        )


def registry_for(req: DockerHubRequest, *, password: str) -> HubRegistry:
    """Docker Hub: the login name is the Docker ID for a personal token, the organization for an org token."""
    return HubRegistry(
        kind="dockerhub",
        server=SERVER,
        api_url=API_URL,
        username=req.namespace if req.org else (req.username or req.namespace),
        image_prefix=req.image_prefix,
        password=password,
        pull_secret_registry=SERVER if req.private else None,
    )


def plan_changes(req: DockerHubRequest, existing: list[AccessToken] | None) -> Plan:
    """Create the hub's token, or (with --rotate) replace it. `existing is None`: nothing could be read."""
    kind = "organization access token" if req.org else "personal access token"
    subject = f"{kind} {req.token_label!r}"
    detail = f"push, pull and create repositories under {req.namespace}/"
    if not existing:
        note = ("no Docker Hub credentials: nothing was read",) if existing is None else ()
        return Plan(changes=(Change("create", "create", subject, detail),), notes=note)
    if not req.rotate:
        return Plan(present=(subject,))
    return Plan(changes=(Change("rotate", "replace", subject, "the old token stops working"),))


def run(
    req: DockerHubRequest, *, reporter: Reporter, dry_run: bool = False, retry: Retry | None = None
) -> DockerHubResult:
    """Create or rotate this hub's Docker Hub token. Raises UsageError and DockerHubError."""
    validate(req)
    if req.username is None or req.secret is None:
        if not dry_run:
            raise UsageError("no Docker Hub credentials: set DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file)")
        plan = plan_changes(req, None)
        reporter.plan(plan, title="dry run")
        return DockerHubResult(plan, (), registry_for(req, password=""))
    reporter.add_secret(req.secret)
    client = DockerHubClient(req.api_url, identifier=req.username, secret=req.secret, retry=retry)
    org = req.namespace if req.org else None
    try:
        with reporter.step(f"log in to Docker Hub as {req.username}"):
            client.login()
        try:
            existing = [t for t in client.list_tokens(org=org) if t.label == req.token_label]
        except DockerHubError as exc:
            raise _explained(exc, req) from None
        plan = plan_changes(req, existing)
        reporter.plan(plan, title="dry run" if dry_run else "plan")
        if dry_run:
            return DockerHubResult(plan, (), registry_for(req, password=""))
        if plan.empty:
            raise ProvisionError(
                f"a token labelled {req.token_label!r} already exists, and Docker Hub shows a token's secret only "
                "when it is created",
                hint="keep the password already in the hub's encrypted secrets, or pass --rotate to replace the "
                "token (then update the hub's secrets)",
            )
        with reporter.step(plan.changes[0].describe()):
            try:
                token = client.create_token(
                    org=org, label=req.token_label, scopes=PAT_SCOPES, resources=req.oat_resources
                )
            except DockerHubError as exc:
                if exc.status != 409 or not existing:
                    raise _explained(exc, req) from None
                # The label is unique here: the old token must go first (a short gap, then the new one).
                for old in existing:
                    client.delete_token(old, org=org)
                existing = []
                token = client.create_token(
                    org=org, label=req.token_label, scopes=PAT_SCOPES, resources=req.oat_resources
                )
            assert token.secret is not None
            reporter.add_secret(token.secret)
            for old in existing:
                client.delete_token(old, org=org)
        return DockerHubResult(plan, (plan.changes[0].describe(),), registry_for(req, password=token.secret))
    finally:
        client.close()


def _explained(exc: DockerHubError, req: DockerHubRequest) -> DockerHubError:
    """Add the way out for the refusals a user can act on."""
    text = str(exc).lower()
    if exc.status == 403 and req.org and ("subscription" in text or "team" in text or "business" in text):
        exc.hint = (
            "organization access tokens need a Docker Team or Business plan: run without --org to create a "
            "personal access token of an account that may push to the organization"
        )
    elif exc.status == 403 and req.org:
        exc.hint = f"DOCKERHUB_USERNAME must be an owner of {req.namespace!r}, logged in with a password or PAT"
    elif exc.status == 409:
        exc.hint = "choose another --token-label, or pass --rotate to replace the token that has it"
    elif exc.status == 400 and "maximum" in text:
        exc.hint = "delete unused organization access tokens (expired ones count too), then re-run"
    return exc
