"""provision quay against the Quay-compatible server over real HTTP: states, faults, refusals, secrecy."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from urllib3.util.retry import Retry

from provision.console import Reporter
from provision.errors import ProvisionError
from provision.registries.quay.client import QuayError
from provision.registries.quay.create import QuayRequest, QuayResult, run
from tests.servers.quay import Delay, FakeQuay, Html429, ResetAfter, ResetBefore, Status

TOKEN = "A" * 40
ORG = "hubs"
ROBOT = f"{ORG}+image_builder"


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_user("admin", email="admin@example.org")
        server.add_user("alice", email="alice@example.org")
        server.add_user("bob")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        yield server


class Run:
    def __init__(self, result: QuayResult | None, stderr: str, error: ProvisionError | None) -> None:
        self.result, self.stderr, self.error = result, stderr, error


def provision(server: FakeQuay, *, dry_run: bool = False, token: str | None = TOKEN, **kwargs: Any) -> Run:
    """Run the flow with no backoff; returns the result or the error, and what went to stderr."""
    stream = io.StringIO()
    fields: dict[str, Any] = {
        "org": ORG,
        "api_url": server.url,
        "token": token,
        "cluster": "c1",
        "hub": "staging",
    }
    fields.update(kwargs)
    try:
        result = run(
            QuayRequest(**fields),
            reporter=Reporter(stream=stream),
            dry_run=dry_run,
            retry=Retry(total=4, backoff_factor=0, raise_on_status=False),
            timeout=(1.0, 1.0),
        )
        return Run(result, stream.getvalue(), None)
    except ProvisionError as exc:
        return Run(None, stream.getvalue(), exc)


def ok(server: FakeQuay, **kwargs: Any) -> QuayResult:
    outcome = provision(server, **kwargs)
    assert outcome.error is None, str(outcome.error)
    assert outcome.result is not None
    return outcome.result


def assert_final_state(server: FakeQuay, *, members: tuple[str, ...] = ()) -> None:
    assert server.org_exists(ORG)
    assert ROBOT in server.team_members(ORG, "owners")
    for name in members:
        listed = server.team_members(ORG, "owners").count(name) + server.pending_invites(ORG, "owners").count(name)
        assert listed == 1, f"{name} listed {listed} times (duplicate invite?)"


# --- states ------------------------------------------------------------------------------------------------


def test_from_empty(quay: FakeQuay) -> None:
    result = ok(quay, members=("alice", "bob"))
    assert_final_state(quay, members=("alice", "bob"))
    assert result.registry.password == quay.robot_token(ORG, "image_builder")
    assert result.registry.username == ROBOT
    assert result.registry.image_prefix == f"{quay.host}/{ORG}/c1-staging-"
    # Nobody else is in a team of the new organization, so both are invited.
    assert result.member_report == ("alice: invited to team owners", "bob: invited to team owners")
    # 7 reads and writes, plus per member: does the user exist, and is it invited already (read just before)
    assert len(quay.requests) <= 7 + 2 * 2 + 2
    assert [(r.method, r.status) for r in quay.writes()] == [
        ("POST", 201),
        ("PUT", 201),
        ("PUT", 200),
        ("PUT", 200),
        ("PUT", 200),
    ]


def test_rerun_changes_nothing(quay: FakeQuay) -> None:
    first = ok(quay, members=("alice",))
    quay.clear_log()
    outcome = provision(quay, members=("alice",))
    assert outcome.result is not None
    assert outcome.result.plan.empty and outcome.result.applied == ()
    assert "nothing to do" in outcome.stderr
    assert quay.writes() == []
    assert len(quay.requests) <= 4
    assert outcome.result.registry.password == first.registry.password  # read back, never regenerated
    assert outcome.result.member_report == ("alice: already invited to team owners (pending; not invited again)",)
    assert quay.pending_invites(ORG, "owners") == ["alice"]


def test_org_only(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    ok(quay)
    assert [r.method for r in quay.writes()] == ["PUT", "PUT"]  # robot, then team membership
    assert_final_state(quay)


def test_robot_exists_token_is_reused(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    token = quay.add_robot(ORG, "image_builder")
    result = ok(quay)
    assert result.registry.password == token
    assert [r.path for r in quay.writes()] == [f"/api/v1/organization/{ORG}/team/owners/members/{ROBOT}"]


def test_robot_already_in_team(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    quay.add_team_member(ORG, "owners", ROBOT)
    result = ok(quay)
    assert quay.writes() == [] and result.plan.empty


def test_member_pending_is_not_invited_twice(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    quay.add_team_member(ORG, "owners", ROBOT)
    quay.add_team_member(ORG, "owners", "alice", pending=True)
    result = ok(quay, members=("alice", "bob"))
    assert quay.pending_invites(ORG, "owners").count("alice") == 1
    assert result.member_report == (
        "alice: already invited to team owners (pending; not invited again)",
        "bob: invited to team owners",
    )


def test_member_already_added(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_team_member(ORG, "owners", "alice")
    result = ok(quay, members=("alice",))
    assert result.member_report == ("alice: already a member of team owners",)
    assert not any(r.path.endswith("/members/alice") for r in quay.writes())


def test_user_in_another_team_is_added_directly(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_team(ORG, "readers", role="member")
    quay.add_team_member(ORG, "readers", "bob")
    result = ok(quay, members=("bob",))
    assert result.member_report == ("bob: added to team owners",)
    assert "bob" in quay.team_members(ORG, "owners")


def test_creator_team(quay: FakeQuay) -> None:
    ok(quay, team="creator", members=("alice",))
    assert quay.team_role(ORG, "creator") == "creator"
    assert ROBOT in quay.team_members(ORG, "creator")
    assert ROBOT not in quay.team_members(ORG, "owners")
    assert quay.pending_invites(ORG, "owners") == ["alice"]
    quay.clear_log()
    ok(quay, team="creator", members=("alice",))
    assert quay.writes() == []


def test_shared_org(quay: FakeQuay) -> None:
    quay.add_org("shared", admin="admin")
    token = quay.add_robot("shared", "image_builder")
    result = ok(quay, org="shared", shared_org=True, cluster="nasa-veda", hub="prod")
    assert quay.writes() == []
    assert len(quay.requests) == 3
    assert result.registry.password == token
    assert result.registry.image_prefix == f"{quay.host}/shared/nasa-veda-prod-"


@pytest.mark.parametrize(
    ("org_exists", "message"),
    [(False, "does not exist"), (True, "robot shared+image_builder does not exist")],
)
def test_shared_org_missing_parts(quay: FakeQuay, org_exists: bool, message: str) -> None:
    if org_exists:
        quay.add_org("shared", admin="admin")
    outcome = provision(quay, org="shared", shared_org=True)
    assert outcome.error is not None and message in str(outcome.error)
    assert "--shared-org" in str(outcome.error)
    assert quay.writes() == []


def test_rotate(quay: FakeQuay) -> None:
    first = ok(quay)
    quay.clear_log()
    rotated = ok(quay, rotate=True)
    assert rotated.registry.password != first.registry.password
    assert rotated.registry.password == quay.robot_token(ORG, "image_builder")
    assert [(r.method, r.path) for r in quay.writes()] == [
        ("POST", f"/api/v1/organization/{ORG}/robots/image_builder/regenerate")
    ]


def test_dry_run_reads_but_never_writes(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    outcome = provision(quay, dry_run=True, members=("alice",))
    assert outcome.result is not None
    assert quay.writes() == []
    assert [c.kind for c in outcome.result.plan.changes] == ["create_robot", "add_member", "add_member"]
    assert "dry run: 3 change(s)" in outcome.stderr
    assert outcome.result.registry.password == ""


def test_dry_run_without_token_sends_nothing(quay: FakeQuay) -> None:
    outcome = provision(quay, dry_run=True, token=None)
    assert outcome.result is not None and quay.requests == []


# --- faults ------------------------------------------------------------------------------------------------

STEPS = [
    ("GET", r"/api/v1/user/"),
    ("GET", rf"/api/v1/organization/{ORG}"),
    ("POST", r"/api/v1/organization/"),
    ("PUT", rf"/api/v1/organization/{ORG}/robots/image_builder"),
    ("PUT", rf"/api/v1/organization/{ORG}/team/owners/members/{ORG}\+image_builder"),
    ("PUT", rf"/api/v1/organization/{ORG}/team/owners/members/alice"),
]
FAULTS = [Status(500), Status(502), Status(503, retry_after="0"), Html429(), ResetBefore(), ResetAfter()]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__ + str(getattr(f, "code", "")))
@pytest.mark.parametrize(("method", "path"), STEPS, ids=[f"{m} {p.split('/')[-1] or p}" for m, p in STEPS])
def test_single_fault_is_retried_without_duplicates(quay: FakeQuay, method: str, path: str, fault: object) -> None:
    quay.inject(method, path, fault)
    ok(quay, members=("alice",))
    assert_final_state(quay, members=("alice",))
    assert any(r.fault for r in quay.requests), "the fault was never triggered"


@pytest.mark.parametrize(("method", "path"), STEPS[2:], ids=[m + " " + p.split("/")[-1] for m, p in STEPS[2:]])
@pytest.mark.parametrize("fault", [Status(503), ResetAfter()], ids=["503", "ResetAfter"])
def test_persistent_fault_stops_with_resume_hint_and_rerun_finishes(
    quay: FakeQuay, method: str, path: str, fault: object
) -> None:
    quay.inject(method, path, fault, times=1000)
    outcome = provision(quay, members=("alice",))
    if outcome.error is None:
        # ResetAfter lets writes land: reading again shows they did, so the run may still complete.
        assert isinstance(fault, ResetAfter)
    else:
        assert "re-run the same command" in str(outcome.error)
        if method != "POST":
            assert "Already done: create organization" in str(outcome.error)
    quay.clear_faults()  # same server, same state: the re-run resumes
    ok(quay, members=("alice",))
    assert_final_state(quay, members=("alice",))
    assert quay.robot_token(ORG, "image_builder") is not None


def test_read_timeout_is_retried(quay: FakeQuay) -> None:
    quay.inject("GET", rf"/api/v1/organization/{ORG}", Delay(1.5))
    ok(quay)
    assert_final_state(quay)


# --- refusals and bad tokens ---------------------------------------------------------------------------------


def error_of(server: FakeQuay, **kwargs: Any) -> str:
    outcome = provision(server, **kwargs)
    assert outcome.error is not None, "expected a failure"
    assert isinstance(outcome.error, QuayError)
    return str(outcome.error)


def test_bad_token_is_caught_by_the_preflight(quay: FakeQuay) -> None:
    message = error_of(quay, token="B" * 40)
    assert "did not accept the token" in message and "org:admin and user:admin" in message
    assert len(quay.requests) == 1 and quay.writes() == []


def test_token_without_org_admin(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_token("C" * 40, user="admin", scopes={"user:admin"})
    assert "lacks the org:admin scope" in error_of(quay, token="C" * 40)
    assert quay.writes() == []


def test_token_without_user_admin_cannot_create_org(quay: FakeQuay) -> None:
    quay.add_token("D" * 40, user="admin", scopes={"org:admin", "user:read"})
    message = error_of(quay, token="D" * 40)
    assert "lacks the user:admin scope" in message and "web UI" in message


def test_token_without_any_user_scope(quay: FakeQuay) -> None:
    quay.add_token("E" * 40, user="admin", scopes={"org:admin"})
    assert "lacks the user:admin scope" in error_of(quay, token="E" * 40)


@pytest.mark.parametrize(
    ("setup", "kwargs", "expected"),
    [
        ({"recaptcha": True}, {}, "Are you a bot?"),
        ({"require_email": True}, {}, "--email"),
        ({}, {"email": "admin@example.org"}, "already used by an account"),
        ({"robots_disabled": True}, {}, "does not allow robot accounts"),
    ],
)
def test_refusals_have_a_way_out(setup: dict[str, bool], kwargs: dict[str, Any], expected: str) -> None:
    with FakeQuay(**setup) as server:
        server.add_user("admin", email="admin@example.org")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        message = error_of(server, **kwargs)
    assert expected in message
    if setup.get("recaptcha"):
        assert "create the organization in the Quay web UI, then re-run" in message


def test_org_name_taken_by_a_user(quay: FakeQuay) -> None:
    assert "taken by a user account" in error_of(quay, org="alice")


def test_org_name_reserved_after_deletion(quay: FakeQuay) -> None:
    quay.reserve_name(ORG)
    assert "recently deleted organization" in error_of(quay)


def test_org_administered_by_someone_else(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="bob")
    assert "not an administrator" in error_of(quay)


def test_unknown_member_is_refused_before_any_change(quay: FakeQuay) -> None:
    message = error_of(quay, members=("alice", "nobody"))
    assert "no Quay user named 'nobody'" in message and "--member" in message and "re-run the same" not in message
    assert quay.writes() == []


def test_dry_run_with_a_token_checks_that_members_exist(quay: FakeQuay) -> None:
    outcome = provision(quay, dry_run=True, members=("nobody",))
    assert outcome.error is not None and "no Quay user named 'nobody'" in str(outcome.error)
    assert quay.writes() == []


# --- secrecy -------------------------------------------------------------------------------------------------


def test_tokens_never_in_stderr_or_logs(quay: FakeQuay, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    quay.inject("PUT", rf"/api/v1/organization/{ORG}/robots/image_builder", ResetAfter())
    first = provision(quay, members=("alice",))
    rotated = provision(quay, rotate=True)
    failed = provision(quay, members=("nobody",))
    assert first.result and rotated.result and failed.error
    secrets = {TOKEN, first.result.registry.password, rotated.result.registry.password}
    text = first.stderr + rotated.stderr + failed.stderr + str(failed.error) + caplog.text
    assert caplog.text, "nothing was logged: the check would be vacuous"
    for secret in secrets:
        assert secret not in text


def test_robot_token_missing_from_the_answer(quay: FakeQuay) -> None:
    """Only administrators see robot tokens; an answer without one stops the run with what was done."""
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    quay.inject("GET", rf"/api/v1/organization/{ORG}/robots/image_builder", Status(200, body={"name": ROBOT}))
    message = error_of(quay)
    assert "did not return the token" in message
    assert f"Already done: add robot {ROBOT} to team owners" in message
