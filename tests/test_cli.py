"""The command line: streams, exit codes, token sources and the terminal guard, end to end over HTTP."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provision import __version__
from provision.cli import app
from tests.helpers import helm_merge, validate_hub_values
from tests.servers.quay import FakeQuay

TOKEN = "Q" * 40
runner = CliRunner()


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_user("admin", email="admin@example.org")
        server.add_user("alice")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        yield server


def invoke(*args: str, token: str | None = TOKEN) -> object:
    env = {"QUAY_TOKEN": token} if token else {"QUAY_TOKEN": ""}
    return runner.invoke(app, list(args), env=env)


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"provision {__version__}\n"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "quay" in result.stdout
    assert "QUAY_TOKEN" in runner.invoke(app, ["quay", "--help"]).stdout


@pytest.mark.parametrize(
    "command", [["quay"], ["gcp"], ["dockerhub"], ["profile"], ["verify"], ["doctor"], ["remove", "quay"],
                ["remove", "dockerhub"], ["remove", "gcp"]],
)  # fmt: skip
def test_help_groups_every_option_in_a_panel(command: list[str]) -> None:
    """Only --help itself stays under "Options:"; the registry commands show the shared panels in a fixed order."""
    text = runner.invoke(app, [*command, "--help"]).stdout
    listed = text.split("\nOptions:\n")[1]
    assert [line.split()[0] for line in listed.splitlines() if line.startswith("  -")] == ["--help"]
    if command[0] in ("quay", "gcp", "dockerhub"):
        # Arguments: [CLUSTER HUB] (issue 21) come first where a command takes them
        headings = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")
                    and line != "Arguments:"]  # fmt: skip
        # Retention (issue 20) follows the registry's own options where the kind has a retention policy.
        retention = ["Retention:"] if command[0] in ("quay", "gcp") else []
        assert headings == ["Registry:", *retention, "Hub files:", "Run:", "Limits:", "After --rotate:", "Output:",
                            "Options:"]  # fmt: skip


def test_version_is_the_installed_distributions() -> None:
    # The distribution is jupyterhub-image-registry (PyPI's `provision` is another project); setuptools-scm
    # writes the version from the git tag at install time, so an installed tree never says 0+unknown.
    from importlib.metadata import version

    assert __version__ == version("jupyterhub-image-registry") != "0+unknown"


def test_quay_prints_one_secret_document_on_stdout(quay: FakeQuay) -> None:
    result = invoke(
        "quay",
        "--org",
        "hubs",
        "--cluster",
        "c1",
        "--hub",
        "staging",
        "--api-url",
        quay.url,
        "--member",
        "alice",
    )
    assert result.exit_code == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == 1
    secret = docs[0]
    robot_token = quay.robot_token("hubs", "image_builder")
    assert secret["binderhub-service"]["config"]["DockerRegistry"] == {"password": robot_token}
    assert secret["binderhub-service"]["buildPodsRegistryCredentials"] == {"password": robot_token}
    assert secret["jupyterhub"]["imagePullSecret"] == {
        "create": True,
        "registry": quay.host,
        "username": "hubs+image_builder",
        "password": robot_token,
    }
    # stderr: progress, summary, member report and the public values; never a secret.
    assert "summary: create organization hubs" in result.stderr
    assert "alice: invited to team owners" in result.stderr
    public = yaml.safe_load(result.stderr.split("public values (for <hub>.values.yaml):\n")[1])
    assert public["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == f"{quay.host}/hubs/c1-staging-"
    validate_hub_values(helm_merge(public, secret))
    assert robot_token not in result.stderr and TOKEN not in result.stderr

    again = invoke(
        "quay",
        "--org",
        "hubs",
        "--cluster",
        "c1",
        "--hub",
        "staging",
        "--api-url",
        quay.url,
        "--member",
        "alice",
    )
    assert again.exit_code == 0
    assert "nothing to do" in again.stderr
    assert again.stdout == result.stdout


def test_json_format(quay: FakeQuay) -> None:
    result = invoke("quay", "--org", "hubs", "--hub", "h", "--api-url", quay.url, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["changes"][0] == f"create organization hubs (on {quay.host})"
    assert doc["public_values"]["binderhub-service"]["enabled"] is True
    assert doc["secret_values"]["jupyterhub"]["imagePullSecret"]["password"] == quay.robot_token(
        "hubs", "image_builder"
    )


def test_token_file(quay: FakeQuay, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = invoke("quay", "--org", "hubs", "--api-url", quay.url, "--token-file", str(token_file), token=None)
    assert result.exit_code == 0, result.stderr
    assert quay.org_exists("hubs")


def test_dry_run_without_token_needs_no_server() -> None:
    result = invoke("quay", "--org", "hubs", "--cluster", "c", "--hub", "h", "--dry-run", token=None)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "+ create organization hubs" in result.stderr
    assert "image_prefix: quay.io/hubs/c-h-" in result.stderr
    assert result.stderr.rstrip().endswith("dry run: nothing was changed")


def test_dry_run_json_is_a_machine_readable_plan(quay: FakeQuay) -> None:
    result = invoke("quay", "--org", "hubs", "--api-url", quay.url, "--dry-run", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["dry_run"] is True
    assert quay.writes() == []


@pytest.mark.parametrize(
    ("args", "token", "message"),
    [
        (["--org", "Bad_Org"], TOKEN, "invalid organization name 'Bad_Org'"),
        (["--org", "my_hubs"], TOKEN, "BinderHub replaces '_' by '-'"),
        (["--org", "hubs"], None, "no Quay token"),
        (["--org", "hubs", "--token-file", "/nonexistent/token"], None, "cannot read --token-file"),
        (["--org", "hubs", "--team", "everyone"], TOKEN, "Invalid value"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    quay: FakeQuay, args: list[str], token: str | None, message: str
) -> None:
    result = invoke("quay", "--api-url", quay.url, *args, token=token)
    assert result.exit_code == 2
    assert message in result.stderr
    assert quay.requests == []
    assert result.stdout == ""


def test_operational_error_exit_1_one_paragraph_no_traceback(quay: FakeQuay) -> None:
    result = invoke("quay", "--org", "hubs", "--api-url", quay.url, token="W" * 40)
    assert result.exit_code == 1
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "did not accept the token" in error_lines[0]
    assert "Traceback" not in result.stderr and "W" * 40 not in result.stderr


def test_verbose_logs_calls_but_not_tokens(quay: FakeQuay) -> None:
    result = invoke("quay", "--org", "hubs", "--api-url", quay.url, "-v")
    assert result.exit_code == 0
    assert "GET " in result.stderr and "/api/v1/user/ -> 200" in result.stderr
    assert TOKEN not in result.stderr and quay.robot_token("hubs", "image_builder") not in result.stderr


def _run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the real console script with stdout on a pseudo-terminal; returns (exit code, what the terminal got)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", *args],
        stdout=terminal,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(), b"".join(chunks).decode()


def test_secrets_refused_on_a_terminal_unless_show_secrets(quay: FakeQuay) -> None:
    args = ["quay", "--org", "hubs", "--api-url", quay.url]
    code, output = _run_on_terminal(args, {"QUAY_TOKEN": TOKEN})
    assert code == 2 and "stdout is a terminal" in output
    assert quay.requests == []  # refused before any change
    code, output = _run_on_terminal([*args, "--show-secrets"], {"QUAY_TOKEN": TOKEN})
    assert code == 0
    assert quay.robot_token("hubs", "image_builder") in output


def test_the_verbose_log_handler_does_not_outlive_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v shows the `provision` loggers through the run's reporter; CliRunner closes the run's stderr afterwards, so a
    handler left behind would make every later log call (another test's) write into a closed stream."""
    import logging

    logger = logging.getLogger("provision")
    before = (logger.handlers[:], logger.level)
    password = tmp_path / "pw"
    password.write_text("x\n")
    args = ["verify", "-v", "--server", "http://127.0.0.1:9", "--username", "u", "--password-file", str(password),
            "--image-prefix", "127.0.0.1:9/hubs/x-", "--deadline", "5"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "debug: provision.registry: " not in result.stdout
    assert "ask http://127.0.0.1:9/v2/" in result.stderr  # the run itself did log through the reporter
    assert (logger.handlers, logger.level) == before
    logging.getLogger("provision.registry").warning("after the command")
    assert "Logging error" not in capsys.readouterr().err
