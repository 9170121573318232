"""Tests of the FakeQuay test server itself, over real HTTP with requests."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.client import HTTPConnection
from pathlib import Path

import pytest
import requests

from tests.servers.quay import Delay, FakeQuay, Html429, LoggedRequest, ResetAfter, ResetBefore, Status

# The repository is cloned at some directory X; the shared folder sits beside it at X/../shared.
REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
DISCOVERY = REPO_ROOT.parent / "shared" / "schemas" / "quay-api-discovery.json"

ADMIN = {"user:admin", "org:admin"}
API = "/api/v1"
ROBOT_TOKEN = re.compile(r"[A-Z0-9]{64}")
NAME_RULE = "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    fake = FakeQuay()
    fake.add_user("alice", email="alice@example.com")
    fake.add_user("bob")
    fake.add_user("carol")
    fake.add_token("tok-admin", user="alice", scopes=ADMIN)
    fake.add_org("acme", admin="alice", email="acme@example.com")
    with fake:
        yield fake


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer tok-admin"
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: requests.Response, status: int, error_type: str, text: str) -> dict[str, object]:
    """Assert a shape-A body and return it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"] == body["error_message"] == text
    assert body["error_type"] == body["title"] == error_type
    assert body["type"].endswith(f"/api/v1/error/{error_type}")
    assert body["status"] == status
    return body


def normalised(template: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", template)


# --- contract and routing ---------------------------------------------------------------------------------


def test_every_route_exists_in_the_discovery_document() -> None:
    assert DISCOVERY.is_file(), f"discovery document missing at {DISCOVERY}"
    document = json.loads(DISCOVERY.read_text())
    declared = {
        (method.upper(), normalised(path))
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "delete", "patch"}
    }
    assert len(FakeQuay.ROUTES) == len(set(FakeQuay.ROUTES)) >= 12
    missing = [(m, t) for m, t in FakeQuay.ROUTES if (m, normalised(t)) not in declared]
    assert missing == []


def test_every_route_is_dispatched_to_a_handler(quay: FakeQuay, http: requests.Session) -> None:
    values = {
        "orgname": "acme",
        "robot_shortname": "bot",
        "teamname": "owners",
        "membername": "alice",
        "repository": "acme/repo",
        "username": "alice",
        "policy_uuid": "no-such-policy",
        "tag": "latest",
    }
    for method, template in FakeQuay.ROUTES:
        response = http.request(method, quay.url + template.format(**values), json={"name": "x", "role": "admin"})
        assert response.status_code != 308, (method, template)
        assert "requested URL was not found" not in response.text, (method, template)
    assert len(quay.requests) == len(FakeQuay.ROUTES)


def test_unknown_route_is_a_werkzeug_404(quay: FakeQuay, http: requests.Session) -> None:
    response = http.get(quay.url + API + "/nothing/here")
    assert response.status_code == 404
    assert response.json()["message"].startswith("The requested URL was not found on the server.")


def test_unserved_method_is_a_404(quay: FakeQuay, http: requests.Session) -> None:
    response = http.post(quay.url + API + "/organization/acme")
    assert response.status_code == 404 and "requested URL was not found" in response.json()["message"]


def test_keep_alive_reuses_the_connection(quay: FakeQuay) -> None:
    conn = HTTPConnection("127.0.0.1", int(quay.host.split(":")[1]), timeout=2)
    try:
        conn.request("GET", API + "/organization/acme")
        first = conn.getresponse()
        assert first.read() and not first.will_close
        sock = conn.sock
        conn.request("GET", API + "/organization/nope")
        assert conn.getresponse().status == 404
        assert conn.sock is sock
    finally:
        conn.close()


def test_lifecycle(quay: FakeQuay) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", quay.url)
    assert quay.url == f"http://{quay.host}"
    with pytest.raises(RuntimeError):
        _ = FakeQuay().url
    quay.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(quay.url + API + "/organization/acme", timeout=1)
    quay.stop()  # idempotent


# --- auth, scopes and the bad-token trap ------------------------------------------------------------------


def test_preflight_returns_the_user(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_org("other", admin="bob")
    quay.add_team("other", "builders", role="creator")
    quay.add_team_member("other", "builders", "alice")
    body = http.get(quay.url + API + "/user/").json()
    assert body["username"] == "alice" and body["email"] == "alice@example.com" and body["anonymous"] is False
    orgs = {org["name"]: org for org in body["organizations"]}
    assert orgs["acme"]["is_org_admin"] is True and orgs["acme"]["can_create_repo"] is True
    assert orgs["other"]["is_org_admin"] is False and orgs["other"]["can_create_repo"] is True


def test_preflight_with_user_read_only_hides_admin_fields(quay: FakeQuay) -> None:
    quay.add_token("tok-read", user="alice", scopes={"user:read"})
    body = requests.get(quay.url + API + "/user/", headers=bearer("tok-read")).json()
    assert body["username"] == "alice" and "email" not in body
    assert body["organizations"] == [{"name": "acme", "avatar": {}, "can_create_repo": False}]


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer tok-repo"])
def test_preflight_401_for_bad_token_or_missing_scope(quay: FakeQuay, header: str | None) -> None:
    quay.add_token("tok-repo", user="alice", scopes={"repo:read"})
    headers = {"Authorization": header} if header else {}
    response = requests.get(quay.url + API + "/user/", headers=headers)
    body = problem(response, 401, "invalid_token", "Requires authentication")
    assert body["session_required"] is False


def test_bad_token_trap_reads_anonymously_and_writes_fail_csrf(quay: FakeQuay) -> None:
    headers = bearer("expired")
    org = requests.get(quay.url + API + "/organization/acme", headers=headers).json()
    assert org["is_admin"] is False and org["is_member"] is False and "teams" not in org and org["email"] == ""
    robot = requests.get(quay.url + API + "/organization/acme/robots/bot", headers=headers)
    problem(robot, 401, "invalid_token", "Requires authentication")
    for method, path in [
        ("POST", "/organization/"),
        ("PUT", "/organization/acme/robots/bot"),
        ("PUT", "/organization/acme/team/devs/members/bob"),
        ("DELETE", "/organization/acme"),
    ]:
        response = requests.request(method, quay.url + API + path, headers=headers, json={"name": "x"})
        assert response.status_code == 403
        assert response.json() == {"error": "CSRF token was invalid or missing."}
    assert quay.org_exists("acme") and quay.robot_token("acme", "bot") is None


def test_org_admin_scope_is_required_even_on_own_org(quay: FakeQuay) -> None:
    quay.add_token("tok-user", user="alice", scopes={"user:admin"})
    response = requests.put(quay.url + API + "/organization/acme/robots/bot", headers=bearer("tok-user"))
    problem(response, 403, "insufficient_scope", "Unauthorized")


def test_scopes_cap_org_roles(quay: FakeQuay) -> None:
    # Quay caps team roles by the token's scopes: without org:admin an owner looks like a stranger,
    # except in GET /user/ "organizations", which lists memberships uncapped.
    quay.add_token("tok-user", user="alice", scopes={"user:admin"})
    org = requests.get(quay.url + API + "/organization/acme", headers=bearer("tok-user")).json()
    assert org["is_admin"] is False and org["is_member"] is False and "teams" not in org
    me = requests.get(quay.url + API + "/user/", headers=bearer("tok-user")).json()
    assert [(o["name"], o["is_org_admin"]) for o in me["organizations"]] == [("acme", False)]


def test_not_an_admin_of_the_org_is_403(quay: FakeQuay) -> None:
    quay.add_team("acme", "readers", role="member")
    quay.add_team_member("acme", "readers", "bob")
    quay.add_token("tok-bob", user="bob", scopes=ADMIN)
    session = bearer("tok-bob")
    response = requests.put(quay.url + API + "/organization/acme/team/x", headers=session, json={"role": "member"})
    problem(response, 403, "insufficient_scope", "Unauthorized")
    org = requests.get(quay.url + API + "/organization/acme", headers=session).json()
    assert org["is_member"] is True and org["is_admin"] is False and org["teams"]["readers"]["can_view"] is True
    members = requests.get(quay.url + API + "/organization/acme/team/readers/members", headers=session)
    assert members.status_code == 200 and members.json()["can_edit"] is False
    deleted = requests.delete(quay.url + API + "/organization/acme", headers=session)
    problem(deleted, 403, "insufficient_scope", "Unauthorized")


# --- organizations ----------------------------------------------------------------------------------------


def test_create_org(quay: FakeQuay, http: requests.Session) -> None:
    response = http.post(quay.url + API + "/organization/", json={"name": "newco", "email": "n@example.com"})
    assert response.status_code == 201 and response.json() == "Created"
    assert quay.team_role("newco", "owners") == "admin" and quay.team_members("newco", "owners") == ["alice"]


def test_create_org_without_slash_is_308(quay: FakeQuay, http: requests.Session) -> None:
    response = http.post(quay.url + API + "/organization", json={"name": "newco"}, allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == quay.url + API + "/organization/"
    assert not quay.org_exists("newco")
    followed = http.post(quay.url + API + "/organization", json={"name": "newco"})
    assert followed.status_code == 201 and quay.org_exists("newco")
    assert [(r.method, r.path, r.status) for r in quay.writes()][-2:] == [
        ("POST", API + "/organization", 308),
        ("POST", API + "/organization/", 201),
    ]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"name": "Upper"},
            f"Invalid namespace Upper: {NAME_RULE}",
        ),
        ({"name": "a"}, "Invalid namespace a: Namespace must be between 2 and 255 characters in length"),
        (
            {"name": "a--b"},
            f"Invalid namespace a--b: {NAME_RULE}",
        ),
        ({"name": "bob"}, "A user or organization with this name already exists"),
        ({"name": "acme"}, "A user or organization with this name already exists"),
        ({"name": "gone"}, "Username is not available"),
        ({"name": "newco", "email": "alice@example.com"}, "Email has already been used: alice@example.com"),
        ({"name": "newco", "email": "used@example.com"}, "Email has already been used: used@example.com"),
        ({"name": "newco", "email": "not-an-email"}, "Invalid email address"),
        ({}, "'name' is a required property"),
    ],
)
def test_create_org_errors(quay: FakeQuay, http: requests.Session, body: dict[str, str], text: str) -> None:
    quay.reserve_name("gone")
    quay.mark_email_used("used@example.com")
    problem(http.post(quay.url + API + "/organization/", json=body), 400, "invalid_request", text)


def test_create_org_feature_flags() -> None:
    with FakeQuay(require_email=True) as fake:
        fake.add_user("alice")
        fake.add_token("t", user="alice", scopes=ADMIN)
        response = requests.post(fake.url + API + "/organization/", json={"name": "x1"}, headers=bearer("t"))
        problem(response, 400, "invalid_request", "Email address is required")
        fake.recaptcha = True
        response = requests.post(
            fake.url + API + "/organization/",
            json={"name": "x1", "email": "x@example.com"},
            headers=bearer("t"),
        )
        assert response.status_code == 400
        assert response.json() == {"message": "Are you a bot? If not, please revalidate the captcha."}
        assert not fake.org_exists("x1")


def test_create_org_needs_user_admin(quay: FakeQuay) -> None:
    quay.add_token("tok-org", user="alice", scopes={"org:admin"})
    response = requests.post(quay.url + API + "/organization/", json={"name": "newco"}, headers=bearer("tok-org"))
    problem(response, 403, "insufficient_scope", "Unauthorized")


def test_get_org(quay: FakeQuay, http: requests.Session) -> None:
    body = http.get(quay.url + API + "/organization/acme").json()
    assert body["name"] == "acme" and body["email"] == "acme@example.com"
    assert body["is_admin"] is True and body["is_member"] is True
    assert body["ordered_teams"] == ["owners"]
    assert body["teams"]["owners"]["role"] == "admin" and body["teams"]["owners"]["member_count"] == 1
    for name in ("bob", "nothing"):  # a user is not an org
        problem(http.get(quay.url + API + f"/organization/{name}"), 404, "not_found", "Not Found")


def test_delete_org_reserves_the_name(quay: FakeQuay, http: requests.Session) -> None:
    assert http.delete(quay.url + API + "/organization/acme").status_code == 204
    assert not quay.org_exists("acme")
    problem(http.get(quay.url + API + "/organization/acme"), 404, "not_found", "Not Found")
    again = http.post(quay.url + API + "/organization/", json={"name": "acme"})
    problem(again, 400, "invalid_request", "Username is not available")


def test_org_member(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_robot("acme", "lonely")
    quay.add_robot("acme", "owner")
    quay.add_team_member("acme", "owners", "acme+owner")
    quay.add_org("other", admin="bob")
    quay.add_robot("other", "bot")
    user = http.get(quay.url + API + "/organization/acme/members/alice").json()
    assert user == {
        "name": "alice",
        "kind": "user",
        "avatar": {},
        "teams": [{"name": "owners", "avatar": {}}],
        "repositories": [],
    }
    robot = http.get(quay.url + API + "/organization/acme/members/acme+owner").json()
    assert robot["kind"] == "robot" and [t["name"] for t in robot["teams"]] == ["owners"]
    assert http.get(quay.url + API + "/organization/acme/members/acme%2Blonely").json()["teams"] == []
    for name in ("bob", "other+bot", "acme+missing", "nobody"):
        problem(http.get(quay.url + API + f"/organization/acme/members/{name}"), 404, "not_found", "Not Found")


# --- robots -----------------------------------------------------------------------------------------------


def test_robot_lifecycle(quay: FakeQuay, http: requests.Session) -> None:
    url = quay.url + API + "/organization/acme/robots/ci"
    created = http.put(url, json={"description": "CI", "unstructured_metadata": {"k": "v"}})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "acme+ci" and body["description"] == "CI" and body["last_accessed"] is None
    assert body["unstructured_metadata"] == {"k": "v"}
    assert ROBOT_TOKEN.fullmatch(body["token"]) and quay.robot_token("acme", "ci") == body["token"]
    assert parsedate_to_datetime(body["created"]).year >= 2024  # RFC 2822, e.g. "Sat, 22 Nov 2025 19:44:00 -0000"

    read = http.get(url).json()
    assert read["token"] == body["token"] and read["unstructured_metadata"] == {"k": "v"}

    regenerated = http.post(url + "/regenerate")
    assert regenerated.status_code == 200 and "unstructured_metadata" not in regenerated.json()
    new_token = regenerated.json()["token"]
    assert new_token != body["token"] and ROBOT_TOKEN.fullmatch(new_token)
    assert quay.robot_token("acme", "ci") == new_token

    quay.add_team_member("acme", "owners", "acme+ci")
    assert http.delete(url).status_code == 204
    assert quay.robot_token("acme", "ci") is None and quay.team_members("acme", "owners") == ["alice"]


def test_robot_create_without_body(quay: FakeQuay, http: requests.Session) -> None:
    body = http.put(quay.url + API + "/organization/acme/robots/ci").json()
    assert body["description"] == "" and body["unstructured_metadata"] == {}


def test_missing_robot_is_400_message_not_404(quay: FakeQuay, http: requests.Session) -> None:
    url = quay.url + API + "/organization/acme/robots/ghost"
    for response in (http.get(url), http.post(url + "/regenerate"), http.delete(url)):
        assert response.status_code == 400
        assert response.json() == {"message": "Could not find robot with specified username"}


def test_robot_create_errors(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_robot("acme", "ci")
    url = quay.url + API + "/organization/acme/robots/"
    problem(http.put(url + "ci"), 400, "invalid_request", "Existing robot with name: acme+ci")
    problem(
        http.put(url + "Bad"),
        400,
        "invalid_request",
        f"The name for the robot 'Bad' is invalid: {NAME_RULE}",
    )
    # A missing org is a 403, like a missing scope (facts §7).
    missing = http.put(quay.url + API + "/organization/nope/robots/ci")
    problem(missing, 403, "insufficient_scope", "Unauthorized")


def test_robots_disabled() -> None:
    with FakeQuay(robots_disabled=True) as fake:
        fake.add_user("alice")
        fake.add_token("t", user="alice", scopes=ADMIN)
        fake.add_org("acme", admin="alice")
        response = requests.put(fake.url + API + "/organization/acme/robots/ci", headers=bearer("t"))
        problem(
            response,
            400,
            "invalid_request",
            "Robot accounts have been disabled. Please contact your administrator.",
        )


def test_concurrent_robot_creation_creates_one(quay: FakeQuay) -> None:
    statuses: list[int] = []

    def create() -> None:
        response = requests.put(quay.url + API + "/organization/acme/robots/ci", headers=bearer("tok-admin"))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [400] * 7


# --- teams and members ------------------------------------------------------------------------------------


def test_put_team_creates_then_updates(quay: FakeQuay, http: requests.Session) -> None:
    url = quay.url + API + "/organization/acme/team/builders"
    first = http.put(url, json={"role": "creator", "description": "push"})
    assert first.status_code == 200
    assert first.json() == {
        "name": "builders",
        "description": "push",
        "can_view": True,
        "role": "creator",
        "avatar": {},
        "new_team": True,
    }
    second = http.put(url, json={"role": "admin"}).json()
    assert second["new_team"] is False and second["role"] == "admin" and second["description"] == "push"
    assert quay.team_role("acme", "builders") == "admin"


def test_put_team_errors(quay: FakeQuay, http: requests.Session) -> None:
    url = quay.url + API + "/organization/acme/team/"
    bad_name = http.put(url + "Bad", json={"role": "member"})
    assert bad_name.status_code == 400
    assert bad_name.json() == {"message": f"Invalid team name Bad: {NAME_RULE}"}
    problem(http.put(url + "ok", json={}), 400, "invalid_request", "'role' is a required property")
    problem(
        http.put(url + "ok", json={"role": "boss"}),
        400,
        "invalid_request",
        "'boss' is not one of ['member', 'creator', 'admin']",
    )
    demote = http.put(url + "owners", json={"role": "member"})
    assert demote.status_code == 400 and "would no longer have admin" in demote.json()["message"]
    problem(
        http.put(quay.url + API + "/organization/nope/team/x", json={"role": "member"}),
        403,
        "insufficient_scope",
        "Unauthorized",
    )


@pytest.mark.parametrize("robot", ["acme+ci", "acme%2Bci"])
def test_add_robot_to_team(quay: FakeQuay, http: requests.Session, robot: str) -> None:
    quay.add_robot("acme", "ci")
    response = http.put(quay.url + API + f"/organization/acme/team/owners/members/{robot}")
    assert response.status_code == 200
    assert response.json() == {
        "name": "acme+ci",
        "kind": "user",
        "is_robot": True,
        "avatar": {},
        "invited": False,
    }
    assert quay.team_members("acme", "owners") == ["alice", "acme+ci"]
    again = http.put(quay.url + API + f"/organization/acme/team/owners/members/{robot}")
    assert again.status_code == 400
    assert again.json() == {"message": "User acme+ci is already a member of team owners"}


def test_invites_and_duplicate_invites(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_team("acme", "devs", role="member")
    url = quay.url + API + "/organization/acme/team/devs/members"
    for _ in range(2):  # Quay sends a second invite for a still-pending user
        response = http.put(url + "/bob")
        assert response.status_code == 200 and response.json()["invited"] is True
    assert quay.pending_invites("acme", "devs") == ["bob", "bob"] and quay.team_members("acme", "devs") == []
    listed = http.get(url, params={"includePending": "true"}).json()
    assert listed["name"] == "devs" and listed["can_edit"] is True
    assert listed["members"] == [
        {"name": "bob", "kind": "user", "is_robot": False, "avatar": {}, "invited": True},
        {"name": "bob", "kind": "user", "is_robot": False, "avatar": {}, "invited": True},
    ]
    assert http.get(url).json()["members"] == []
    assert http.get(url, params={"includepending": "true"}).json()["members"] == []


def test_user_already_in_the_org_is_added_directly(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_team("acme", "devs", role="member")
    quay.add_team("acme", "ops", role="member")
    quay.add_team_member("acme", "ops", "carol")
    response = http.put(quay.url + API + "/organization/acme/team/devs/members/carol")
    assert response.json()["invited"] is False and quay.team_members("acme", "devs") == ["carol"]
    again = http.put(quay.url + API + "/organization/acme/team/devs/members/carol")
    assert again.status_code == 400 and again.json() == {"message": "User carol is already a member of team devs"}


def test_without_mailing_users_are_added_directly() -> None:
    with FakeQuay(mailing=False) as fake:
        fake.add_user("alice")
        fake.add_user("bob")
        fake.add_token("t", user="alice", scopes=ADMIN)
        fake.add_org("acme", admin="alice")
        response = requests.put(
            fake.url + API + "/organization/acme/team/owners/members/bob",
            headers=bearer("t"),
        )
        assert response.json()["invited"] is False
        assert fake.team_members("acme", "owners") == ["alice", "bob"] and fake.pending_invites("acme", "owners") == []


def test_team_member_errors(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_org("other", admin="bob")
    quay.add_robot("other", "bot")
    url = quay.url + API + "/organization/acme/team/"
    problem(http.put(url + "owners/members/nobody"), 400, "invalid_request", "Unknown user")
    problem(http.put(url + "owners/members/other"), 400, "invalid_request", "Unknown user")  # an org
    foreign = http.put(url + "owners/members/other+bot")
    assert foreign.status_code == 400
    assert foreign.json() == {
        "message": "Cannot add the specified robot to this team, as it is not a member of the organization"
    }
    problem(http.put(url + "ghosts/members/bob"), 404, "not_found", "Not Found")
    problem(http.get(url + "ghosts/members"), 404, "not_found", "Not Found")


# --- faults, latency and the request log ------------------------------------------------------------------


def test_status_fault_does_not_handle_the_request(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("PUT", r"/api/v1/organization/acme/robots/.*", Status(503, retry_after="2"))
    response = http.put(quay.url + API + "/organization/acme/robots/ci")
    body = problem(response, 503, "service_unavailable", "Service Unavailable")
    assert body["status"] == 503 and response.headers["Retry-After"] == "2"
    assert quay.robot_token("acme", "ci") is None
    assert http.put(quay.url + API + "/organization/acme/robots/ci").status_code == 201  # consumed


def test_status_fault_with_custom_body(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("*", r"/api/v1/user/", Status(502, body={"message": "bad gateway"}))
    response = http.get(quay.url + API + "/user/")
    assert response.status_code == 502 and response.json() == {"message": "bad gateway"}
    assert "Retry-After" not in response.headers


def test_html_429(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("GET", r"/api/v1/user/", Html429(retry_after="1"))
    response = http.get(quay.url + API + "/user/")
    assert response.status_code == 429 and response.headers["Content-Type"] == "text/html"
    assert response.headers["Retry-After"] == "1" and "<title>429 Too Many Requests</title>" in response.text
    assert quay.requests[-1] == LoggedRequest("GET", API + "/user/", "", 429, "Html429")


def test_reset_before_leaves_state_untouched(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("POST", r"/api/v1/organization/", ResetBefore())
    with pytest.raises(requests.ConnectionError):
        http.post(quay.url + API + "/organization/", json={"name": "newco"})
    assert not quay.org_exists("newco")
    assert quay.requests[-1] == LoggedRequest("POST", API + "/organization/", "", None, "ResetBefore")
    assert http.post(quay.url + API + "/organization/", json={"name": "newco"}).status_code == 201


def test_reset_after_the_write_landed(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("POST", r"/api/v1/organization/", ResetAfter())
    with pytest.raises(requests.ConnectionError):
        http.post(quay.url + API + "/organization/", json={"name": "newco"})
    assert quay.org_exists("newco")
    assert quay.requests[-1] == LoggedRequest("POST", API + "/organization/", "", None, "ResetAfter")
    retry = http.post(quay.url + API + "/organization/", json={"name": "newco"})
    problem(retry, 400, "invalid_request", "A user or organization with this name already exists")


def test_delay(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("GET", r".*", Delay(0.3))
    with pytest.raises(requests.Timeout):
        http.get(quay.url + API + "/organization/acme", timeout=0.1)
    quay.inject("PUT", r".*/robots/.*", Delay(0.2))
    started = time.monotonic()
    assert http.put(quay.url + API + "/organization/acme/robots/ci").status_code == 201
    assert time.monotonic() - started >= 0.2
    # The timed-out GET's own delay may end after the PUT's (threads): find the PUT rather than take the last entry.
    [put] = [r for r in quay.requests if r.method == "PUT"]
    assert put.fault == "Delay" and put.status == 201


def test_after_and_times(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("GET", r"/api/v1/organization/[^/]+", Status(500), after=1, times=2)
    codes = [http.get(quay.url + API + "/organization/acme").status_code for _ in range(4)]
    assert codes == [200, 500, 500, 200]
    assert [r.fault for r in quay.requests] == [None, "Status", "Status", None]


def test_clear_faults(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("*", r".*", Status(500), times=100)
    quay.clear_faults()
    assert http.get(quay.url + API + "/organization/acme").status_code == 200


def test_rules_apply_in_order_and_fullmatch(quay: FakeQuay, http: requests.Session) -> None:
    quay.inject("GET", r"/api/v1/organization", Status(500))  # does not fullmatch the path
    quay.inject("*", r"/api/v1/organization/acme", Status(502))
    quay.inject("GET", r"/api/v1/organization/acme", Status(503))
    codes = [http.get(quay.url + API + "/organization/acme").status_code for _ in range(3)]
    assert codes == [502, 503, 200]


def test_request_log(quay: FakeQuay, http: requests.Session) -> None:
    http.get(quay.url + API + "/organization/acme/team/owners/members", params={"includePending": "true"})
    http.put(quay.url + API + "/organization/acme/robots/ci")
    http.put(quay.url + API + "/organization/acme/team/owners/members/acme%2Bci")
    assert quay.requests == [
        LoggedRequest("GET", API + "/organization/acme/team/owners/members", "includePending=true", 200, None),
        LoggedRequest("PUT", API + "/organization/acme/robots/ci", "", 201, None),
        LoggedRequest("PUT", API + "/organization/acme/team/owners/members/acme+ci", "", 200, None),
    ]
    assert [r.method for r in quay.writes()] == ["PUT", "PUT"]
    quay.clear_log()
    assert quay.requests == [] and quay.writes() == []


def test_latency() -> None:
    with FakeQuay(latency=0.05) as fake:
        started = time.monotonic()
        requests.get(fake.url + API + "/organization/none")
        assert time.monotonic() - started >= 0.05


# --- repositories (provision remove quay --delete-repositories) -------------------------------------------------


def test_repository_list_needs_a_namespace_and_pages(quay: FakeQuay) -> None:
    quay.repositories_page_size = 2
    quay.add_token("tok-repo", user="alice", scopes=ADMIN | {"repo:admin"})
    for name in ("a", "b", "c"):
        quay.add_repository("acme", name)
    with requests.Session() as http:
        http.headers.update(bearer("tok-repo"))
        problem(http.get(quay.url + API + "/repository"), 400, "invalid_request",
                "namespace, starred or public are required for this API call")  # fmt: skip
        first = http.get(quay.url + API + "/repository", params={"namespace": "acme"}).json()
        assert [r["name"] for r in first["repositories"]] == ["a", "b"] and first["next_page"]
        second = http.get(
            quay.url + API + "/repository", params={"namespace": "acme", "next_page": first["next_page"]}
        ).json()
        assert [r["name"] for r in second["repositories"]] == ["c"] and "next_page" not in second
    # Without a repo scope (org:admin and user:admin only): refused.
    assert requests.get(quay.url + API + "/repository?namespace=acme", headers=bearer("tok-admin")).status_code == 403


def test_repository_delete_needs_repo_admin_and_keeps_the_slash(quay: FakeQuay) -> None:
    quay.add_token("tok-repo", user="alice", scopes=ADMIN | {"repo:admin"})
    quay.add_repository("acme", "img")
    assert requests.delete(quay.url + API + "/repository/acme/img", headers=bearer("tok-admin")).status_code == 403
    assert requests.delete(quay.url + API + "/repository/acme/img", headers=bearer("tok-repo")).status_code == 204
    assert quay.repositories("acme") == []
    missing = requests.delete(quay.url + API + "/repository/acme/img", headers=bearer("tok-repo"))
    problem(missing, 404, "not_found", "Not Found")


# --- tags (issue 20) ------------------------------------------------------------------------------------------

TAGS = API + "/repository/acme/img/tag/"


def test_tag_list_pages_newest_first_and_caps_the_limit(quay: FakeQuay) -> None:
    quay.add_token("tok-read", user="alice", scopes={"repo:read"})
    for i in range(105):
        quay.add_tag("acme", "img", f"t{i:03}", pushed_days_ago=i, size=10 + i, digest=f"sha256:{i:064x}")
    with requests.Session() as http:
        http.headers.update(bearer("tok-read"))
        first = http.get(quay.url + TAGS, params={"limit": "500", "onlyActiveTags": "true"}).json()
        assert first["page"] == 1 and first["has_additional"] is True and len(first["tags"]) == 100
        tag = first["tags"][0]
        assert tag["name"] == "t000" and tag["size"] == 10 and tag["manifest_digest"] == f"sha256:{0:064x}"
        assert abs(tag["start_ts"] - time.time()) < 5 and "end_ts" not in tag and "expiration" not in tag
        assert parsedate_to_datetime(tag["last_modified"]).timestamp() == tag["start_ts"]
        second = http.get(quay.url + TAGS, params={"limit": "100", "page": "2", "onlyActiveTags": "true"}).json()
        assert [t["name"] for t in second["tags"]] == ["t100", "t101", "t102", "t103", "t104"]
        assert second == {**second, "page": 2, "has_additional": False}
        assert len(http.get(quay.url + TAGS).json()["tags"]) == 50  # the default limit


def test_tag_delete_leaves_a_dead_tag_listed_unless_only_active(quay: FakeQuay) -> None:
    quay.add_token("tok-write", user="alice", scopes={"repo:write"})
    quay.add_tag("acme", "img", "old", pushed_days_ago=9)
    quay.add_tag("acme", "img", "new", pushed_days_ago=1)
    with requests.Session() as http:
        http.headers.update(bearer("tok-write"))
        deleted = http.delete(quay.url + TAGS + "old")
        assert deleted.status_code == 204 and deleted.content == b""
        problem(http.delete(quay.url + TAGS + "old"), 404, "not_found", "Not Found")  # already dead
        problem(http.delete(quay.url + TAGS + "never"), 404, "not_found", "Not Found")
        history = http.get(quay.url + TAGS).json()["tags"]
        dead = next(t for t in history if t["name"] == "old")
        assert dead["end_ts"] <= time.time() and dead["expiration"]
        active = http.get(quay.url + TAGS, params={"onlyActiveTags": "true"}).json()["tags"]
        assert [t["name"] for t in active] == ["new"]
    assert quay.live_tags("acme") == {"img": ["new"]}
    # The repository goes with its tags.
    quay.add_token("tok-repo", user="alice", scopes={"repo:admin"})
    assert requests.delete(quay.url + API + "/repository/acme/img", headers=bearer("tok-repo")).status_code == 204
    assert quay.live_tags("acme") == {}


def test_tag_routes_check_scope_permission_and_repository(quay: FakeQuay) -> None:
    quay.add_token("tok-read", user="alice", scopes={"repo:read"})
    quay.add_user("mallory")
    quay.add_token("tok-other", user="mallory", scopes={"repo:admin"})
    quay.add_tag("acme", "img", "v1", pushed_days_ago=1)
    problem(requests.delete(quay.url + TAGS + "v1", headers=bearer("tok-read")), 403, "insufficient_scope",
            "Unauthorized")  # fmt: skip
    problem(requests.get(quay.url + TAGS, headers=bearer("tok-admin")), 403, "insufficient_scope", "Unauthorized")
    problem(requests.get(quay.url + TAGS, headers=bearer("tok-other")), 403, "insufficient_scope", "Unauthorized")
    problem(requests.get(quay.url + API + "/repository/acme/none/tag/", headers=bearer("tok-read")), 404,
            "not_found", "Not Found")  # fmt: skip
    anonymous = requests.delete(quay.url + TAGS + "v1", headers=bearer("unknown"))
    assert anonymous.status_code == 403 and anonymous.json() == {"error": "CSRF token was invalid or missing."}
    problem(requests.get(quay.url + TAGS), 401, "invalid_token", "Requires authentication")  # private repository
    assert quay.live_tags("acme") == {"img": ["v1"]}


def test_pushing_a_tag_again_ends_the_old_one(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_token("tok-read", user="alice", scopes={"repo:read"})
    quay.add_tag("acme", "img", "latest", pushed_days_ago=5)
    quay.add_tag("acme", "img", "latest", pushed_days_ago=0)
    history = requests.get(quay.url + TAGS, headers=bearer("tok-read")).json()["tags"]
    assert [("end_ts" in t) for t in history] == [False, True]


# --- auto-prune policies (issue 20) -------------------------------------------------------------------------

POLICIES = API + "/organization/acme/autoprunepolicy/"


def test_prune_policy_lifecycle(quay: FakeQuay, http: requests.Session) -> None:
    assert http.get(quay.url + POLICIES).json() == {"policies": []}
    created = http.post(quay.url + POLICIES, json={"method": "number_of_tags", "value": 10})
    assert created.status_code == 201
    uuid = created.json()["uuid"]
    policy = {"uuid": uuid, "method": "number_of_tags", "value": 10, "tagPattern": None, "tagPatternMatches": True}
    assert http.get(quay.url + POLICIES).json() == {"policies": [policy]}
    assert http.get(quay.url + POLICIES + uuid).json() == policy
    updated = http.put(quay.url + POLICIES + uuid, json={"method": "creation_date", "value": "30d"})
    assert updated.status_code == 204
    assert quay.prune_policies("acme")[0]["value"] == "30d"
    assert http.delete(quay.url + POLICIES + uuid).json() == {"uuid": uuid}
    problem(http.get(quay.url + POLICIES + uuid), 404, "not_found", "Not Found")
    assert quay.prune_policies("acme") == []


def test_prune_policy_duplicates_and_quay_before_3_13(quay: FakeQuay, http: requests.Session) -> None:
    quay.add_prune_policy("acme", "number_of_tags", 10)
    problem(http.post(quay.url + POLICIES, json={"method": "number_of_tags", "value": 10}), 400, "invalid_request",
            "Existing policy with same values for this namespace, duplicate policies are not permitted")  # fmt: skip
    assert http.post(quay.url + POLICIES, json={"method": "creation_date", "value": "2w"}).status_code == 201
    quay.several_prune_policies = False
    problem(http.post(quay.url + POLICIES, json={"method": "creation_date", "value": "1y"}), 400, "invalid_request",
            "Policy for this namespace already exists, delete existing to create new policy")  # fmt: skip
    assert len(quay.prune_policies("acme")) == 2


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"method": "number_of_tags", "value": "10"}, "Invalid value given for method type"),
        ({"method": "number_of_tags", "value": 0}, "Invalid value given for method type"),
        ({"method": "creation_date", "value": "30 days"}, "Invalid value given for method type"),
        ({"method": "creation_date", "value": 30}, "Invalid value given for method type"),
        ({"method": "last_pulled", "value": 3}, "Invalid method provided"),
        ({"method": "number_of_tags"}, "'value' is a required property"),
        ({"method": "number_of_tags", "value": 3, "tagPattern": "  "}, "tag_pattern cannot be empty"),
    ],
)
def test_prune_policy_values_are_checked(quay: FakeQuay, http: requests.Session, body: dict[str, object],
                                         text: str) -> None:  # fmt: skip
    problem(http.post(quay.url + POLICIES, json=body), 400, "invalid_request", text)
    assert quay.prune_policies("acme") == []


def test_prune_policy_minutes_are_accepted_as_minutes(quay: FakeQuay, http: requests.Session) -> None:
    """`30m` is valid for Quay (30 minutes): only the client can keep it from meaning "months"."""
    assert http.post(quay.url + POLICIES, json={"method": "creation_date", "value": "30m"}).status_code == 201


def test_prune_policy_permissions(quay: FakeQuay, http: requests.Session) -> None:
    problem(http.post(quay.url + API + "/organization/nope/autoprunepolicy/", json={"method": "number_of_tags",
            "value": 1}), 404, "not_found", "Not Found")  # fmt: skip
    problem(http.get(quay.url + API + "/organization/nope/autoprunepolicy/"), 403, "insufficient_scope", "Unauthorized")
    quay.add_token("tok-repo", user="alice", scopes={"user:admin"})
    response = requests.get(quay.url + POLICIES, headers=bearer("tok-repo"))
    problem(response, 403, "insufficient_scope", "Unauthorized")


def test_prune_policy_routes_vanish_with_the_feature_off(http: requests.Session) -> None:
    with FakeQuay(auto_prune=False) as fake:
        fake.add_user("alice")
        fake.add_token("tok-admin", user="alice", scopes=ADMIN)
        fake.add_org("acme", admin="alice")
        for method in ("GET", "POST"):
            response = http.request(method, fake.url + POLICIES, json={"method": "number_of_tags", "value": 1})
            assert response.status_code == 404 and "requested URL was not found" in response.json()["message"]
        assert http.put(fake.url + POLICIES + "x", json={}).status_code == 404
        fake.inject("GET", POLICIES, Status(503))
        assert http.get(fake.url + POLICIES).status_code == 503  # faults still apply to these paths
        assert [r.status for r in fake.requests] == [404, 404, 404, 503]
