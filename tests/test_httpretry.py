"""The retry loop: what it says while retrying, and how the command's deadline cuts calls and waits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.util.retry import Retry

from provision import httpretry
from tests.servers.quay import Delay, FakeQuay, Html429, Status

SRC = Path(__file__).resolve().parents[1] / "src"


def test_each_retry_is_logged_at_info_with_attempt_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="provision")
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Status(503), times=2)
        retry = Retry(total=3, backoff_factor=0, raise_on_status=False)
        response = httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=retry, timeout=(1, 1))
    assert isinstance(response, requests.Response) and response.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [
        f"GET {quay.url}/api/v1/users/x: HTTP 503 Service Unavailable; attempt 2 of 4 in 0.0 s",
        f"GET {quay.url}/api/v1/users/x: HTTP 503 Service Unavailable; attempt 3 of 4 in 0.0 s",
    ]


def test_a_wait_longer_than_the_deadline_gives_up_with_the_answer() -> None:
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Html429(retry_after="600"))
        start = time.monotonic()
        response = httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=httpretry.default_retry(),
                                  timeout=(1, 1), deadline=httpretry.Deadline(5))  # fmt: skip
    assert isinstance(response, requests.Response) and response.status_code == 429
    assert time.monotonic() - start < 3


def test_a_hung_server_ends_at_the_deadline() -> None:
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Delay(5), times=10)
        start = time.monotonic()
        with pytest.raises(httpretry.Unreachable) as info:
            httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=httpretry.default_retry(),
                           timeout=(5, 30), deadline=httpretry.Deadline(1))  # fmt: skip
    assert time.monotonic() - start < 3
    assert info.value.deadline is not None and "1 s deadline" in str(info.value)


def test_header_safe() -> None:
    assert httpretry.header_safe("A" * 40)
    for bad in ("a b", "a\nb", "é", "a\x07b", "\t"):
        assert not httpretry.header_safe(bad)


class _RawServer:
    """A loopback HTTP server that answers every request with `body_size` bytes of JSON-ish filler, `per_second`
    bytes a second (None: as fast as the socket takes them). Stops by itself with the test."""

    def __init__(self, body_size: int, per_second: int | None) -> None:
        import socket

        self.body_size, self.per_second = body_size, per_second
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.body_size)  # fmt: skip
            sent, block = 0, (b" " * 65536 if self.per_second is None else b" ")
            while sent < self.body_size and not self.stopped:
                part = block[: self.body_size - sent]
                conn.sendall(part)
                sent += len(part)
                if self.per_second is not None:
                    time.sleep(1 / self.per_second)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()


@pytest.mark.parametrize("command", [["quay", "--org", "hubs"], ["dockerhub", "--namespace", "hubs2i2c"]])
def test_a_body_sent_one_byte_a_second_ends_at_the_deadline(command: list[str]) -> None:
    from typer.testing import CliRunner

    from provision.cli import app

    server = _RawServer(body_size=1000, per_second=1)
    try:
        env = {"QUAY_TOKEN": "Q" * 40, "DOCKERHUB_USERNAME": "someone", "DOCKERHUB_TOKEN": "dckr_pat_x"}
        start = time.monotonic()
        result = CliRunner().invoke(app, [*command, "--hub", "staging", "--api-url", server.url, "--deadline", "3"],
                                    env=env)  # fmt: skip
        elapsed = time.monotonic() - start
    finally:
        server.stop()
    assert elapsed < 5, elapsed
    assert result.exit_code == 1, result.stderr
    assert "sent the body too slowly" in result.stderr and "deadline of 3 s" in result.stderr


def test_a_huge_answer_is_not_held_in_memory(tmp_path: Path) -> None:
    """A 100 MB answer: the run stops reading at the cap, and its peak memory stays far below the body."""
    server = _RawServer(body_size=100 * 1024 * 1024, per_second=None)
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'provision', 'quay', '--org', 'hubs', '--hub', 'staging',"
        " '--api-url', sys.argv[1], '--deadline', '30'], capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", probe, server.url], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "QUAY_TOKEN": "Q" * 40, "PYTHONPATH": str(SRC)})  # fmt: skip
    finally:
        server.stop()
    code, peak_kib = (int(x) for x in out.stdout.split())
    assert code == 1, out.stderr
    assert "larger than 4 MiB" in out.stderr
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"


def test_verify_against_a_body_sent_one_byte_a_second_ends_at_the_deadline(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from provision.cli import app

    server = _RawServer(body_size=1000, per_second=1)
    password = tmp_path / "pw"
    password.write_text("build-pw\n")
    host = server.url.split("://")[1]
    try:
        start = time.monotonic()
        args = ["verify", "--server", server.url, "--username", "builder", "--password-file", str(password),
                "--image-prefix", f"{host}/hubs/x-", "--deadline", "3"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        elapsed = time.monotonic() - start
    finally:
        server.stop()
    assert elapsed < 5, elapsed
    assert result.exit_code == 1, result.stderr
    assert "too slowly" in result.stderr and "Traceback" not in result.stderr
