"""A Docker Hub token after its creation: its secret delivered, it takes its label (retiring a rotation's old token
first: an organization's labels are unique); a token whose secret could not be stored is deleted again, and an
interruption says exactly which token is live and what the same command will finish."""

from __future__ import annotations

import time
from dataclasses import replace

from provision.console import Reporter
from provision.errors import EXIT_INTERRUPTED, ProvisionError
from provision.plan import Change, Plan
from provision.registries.dockerhub.client import AccessToken, DockerHubClient, DockerHubError
from provision.registries.dockerhub.request import (
    DockerHubRequest,
)

CLEAN_UP_SECONDS = 30.0  # for deleting a token whose secret was not stored, even after the run's deadline


def after_delivery(
    client: DockerHubClient,
    req: DockerHubRequest,
    token: AccessToken,
    old: list[AccessToken],
    reporter: Reporter,
    delivered_to: str,
) -> None:
    """The secret is delivered: first of all the token loses its pending label (to its label, or during a rotation
    to the delivered label), so that no later run takes it for one never stored; then the old tokens go (only now:
    a failure leaves both valid, never neither) and it gets its label (retire).

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
        raise interrupted(req, token, old, delivered_to) from None
    if problem is not None and not old:
        reporter.warn(rename_failed(req, req.pending_label, req.token_label, problem))
        return
    retire(client, req, token, old, reporter=reporter, delivered_to=delivered_to, problem=problem)


def retire(
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
                reporter.warn(rename_failed(req, current, req.token_label, exc))
        elif left and token.label == req.pending_label:
            reporter.warn(rename_failed(req, req.pending_label, req.delivered_label, problem))
    except KeyboardInterrupt:
        raise interrupted(req, token, left, delivered_to) from None
    return token


def rename_failed(req: DockerHubRequest, current: str, target: str, exc: DockerHubError | None) -> str:
    pending = current == req.pending_label
    return (
        f"the new token works and its secret is delivered, but renaming it from {current!r} to {target!r} failed "
        f"({exc}): rename it in Docker Hub's access-token settings, or "
        + ("the next run will report it as never stored" if pending else FINISH)
    )


# How a run left after its secret was delivered is finished (see finish_rotation).


FINISH = (
    "run the same command without --rotate to finish (it deletes the old token and gives the new one its label; "
    "it prints no secret)"
)


def interrupted(req: DockerHubRequest, token: AccessToken, old: list[AccessToken], delivered_to: str) -> ProvisionError:
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


def finish_rotation(
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
            f"an earlier --rotate delivered the secret of the token labelled {newest.label!r} ({when(newest)}) and "
            "stopped before deleting the old token: this run finishes that rotation",
        ),
    )
    reporter.plan(plan, title="dry run" if dry_run else "finish an earlier rotation")
    if dry_run:
        return [replace(newest, label=req.token_label)], plan
    token = retire(client, req, newest, stale, reporter=reporter, delivered_to="its destination by an earlier run")
    if token.label != req.token_label:
        raise ProvisionError(
            f"the earlier --rotate could not be finished: the token labelled {token.label!r} keeps that label",
            hint="see the warnings above; once the cause is fixed, run the same command without --rotate again",
        )
    reporter.always(f"summary: finished the earlier rotation: {'; '.join(c.describe() for c in plan.changes)}")
    return [token], plan


def undo_creation(
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


def when(token: AccessToken) -> str:
    used = f"last used {token.last_used}" if token.last_used else "never used"
    return f"created {token.created_at}, {used}" if token.created_at else used
