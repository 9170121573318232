"""plan_changes is pure: the table of states below maps to exactly the changes a run would make."""

from __future__ import annotations

import pytest

from provision.errors import UsageError
from provision.registries.quay.create import QuayRequest, QuayState, plan_changes, registry_for, validate
from provision.registries.quay.models import Organization, Robot, TeamMember

REQ = QuayRequest(org="myorg", cluster="c1", hub="staging", members=("alice", "bob"))
ROBOT = TeamMember("myorg+image_builder", is_robot=True, invited=False)


def kinds(plan: object) -> list[tuple[str, str]]:
    return [(c.kind, " ".join(c.args)) for c in plan.changes]  # type: ignore[attr-defined]


def state(
    *,
    org: bool = True,
    robot: bool = True,
    members: list[TeamMember] | None = None,
    teams: dict[str, str] | None = None,
) -> QuayState:
    return QuayState(
        username="me",
        org=Organization("myorg", True, teams if teams is not None else {"owners": "admin"}) if org else None,
        robot=Robot("myorg+image_builder", "T" * 64) if robot else None,
        members={"owners": members} if org else {},
    )


def test_from_empty() -> None:
    assert kinds(plan_changes(REQ, state(org=False, robot=False))) == [
        ("create_org", ""),
        ("create_robot", ""),
        ("add_member", "owners myorg+image_builder"),
        ("add_member", "owners alice"),
        ("add_member", "owners bob"),
    ]


def test_without_token_plans_everything_and_says_so() -> None:
    plan = plan_changes(REQ, None)
    assert [k for k, _ in kinds(plan)] == [
        "create_org",
        "create_robot",
        "add_member",
        "add_member",
        "add_member",
    ]
    assert any("no Quay token" in n for n in plan.notes)


def test_everything_present_is_empty() -> None:
    members = [ROBOT, TeamMember("alice", False, False), TeamMember("bob", False, True)]
    plan = plan_changes(REQ, state(members=members))
    assert plan.empty
    assert "bob: already invited to team owners (pending; not invited again)" in plan.present
    assert "alice: already a member of team owners" in plan.present


def test_pending_member_is_not_invited_again() -> None:
    plan = plan_changes(REQ, state(members=[ROBOT, TeamMember("alice", False, True)]))
    assert kinds(plan) == [("add_member", "owners bob")]


def test_robot_exists_but_not_in_team() -> None:
    assert kinds(plan_changes(REQ, state(members=[]))) == [
        ("add_member", "owners myorg+image_builder"),
        ("add_member", "owners alice"),
        ("add_member", "owners bob"),
    ]


def test_org_only() -> None:
    assert kinds(plan_changes(QuayRequest(org="myorg"), state(robot=False, members=[]))) == [
        ("create_robot", ""),
        ("add_member", "owners myorg+image_builder"),
    ]


def test_creator_team_created_with_role_creator_when_missing() -> None:
    req = QuayRequest(org="myorg", team="creator")
    plan = plan_changes(req, QuayState("me", Organization("myorg", True, {"owners": "admin"}), None, {"creator": None}))
    assert kinds(plan) == [
        ("create_robot", ""),
        ("put_team", "creator"),
        ("add_member", "creator myorg+image_builder"),
    ]
    assert plan.changes[1].detail == "role creator"


def test_creator_team_with_wrong_role_is_corrected() -> None:
    req = QuayRequest(org="myorg", team="creator")
    st = QuayState("me", Organization("myorg", True, {"owners": "admin", "creator": "member"}), None, {"creator": []})
    plan = plan_changes(req, st)
    assert ("put_team", "creator") in kinds(plan)
    assert "member -> creator" in plan.changes[1].detail


def test_new_org_creator_team_is_created_but_owners_exists_by_itself() -> None:
    req = QuayRequest(org="myorg", team="creator", members=("alice",))
    assert kinds(plan_changes(req, state(org=False, robot=False))) == [
        ("create_org", ""),
        ("create_robot", ""),
        ("put_team", "creator"),
        ("add_member", "creator myorg+image_builder"),
        ("add_member", "owners alice"),
    ]


def test_rotate_only_an_existing_robot() -> None:
    req = QuayRequest(org="myorg", rotate=True)
    assert kinds(plan_changes(req, state(members=[ROBOT]))) == [("rotate", "")]
    assert ("rotate", "") not in kinds(plan_changes(req, state(robot=False, members=[])))


def test_shared_org_never_changes_anything() -> None:
    req = QuayRequest(org="shared", shared_org=True, hub="h")
    assert plan_changes(req, state(members=[])).empty


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"org": "Bad_Org"}, "organization name"),
        ({"robot": "x"}, "robot name"),
        ({"members": ("ok", "no way")}, "member user name"),
        ({"cluster": "c1", "hub": None}, "--cluster needs --hub"),
        ({"hub": "Hub"}, "hub name"),
        ({"api_url": "quay.io"}, "--api-url"),
        ({"api_url": "https://quay.io/api/v1"}, "--api-url"),
        ({"shared_org": True, "members": ("alice",)}, "--member cannot be used with --shared-org"),
        ({"shared_org": True, "rotate": True}, "--rotate cannot be used with --shared-org"),
    ],
)
def test_validation(changes: dict[str, object], message: str) -> None:
    base = {"org": "myorg"}
    with pytest.raises(UsageError, match=message):
        validate(QuayRequest(**{**base, **changes}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("req", "prefix", "server"),
    [
        (QuayRequest(org="o", cluster="c", hub="h"), "quay.io/o/c-h-", "https://quay.io"),
        (QuayRequest(org="o", hub="h"), "quay.io/o/h-", "https://quay.io"),
        (QuayRequest(org="o"), "quay.io/o/", "https://quay.io"),
        (
            QuayRequest(org="o", api_url="http://127.0.0.1:8080/", hub="h"),
            "127.0.0.1:8080/o/h-",
            "http://127.0.0.1:8080",
        ),
    ],
)
def test_registry_shape(req: QuayRequest, prefix: str, server: str) -> None:
    registry = registry_for(req, "tok")
    assert (registry.image_prefix, registry.server, registry.username) == (
        prefix,
        server,
        f"{req.org}+image_builder",
    )
    assert registry.pull_secret_registry == req.host
