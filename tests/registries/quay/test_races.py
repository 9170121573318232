"""Two runs of provision quay on one organization at once, and the refusals a real Quay gives half-way.

The second run is slipped in between two requests of the first (an Interleave fault on the test server): the
interleaving is chosen, not left to thread timing, so each race is reproduced on every run.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from urllib3.util.retry import Retry

from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.registries.quay.create import QuayRequest, QuayResult, run
from tests.servers.quay import FakeQuay, Interleave

TOKEN = "T" * 40
ORG = "hubs"
ROBOT = f"{ORG}+image_builder"
ROBOT_PATH = rf"/api/v1/organization/{ORG}/robots/image_builder"


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_admin(TOKEN)
        server.add_user("alice")
        yield server


class Outcome:
    def __init__(self) -> None:
        self.result: QuayResult | None = None
        self.error: ProvisionError | None = None
        self.stderr = ""


def provision(server: FakeQuay, *, dry_run: bool = False, **kwargs: Any) -> Outcome:
    fields: dict[str, Any] = {"org": ORG, "api_url": server.url, "token": TOKEN, "hub": "staging", **kwargs}
    stream, outcome = io.StringIO(), Outcome()
    try:
        outcome.result = run(
            QuayRequest(**fields),
            reporter=Reporter(stream=stream),
            dry_run=dry_run,
            retry=Retry(total=2, backoff_factor=0, raise_on_status=False),
            timeout=(5.0, 10.0),  # the first run waits while the second one runs inside its request
        )
    except ProvisionError as exc:
        outcome.error = exc
    outcome.stderr = stream.getvalue()
    return outcome


def ok(outcome: Outcome) -> QuayResult:
    assert outcome.error is None, str(outcome.error)
    assert outcome.result is not None
    return outcome.result


def test_lost_race_on_organization_creation_goes_on(quay: FakeQuay) -> None:
    """Both runs see no organization; the second creates it while the first's POST is on its way."""
    second: list[Outcome] = []
    quay.inject("POST", r"/api/v1/organization/", Interleave(lambda: second.append(provision(quay))))
    first = ok(provision(quay))
    other = ok(second[0])
    assert first.registry.password == other.registry.password == quay.robot_token(ORG, "image_builder")
    assert quay.team_members(ORG, "owners").count(ROBOT) == 1


def test_two_concurrent_rotations_print_the_token_quay_holds(quay: FakeQuay) -> None:
    """The second rotation lands after the first one's; both runs must print the token that still works."""
    quay.add_org(ORG, admin="admin")
    old = quay.add_robot(ORG, "image_builder")
    quay.add_team_member(ORG, "owners", ROBOT)
    second: list[Outcome] = []
    # The first run's reads: GET robot (state); then its POST regenerate; then the read-back, where the second
    # run (state read, regenerate, read-back) slips in.
    quay.inject("GET", ROBOT_PATH, Interleave(lambda: second.append(provision(quay, rotate=True))), after=1)
    first = provision(quay, rotate=True)
    final = quay.robot_token(ORG, "image_builder")
    assert final != old
    assert ok(first).registry.password == final
    assert ok(second[0]).registry.password == final
    assert "changed again right after this rotation" in first.stderr


def test_member_invited_meanwhile_is_not_invited_twice(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    quay.add_team_member(ORG, "owners", ROBOT)
    second: list[Outcome] = []
    members_path = rf"/api/v1/organization/{ORG}/team/owners/members"
    # After the first run read the team (alice not invited), the second run invites her.
    quay.inject("GET", members_path, Interleave(lambda: second.append(provision(quay, members=("alice",)))), after=1)
    first = ok(provision(quay, members=("alice",)))
    assert ok(second[0]).member_report == ("alice: invited to team owners",)
    assert quay.pending_invites(ORG, "owners") == ["alice"]
    assert first.member_report == ("alice: already invited to team owners (pending; not invited again) "
                                   "(meanwhile, by another run)",)  # fmt: skip


def test_two_runs_in_parallel_threads_end_in_one_consistent_state(quay: FakeQuay) -> None:
    """No chosen interleaving: two threads from an empty server, both must succeed with the same robot."""
    outcomes = [Outcome(), Outcome()]

    def one(index: int) -> None:
        outcomes[index] = provision(quay, members=("alice",))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    passwords = {ok(o).registry.password for o in outcomes}
    assert passwords == {quay.robot_token(ORG, "image_builder")}
    assert quay.team_members(ORG, "owners").count(ROBOT) == 1
    # The invitation itself can still be sent twice when both PUTs cross (README: what stays racy).
    assert 1 <= quay.pending_invites(ORG, "owners").count("alice") <= 2


def test_token_with_user_admin_but_not_org_admin_names_the_missing_scope(quay: FakeQuay) -> None:
    """As on a real Quay: the organization is created (user:admin), then the robot is refused with a 403."""
    quay.add_token("U" * 40, user="admin", scopes={"user:admin"})
    outcome = provision(quay, token="U" * 40)
    assert outcome.error is not None
    message = str(outcome.error)
    assert "lacks the org:admin scope" in message and "create robot" in message
    assert f"Already done: create organization {ORG}" in message
    assert quay.org_exists(ORG) and quay.robot_token(ORG, "image_builder") is None
    # With a token that has both scopes, the re-run reuses the organization.
    quay.add_token("V" * 40, user="admin", scopes={"user:admin", "org:admin"})
    ok(provision(quay, token="V" * 40))


def test_invalid_email_is_refused_before_any_request_and_says_what_to_change(quay: FakeQuay) -> None:
    outcome = provision(quay, email="not-an-address")
    assert isinstance(outcome.error, UsageError) and "--email" in str(outcome.error)
    assert "re-run the same" not in str(outcome.error)
    assert quay.requests == []


def test_email_refused_by_quay_says_what_to_change(quay: FakeQuay) -> None:
    outcome = provision(quay, email="admin@example.org")  # the account's own address
    assert outcome.error is not None
    message = str(outcome.error)
    assert "already used by an account" in message and "re-run with an --email" in message
    assert "re-run the same command" not in message


def test_lost_race_to_someone_else_says_the_name_is_taken(quay: FakeQuay) -> None:
    quay.add_user("bob")
    quay.inject("POST", r"/api/v1/organization/", Interleave(lambda: quay.add_org(ORG, admin="bob")))
    outcome = provision(quay)
    assert outcome.error is not None
    assert "taken" in str(outcome.error) and "another --org" in str(outcome.error)
    assert quay.robot_token(ORG, "image_builder") is None


def test_two_processes_creating_one_organization_at_once_both_finish(quay: FakeQuay) -> None:
    """Issue 18: two first runs (two processes) create the same organization at once. Quay checks the name, then
    inserts: both pass the check and the loser's insert fails with the database's own text (400 {"message":
    "UNIQUE constraint failed: user.username"}), which the test server reproduces inside its check-to-insert
    window. With latency on every request, the loser must re-read the organization, find it is its own, and go on."""
    import os
    import subprocess
    import sys

    quay.latency = 0.05
    quay.org_create_window = 20.0  # ends as soon as the second create is inside it too
    env = {**os.environ, "QUAY_TOKEN": TOKEN}
    args = [sys.executable, "-m", "provision", "quay", "--org", ORG, "--hub", "staging", "--api-url", quay.url]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    creates = [r for r in quay.requests if r.method == "POST" and r.path == "/api/v1/organization/"]
    assert [r.status for r in creates].count(400) == 1, creates  # the race happened: one insert lost
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "UNIQUE constraint" not in stderr
        assert quay.robot_token(ORG, "image_builder") in stdout
    assert quay.team_members(ORG, "owners").count(ROBOT) == 1
