"""provision dockerhub against the Docker Hub-compatible server over real HTTP."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from urllib3.util.retry import Retry

from provision.cli import app
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.registries.dockerhub.client import DockerHubError
from provision.registries.dockerhub.create import DockerHubResult, run
from provision.registries.dockerhub.request import DockerHubRequest
from tests.helpers import helm_merge, validate_hub_values
from tests.registries.dockerhub.conftest import DOCKERHUB_PASSWORD
from tests.servers.dockerhub import FakeDockerHub, RateLimited, ResetAfter, Status

PASSWORD = DOCKERHUB_PASSWORD
SRC = Path(__file__).resolve().parents[2] / "src"


class Outcome:
    def __init__(self, result: DockerHubResult | None, stderr: str, error: ProvisionError | None) -> None:
        self.result, self.stderr, self.error = result, stderr, error


def provision(server: FakeDockerHub, *, dry_run: bool = False, **kwargs: Any) -> Outcome:
    fields: dict[str, Any] = {"namespace": "myorg", "hub": "staging", "cluster": "c1", "org": True,
                              "username": "alice", "secret": PASSWORD, "api_url": server.url}  # fmt: skip
    fields.update(kwargs)
    stream = io.StringIO()
    try:
        result = run(DockerHubRequest(**fields), reporter=Reporter(stream=stream), dry_run=dry_run,
                     retry=Retry(total=3, backoff_factor=0, raise_on_status=False))  # fmt: skip
        return Outcome(result, stream.getvalue(), None)
    except ProvisionError as exc:
        return Outcome(None, stream.getvalue(), exc)


def ok(server: FakeDockerHub, **kwargs: Any) -> DockerHubResult:
    outcome = provision(server, **kwargs)
    assert outcome.error is None, str(outcome.error)
    assert outcome.result is not None
    return outcome.result


def test_organization_token_first_run(hub: FakeDockerHub) -> None:
    result = ok(hub, private=True)
    reg = result.registry
    assert (reg.username, reg.server, reg.registry_url) == (
        "myorg",
        "https://index.docker.io/v1/",
        "https://registry-1.docker.io",
    )
    assert reg.image_prefix == "myorg/c1-staging-"
    assert hub.token_secret_valid("myorg", reg.password)
    [oat] = hub.oats("myorg")
    assert oat["label"] == "binderhub-c1-staging"
    assert {r["type"] for r in oat["resources"]} == {"TYPE_REPO", "TYPE_ORG"}
    assert reg.pull_secret_registry == "https://index.docker.io/v1/"


def test_personal_token(hub: FakeDockerHub) -> None:
    result = ok(hub, namespace="alice", org=False)
    assert result.registry.username == "alice"
    assert result.registry.pull_secret_registry is None
    [pat] = hub.pats("alice")
    assert pat["scopes"] == ["repo:write"] and pat["token_label"] == "binderhub-c1-staging"
    assert hub.token_secret_valid("alice", result.registry.password)


def test_rerun_creates_no_duplicate_and_says_to_reuse_or_rotate(hub: FakeDockerHub) -> None:
    ok(hub)
    hub.clear_log()
    outcome = provision(hub)
    assert outcome.error is not None
    message = str(outcome.error)
    assert "already exists" in message and "hub's secrets" in message and "--rotate" in message
    assert len(hub.oats("myorg")) == 1
    assert hub.writes() == [r for r in hub.writes() if r.path == "/v2/auth/token"]  # only the login


@pytest.mark.parametrize("unique", [False, True])
def test_rotate_replaces_the_token(hub: FakeDockerHub, unique: bool) -> None:
    hub.unique_labels = unique
    first = ok(hub, namespace="alice", org=False)
    rotated = ok(hub, namespace="alice", org=False, rotate=True)
    assert rotated.registry.password != first.registry.password
    assert not hub.token_secret_valid("alice", first.registry.password)
    assert hub.token_secret_valid("alice", rotated.registry.password)
    assert len(hub.pats("alice")) == 1


def test_rotate_organization_token_with_unique_labels(hub: FakeDockerHub) -> None:
    first = ok(hub)
    rotated = ok(hub, rotate=True)
    assert rotated.registry.password != first.registry.password
    assert [o["label"] for o in hub.oats("myorg")] == ["binderhub-c1-staging"]


def test_dry_run_writes_nothing(hub: FakeDockerHub) -> None:
    outcome = provision(hub, dry_run=True)
    assert outcome.result is not None and outcome.result.plan.changes[0].kind == "create"
    assert [r.path for r in hub.writes()] == ["/v2/auth/token"]
    assert hub.oats("myorg") == []


def test_wrong_credentials(hub: FakeDockerHub) -> None:
    outcome = provision(hub, secret="wrong")
    assert isinstance(outcome.error, DockerHubError)
    assert "refused the credentials" in str(outcome.error) and "DOCKERHUB_TOKEN" in str(outcome.error)


def test_plan_without_organization_tokens(hub: FakeDockerHub) -> None:
    outcome = provision(hub, namespace="freeorg")
    assert (
        outcome.error is not None and "Team or Business" in str(outcome.error) and "without --org" in str(outcome.error)
    )


def test_rate_limit_is_retried_then_reported(hub: FakeDockerHub) -> None:
    hub.inject("POST", "/v2/orgs/myorg/access-tokens", RateLimited(retry_after="0"))
    ok(hub)  # one 429 is retried
    hub.inject("GET", "/v2/orgs/myorg/access-tokens", RateLimited(retry_after="0"), times=100)
    outcome = provision(hub, rotate=True)
    assert outcome.error is not None and "rate limit" in str(outcome.error) and "re-run" in str(outcome.error)


def test_label_taken_by_another_token(hub: FakeDockerHub) -> None:
    hub.inject("POST", "/v2/orgs/myorg/access-tokens", Status(409, body={"message": "label exists"}))
    outcome = provision(hub)
    assert outcome.error is not None and "--token-label" in str(outcome.error)


def test_creation_that_landed_without_its_answer_is_replaced(hub: FakeDockerHub) -> None:
    hub.inject("POST", "/v2/access-tokens", ResetAfter())
    result = ok(hub, namespace="alice", org=False)
    assert len(hub.pats("alice")) == 1  # the orphan (secret unknown) was deleted, the new one kept
    assert hub.token_secret_valid("alice", result.registry.password)


def test_validation_before_any_request(hub: FakeDockerHub) -> None:
    for kwargs, message in (({"namespace": "Bad Org"}, "--namespace"), ({"hub": "Hub"}, "hub name"),
                            ({"label": "x" * 101}, "--token-label"), ({"username": "myorg"}, "owner")):  # fmt: skip
        outcome = provision(hub, **kwargs)
        assert isinstance(outcome.error, UsageError) and message in str(outcome.error)
    assert hub.requests == []


def test_token_never_in_stderr_or_logs(hub: FakeDockerHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = provision(hub)
    rotated = provision(hub, rotate=True)
    assert first.result and rotated.result
    text = first.stderr + rotated.stderr + caplog.text
    for secret in (PASSWORD, first.result.registry.password, rotated.result.registry.password):
        assert secret not in text


def test_cli_end_to_end(hub: FakeDockerHub) -> None:
    env = {"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": PASSWORD}
    args = ["dockerhub", "--namespace", "myorg", "--org", "--cluster", "c1", "--hub", "staging", "--private",
            "--api-url", hub.url]  # fmt: skip
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    public = yaml.safe_load(result.stderr.split("public values (for <hub>.values.yaml):\n")[1])
    validate_hub_values(helm_merge(public, secret))
    token = secret["jupyterhub"]["imagePullSecret"]["password"]
    assert hub.token_secret_valid("myorg", token) and token not in result.stderr and PASSWORD not in result.stderr
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 1 and again.stdout == "" and "--rotate" in again.stderr


def test_non_owner_gets_a_way_out(hub: FakeDockerHub) -> None:
    hub.add_user("bob", password="bob-pw")
    outcome = provision(hub, username="bob", secret="bob-pw")
    assert isinstance(outcome.error, DockerHubError) and outcome.error.status == 403
    assert "owner of 'myorg'" in str(outcome.error)


def _run_with_stdout_closed(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a child whose stdout is a pipe nobody reads any more (`provision … | head -c 0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "provision", *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env, "PYTHONPATH": str(SRC)}, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


def test_a_token_not_delivered_because_stdout_closed_is_deleted_again(hub: FakeDockerHub) -> None:
    env = {"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": PASSWORD}
    args = ["dockerhub", "--namespace", "myorg", "--org", "--cluster", "c1", "--hub", "staging",
            "--api-url", hub.url]  # fmt: skip
    closed = _run_with_stdout_closed(args, env)
    assert closed.returncode == 1, closed.stderr
    assert "stdout was closed" in closed.stderr and "Traceback" not in closed.stderr
    assert [t["token_label"] for t in hub.oats("myorg")] == []  # created, then deleted: no orphan
    # Nothing is left half-done: the next run, with stdout read, creates the token and delivers it.
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 0, again.stderr
    assert yaml.safe_load(again.stdout)["binderhub-service"]


def test_quay_with_stdout_closed_exits_1_and_the_next_run_delivers() -> None:
    """Quay keeps the robot (its token is read again by the next run): exit 1, said, and a re-run prints it."""
    from tests.servers.quay import FakeQuay

    with FakeQuay() as quay:
        quay.add_user("admin", email="admin@example.org")
        quay.add_token("Q" * 40, user="admin", scopes={"org:admin", "user:admin"})
        args = ["quay", "--org", "hubs", "--hub", "staging", "--email", "a@b.org", "--api-url", quay.url]
        closed = _run_with_stdout_closed(args, {"QUAY_TOKEN": "Q" * 40})
        assert closed.returncode == 1, closed.stderr
        assert "stdout was closed" in closed.stderr and "Traceback" not in closed.stderr
        again = CliRunner().invoke(app, args, env={"QUAY_TOKEN": "Q" * 40})
        assert again.exit_code == 0, again.stderr
        token = quay.robot_token("hubs", "image_builder")
        assert token and token in again.stdout
