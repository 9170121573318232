"""Tests of the FakeDockerHub test server itself, over real HTTP with requests."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection

import pytest
import requests

from tests.servers.dockerhub import (
    Delay,
    FakeDockerHub,
    LoggedRequest,
    RateLimited,
    ResetAfter,
    ResetBefore,
    Status,
)

PAT_SECRET = re.compile(r"dckr_pat_[A-Za-z0-9]{27}")
OAT_SECRET = re.compile(r"dckr_oat_[A-Za-z0-9]{27}")
JWT_LIKE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PULL_PUSH = [{"type": "TYPE_REPO", "path": "acme/*", "scopes": ["scope-image-pull", "scope-image-push"]}]
BAD_CREDENTIALS = {"detail": "Incorrect authentication credentials", "message": "Incorrect authentication credentials"}
PLAN_REFUSED = "Organization access tokens require a Docker Team or Business subscription"
OAT_REFUSED = {"detail": "token issued from organization access token is not allowed"}


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    fake = FakeDockerHub()
    fake.add_user("alice", password="alice-pw")
    fake.add_user("bob", password="bob-pw")
    fake.add_org("acme", owners=["alice"], plan="team")
    with fake:
        yield fake


def login(hub: FakeDockerHub, identifier: str, secret: str) -> requests.Response:
    return requests.post(hub.url + "/v2/auth/token", json={"identifier": identifier, "secret": secret}, timeout=5)


def session(hub: FakeDockerHub, identifier: str, secret: str) -> requests.Session:
    response = login(hub, identifier, secret)
    assert response.status_code == 200, response.text
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


@pytest.fixture
def http(hub: FakeDockerHub) -> Iterator[requests.Session]:
    with session(hub, "alice", "alice-pw") as alice:
        yield alice


def oats_url(hub: FakeDockerHub, org: str = "acme") -> str:
    return f"{hub.url}/v2/orgs/{org}/access-tokens"


# --- contract and routing ---------------------------------------------------------------------------------


def test_routes_follow_the_reference_paths() -> None:
    assert len(FakeDockerHub.ROUTES) == len(set(FakeDockerHub.ROUTES)) == 16
    assert ("POST", "/v2/auth/token") in FakeDockerHub.ROUTES
    assert ("PATCH", "/v2/orgs/{org_name}/access-tokens/{access_token_id}") in FakeDockerHub.ROUTES


def test_every_route_is_dispatched_to_a_handler(hub: FakeDockerHub, http: requests.Session) -> None:
    values = {"name": "acme", "org_name": "acme", "uuid": "x", "access_token_id": "x", "namespace": "acme",
              "repository": "r", "tag": "t"}
    for method, template in FakeDockerHub.ROUTES:
        response = http.request(method, hub.url + template.format(**values), json={})
        assert response.json() != {"message": "not found"}, (method, template)
    assert len(hub.requests) == len(FakeDockerHub.ROUTES) + 1  # and the fixture's login


def test_unknown_route_and_unserved_method_are_404(hub: FakeDockerHub, http: requests.Session) -> None:
    for method, path in (("GET", "/v2/nothing"), ("PUT", "/v2/access-tokens"), ("GET", "/v2/auth/token")):
        response = requests.request(method, hub.url + path, timeout=5)
        assert response.status_code == 404 and response.json() == {"message": "not found"}
        assert response.headers["Content-Type"] == "application/json"


def test_keep_alive_reuses_the_connection(hub: FakeDockerHub) -> None:
    conn = HTTPConnection("127.0.0.1", int(hub.host.split(":")[1]), timeout=2)
    try:
        conn.request("GET", "/v2/access-tokens")
        first = conn.getresponse()
        assert first.status == 401 and first.read() and not first.will_close
        sock = conn.sock
        conn.request("GET", "/v2/nothing")
        assert conn.getresponse().status == 404
        assert conn.sock is sock
    finally:
        conn.close()


def test_lifecycle(hub: FakeDockerHub) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", hub.url)
    with pytest.raises(RuntimeError):
        _ = FakeDockerHub().url
    with pytest.raises(RuntimeError):
        hub.start()
    hub.stop()
    with pytest.raises(requests.ConnectionError):
        login(hub, "alice", "alice-pw")
    hub.stop()  # idempotent


def test_seeding_checks_its_references() -> None:
    fake = FakeDockerHub()
    with pytest.raises(ValueError):
        fake.add_pat("nobody", label="x", scopes=["repo:read"])
    with pytest.raises(ValueError):
        fake.add_org("acme", owners=["nobody"])
    fake.add_user("alice")
    with pytest.raises(ValueError):
        fake.add_org("acme", owners=["alice"], plan="pro")
    with pytest.raises(ValueError):
        fake.add_oat("acme", label="x", resources=PULL_PUSH)


# --- login ------------------------------------------------------------------------------------------------


def test_login_with_password(hub: FakeDockerHub) -> None:
    response = login(hub, "alice", "alice-pw")
    assert response.status_code == 200 and list(response.json()) == ["access_token"]
    token = response.json()["access_token"]
    assert JWT_LIKE.fullmatch(token)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) == {"alg": "RS256", "typ": "JWT"}
    assert hub.bearer(token) == ("alice", "password")
    assert login(hub, "alice", "alice-pw").json()["access_token"] != token  # a fresh bearer each time


def test_login_with_pat(hub: FakeDockerHub) -> None:
    secret = hub.add_pat("alice", label="ci", scopes=["repo:write"])
    assert PAT_SECRET.fullmatch(secret)
    response = login(hub, "alice", secret)
    assert response.status_code == 200
    assert hub.bearer(response.json()["access_token"]) == ("alice", "pat")
    assert hub.pats("alice")[0]["last_used"] is not None
    assert hub.token_secret_valid("alice", secret) and not hub.token_secret_valid("bob", secret)


def test_login_with_oat_uses_the_org_name(hub: FakeDockerHub) -> None:
    secret = hub.add_oat("acme", label="binderhub", resources=PULL_PUSH)
    assert OAT_SECRET.fullmatch(secret)
    response = login(hub, "acme", secret)
    assert response.status_code == 200
    assert hub.bearer(response.json()["access_token"]) == ("acme", "oat")
    assert hub.oats("acme")[0]["last_used_at"] is not None
    assert hub.token_secret_valid("acme", secret) and not hub.token_secret_valid("alice", secret)


@pytest.mark.parametrize(
    ("identifier", "secret"),
    [
        ("alice", "wrong"),
        ("alice", ""),
        ("nobody", "alice-pw"),
        ("acme", "alice-pw"),  # an org has no password
        ("bob", "dckr_pat_seeded"),  # alice's PAT under another name
        ("alice", "dckr_pat_inactive"),
        ("alice", "dckr_pat_expired"),
        ("alice", "dckr_oat_seeded"),  # an OAT needs the org name
    ],
)
def test_bad_logins_are_401(hub: FakeDockerHub, identifier: str, secret: str) -> None:
    hub.add_pat("alice", label="a", scopes=["repo:read"], token="dckr_pat_seeded")
    hub.add_pat("alice", label="b", scopes=["repo:read"], token="dckr_pat_inactive", is_active=False)
    hub.add_pat("alice", label="c", scopes=["repo:read"], token="dckr_pat_expired", expires_at="2020-01-01T00:00:00Z")
    hub.add_oat("acme", label="d", resources=PULL_PUSH, token="dckr_oat_seeded")
    response = login(hub, identifier, secret)
    assert response.status_code == 401 and response.json() == BAD_CREDENTIALS
    assert not hub.token_secret_valid(identifier, secret)


@pytest.mark.parametrize("body", [None, [], {"identifier": "alice"}, {"identifier": 1, "secret": ["alice-pw"]}])
def test_malformed_login_is_401(hub: FakeDockerHub, body: object) -> None:
    response = requests.post(hub.url + "/v2/auth/token", json=body, timeout=5)
    assert response.status_code == 401 and response.json() == BAD_CREDENTIALS


def test_user_without_password_logs_in_only_with_a_pat(hub: FakeDockerHub) -> None:
    hub.add_user("carol")
    assert login(hub, "carol", "").status_code == 401
    secret = hub.add_pat("carol", label="x", scopes=["repo:read"])
    assert login(hub, "carol", secret).status_code == 200


def test_deprecated_users_login(hub: FakeDockerHub) -> None:
    pat = hub.add_pat("alice", label="ci", scopes=["repo:read"])
    oat = hub.add_oat("acme", label="ci", resources=PULL_PUSH)
    url = hub.url + "/v2/users/login"
    for password in ("alice-pw", pat):
        response = requests.post(url, json={"username": "alice", "password": password}, timeout=5)
        assert response.status_code == 200 and JWT_LIKE.fullmatch(response.json()["token"])
    response = requests.post(url, json={"username": "acme", "password": oat}, timeout=5)
    assert response.status_code == 401 and response.json() == {"detail": "Incorrect authentication credentials"}


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic YWxpY2U6YWxpY2UtcHc=", "Bearer"])
def test_missing_or_unknown_bearer_is_401(hub: FakeDockerHub, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = requests.get(hub.url + "/v2/access-tokens", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_expired_access_tokens(hub: FakeDockerHub, http: requests.Session) -> None:
    assert http.get(hub.url + "/v2/access-tokens").status_code == 200
    hub.expire_access_tokens()
    assert http.get(hub.url + "/v2/access-tokens").status_code == 401


# --- personal access tokens -------------------------------------------------------------------------------


def test_pat_secret_is_returned_once(hub: FakeDockerHub, http: requests.Session) -> None:
    response = http.post(
        hub.url + "/v2/access-tokens",
        json={"token_label": "binderhub", "scopes": ["repo:write"]},
        headers={"User-Agent": "provision-test"},
    )
    assert response.status_code == 201
    created = response.json()
    assert PAT_SECRET.fullmatch(created["token"]) and UUID.fullmatch(created["uuid"])
    assert created["client_id"] == "HUB" and created["generated_by"] == "manual"
    assert created["creator_ip"] == "127.0.0.1" and created["creator_ua"] == "provision-test"
    assert created["is_active"] is True and created["last_used"] is None and created["expires_at"] is None
    assert created["token_label"] == "binderhub" and created["scopes"] == ["repo:write"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created["created_at"])

    listed = http.get(hub.url + "/v2/access-tokens").json()
    assert listed["count"] == listed["active_count"] == 1 and listed["next"] is None and listed["previous"] is None
    assert listed["results"] == [{**created, "token": "***"}]
    assert http.get(f"{hub.url}/v2/access-tokens/{created['uuid']}").json() == {**created, "token": "***"}
    assert hub.pats("alice") == [{**created, "token": "***"}]
    assert hub.token_secret_valid("alice", created["token"])


def test_pat_with_expiry(hub: FakeDockerHub, http: requests.Session) -> None:
    body = {"token_label": "x", "scopes": ["repo:read"], "expires_at": "2099-10-28T18:30:19.520861Z"}
    response = http.post(hub.url + "/v2/access-tokens", json=body)
    assert response.status_code == 201 and response.json()["expires_at"] == "2099-10-28T18:30:19.520861Z"


@pytest.mark.parametrize(
    "body",
    [
        None,
        ["x"],
        {"scopes": ["repo:read"]},
        {"token_label": "", "scopes": ["repo:read"]},
        {"token_label": "x" * 101, "scopes": ["repo:read"]},
        {"token_label": 5, "scopes": ["repo:read"]},
        {"token_label": "x"},
        {"token_label": "x", "scopes": []},
        {"token_label": "x", "scopes": ["repo:push"]},
        {"token_label": "x", "scopes": "repo:read"},
        {"token_label": "x", "scopes": ["repo:read"], "expires_at": "tomorrow"},
        {"token_label": "x", "scopes": ["repo:read"], "expires_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_pat_create_validation_is_400(hub: FakeDockerHub, http: requests.Session, body: object) -> None:
    response = http.post(hub.url + "/v2/access-tokens", json=body)
    assert response.status_code == 400 and isinstance(response.json()["message"], str)
    assert hub.pats("alice") == []


def test_pat_label_100_chars_is_fine(hub: FakeDockerHub, http: requests.Session) -> None:
    response = http.post(hub.url + "/v2/access-tokens", json={"token_label": "x" * 100, "scopes": ["repo:admin"]})
    assert response.status_code == 201


def test_duplicate_pat_labels_allowed_unless_switched_on(hub: FakeDockerHub, http: requests.Session) -> None:
    body = {"token_label": "binderhub", "scopes": ["repo:write"]}
    assert [http.post(hub.url + "/v2/access-tokens", json=body).status_code for _ in range(2)] == [201, 201]
    hub.unique_labels = True
    response = http.post(hub.url + "/v2/access-tokens", json=body)
    assert response.status_code == 409 and response.json() == {"message": "A token with this label already exists"}
    assert FakeDockerHub.unique_labels is False  # the instance switch does not leak
    other = http.post(hub.url + "/v2/access-tokens", json={"token_label": "other", "scopes": ["repo:read"]}).json()
    response = http.patch(f"{hub.url}/v2/access-tokens/{other['uuid']}", json={"token_label": "binderhub"})
    assert response.status_code == 409
    assert len(hub.pats("alice")) == 3


def test_pat_pagination(hub: FakeDockerHub, http: requests.Session) -> None:
    for i in range(12):
        hub.add_pat("alice", label=f"t{i:02}", scopes=["repo:read"], is_active=i % 3 != 0)
    first = http.get(hub.url + "/v2/access-tokens").json()  # default page_size 10
    assert first["count"] == 12 and first["active_count"] == 8 and len(first["results"]) == 10
    assert first["next"] == f"{hub.url}/v2/access-tokens?page=2&page_size=10" and first["previous"] is None
    second = http.get(first["next"]).json()
    assert [r["token_label"] for r in second["results"]] == ["t10", "t11"] and second["next"] is None
    assert second["previous"] == f"{hub.url}/v2/access-tokens?page=1&page_size=10"

    labels, url = [], hub.url + "/v2/access-tokens?page_size=5"
    while url:
        page = http.get(url).json()
        labels += [r["token_label"] for r in page["results"]]
        assert all(r["token"] == "***" for r in page["results"])
        url = page["next"]
    assert labels == [f"t{i:02}" for i in range(12)]
    assert http.get(hub.url + "/v2/access-tokens", params={"page": 9}).json()["results"] == []
    for params in ({"page": 0}, {"page": "x"}, {"page_size": -1}):
        assert http.get(hub.url + "/v2/access-tokens", params=params).status_code == 400


def test_pat_patch_and_delete(hub: FakeDockerHub, http: requests.Session) -> None:
    secret = hub.add_pat("alice", label="ci", scopes=["repo:read"])
    pat_id = hub.pats("alice")[0]["uuid"]
    url = f"{hub.url}/v2/access-tokens/{pat_id}"
    response = http.patch(url, json={"is_active": False, "token_label": "ci-old"})
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert response.json()["token_label"] == "ci-old" and response.json()["token"] == "***"
    assert hub.pats("alice")[0]["is_active"] is False and not hub.token_secret_valid("alice", secret)
    assert login(hub, "alice", secret).status_code == 401
    assert http.patch(url, json={"is_active": "no"}).status_code == 400
    assert http.patch(url, json={"token_label": ""}).status_code == 400
    assert http.delete(url).status_code == 204
    assert hub.pats("alice") == []
    for method in ("GET", "PATCH", "DELETE"):
        response = http.request(method, url, json={})
        assert response.status_code == 404 and isinstance(response.json()["message"], str)


def test_another_users_pat_is_404(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.add_pat("bob", label="mine", scopes=["repo:read"])
    bob_pat = hub.pats("bob")[0]["uuid"]
    assert http.get(f"{hub.url}/v2/access-tokens/{bob_pat}").status_code == 404
    assert http.delete(f"{hub.url}/v2/access-tokens/{bob_pat}").status_code == 404
    assert http.get(hub.url + "/v2/access-tokens").json()["count"] == 0
    assert len(hub.pats("bob")) == 1


def test_pat_bearer_can_manage_pats(hub: FakeDockerHub) -> None:
    secret = hub.add_pat("alice", label="admin", scopes=["repo:admin"])
    with session(hub, "alice", secret) as alice:
        response = alice.post(hub.url + "/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"]})
        assert response.status_code == 201


def test_oat_bearer_cannot_manage_tokens(hub: FakeDockerHub) -> None:
    hub.add_pat("alice", label="ci", scopes=["repo:read"])
    pat_id = hub.pats("alice")[0]["uuid"]
    secret = hub.add_oat("acme", label="ci", resources=PULL_PUSH)
    oat_id = hub.oats("acme")[0]["id"]
    with session(hub, "acme", secret) as org:
        calls = [
            ("GET", "/v2/access-tokens"),
            ("POST", "/v2/access-tokens"),
            ("DELETE", f"/v2/access-tokens/{pat_id}"),
            ("GET", "/v2/orgs/acme/access-tokens"),
            ("POST", "/v2/orgs/acme/access-tokens"),
            ("DELETE", f"/v2/orgs/acme/access-tokens/{oat_id}"),
        ]
        for method, path in calls:
            response = org.request(method, hub.url + path, json={"token_label": "x", "scopes": ["repo:read"]})
            assert response.status_code == 403 and response.json() == OAT_REFUSED, (method, path)
    assert len(hub.pats("alice")) == 1 and len(hub.oats("acme")) == 1


def test_concurrent_pat_creation(hub: FakeDockerHub, http: requests.Session) -> None:
    token = http.headers["Authorization"]
    codes: list[int] = []

    def create(i: int) -> None:
        body = {"token_label": f"t{i}", "scopes": ["repo:read"]}
        response = requests.post(hub.url + "/v2/access-tokens", json=body, headers={"Authorization": token}, timeout=5)
        codes.append(response.status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [201] * 8
    assert len({p["uuid"] for p in hub.pats("alice")}) == 8


# --- organization access tokens ---------------------------------------------------------------------------


def test_oat_create_on_team_plan(hub: FakeDockerHub, http: requests.Session) -> None:
    body = {
        "label": "binderhub",
        "description": "BinderHub pushes",
        "resources": PULL_PUSH + [{"type": "TYPE_ORG", "path": "acme", "scopes": ["scope-repository-create"]}],
    }
    response = http.post(oats_url(hub), json=body)
    assert response.status_code == 201
    created = response.json()
    assert OAT_SECRET.fullmatch(created["token"]) and UUID.fullmatch(created["id"])
    assert created["label"] == "binderhub" and created["description"] == "BinderHub pushes"
    assert created["created_by"] == "alice" and created["is_active"] is True
    assert created["expires_at"] is None and created["last_used_at"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["created_at"])
    assert created["resources"] == body["resources"]
    assert login(hub, "acme", created["token"]).status_code == 200

    listed = http.get(oats_url(hub)).json()
    assert listed["total"] == 1 and listed["next"] is None and listed["previous"] is None
    summary = {k: v for k, v in created.items() if k not in ("token", "resources", "description")}
    assert listed["results"] == [{**summary, "last_used_at": listed["results"][0]["last_used_at"]}]
    assert listed["results"][0]["last_used_at"] is not None  # the login above
    detail = http.get(f"{oats_url(hub)}/{created['id']}").json()
    assert "token" not in detail and detail["resources"] == body["resources"]
    assert hub.oats("acme") == [detail]


def test_oat_with_expiry(hub: FakeDockerHub, http: requests.Session) -> None:
    body = {"label": "x", "resources": PULL_PUSH, "expires_at": "2099-05-20T00:54:18Z"}
    response = http.post(oats_url(hub), json=body)
    assert response.status_code == 201 and response.json()["expires_at"] == "2099-05-20T00:54:18Z"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"resources": PULL_PUSH},
        {"label": "", "resources": PULL_PUSH},
        {"label": "x"},
        {"label": "x", "resources": []},
        {"label": "x", "resources": [{"type": "TYPE_NAMESPACE", "path": "acme/*", "scopes": ["scope-image-pull"]}]},
        {"label": "x", "resources": [{"type": "TYPE_REPO", "path": "acme/*", "scopes": ["repo:write"]}]},
        {"label": "x", "resources": [{"type": "TYPE_REPO", "path": "acme/*", "scopes": []}]},
        {"label": "x", "resources": [{"type": "TYPE_REPO", "scopes": ["scope-image-pull"]}]},
        {"label": "x", "resources": [{"type": "TYPE_REPO", "path": "", "scopes": ["scope-image-pull"]}]},
        {"label": "x", "description": 3, "resources": PULL_PUSH},
        {"label": "x", "resources": PULL_PUSH, "expires_at": "soon"},
    ],
)
def test_oat_create_validation_is_400(hub: FakeDockerHub, http: requests.Session, body: object) -> None:
    response = http.post(oats_url(hub), json=body)
    assert response.status_code == 400 and isinstance(response.json()["message"], str)
    assert hub.oats("acme") == []


def test_personal_plan_refuses_oats(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.add_org("solo", owners=["alice"], plan="personal")
    for method in ("GET", "POST"):
        response = http.request(method, oats_url(hub, "solo"), json={"label": "x", "resources": PULL_PUSH})
        assert response.status_code == 403
        assert response.json() == {"message": PLAN_REFUSED}
    assert hub.oats("solo") == []


def test_oat_limit_counts_inactive_and_expired_tokens(hub: FakeDockerHub, http: requests.Session) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    for i in range(10):
        hub.add_oat("acme", label=f"t{i}", resources=PULL_PUSH, is_active=i != 0, expires_at=past if i == 1 else None)
    response = http.post(oats_url(hub), json={"label": "one-more", "resources": PULL_PUSH})
    assert response.status_code == 400
    assert response.json() == {"message": "Maximum number of organization access tokens reached"}
    assert len(hub.oats("acme")) == 10
    assert http.delete(f"{oats_url(hub)}/{hub.oats('acme')[0]['id']}").status_code == 204
    assert http.post(oats_url(hub), json={"label": "one-more", "resources": PULL_PUSH}).status_code == 201


def test_business_plan_allows_100(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.add_org("bigco", owners=["alice"], plan="business")
    for i in range(99):
        hub.add_oat("bigco", label=f"t{i}", resources=PULL_PUSH)
    assert http.post(oats_url(hub, "bigco"), json={"label": "t99", "resources": PULL_PUSH}).status_code == 201
    assert http.post(oats_url(hub, "bigco"), json={"label": "t100", "resources": PULL_PUSH}).status_code == 400


def test_duplicate_oat_label_is_409(hub: FakeDockerHub, http: requests.Session) -> None:
    assert http.post(oats_url(hub), json={"label": "binderhub", "resources": PULL_PUSH}).status_code == 201
    response = http.post(oats_url(hub), json={"label": "binderhub", "resources": PULL_PUSH})
    assert response.status_code == 409
    assert response.json() == {"message": "An access token with this label already exists"}
    other = http.post(oats_url(hub), json={"label": "other", "resources": PULL_PUSH}).json()
    assert http.patch(f"{oats_url(hub)}/{other['id']}", json={"label": "binderhub"}).status_code == 409
    assert http.patch(f"{oats_url(hub)}/{other['id']}", json={"label": "other"}).status_code == 200  # itself
    assert len(hub.oats("acme")) == 2


def test_oat_pagination(hub: FakeDockerHub, http: requests.Session) -> None:
    for i in range(7):
        hub.add_oat("acme", label=f"t{i}", resources=PULL_PUSH)
    page = http.get(oats_url(hub), params={"page": 2, "page_size": 3}).json()
    assert page["total"] == 7 and [r["label"] for r in page["results"]] == ["t3", "t4", "t5"]
    assert page["next"] == f"{oats_url(hub)}?page=3&page_size=3"
    assert page["previous"] == f"{oats_url(hub)}?page=1&page_size=3"
    assert all("token" not in r and "resources" not in r for r in page["results"])


def test_oat_patch_get_delete(hub: FakeDockerHub, http: requests.Session) -> None:
    secret = hub.add_oat("acme", label="ci", resources=PULL_PUSH)
    oat_url = f"{oats_url(hub)}/{hub.oats('acme')[0]['id']}"
    pull_only = [{"type": "TYPE_REPO", "path": "acme/images", "scopes": ["scope-image-pull"]}]
    response = http.patch(oat_url, json={"is_active": False, "description": "off", "resources": pull_only})
    assert response.status_code == 200 and "token" not in response.json()
    assert response.json()["is_active"] is False and response.json()["resources"] == pull_only
    assert hub.oats("acme")[0]["description"] == "off"
    assert login(hub, "acme", secret).status_code == 401
    assert http.patch(oat_url, json={"resources": []}).status_code == 400
    assert http.patch(oat_url, json={"is_active": 1}).status_code == 400
    assert http.get(oat_url).json()["is_active"] is False
    assert http.delete(oat_url).status_code == 204
    assert hub.oats("acme") == []
    for method in ("GET", "PATCH", "DELETE"):
        response = http.request(method, oat_url, json={})
        assert response.status_code == 404 and isinstance(response.json()["message"], str)


def test_oat_routes_need_an_owner_of_an_existing_org(hub: FakeDockerHub) -> None:
    hub.add_oat("acme", label="ci", resources=PULL_PUSH)
    oat_url = f"{oats_url(hub)}/{hub.oats('acme')[0]['id']}"
    with session(hub, "bob", "bob-pw") as bob:
        for method, url in (("GET", oats_url(hub)), ("POST", oats_url(hub)), ("GET", oat_url), ("DELETE", oat_url)):
            response = bob.request(method, url, json={"label": "x", "resources": PULL_PUSH})
            assert response.status_code == 403 and isinstance(response.json()["message"], str)
        response = bob.get(oats_url(hub, "nowhere"))
        assert response.status_code == 404 and isinstance(response.json()["message"], str)
    assert len(hub.oats("acme")) == 1


def test_owner_with_a_pat_bearer_manages_oats(hub: FakeDockerHub) -> None:
    hub.add_org("shared", owners=["alice", "bob"])
    secret = hub.add_pat("bob", label="admin", scopes=["repo:admin"])
    with session(hub, "bob", secret) as bob:
        response = bob.post(oats_url(hub, "shared"), json={"label": "x", "resources": PULL_PUSH})
        assert response.status_code == 201 and response.json()["created_by"] == "bob"


# --- faults, latency and the request log ------------------------------------------------------------------


def test_rate_limited(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("POST", r"/v2/access-tokens", RateLimited(retry_after="2"))
    started = int(time.time())
    response = http.post(hub.url + "/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"]})
    assert response.status_code == 429 and response.json() == {"message": "rate limit exceeded"}
    assert response.headers["Content-Type"] == "application/json" and response.headers["Retry-After"] == "2"
    assert response.headers["X-RateLimit-Remaining"] == "0" and int(response.headers["X-RateLimit-Limit"]) > 0
    assert started + 2 <= int(response.headers["X-RateLimit-Reset"]) <= started + 4
    assert hub.pats("alice") == []
    assert hub.requests[-1] == LoggedRequest("POST", "/v2/access-tokens", "", 429, "RateLimited")
    retry = http.post(hub.url + "/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"]})
    assert retry.status_code == 201  # consumed


def test_rate_limited_login(hub: FakeDockerHub) -> None:
    hub.inject("POST", r"/v2/auth/token", RateLimited(), times=2)
    assert [login(hub, "alice", "alice-pw").status_code for _ in range(3)] == [429, 429, 200]


def test_status_fault(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("GET", r"/v2/orgs/[^/]+/access-tokens", Status(503, retry_after="3"))
    response = http.get(oats_url(hub))
    assert response.status_code == 503 and response.json() == {"message": "service unavailable"}
    assert response.headers["Retry-After"] == "3"
    hub.inject("*", r"/v2/auth/token", Status(502, body={"detail": "bad gateway"}))
    response = login(hub, "alice", "alice-pw")
    assert response.status_code == 502 and response.json() == {"detail": "bad gateway"}
    assert "Retry-After" not in response.headers


def test_reset_before_leaves_state_untouched(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("POST", r"/v2/orgs/acme/access-tokens", ResetBefore())
    with pytest.raises(requests.ConnectionError):
        http.post(oats_url(hub), json={"label": "ci", "resources": PULL_PUSH})
    assert hub.oats("acme") == []
    assert hub.requests[-1] == LoggedRequest("POST", "/v2/orgs/acme/access-tokens", "", None, "ResetBefore")
    assert http.post(oats_url(hub), json={"label": "ci", "resources": PULL_PUSH}).status_code == 201


def test_reset_after_the_write_landed(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("POST", r"/v2/orgs/acme/access-tokens", ResetAfter())
    with pytest.raises(requests.ConnectionError):
        http.post(oats_url(hub), json={"label": "ci", "resources": PULL_PUSH})
    assert [o["label"] for o in hub.oats("acme")] == ["ci"]  # created, but the secret was never seen
    assert hub.requests[-1] == LoggedRequest("POST", "/v2/orgs/acme/access-tokens", "", None, "ResetAfter")
    retry = http.post(oats_url(hub), json={"label": "ci", "resources": PULL_PUSH})
    assert retry.status_code == 409


def test_reset_after_a_pat_create(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("POST", r"/v2/access-tokens", ResetAfter())
    with pytest.raises(requests.ConnectionError):
        http.post(hub.url + "/v2/access-tokens", json={"token_label": "ci", "scopes": ["repo:write"]})
    assert [p["token_label"] for p in hub.pats("alice")] == ["ci"]


def test_delay(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("GET", r".*", Delay(0.3))
    with pytest.raises(requests.Timeout):
        http.get(hub.url + "/v2/access-tokens", timeout=0.1)
    hub.inject("POST", r"/v2/auth/token", Delay(0.2))
    started = time.monotonic()
    assert login(hub, "alice", "alice-pw").status_code == 200
    assert time.monotonic() - started >= 0.2
    assert hub.requests[-1].fault == "Delay" and hub.requests[-1].status == 200


def test_after_times_order_and_clear(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.inject("GET", r"/v2/access-tokens", Status(500), after=1, times=2)
    codes = [http.get(hub.url + "/v2/access-tokens").status_code for _ in range(4)]
    assert codes == [200, 500, 500, 200]
    hub.inject("GET", r"/v2/access", Status(500))  # does not fullmatch
    hub.inject("*", r"/v2/access-tokens", Status(502))
    hub.inject("GET", r"/v2/access-tokens", Status(503))
    assert [http.get(hub.url + "/v2/access-tokens").status_code for _ in range(3)] == [502, 503, 200]
    hub.inject("*", r".*", Status(500), times=100)
    hub.clear_faults()
    assert http.get(hub.url + "/v2/access-tokens").status_code == 200
    with pytest.raises(ValueError):
        hub.inject("GET", r".*", Status(500), times=0)


def test_request_log(hub: FakeDockerHub, http: requests.Session) -> None:
    hub.clear_log()
    http.get(hub.url + "/v2/access-tokens", params={"page": "1", "page_size": "5"})
    http.post(hub.url + "/v2/access-tokens", json={"token_label": "ci", "scopes": ["repo:read"]})
    http.get(hub.url + "/v2/orgs/ac%6De/access-tokens")
    pat_id = hub.pats("alice")[0]["uuid"]
    http.delete(f"{hub.url}/v2/access-tokens/{pat_id}")
    assert hub.requests == [
        LoggedRequest("GET", "/v2/access-tokens", "page=1&page_size=5", 200, None),
        LoggedRequest("POST", "/v2/access-tokens", "", 201, None),
        LoggedRequest("GET", "/v2/orgs/acme/access-tokens", "", 200, None),
        LoggedRequest("DELETE", f"/v2/access-tokens/{pat_id}", "", 204, None),
    ]
    assert [r.method for r in hub.writes()] == ["POST", "DELETE"]
    hub.clear_log()
    assert hub.requests == [] and hub.writes() == []


def test_latency() -> None:
    with FakeDockerHub(latency=0.05) as fake:
        started = time.monotonic()
        requests.get(fake.url + "/v2/nothing", timeout=5)
        assert time.monotonic() - started >= 0.05
