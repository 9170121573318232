"""provision remove quay|dockerhub under --deadline: a hung API ends the run near the deadline with one paragraph
naming the pending call; the clock stops while the user answers the confirmation."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from provision.registries.quay.create import QuayRequest
from provision.registries.quay.remove import QuayRemoveRequest, remove_quay
from tests.conftest import REPO
from tests.servers.base import Delay
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import FakeQuay

TOKEN = "Q" * 40
DH_PASSWORD = "alice-dh-password-77"


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_user("admin", email="admin@example.org")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin", "repo:admin"})
        server.add_org("hubs", admin="admin")
        server.add_robot("hubs", "image_builder")
        yield server


@pytest.fixture
def dockerhub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as server:
        server.add_user("alice", password=DH_PASSWORD)
        server.add_pat("alice", label="binderhub-c1-staging", scopes=["repo:write"])
        yield server


def one_error(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in stderr
    return line


def test_a_hung_quay_ends_the_removal_near_the_deadline(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/user/", Delay(4), times=20)
    start = time.monotonic()
    result = CliRunner().invoke(
        app, ["remove", "quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url,
              "--yes", "--deadline", "2"], env={"QUAY_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert time.monotonic() - start < 5
    line = one_error(result.stderr)
    assert "GET /user/: no answer in time" in line and "2 s deadline passed" in line and "--deadline" in line
    assert TOKEN not in result.stderr and quay.robot_token("hubs", "image_builder") is not None


def test_a_hung_docker_hub_ends_the_removal_near_the_deadline(dockerhub: FakeDockerHub) -> None:
    dockerhub.inject("POST", "/v2/users/login", Delay(4), times=20)
    dockerhub.inject("POST", "/v2/auth/token", Delay(4), times=20)
    start = time.monotonic()
    result = CliRunner().invoke(
        app, ["remove", "dockerhub", "--namespace", "alice", "--cluster", "c1", "--hub", "staging", "--api-url",
              dockerhub.url, "--yes", "--deadline", "2"],
        env={"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": DH_PASSWORD},
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert time.monotonic() - start < 5
    line = one_error(result.stderr)
    assert "2 s deadline passed" in line and "POST /v2/" in line
    assert DH_PASSWORD not in result.stderr and len(dockerhub.pats("alice")) == 1


def test_a_slow_answer_to_the_prompt_does_not_eat_the_deadline(quay: FakeQuay) -> None:
    asked: list[str] = []

    def slow_yes(question: str, word: str | None) -> bool:
        asked.append(question)
        time.sleep(2.5)  # longer than the whole deadline
        return True

    request = QuayRemoveRequest(quay=QuayRequest(org="hubs", api_url=quay.url, cluster="c1", hub="staging",
                                                 token=TOKEN))  # fmt: skip
    result = remove_quay(request, reporter=Reporter(stream=io.StringIO()), confirm=slow_yes, deadline=2)
    assert asked and not result.declined
    assert quay.robot_token("hubs", "image_builder") is None  # the DELETE after the prompt still had its time


def test_remove_quay_has_a_deadline_on_a_hung_server(tmp_path: Path) -> None:
    """QA (issue 12 item 4: each command has an overall deadline): `remove quay` against a server that accepts
    connections and never answers retried 6 times at 30 s each before --deadline existed for it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {**os.environ, "QUAY_TOKEN": TOKEN, "PYTHONPATH": str(REPO / "src")}
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "provision", "remove", "quay", "--api-url", url, "--org", "myorg", "--hub",
             "staging", "--yes", "--deadline", "3"],
            capture_output=True, text=True, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    finally:
        listener.close()
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 30 and "deadline" in result.stderr


REMOVE_STAGING = ["remove", "quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--delete-repositories",
                  "--yes"]  # fmt: skip


def test_repository_deletions_run_a_few_at_a_time(quay: FakeQuay) -> None:
    """Issue 18: deletions (≈0.23 s each on a real Quay) run concurrently, never more than the bound (4, the
    per-host limit) in flight at once, as the test server counts them."""
    names = [f"c1-staging-image-{i:02}" for i in range(12)]
    for name in names:
        quay.add_repository("hubs", name)
    quay.inject("DELETE", r"/api/v1/repository/hubs/.*", Delay(0.25), times=len(names))
    start = time.monotonic()
    result = CliRunner().invoke(app, [*REMOVE_STAGING, "--api-url", quay.url], env={"QUAY_TOKEN": TOKEN})
    assert result.exit_code == 0, result.stderr
    assert quay.repositories("hubs") == []
    assert 2 <= quay.peak_in_flight <= 4
    assert time.monotonic() - start < 0.25 * len(names)  # not one after the other


def test_a_deadline_that_runs_out_while_deleting_says_how_many_are_left(quay: FakeQuay) -> None:
    """Quay answers, but slowly: the deadline runs out half-way. The message counts the deleted and the left
    repositories and says that Quay was answering (not "cannot reach Quay"); the same command run again finishes."""
    names = [f"c1-staging-image-{i:02}" for i in range(40)]
    for name in names:
        quay.add_repository("hubs", name)
    quay.inject("DELETE", r"/api/v1/repository/hubs/.*", Delay(0.4), times=len(names))
    args = [*REMOVE_STAGING, "--api-url", quay.url]
    result = CliRunner().invoke(app, [*args, "--deadline", "2"], env={"QUAY_TOKEN": TOKEN})
    assert result.exit_code == 1, result.stderr
    line = one_error(result.stderr)
    assert "cannot reach" not in line and "Quay was answering" in line and "2 s deadline ran out" in line
    import re

    found = re.search(r"(\d+) of 40 deleted, (\d+) left", line)
    assert found, line
    deleted, left = int(found[1]), int(found[2])
    assert deleted + left == 40 and 0 < deleted < 40
    time.sleep(0.5)  # deletions cut off by the deadline land on the server
    gone = 40 - len(quay.repositories("hubs"))
    assert deleted <= gone <= deleted + 4
    assert quay.robot_token("hubs", "image_builder") is not None  # the robot comes after the repositories

    again = CliRunner().invoke(app, args, env={"QUAY_TOKEN": TOKEN})
    assert again.exit_code == 0, again.stderr
    assert quay.repositories("hubs") == [] and quay.robot_token("hubs", "image_builder") is None
