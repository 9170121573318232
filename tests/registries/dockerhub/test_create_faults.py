"""provision dockerhub under faults: each fault at each step, then a re-run: no duplicate token, no lost secret.

A Docker Hub token's secret exists only in the answer that created it, so the rule is stricter than for quay: a
token whose secret did not reach the hub's files (or stdout) must not survive the run, or the message must say
exactly which one to delete.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner
from urllib3.util.retry import Retry

from provision.cli import app
from provision.console import Reporter
from provision.errors import ProvisionError
from provision.registries.dockerhub.create import DockerHubResult, run
from provision.registries.dockerhub.request import DockerHubRequest
from tests.conftest import REPO
from tests.registries.dockerhub.conftest import DOCKERHUB_PASSWORD
from tests.servers.dockerhub import (
    FakeDockerHub,
    Interleave,
    RateLimited,
    ResetAfter,
    ResetBefore,
    Status,
)

PASSWORD = DOCKERHUB_PASSWORD
LABEL = "binderhub-c1-staging"
PENDING = LABEL + ".pending"  # a new token's label until its secret is stored
TOKENS = "/v2/orgs/myorg/access-tokens"


class Outcome:
    def __init__(self) -> None:
        self.result: DockerHubResult | None = None
        self.error: BaseException | None = None
        self.stderr = ""
        self.delivered: list[str] = []


def provision(server: FakeDockerHub, *, fail_delivery: BaseException | None = None, **kwargs: Any) -> Outcome:
    fields: dict[str, Any] = {"namespace": "myorg", "hub": "staging", "cluster": "c1", "org": True,
                              "username": "alice", "secret": PASSWORD, "api_url": server.url, **kwargs}  # fmt: skip
    stream, outcome = io.StringIO(), Outcome()

    def deliver(result: DockerHubResult) -> None:
        if fail_delivery is not None:
            raise fail_delivery
        outcome.delivered.append(result.registry.password)

    try:
        outcome.result = run(DockerHubRequest(**fields), reporter=Reporter(stream=stream), deliver=deliver,
                             retry=Retry(total=3, backoff_factor=0, raise_on_status=False))  # fmt: skip
    except (ProvisionError, KeyboardInterrupt) as exc:
        outcome.error = exc
    outcome.stderr = stream.getvalue()
    return outcome


def assert_one_working_token(server: FakeDockerHub, outcome: Outcome) -> None:
    """Exactly one token has the label, and its secret is the one delivered (nothing lost, nothing doubled)."""
    assert outcome.error is None, str(outcome.error)
    assert [o["label"] for o in server.oats("myorg")] == [LABEL]
    assert len(outcome.delivered) == 1 and server.token_secret_valid("myorg", outcome.delivered[0])


STEPS = [
    ("POST", "/v2/auth/token"),
    ("GET", TOKENS),
    ("POST", TOKENS),
    ("DELETE", TOKENS + "/.*"),  # the old token, in a rotation
    ("PATCH", TOKENS + "/.*"),  # the new token's label, once its secret is stored
]
FAULTS = [Status(500), Status(502), Status(503, retry_after="0"), RateLimited("0"), ResetBefore(), ResetAfter()]


def ids(fault: object) -> str:
    return type(fault).__name__ + str(getattr(fault, "code", ""))


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
@pytest.mark.parametrize(("method", "path"), STEPS, ids=[f"{m} {p.rsplit('/', 1)[-1]}" for m, p in STEPS])
def test_single_fault_is_retried_without_duplicates(hub: FakeDockerHub, method: str, path: str, fault: object) -> None:
    rotate = method == "DELETE"
    if rotate:
        hub.add_oat("myorg", label=LABEL, resources=[{"type": "TYPE_REPO", "path": "myorg/*",
                                                      "scopes": ["scope-image-push"]}])  # fmt: skip
    hub.inject(method, path, fault)
    outcome = provision(hub, rotate=rotate)
    assert_one_working_token(hub, outcome)
    assert any(r.fault for r in hub.requests), "the fault was never triggered"


@pytest.mark.parametrize("fault", [Status(503), ResetBefore(), ResetAfter()], ids=ids)
@pytest.mark.parametrize(("method", "path"), STEPS, ids=[f"{m} {p.rsplit('/', 1)[-1]}" for m, p in STEPS])
def test_persistent_fault_then_rerun_leaves_one_working_token(
    hub: FakeDockerHub, method: str, path: str, fault: object
) -> None:
    rotate = method == "DELETE"
    if rotate:
        old = hub.add_oat("myorg", label=LABEL, resources=[{"type": "TYPE_REPO", "path": "myorg/*",
                                                            "scopes": ["scope-image-push"]}])  # fmt: skip
    hub.inject(method, path, fault, times=1000)
    first = provision(hub, rotate=rotate)
    if first.error is not None:
        assert first.delivered == []
        if not rotate:  # nothing of this run survives; the message says what was undone, if anything
            assert hub.oats("myorg") == [], str(first.error)
        else:
            # The old token still works (the hub keeps working), or the message says it is gone: with unique
            # labels the old token must be deleted before the new one can be created.
            assert hub.token_secret_valid("myorg", old) or "the old token labelled" in str(first.error)
    else:
        # The new token was delivered and works; only a step after that failed (deleting the old token, or
        # giving the new one its label), and the run said what to finish by hand.
        assert hub.token_secret_valid("myorg", first.delivered[0])
        assert "delete it in Docker Hub" in first.stderr if rotate else "rename it in Docker Hub" in first.stderr
        rotate = True  # the re-run that cleans up is a rotation (a token is there)
    hub.clear_faults()
    rerun = provision(hub, rotate=rotate)
    assert_one_working_token(hub, rerun)


def test_failed_delivery_deletes_the_new_token_and_says_so(hub: FakeDockerHub) -> None:
    outcome = provision(hub, fail_delivery=ProvisionError("cannot write enc-staging.secret.values.yaml"))
    assert outcome.error is not None
    assert f"the new token labelled {PENDING!r} was deleted again" in str(outcome.error)
    assert hub.oats("myorg") == []
    assert_one_working_token(hub, provision(hub))


def test_interrupt_during_delivery_deletes_the_new_token(hub: FakeDockerHub) -> None:
    outcome = provision(hub, fail_delivery=KeyboardInterrupt())
    assert isinstance(outcome.error, KeyboardInterrupt)
    assert "was deleted again" in outcome.stderr
    assert hub.oats("myorg") == []


def test_failed_rotation_keeps_the_old_token(hub: FakeDockerHub) -> None:
    """Personal tokens may share a label: the new one is made and delivered before the old one goes."""
    old = hub.add_pat("alice", label=LABEL, scopes=["repo:write"])
    outcome = provision(hub, namespace="alice", org=False, rotate=True, fail_delivery=ProvisionError("sops failed"))
    assert outcome.error is not None and "was deleted again" in str(outcome.error)
    assert [p["token_label"] for p in hub.pats("alice")] == [LABEL] and hub.token_secret_valid("alice", old)


def test_lost_answer_and_failed_clean_up_then_the_rerun_tells_the_truth(hub: FakeDockerHub) -> None:
    """The creation lands but its answer is lost, and the server then fails for good: the token cannot be
    deleted. The run says so; the re-run finds it under its pending label and says its secret was never stored."""
    hub.inject("POST", TOKENS, ResetAfter())
    hub.inject("GET", TOKENS, Status(503), times=1000, after=2)  # the two listings before the creation pass
    first = provision(hub)
    assert first.error is not None and first.delivered == []
    message = str(first.error)
    assert f"the token labelled {PENDING!r} that this run created could not be deleted" in message
    assert "its secret was never stored" in message and "--rotate" in message
    [orphan] = hub.oats("myorg")
    assert orphan["label"] == PENDING
    hub.clear_faults()
    rerun = provision(hub)
    assert rerun.error is not None and rerun.delivered == []
    text = str(rerun.error)
    assert f"a token labelled {PENDING!r} exists" in text and "never used" in text
    assert "its secret was never stored anywhere" in text and "--rotate" in text
    rotated = provision(hub, rotate=True)
    assert_one_working_token(hub, rotated)
    assert orphan["id"] not in {o["id"] for o in hub.oats("myorg")}


def test_rename_failure_leaves_a_working_token_and_says_how_to_finish(hub: FakeDockerHub) -> None:
    hub.inject("PATCH", TOKENS + "/.*", Status(503), times=1000)
    first = provision(hub)
    assert first.error is None and hub.token_secret_valid("myorg", first.delivered[0])
    assert f"renaming it from {PENDING!r} to {LABEL!r} failed" in first.stderr
    assert [o["label"] for o in hub.oats("myorg")] == [PENDING]
    hub.clear_faults()
    assert_one_working_token(hub, provision(hub, rotate=True))


def program(hub: FakeDockerHub, cwd: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The real program for myorg's organization token of c1/staging (stdout mode), started in the background."""
    env = {**os.environ, "DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": PASSWORD, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "provision", "dockerhub", "--namespace", "myorg", "--org", "--cluster", "c1",
         "--hub", "staging", "--api-url", hub.url, *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
        # A suite started in the background (nohup, `cmd &` in a script) inherits SIGINT ignored, and so would the
        # child: Python then never raises KeyboardInterrupt. Give the child the default action, as a terminal does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def interrupted_at(hub: FakeDockerHub, cwd: Path, method: str, path: str, *extra: str) -> tuple[int, str, str]:
    """Run the program and send it SIGINT while the server handles `method path` (which then completes all the
    same); returns its exit code, stdout and stderr."""
    started: list[subprocess.Popen[bytes]] = []

    def interrupt() -> None:
        started[0].send_signal(signal.SIGINT)
        time.sleep(0.3)  # the client is interrupted while waiting; the request then completes all the same

    # Armed before the program starts: on a busy machine it could otherwise reach the request first and finish.
    hub.inject(method, path, Interleave(interrupt))
    started.append(program(hub, cwd, *extra))
    stdout, stderr = started[0].communicate(timeout=60)
    time.sleep(1.0)  # let the server finish the request the client was waiting for
    hub.clear_faults()
    return started[0].returncode, stdout.decode(), stderr.decode()


def test_ctrl_c_while_the_creation_is_on_its_way(hub: FakeDockerHub, tmp_path: Path) -> None:
    """The real program gets SIGINT while it waits for the creation's answer; the token was created all the same.

    It must delete that token, say so, and exit 130.
    """
    returncode, stdout, text = interrupted_at(hub, tmp_path, "POST", TOKENS)
    assert returncode == 130, text
    assert stdout == ""
    assert "was deleted again" in text and "interrupted" in text and "Traceback" not in text
    assert any(r.method == "POST" and r.path == TOKENS and r.status == 201 for r in hub.requests)
    assert hub.oats("myorg") == []


def printed_secret(stdout: str) -> str:
    return str(yaml.safe_load(stdout)["binderhub-service"]["buildPodsRegistryCredentials"]["password"])


def test_ctrl_c_after_the_rotated_secret_was_printed_is_not_called_never_stored(
    hub: FakeDockerHub, tmp_path: Path
) -> None:
    """QA: `--rotate` printed the new secret (piped to sops by the README's command), then Ctrl-C came while the old
    token was being deleted. The new token left as `.pending` made the re-run say its secret "was never stored
    anywhere" and advise `--rotate` (deleting the token the hub now holds). The token loses its pending label as
    soon as it is delivered; the message says what is left; a re-run without --rotate finishes, and says so."""
    first = program(hub, tmp_path)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    [old] = hub.oats("myorg")
    returncode, stdout, stderr = interrupted_at(hub, tmp_path, "DELETE", f"{TOKENS}/{old['id']}", "--rotate")
    secret = printed_secret(stdout)  # the rotated secret was delivered on stdout
    assert hub.token_secret_valid("myorg", secret), stderr
    assert returncode == 130, stderr
    message = stderr.strip().splitlines()[-1]
    assert "secret was delivered to this run's standard output" in message and "the new token works" in message
    assert "without --rotate to finish" in message and "never stored" not in message and "Traceback" not in stderr
    assert PENDING not in [t["label"] for t in hub.oats("myorg")]
    rerun = program(hub, tmp_path)
    rout, rerr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and rout == b"", rerr.decode()
    assert "never stored" not in rerr.decode() and "finished the earlier rotation" in rerr.decode()
    assert [t["label"] for t in hub.oats("myorg")] == [LABEL]
    assert hub.token_secret_valid("myorg", secret) and old["id"] not in {t["id"] for t in hub.oats("myorg")}


def test_ctrl_c_while_the_delivered_token_is_relabelled_still_relabels_it(hub: FakeDockerHub, tmp_path: Path) -> None:
    """SIGINT while the new token loses its pending label (the first request after its secret is printed): that
    request is finished all the same, the old token is left alone (the user asked to stop), and the message and a
    re-run say what was left."""
    hub.add_oat(
        "myorg", label=LABEL, resources=[{"type": "TYPE_REPO", "path": "myorg/*", "scopes": ["scope-image-push"]}]
    )
    [old] = hub.oats("myorg")
    returncode, stdout, stderr = interrupted_at(hub, tmp_path, "PATCH", TOKENS + "/.*", "--rotate")
    assert returncode == 130, stderr
    assert sorted(t["label"] for t in hub.oats("myorg")) == [LABEL, LABEL + ".new"]
    message = stderr.strip().splitlines()[-1]
    assert f"labelled {LABEL + '.new'!r}" in message and f"until the old token {LABEL!r} (id {old['id']})" in message
    rerun = program(hub, tmp_path, "--dry-run")
    _, rerr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and f"delete the old token {LABEL!r}" in rerr.decode(), rerr.decode()
    assert len(hub.oats("myorg")) == 2  # a dry run changes nothing
    rerun = program(hub, tmp_path)
    _, rerr = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, rerr.decode()
    assert [t["label"] for t in hub.oats("myorg")] == [LABEL]
    assert hub.token_secret_valid("myorg", printed_secret(stdout))


def test_old_token_left_by_a_failed_delete_is_deleted_by_the_rerun_without_rotate(hub: FakeDockerHub) -> None:
    """A rotation whose old token cannot be deleted keeps the new one under the delivered label (both work: the hub
    is never without a token), and says so; a run without --rotate then finishes it, creating nothing."""
    old = hub.add_oat("myorg", label=LABEL, resources=[{"type": "TYPE_REPO", "path": "myorg/*",
                                                        "scopes": ["scope-image-push"]}])  # fmt: skip
    hub.inject("DELETE", TOKENS + "/.*", Status(503), times=1000)
    first = provision(hub, rotate=True)
    assert first.error is None and len(first.delivered) == 1
    assert "delete it in Docker Hub's access-token settings, or run the same command without --rotate" in first.stderr
    assert sorted(t["label"] for t in hub.oats("myorg")) == [LABEL, LABEL + ".new"]
    assert hub.token_secret_valid("myorg", old) and hub.token_secret_valid("myorg", first.delivered[0])
    hub.clear_faults()
    finished = provision(hub)
    assert finished.error is None and finished.delivered == [], str(finished.error)
    assert finished.result is not None and finished.result.registry.password == ""
    assert [t["label"] for t in hub.oats("myorg")] == [LABEL]
    assert not hub.token_secret_valid("myorg", old) and hub.token_secret_valid("myorg", first.delivered[0])
    again = provision(hub)  # nothing left to finish: the token exists, as on any second run
    assert again.error is not None and "already exists" in str(again.error)


def test_rotate_after_an_unfinished_rotation_finishes_it_first(hub: FakeDockerHub) -> None:
    hub.add_oat(
        "myorg", label=LABEL, resources=[{"type": "TYPE_REPO", "path": "myorg/*", "scopes": ["scope-image-push"]}]
    )
    hub.inject("DELETE", TOKENS + "/.*", Status(503), times=1000)
    first = provision(hub, rotate=True)
    hub.clear_faults()
    assert first.error is None
    rotated = provision(hub, rotate=True)
    assert_one_working_token(hub, rotated)
    assert not hub.token_secret_valid("myorg", first.delivered[0])


def test_missing_sops_creation_rule_leaves_no_token(hub: FakeDockerHub, tmp_path: Path, real_sops: str) -> None:
    """The real sops refuses to encrypt without a creation rule: whether that is found before the token is created
    or when the secret is written, no token may survive, and the hub's files stay as they were."""
    values = tmp_path / "staging.values.yaml"
    values.write_text("# the hub's values\n")
    secret = tmp_path / "enc-staging.secret.values.yaml"
    env = {"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": PASSWORD, "SOPS_BIN": real_sops}
    args = ["dockerhub", "--namespace", "alice", "--hub", "staging", "--api-url", hub.url,
            "--values-file", str(values), "--secret-file", str(secret)]  # fmt: skip
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (1, 2), result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr
    assert hub.pats("alice") == []
    assert values.read_text() == "# the hub's values\n" and not secret.exists()


def test_deadline_during_the_creation_still_cleans_up(hub: FakeDockerHub) -> None:
    """The creation lands but its answer comes after the deadline: the clean-up gets time of its own."""
    from tests.servers.dockerhub import Delay

    hub.inject("POST", TOKENS, Delay(2.5))
    stream = io.StringIO()
    request = DockerHubRequest(namespace="myorg", hub="staging", cluster="c1", org=True, username="alice",
                               secret=PASSWORD, api_url=hub.url)  # fmt: skip
    with pytest.raises(ProvisionError) as info:
        run(request, reporter=Reporter(stream=stream), deadline=2.0,
            retry=Retry(total=0, backoff_factor=0, raise_on_status=False))  # fmt: skip
    assert "deadline" in str(info.value) and "was deleted again" in str(info.value)
    assert hub.oats("myorg") == []
