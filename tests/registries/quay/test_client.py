"""QuayClient over real HTTP: every error-body shape, the retry policy, and re-reads before re-sending writes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from urllib3.util.retry import Retry

from provision.registries.quay.client import QuayClient, QuayError
from tests.servers.quay import FakeQuay, Html429, ResetAfter, ResetBefore, Status

TOKEN = "T" * 40


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_user("admin")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        server.add_org("org", admin="admin")
        yield server


def client(server: FakeQuay, *, total: int = 3) -> QuayClient:
    return QuayClient(
        server.url, TOKEN, retry=Retry(total=total, backoff_factor=0, raise_on_status=False), timeout=(1, 1)
    )


SHAPE_A = {
    "detail": "bad thing",
    "error_message": "bad thing",
    "error_type": "invalid_request",
    "title": "invalid_request",
    "type": "x",
    "status": 400,
}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, SHAPE_A, "bad thing"),
        (400, {"message": "Could not frobnicate"}, "Could not frobnicate"),
        (403, {"error": "CSRF token was invalid or missing."}, "did not accept the token"),
        (404, {"message": "The requested URL was not found on the server."}, "requested URL was not found"),
        (
            401,
            {
                "errors": [
                    {
                        "code": "UNAUTHORIZED",
                        "detail": {},
                        "message": "access to the requested resource is not authorized",
                    }
                ]
            },
            "not authorized",
        ),
        (400, "Created", "Created"),
        (418, None, "HTTP 418"),
    ],
)
def test_every_error_body_shape_gives_a_message(quay: FakeQuay, status: int, body: object, expected: str) -> None:
    quay.inject("GET", "/api/v1/organization/org/robots/r1", Status(status, body=body))
    with pytest.raises(QuayError) as err:
        client(quay).get_robot("org", "r1")
    assert expected in str(err.value)
    assert err.value.status == status
    if isinstance(body, dict) and "error_type" in body:
        assert err.value.error_type == "invalid_request"


def test_html_429_after_retries_is_reported_readably(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/organization/org", Html429(), times=10)
    with pytest.raises(QuayError) as err:
        client(quay, total=2).get_org("org")
    assert err.value.status == 429
    assert "Too Many Requests" in str(err.value) and "<html" not in str(err.value)
    assert len(quay.requests) == 3


def test_reads_are_retried_on_5xx_429_and_resets(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/organization/org", Status(502))
    quay.inject("GET", "/api/v1/organization/org", Html429())
    quay.inject("GET", "/api/v1/organization/org", ResetBefore())
    org = client(quay).get_org("org")
    assert org is not None and org.is_admin
    assert [r.status for r in quay.requests] == [502, 429, None, 200]


def test_retry_after_is_honoured(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/user/", Html429(retry_after="1"))
    start = time.monotonic()
    client(quay).get_user()
    assert time.monotonic() - start >= 0.9


def test_unreachable_server(quay: FakeQuay) -> None:
    url = quay.url
    quay.stop()
    with pytest.raises(QuayError, match="cannot reach Quay"):
        QuayClient(url, TOKEN, retry=Retry(total=1, backoff_factor=0), timeout=(0.5, 0.5)).get_user()


def test_a_write_that_landed_is_not_sent_again(quay: FakeQuay) -> None:
    quay.inject("PUT", r"/api/v1/organization/org/robots/r1", ResetAfter())
    robot = client(quay).create_robot("org", "r1", description="d")
    assert robot.token == quay.robot_token("org", "r1")
    assert [(r.method, r.status) for r in quay.requests] == [("PUT", None), ("GET", 200)]


def test_a_write_that_did_not_land_is_sent_again_after_a_reread(quay: FakeQuay) -> None:
    quay.inject("PUT", r"/api/v1/organization/org/team/owners/members/bob", Status(503))
    quay.add_user("bob")
    member = client(quay).add_team_member("org", "owners", "bob")
    assert member.invited
    assert [(r.method, r.status) for r in quay.requests] == [("PUT", 503), ("GET", 200), ("PUT", 200)]
    assert quay.pending_invites("org", "owners") == ["bob"]


def test_org_creation_is_retried_only_after_reading_again(quay: FakeQuay) -> None:
    quay.inject("POST", r"/api/v1/organization/", ResetAfter())
    client(quay).create_org("neworg", email=None)
    assert quay.org_exists("neworg")
    assert [r.method for r in quay.requests] == ["POST", "GET"]


def test_regenerate_recovers_the_new_token_after_a_lost_answer(quay: FakeQuay) -> None:
    old = quay.add_robot("org", "r1")
    quay.inject("POST", r"/api/v1/organization/org/robots/r1/regenerate", ResetAfter())
    robot = client(quay).regenerate_robot_token("org", "r1", old_token=old)
    assert robot.token != old and robot.token == quay.robot_token("org", "r1")
    assert [r.method for r in quay.writes()] == ["POST"]


def test_missing_robot_400_means_absent(quay: FakeQuay) -> None:
    assert client(quay).get_robot("org", "nobody") is None


def test_missing_team_means_none(quay: FakeQuay) -> None:
    assert client(quay).list_team_members("org", "nosuchteam") is None
