"""Bad input, faults and unexpected errors at the command line: a clear message, the right exit code, no
traceback, no secret on stderr, nothing changed and no request sent."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli import app
from provision.cli.common import handled
from provision.console import Reporter
from provision.errors import add_secret
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import Delay, FakeQuay, Status

TOKEN = "Q" * 40
runner = CliRunner()


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        server.add_admin(TOKEN)
        yield server


def quay_cli(server: FakeQuay, *args: str, token: str = TOKEN) -> object:
    return runner.invoke(app, ["quay", "--org", "hubs", "--hub", "h", "--api-url", server.url, *args],
                         env={"QUAY_TOKEN": token})  # fmt: skip


def assert_clean_failure(result: object, code: int, *secrets: str) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == code, stderr  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    for secret in secrets:
        assert secret not in stderr
    return stderr


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("abcd1234\nefgh5678", "more than one line"),
        ("abcd1234 efgh5678", "whitespace"),
        ("abcd1234tökén5678", "non-ASCII"),
        ("abcd1234\x07efgh5678", "control character"),
    ],
    ids=["newline", "space", "non-latin1", "control"],
)
def test_unusable_token_in_the_environment(quay: FakeQuay, token: str, problem: str) -> None:
    stderr = assert_clean_failure(quay_cli(quay, token=token), 2, token, "abcd1234", "efgh5678")
    assert "QUAY_TOKEN" in stderr and problem in stderr
    assert quay.requests == []


def test_unusable_token_file(quay: FakeQuay, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\nsecond-line-secret\n")
    stderr = assert_clean_failure(quay_cli(quay, "--token-file", str(path), token=""), 2, TOKEN, "second-line-secret")
    assert "--token-file" in stderr and "more than one line" in stderr


def test_surrounding_whitespace_is_dropped(quay: FakeQuay) -> None:
    result = quay_cli(quay, token=f"  {TOKEN}\n")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"\xff\xfe binary", "not UTF-8"), (b"a: 1\x00\x01", "binary"), (b"a: [1\n", "not valid YAML")],
    ids=["latin1", "nul", "yaml"],
)
def test_bad_values_file_is_refused_before_any_request(
    quay: FakeQuay, tmp_path: Path, content: bytes, expected: str
) -> None:
    values = tmp_path / "h.values.yaml"
    values.write_bytes(content)
    code = 1 if expected == "not valid YAML" else 2  # broken YAML is ClusterRepoError; bad bytes are usage errors
    stderr = assert_clean_failure(quay_cli(quay, "--values-file", str(values)), code)
    assert expected in stderr and str(values) in stderr
    assert quay.requests == [] and values.read_bytes() == content


def test_directory_and_huge_and_binary_inputs(quay: FakeQuay, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    stderr = assert_clean_failure(quay_cli(quay, "--token-file", str(folder), token=""), 2)
    assert "--token-file" in stderr
    huge = tmp_path / "huge.values.yaml"
    huge.write_bytes(b"a: 1\n" * (2 * 1024 * 1024))
    assert "larger than" in assert_clean_failure(quay_cli(quay, "--values-file", str(huge)), 2)
    images = tmp_path / "images.yaml"
    images.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert "--images-file" in assert_clean_failure(quay_cli(quay, "--images-file", str(images)), 2)
    assert quay.requests == []


def test_unwritable_output_file_is_refused_before_any_request(quay: FakeQuay) -> None:
    # /proc takes no new files, even for root (a chmod would not stop root).
    stderr = assert_clean_failure(quay_cli(quay, "--values-file", "/proc/self/h.values.yaml"), 2)
    assert "--values-file" in stderr and "does not take new files" in stderr
    assert quay.requests == []


def test_dockerhub_bad_inputs_create_no_token(tmp_path: Path) -> None:
    with FakeDockerHub() as hub:
        hub.add_user("alice", password="alice-password-1")
        values = tmp_path / "h.values.yaml"
        values.write_bytes(b"\xff\xfe")
        env = {"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": "alice-password-1"}
        base = ["dockerhub", "--namespace", "alice", "--hub", "h", "--api-url", hub.url]
        for extra, code, text in (
            (["--values-file", str(values)], 2, "not UTF-8"),
            (["--values-file", "/proc/self/h.values.yaml"], 2, "does not take new files"),
        ):
            stderr = assert_clean_failure(runner.invoke(app, base + extra, env=env), code, "alice-password-1")
            assert text in stderr
        assert hub.requests == [] and hub.pats("alice") == []
        stderr = assert_clean_failure(
            runner.invoke(app, ["dockerhub", "--namespace", "alice", "--hub", "h", "--api-url", "notaurl"], env=env), 2
        )
        assert "invalid --api-url 'notaurl'" in stderr


def test_retries_are_visible_without_verbose(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/user/", Status(503))
    result = quay_cli(quay)
    assert result.exit_code == 0, result.stderr
    assert "GET " in result.stderr and "/api/v1/user/: HTTP 503" in result.stderr
    assert "attempt 2 of 6 in " in result.stderr


def test_deadline_ends_a_hung_server(quay: FakeQuay) -> None:
    quay.inject("GET", "/api/v1/user/", Delay(30), times=100)
    start = time.monotonic()
    result = quay_cli(quay, "--deadline", "2")
    stderr = assert_clean_failure(result, 1, TOKEN)
    assert time.monotonic() - start < 15
    assert "deadline" in stderr and "--deadline" in stderr


def test_an_answer_without_its_fields_is_the_servers_fault_in_one_paragraph(quay: FakeQuay) -> None:
    # An answer the API does not give (no username): the server's fault, named as such, without a traceback
    # (issue 17: never "a bug in provision"; the unexpected-error path itself is tested just below).
    quay.inject("GET", "/api/v1/user/", Status(200, body={"anonymous": False}))
    stderr = assert_clean_failure(quay_cli(quay), 1, TOKEN)
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "answered GET /api/v1/user/" in line and "the field 'username' is missing" in line
    assert "bug in provision" not in line


@pytest.mark.parametrize("debug", [False, True])
def test_handled_redacts_every_known_secret_from_unexpected_errors(debug: bool) -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    secret = "s3cr3t-value-that-leaks"
    with pytest.raises(Exception) as info, handled(reporter, debug=debug):
        add_secret(secret)
        raise RuntimeError(f"Invalid header value b'Bearer {secret}'")
    assert getattr(info.value, "exit_code", None) == 1
    text = stream.getvalue()
    assert secret not in text and "unexpected RuntimeError" in text
    assert ("Traceback" in text) is debug
    assert ("--debug" in text) is not debug


def test_the_cli_deadline_default_is_the_clients() -> None:
    from provision import httpretry
    from provision.cli import options

    assert options.DEFAULT_DEADLINE == httpretry.DEFAULT_DEADLINE
    help_text = runner.invoke(app, ["quay", "--help"]).stdout
    assert "--deadline" in help_text
