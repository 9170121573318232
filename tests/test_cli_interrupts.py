"""Ctrl-C (SIGINT to a real `python -m provision` process): what the interrupted message says fits what the command
had done. Read-only commands and a removal stopped at its prompt changed nothing; only commands stopped mid-change
say "re-run the same command to finish" (cli/common.handled)."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from provision.cli.common import INTERRUPTED_MIDWAY, handled
from provision.console import Reporter
from provision.errors import EXIT_INTERRUPTED, PromptInterrupted
from tests.registries.artifact_registry import test_create as test_gcp
from tests.servers.quay import FakeQuay
from tests.verbs import test_remove
from tests.verbs.test_remove import TOKEN, Repo, provision_quay, quay_args

repo = test_remove.repo
quay = test_remove.quay
env = test_gcp.env

READ_ONLY = "error: interrupted; nothing was changed"


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "provision", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # the test runner may ignore SIGINT
    )  # fmt: skip


def _interrupt(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    return proc.returncode, stderr.decode()


def _interrupt_at_prompt(proc: subprocess.Popen[bytes], check: Callable[[], bool] | None = None) -> tuple[int, str]:
    """Wait for the `[y/N]: ` prompt (it has no newline: read what comes), then Ctrl-C; `check` holds meanwhile."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"[y/N]: " not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk and time.monotonic() < deadline, seen.decode()
        seen += chunk
    assert check is None or check()
    code, rest = _interrupt(proc)
    return code, seen.decode() + rest


@pytest.mark.parametrize("command", ["verify", "doctor"])
def test_a_read_only_command_interrupted_says_nothing_was_changed(tmp_path: Path, command: str) -> None:
    """The cluster.yaml is a FIFO nobody writes to: the command blocks reading it until Ctrl-C."""
    folder = tmp_path / "c1"
    folder.mkdir()
    os.mkfifo(folder / "cluster.yaml")
    proc = _start([command, str(folder)])
    deadline = time.monotonic() + 30
    while True:  # a writer can open the FIFO only once the command has opened it for reading
        try:
            writer = os.open(folder / "cluster.yaml", os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            assert exc.errno == errno.ENXIO and time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
    try:
        time.sleep(0.1)  # now blocked in read()
        code, stderr = _interrupt(proc)
    finally:
        os.close(writer)
    assert code == EXIT_INTERRUPTED, stderr
    assert stderr.strip().splitlines()[-1] == READ_ONLY
    assert "re-run" not in stderr


def test_a_removal_interrupted_at_its_prompt_says_nothing_was_changed(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    before, logged = repo.snapshot(), len(quay.requests)
    proc = _start(["remove", "quay", *quay_args(quay), *repo.files_args()], env=repo.env(QUAY_TOKEN=TOKEN))
    code, stderr = _interrupt_at_prompt(proc)
    assert code == EXIT_INTERRUPTED, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted at the confirmation prompt; nothing was changed"
    assert "re-run" not in stderr
    assert repo.snapshot() == before
    assert quay.robot_token("hubs", "image_builder") is not None
    assert [r.method for r in quay.requests[logged:] if r.method != "GET"] == []


@pytest.mark.parametrize(
    ("raised", "on_interrupt", "message"),
    [
        (KeyboardInterrupt(), None, INTERRUPTED_MIDWAY),  # mid-change: the re-run finishes
        (KeyboardInterrupt(), "interrupted; nothing was changed", "interrupted; nothing was changed"),
        (PromptInterrupted(), None, "interrupted at the confirmation prompt; nothing was changed"),
        (
            PromptInterrupted(
                left="'hub1' could not be taken out of container_repos in c1.tfvars again (…): remove it by hand"
            ),
            None,
            "interrupted at the confirmation prompt; nothing was applied, but 'hub1' "
            "could not be taken out of container_repos in c1.tfvars again (…): remove it by hand",
        ),
    ],
)
def test_handled_says_what_the_interrupted_command_had_done(
    raised: BaseException, on_interrupt: str | None, message: str
) -> None:
    stream = io.StringIO()
    extra = {} if on_interrupt is None else {"on_interrupt": on_interrupt}
    with pytest.raises(typer.Exit) as info, handled(Reporter(stream=stream), debug=False, **extra):
        raise raised
    assert info.value.exit_code == EXIT_INTERRUPTED
    assert stream.getvalue().strip() == f"error: {message}"


@pytest.mark.parametrize("rotate", [False, True])
def test_gcp_interrupted_at_its_prompt_says_nothing_was_changed(env: test_gcp.Env, rotate: bool) -> None:
    """`provision gcp` adds the hub to container_repos before it plans; Ctrl-C at "Apply these …?" puts the file
    back byte for byte, applies nothing and says so (not "re-run to finish"). --rotate edits no file."""
    hub = "existing" if rotate else "hub1"
    before, keys = env.tfvars.read_bytes(), env.state_keys()
    args = ["gcp", "--cluster", "c1", "--hub", hub, "--terraform-dir", str(env.module), "--terraform-bin", env.tofu]
    proc = _start([*args, *(["--rotate"] if rotate else [])])
    code, stderr = _interrupt_at_prompt(
        proc,
        check=None if rotate else lambda: b"hub1" in env.tfvars.read_bytes(),  # edited before the plan
    )
    assert code == EXIT_INTERRUPTED, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted at the confirmation prompt; nothing was changed"
    assert "re-run" not in stderr and "Traceback" not in stderr
    assert env.tfvars.read_bytes() == before
    assert env.state_keys() == keys


def test_gcp_interrupted_during_apply_keeps_the_hub_and_the_same_command_finishes(env: test_gcp.Env) -> None:
    """Issue 18: Ctrl-C in a terminal (SIGINT to the whole foreground process group) while terraform applies. The
    engine runs in a process group of its own, so it gets exactly one SIGINT, from provision, and stops gracefully
    after saving its state. The state then holds part of the hub's registry: the hub stays in container_repos, the
    exit code is 130, the message names what the state holds, and the same command finishes the job."""
    hub = "slow-on-apply"
    args = ["gcp", "--cluster", "c1", "--hub", hub, "--terraform-dir", str(env.module), "--terraform-bin", env.tofu]
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", *args, "--yes"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # its own foreground group, as a shell gives a command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    seen, deadline = b"", time.monotonic() + 60
    while f'registry_sa_key["{hub}"]: Creating...'.encode() not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk and time.monotonic() < deadline, seen.decode()
        seen += chunk
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    stdout, rest = proc.communicate(timeout=60)
    stderr = seen.decode() + rest.decode()
    assert time.monotonic() - started < 30, "terraform was not interrupted: it slept on"
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert stdout == b""  # no values for a hub without a key
    assert "interrupt: passed on to terraform" in stderr and "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("error: interrupted during terraform apply; terraform stopped after saving its state")
    assert f'terraform_data.registry["{hub}"]' in message and f'terraform_data.registry_sa["{hub}"]' in message
    assert f"'{hub}' stays in container_repos of {env.tfvars}" in message
    assert message.endswith("run the same command to finish: it plans and applies only what is missing.")
    assert f'"{hub}",' in env.tfvars.read_text()
    held = env.tf("state", "list", "-no-color").stdout.split()
    assert f'terraform_data.registry["{hub}"]' in held

    (env.module / "apply-fast").touch()
    result, _ = env.run(hub=hub)
    assert result.applied and hub in env.state_keys()
