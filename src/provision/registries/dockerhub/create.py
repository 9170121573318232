"""provision dockerhub: validate → log in → find this hub's token by label → plan → create (or rotate) → values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from urllib3.util.retry import Retry

from provision import httpretry
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan
from provision.registries.dockerhub import lifecycle
from provision.registries.dockerhub.client import AccessToken, DockerHubClient, DockerHubError
from provision.registries.dockerhub.request import (
    PAT_SCOPES,
    DockerHubRequest,
    registry_for,
    validate,
)


@dataclass(frozen=True)
class DockerHubResult:
    plan: Plan
    applied: tuple[str, ...]
    registry: HubRegistry  # password empty on a dry run


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
    stopped after that says what is left, and the next run finishes it (see lifecycle.finish_rotation).
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
            existing, finished = lifecycle.finish_rotation(client, req, existing, delivered, reporter, dry_run=dry_run)
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
        lifecycle.undo_creation(client, req, token, known, reporter, exc)
        raise
    lifecycle.after_delivery(client, req, token, existing, reporter, delivered_to)
    return result


def _token_exists(req: DockerHubRequest, token: AccessToken, *, pending: bool) -> ProvisionError:
    """The hub's token exists: say what is known about it (under its pending label: that its secret was never
    stored), and never claim where a secret is."""
    if pending:
        what = (
            f"a token labelled {req.pending_label!r} exists ({lifecycle.when(token)}): a run created it for this hub "
            "and stopped before its secret was stored (its answer was lost, or the run failed or was interrupted), so "
            "its secret was never stored anywhere and nobody can use it"
        )
        hint = "re-run with --rotate: it deletes that token and creates a new one (or delete it in Docker Hub)"
    else:
        what = (
            f"a token labelled {req.token_label!r} already exists ({lifecycle.when(token)}). A run of provision gives "
            "a token this label only once its secret is stored (in --secret-file, or printed on stdout); Docker Hub "
            "shows the secret only in the answer that created it, so this run cannot print it again"
        )
        hint = (
            "if the hub's secrets hold it, nothing needs doing (`provision verify` checks that it works); if they "
            "do not (the printed values were not kept, or the token was made by hand), re-run with --rotate to "
            "replace it and store the new secret"
        )
    return ProvisionError(what, hint=hint)


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


