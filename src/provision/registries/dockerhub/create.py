"""provision dockerhub: validate → log in → find this hub's token by label → plan → create (or rotate) → values."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from urllib3.util.retry import Retry

from provision import endpoints, httpretry, names
from provision.console import Reporter
from provision.errors import EXIT_INTERRUPTED, ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan
from provision.registries.base import Rotated
from provision.registries.dockerhub.client import AccessToken, DockerHubClient, DockerHubError

SERVER = "https://index.docker.io/v1/"  # the docker client's auth key for Docker Hub (and z2jh's default)
API_URL = "https://registry-1.docker.io"  # the v2 API BinderHub asks whether an image exists
# A new token carries this suffix until its secret is stored: a token found with it was never confirmed stored.
PENDING_SUFFIX = ".pending"
# A rotation's new token carries this one from the moment its secret is delivered until the old token is gone
# (an organization's token labels are unique: it cannot take the label while the old token has it). A token found
# with it was delivered: a run finishes that rotation (deletes the old token, gives the new one its label).
DELIVERED_SUFFIX = ".new"
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
    allow_http: bool = False

    @property
    def token_label(self) -> str:
        # One token per hub: its secret is shown once and delivered to this hub only, so rotating it cannot break
        # another hub (no `--rotate-shared` as for a Quay robot), unless someone copied the secret by hand.
        return self.label or "-".join(["binderhub", *([self.cluster] if self.cluster else []), self.hub])

    @property
    def pending_label(self) -> str:
        """The label of a new token until its secret is stored (then it is renamed to token_label)."""
        return self.token_label + PENDING_SUFFIX

    @property
    def delivered_label(self) -> str:
        """A rotation's new token's label from the delivery of its secret until the old token is deleted."""
        return self.token_label + DELIVERED_SUFFIX

    @property
    def token_kind(self) -> str:
        return "organization access token" if self.org else "personal access token"

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
    endpoints.check_cleartext(req.api_url, option="--api-url", allow_http=req.allow_http)
    names.dockerhub_namespace("--namespace", req.namespace)  # before Docker Hub's own rule: BinderHub's is narrower
    names.hub_name("hub name", req.hub)
    if req.cluster is not None:
        names.hub_name("cluster name", req.cluster)
    longest = 100 - max(len(PENDING_SUFFIX), len(DELIVERED_SUFFIX))  # Docker Hub's 100, minus a new token's suffix
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
    subject = f"{req.token_kind} {req.token_label!r}"
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
    delivered_to: str = "its destination",
) -> DockerHubResult:
    """Create or rotate this hub's Docker Hub token, and hand it to `deliver` (which writes the hub's files or
    prints the values) before anything else. Raises UsageError and DockerHubError.

    A token whose secret does not reach its destination is worth nothing and cannot be read again: when `deliver`
    fails, or anything fails or is interrupted (Ctrl-C) after the token was created, the new token is deleted
    before the error goes on, and the message says so (or says exactly which token to delete when that fails).
    Once delivered (to `delivered_to`, named in messages), the token loses its pending label first of all; a run
    stopped after that says what is left, and the next run finishes it (see _finish_rotation).
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
        delivered = [t for t in listed if t.label == req.delivered_label]
        if delivered:
            existing, finished = _finish_rotation(client, req, existing, delivered, reporter, dry_run=dry_run)
            if not req.rotate and not pending:  # that was all there was to do: no new token, no secret to deliver
                applied = () if dry_run else tuple(c.describe() for c in finished.changes)
                return DockerHubResult(finished, applied, registry_for(req, password=""))
        plan = plan_changes(req, existing + pending)
        reporter.plan(plan, title="dry run" if dry_run else "plan")
        if pending and not req.rotate:
            raise _token_exists(req, pending[0], pending=True)
        if dry_run:
            return _delivered(DockerHubResult(plan, (), registry_for(req, password="")), deliver)
        if plan.empty:
            raise _token_exists(req, existing[0], pending=False)
        return _create_and_deliver(client, req, plan, existing, pending, reporter, deliver, delivered_to)
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
    delivered_to: str,
) -> DockerHubResult:
    """Create the token under its pending label, deliver it, then relabel it, and (rotation) delete the old ones.
    Undo the creation if anything fails before its secret is stored.

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
    _after_delivery(client, req, token, existing, reporter, delivered_to)
    return result


def _after_delivery(
    client: DockerHubClient,
    req: DockerHubRequest,
    token: AccessToken,
    old: list[AccessToken],
    reporter: Reporter,
    delivered_to: str,
) -> None:
    """The secret is delivered: first of all the token loses its pending label (to its label, or during a rotation
    to the delivered label), so that no later run takes it for one never stored; then the old tokens go (only now:
    a failure leaves both valid, never neither) and it gets its label (_retire).

    Ctrl-C during the relabelling still finishes it (within CLEAN_UP_SECONDS), then stops with a message saying
    what is done and what is left."""
    org = req.namespace if req.org else None
    mark = req.delivered_label if old else req.token_label
    problem: DockerHubError | None = None
    try:
        try:
            client.rename_token(token, mark, org=org)
            token = replace(token, label=mark)
        except DockerHubError as exc:
            problem = exc
    except KeyboardInterrupt:
        client.allow(CLEAN_UP_SECONDS)
        try:
            client.rename_token(token, mark, org=org)  # an idempotent write: it may have landed already
            token = replace(token, label=mark)
        except (DockerHubError, OSError, KeyboardInterrupt):
            pass
        raise _interrupted(req, token, old, delivered_to) from None
    if problem is not None and not old:
        reporter.warn(_rename_failed(req, req.pending_label, req.token_label, problem))
        return
    _retire(client, req, token, old, reporter=reporter, delivered_to=delivered_to, problem=problem)


def _retire(
    client: DockerHubClient,
    req: DockerHubRequest,
    token: AccessToken,
    old: list[AccessToken],
    *,
    reporter: Reporter,
    delivered_to: str,
    problem: DockerHubError | None = None,
) -> AccessToken:
    """Delete the old tokens, then give `token` (its secret delivered) the hub's label; returns it as labelled now.

    A failure is a warning saying what is left to do (the new token works); Ctrl-C stops with a message (exit 130)
    saying what is done and what is left. `problem`: why `token` still has its pending label."""
    org = req.namespace if req.org else None
    left = list(old)
    try:
        for stale in old:
            try:
                client.delete_token(stale, org=org)
                left.remove(stale)
            except DockerHubError as exc:
                reporter.warn(
                    f"the new token's secret is delivered, but deleting the old token {stale.label!r} (id "
                    f"{stale.id}) failed ({exc}): delete it in Docker Hub's access-token settings, or {FINISH}"
                )
        # While an old token has the label, the new one cannot take it (unique labels), nor should it: two tokens
        # under one label could not be told apart. It keeps its delivered label and the warning above says why.
        if not left and token.label != req.token_label:
            current = token.label
            try:
                client.rename_token(token, req.token_label, org=org)
                token = replace(token, label=req.token_label)
            except DockerHubError as exc:
                reporter.warn(_rename_failed(req, current, req.token_label, exc))
        elif left and token.label == req.pending_label:
            reporter.warn(_rename_failed(req, req.pending_label, req.delivered_label, problem))
    except KeyboardInterrupt:
        raise _interrupted(req, token, left, delivered_to) from None
    return token


def _rename_failed(req: DockerHubRequest, current: str, target: str, exc: DockerHubError | None) -> str:
    pending = current == req.pending_label
    return (
        f"the new token works and its secret is delivered, but renaming it from {current!r} to {target!r} failed "
        f"({exc}): rename it in Docker Hub's access-token settings, or "
        + ("the next run will report it as never stored" if pending else FINISH)
    )


# How a run left after its secret was delivered is finished (see _finish_rotation).
FINISH = (
    "run the same command without --rotate to finish (it deletes the old token and gives the new one its label; "
    "it prints no secret)"
)


def _interrupted(
    req: DockerHubRequest, token: AccessToken, old: list[AccessToken], delivered_to: str
) -> ProvisionError:
    """Ctrl-C after the new token's secret was delivered: what is done, what is left, exit 130."""
    olds = ", ".join(f"{t.label!r} (id {t.id})" for t in old)
    if token.label == req.pending_label:
        left = f"it is still labelled {token.label!r} (id {token.id})" + (
            f", and the old token {olds} may still exist" if old else ""
        )
        hint = (
            ("delete the old token, then " if old else "")
            + f"rename the new one to {req.token_label!r} in Docker Hub's access-token settings: under its pending "
            "label a later run would take it for a token whose secret was never stored"
        )
    elif token.label == req.token_label:
        left, hint = "it has its label", None
    else:
        left = f"it is labelled {token.label!r} (id {token.id})" + (
            f" until the old token {olds} is deleted, which may not have happened" if old else ""
        )
        hint = FINISH
    error = ProvisionError(
        f"interrupted after the new {req.token_kind}'s secret was delivered to {delivered_to}: the new token works "
        f"and {left}",
        hint=hint,
    )
    error.exit_code = EXIT_INTERRUPTED
    return error


def _finish_rotation(
    client: DockerHubClient,
    req: DockerHubRequest,
    old: list[AccessToken],
    delivered: list[AccessToken],
    reporter: Reporter,
    *,
    dry_run: bool,
) -> tuple[list[AccessToken], Plan]:
    """A token under the delivered label: an earlier --rotate delivered its secret and stopped before the old token
    was deleted. Do what it left (delete the old tokens, give the newest delivered one the label) and return the
    tokens now under the label, and the plan shown."""
    newest = max(delivered, key=lambda t: t.created_at or "")
    stale = [t for t in old + delivered if t is not newest]  # older delivered ones were replaced since
    changes = [Change("finish", "delete", f"the old token {t.label!r} (id {t.id})", "it was replaced") for t in stale]
    changes.append(Change("finish", "rename", f"the token {newest.label!r} to {req.token_label!r}"))
    plan = Plan(
        tuple(changes),
        notes=(
            f"an earlier --rotate delivered the secret of the token labelled {newest.label!r} ({_when(newest)}) and "
            "stopped before deleting the old token: this run finishes that rotation",
        ),
    )
    reporter.plan(plan, title="dry run" if dry_run else "finish an earlier rotation")
    if dry_run:
        return [replace(newest, label=req.token_label)], plan
    token = _retire(client, req, newest, stale, reporter=reporter, delivered_to="its destination by an earlier run")
    if token.label != req.token_label:
        raise ProvisionError(
            f"the earlier --rotate could not be finished: the token labelled {token.label!r} keeps that label",
            hint="see the warnings above; once the cause is fixed, run the same command without --rotate again",
        )
    reporter.always(f"summary: finished the earlier rotation: {'; '.join(c.describe() for c in plan.changes)}")
    return [token], plan


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


def rotated_credential(req: DockerHubRequest) -> Rotated:
    kind = "organization access token" if req.org else "personal access token"
    """What a rotation made live, and where it can be read again (for messages after the rotation)."""
    return Rotated(
        f"the new Docker Hub {kind} {req.token_label!r}",
        "nowhere else: Docker Hub shows a token's secret only when it is created",
        None,
    )
