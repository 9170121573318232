"""provision dockerhub: validate → log in → find this hub's token by label → plan → create (or rotate) → values."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from urllib3.util.retry import Retry

from provision import httpretry, names
from provision.console import Reporter
from provision.dockerhub import AccessToken, DockerHubClient, DockerHubError
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan

SERVER = "https://index.docker.io/v1/"  # the docker client's auth key for Docker Hub (and z2jh's default)
API_URL = "https://registry-1.docker.io"  # the v2 API BinderHub asks whether an image exists
# A new token carries this suffix until its secret is stored: a token found with it was never confirmed stored.
PENDING_SUFFIX = ".pending"
CLEAN_UP_SECONDS = 30.0  # for deleting a token whose secret was not stored, even after the run's deadline
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
    def pending_label(self) -> str:
        """The label of a new token until its secret is stored (then it is renamed to token_label)."""
        return self.token_label + PENDING_SUFFIX

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
    url = urlsplit(req.api_url)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        raise UsageError(f"invalid --api-url {req.api_url!r}: expected https://HOST[:PORT] of the Docker Hub API")
    names.dockerhub_namespace("--namespace", req.namespace)  # before Docker Hub's own rule: BinderHub's is narrower
    names.hub_name("hub name", req.hub)
    if req.cluster is not None:
        names.hub_name("cluster name", req.cluster)
    longest = 100 - len(PENDING_SUFFIX)  # Docker Hub's 100, minus the suffix a new token carries at first
    if not (1 <= len(req.token_label) <= longest):
        raise UsageError(f"invalid --token-label: 1-{longest} characters, got {len(req.token_label)}")
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


Deliver = Callable[[DockerHubResult], None]


def run(
    req: DockerHubRequest,
    *,
    reporter: Reporter,
    dry_run: bool = False,
    retry: Retry | None = None,
    deliver: Deliver | None = None,
    deadline: float = httpretry.DEFAULT_DEADLINE,
) -> DockerHubResult:
    """Create or rotate this hub's Docker Hub token, and hand it to `deliver` (which writes the hub's files or
    prints the values) before anything else. Raises UsageError and DockerHubError.

    A token whose secret does not reach its destination is worth nothing and cannot be read again: when `deliver`
    fails, or anything fails or is interrupted (Ctrl-C) after the token was created, the new token is deleted
    before the error goes on, and the message says so (or says exactly which token to delete when that fails).
    """
    validate(req)
    if req.username is None or req.secret is None:
        if not dry_run:
            raise UsageError("no Docker Hub credentials: set DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file)")
        plan = plan_changes(req, None)
        reporter.plan(plan, title="dry run")
        return _delivered(DockerHubResult(plan, (), registry_for(req, password="")), deliver)
    reporter.add_secret(req.secret)
    client = DockerHubClient(
        req.api_url, identifier=req.username, secret=req.secret, retry=retry, deadline=httpretry.Deadline(deadline)
    )
    org = req.namespace if req.org else None
    try:
        with reporter.step(f"log in to Docker Hub as {req.username}"):
            client.login()
        try:
            listed = client.list_tokens(org=org)
        except DockerHubError as exc:
            raise _explained(exc, req) from None
        existing = [t for t in listed if t.label == req.token_label]
        pending = [t for t in listed if t.label == req.pending_label]
        plan = plan_changes(req, existing + pending)
        reporter.plan(plan, title="dry run" if dry_run else "plan")
        if pending and not req.rotate:
            raise _token_exists(req, pending[0], pending=True)
        if dry_run:
            return _delivered(DockerHubResult(plan, (), registry_for(req, password="")), deliver)
        if plan.empty:
            raise _token_exists(req, existing[0], pending=False)
        return _create_and_deliver(client, req, plan, existing, pending, reporter, deliver)
    finally:
        client.close()


def _delivered(result: DockerHubResult, deliver: Deliver | None) -> DockerHubResult:
    if deliver is not None:
        deliver(result)
    return result


def _create_and_deliver(
    client: DockerHubClient,
    req: DockerHubRequest,
    plan: Plan,
    existing: list[AccessToken],
    pending: list[AccessToken],
    reporter: Reporter,
    deliver: Deliver | None,
) -> DockerHubResult:
    """Create the token under its pending label, deliver it, then (rotation) delete the old ones and give it its
    label. Undo the creation if anything fails before its secret is stored.

    The pending label is what lets a later run tell the truth about a token whose creation answer was lost or
    whose run died before storing it: such a token still carries the suffix. It also keeps a rotation gapless
    where labels are unique (organization tokens): the old token goes only after the new secret is stored.
    """
    org = req.namespace if req.org else None
    for stale in pending:  # --rotate: tokens whose secret was never stored are worth nothing
        client.delete_token(stale, org=org)
    known = {t.id for t in existing + pending}
    token: AccessToken | None = None
    try:
        with reporter.step(plan.changes[0].describe()):
            try:
                token = client.create_token(
                    org=org, label=req.pending_label, scopes=PAT_SCOPES, resources=req.oat_resources
                )
            except DockerHubError as exc:
                raise _explained(exc, req) from None
            assert token.secret is not None
            reporter.add_secret(token.secret)
        result = DockerHubResult(plan, (plan.changes[0].describe(),), registry_for(req, password=token.secret))
        _delivered(result, deliver)
    except BaseException as exc:
        _undo_creation(client, req, token, known, reporter, exc)
        raise
    # The new secret is stored: only now may the old token go (a failure here leaves both valid, never neither).
    for old in existing:
        try:
            client.delete_token(old, org=org)
        except DockerHubError as exc:
            reporter.warn(
                f"the new token is stored, but deleting the old token {old.label!r} (id {old.id}) failed ({exc}); "
                "delete it in Docker Hub's access-token settings"
            )
    try:
        client.rename_token(token, req.token_label, org=org)
    except DockerHubError as exc:
        reporter.warn(
            f"the new token works and its secret is stored, but renaming it from {req.pending_label!r} to "
            f"{req.token_label!r} failed ({exc}): rename it in Docker Hub's access-token settings, or the next run "
            "will report it as never stored"
        )
    return result


def _undo_creation(
    client: DockerHubClient,
    req: DockerHubRequest,
    token: AccessToken | None,
    known: set[str],
    reporter: Reporter,
    cause: BaseException,
) -> None:
    """Delete the token this run created (found by label when its answer never came), and say what happened.

    Adds what was done to `cause` when it is a ProvisionError; never raises (the cause is what the user must see).
    """
    org = req.namespace if req.org else None
    label = req.pending_label
    # Interrupted, or the connection failed, while the creation was on its way: the server may still be creating
    # the token, so look a few times. After an HTTP error answer the creation is over: one look is enough.
    in_flight = isinstance(cause, KeyboardInterrupt) or (isinstance(cause, DockerHubError) and cause.status is None)
    client.allow(CLEAN_UP_SECONDS)
    try:
        created = [token] if token is not None else []
        for attempt in range(4 if token is None and in_flight else 1 if token is None else 0):
            if attempt:
                time.sleep(0.5)
            # A token with our label that was not there before is ours, and its secret never reached us.
            created = [t for t in client.list_tokens(org=org) if t.label == label and t.id not in known]
            if created:
                break
        for found in created:
            client.delete_token(found, org=org)
    except (DockerHubError, OSError, KeyboardInterrupt) as exc:
        note = (
            f"the token labelled {label!r} that this run created could not be deleted ({exc}): its secret was "
            "never stored anywhere. Delete it in Docker Hub's access-token settings, or re-run with --rotate to "
            "replace it (a re-run finds it by that label)"
        )
    else:
        if not created and not in_flight:
            return
        if not created:
            note = (
                f"the token labelled {label!r} was being created when this happened, and Docker Hub does not list "
                "it: if it appears later, its secret was never stored (delete it, or re-run with --rotate)"
            )
        else:
            note = f"the new token labelled {label!r} was deleted again, because its secret could not be stored"
    if isinstance(cause, ProvisionError):
        cause.with_context(done=(note,))
    else:
        reporter.warn(note)


def _token_exists(req: DockerHubRequest, token: AccessToken, *, pending: bool) -> ProvisionError:
    """The hub's token exists: say what is known about it (under its pending label: that its secret was never
    stored), and never claim where a secret is."""
    if pending:
        what = (
            f"a token labelled {req.pending_label!r} exists ({_when(token)}): a run created it for this hub and "
            "stopped before its secret was stored (its answer was lost, or the run failed or was interrupted), so "
            "its secret was never stored anywhere and nobody can use it"
        )
        hint = "re-run with --rotate: it deletes that token and creates a new one (or delete it in Docker Hub)"
    else:
        what = (
            f"a token labelled {req.token_label!r} already exists ({_when(token)}). A run of provision gives a token "
            "this label only once its secret is stored (in --secret-file, or printed on stdout); Docker Hub shows "
            "the secret only in the answer that created it, so this run cannot print it again"
        )
        hint = (
            "if the hub's secrets hold it, nothing needs doing (`provision verify` checks that it works); if they "
            "do not (the printed values were not kept, or the token was made by hand), re-run with --rotate to "
            "replace it and store the new secret"
        )
    return ProvisionError(what, hint=hint)


def _when(token: AccessToken) -> str:
    used = f"last used {token.last_used}" if token.last_used else "never used"
    return f"created {token.created_at}, {used}" if token.created_at else used


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
