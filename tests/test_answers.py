"""Servers that answer wrong: one paragraph naming the server, the call and what was wrong; exit 1, no bug report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli import app
from tests.registries.dockerhub.conftest import DOCKERHUB_PASSWORD
from tests.servers.base import Raw, Status
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import FakeQuay

TOKEN = "Q" * 40


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_user("admin", email="admin@example.org")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        yield server


WRONG_USER_ANSWERS: dict[str, tuple[Any, str]] = {
    "empty object": (Status(200, {}), "the field 'username' is missing"),
    "a list": (Status(200, ["admin"]), "a JSON list where an object was expected"),
    "a number for a name": (Status(200, {"username": 7}), "a field is not of the type the API documents"),
    "an HTML page": (Raw(200, b"<html><body>Sign in</body></html>", "text/html"), "not JSON (it starts with '<html>"),
    "invalid UTF-8": (Raw(200, b"\xff\xfe\xfa{"), "not JSON"),
}


@pytest.mark.parametrize("case", WRONG_USER_ANSWERS)
def test_a_wrong_answer_from_quay_is_said_as_the_servers(quay: FakeQuay, case: str) -> None:
    fault, what = WRONG_USER_ANSWERS[case]
    quay.inject("GET", r"^/api/v1/user/$", fault)
    result = CliRunner().invoke(app, ["quay", "--org", "hubs", "--hub", "staging", "--api-url", quay.url],
                                env={"QUAY_TOKEN": TOKEN})  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert f"Quay at {quay.url} answered GET /api/v1/user/ with something its API does not return" in result.stderr
    assert what in result.stderr, result.stderr
    assert "bug in provision" not in result.stderr and "Traceback" not in result.stderr
    assert quay.writes() == []


@pytest.mark.parametrize("token", [12345, "tok\x1b[31men", "two\nlines"])
def test_a_robot_token_that_is_no_printable_text_is_refused_not_written(quay: FakeQuay, token: object) -> None:
    quay.inject("PUT", r"^/api/v1/organization/hubs/robots/image_builder$",
                Status(200, {"name": "hubs+image_builder", "token": token}))  # fmt: skip
    result = CliRunner().invoke(app, ["quay", "--org", "hubs", "--hub", "staging", "--email", "a@b.org",
                                      "--api-url", quay.url], env={"QUAY_TOKEN": TOKEN})  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert "token is not a printable string" in result.stderr and "bug in provision" not in result.stderr
    assert result.stdout == ""


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as server:
        server.add_user("alice", password=DOCKERHUB_PASSWORD)
        server.add_org("myorg", owners=["alice"])
        yield server


@pytest.mark.parametrize("body", [Raw(201, b"<html>created</html>", "text/html"), Status(201, {"token": 5})])
def test_a_wrong_answer_from_docker_hub_is_said_as_the_servers(hub: FakeDockerHub, body: object) -> None:
    hub.inject("POST", r"/v2/orgs/myorg/access-tokens", body)
    args = ["dockerhub", "--namespace", "myorg", "--org", "--cluster", "c1", "--hub", "staging", "--api-url", hub.url]
    result = CliRunner().invoke(app, args, env={"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": DOCKERHUB_PASSWORD})
    assert result.exit_code == 1, result.stderr
    assert f"Docker Hub at {hub.url} answered POST" in result.stderr
    assert "bug in provision" not in result.stderr and "Traceback" not in result.stderr
