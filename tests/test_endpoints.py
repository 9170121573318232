"""Plain HTTP carries credentials only to this machine, or when the user says so: checked before any request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from provision import endpoints
from provision.cli import app
from provision.errors import UsageError


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_hosts(host: str) -> None:
    assert endpoints.is_loopback(host)


@pytest.mark.parametrize("host", ["quay.example.test", "10.0.0.1", "192.168.1.2", "::2", "localhost.example", ""])
def test_other_hosts(host: str) -> None:
    assert not endpoints.is_loopback(host)


def test_check_cleartext() -> None:
    endpoints.check_cleartext("https://quay.example.test", option="--api-url", allow_http=False)
    endpoints.check_cleartext("http://127.0.0.1:8080", option="--api-url", allow_http=False)
    endpoints.check_cleartext("http://[::1]:8080", option="--api-url", allow_http=False)
    endpoints.check_cleartext("http://quay.example.test", option="--api-url", allow_http=True)
    with pytest.raises(UsageError, match="plain HTTP to another machine.*--allow-http"):
        endpoints.check_cleartext("http://quay.example.test", option="--api-url", allow_http=False)


class Capture(ThreadingHTTPServer):
    """A forward proxy that records each request line and answers 502: whatever reaches it left in clear text."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _CaptureHandler)


class _CaptureHandler(BaseHTTPRequestHandler):
    server: Capture

    def _record(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[Capture]:
    server = Capture()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


COMMANDS = {
    "quay": ["quay", "--org", "hubs", "--hub", "staging", "--email", "a@b.org"],
    "dockerhub": ["dockerhub", "--namespace", "hubs2i2c", "--hub", "staging"],
    "remove quay": ["remove", "quay", "--org", "hubs", "--hub", "staging", "--yes"],
    "remove dockerhub": ["remove", "dockerhub", "--namespace", "hubs2i2c", "--hub", "staging", "--yes"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_http_to_another_host_sends_nothing(proxy: Capture, command: str) -> None:
    port = proxy.server_address[1]
    env = {"HTTP_PROXY": f"http://127.0.0.1:{port}", "http_proxy": f"http://127.0.0.1:{port}", "NO_PROXY": "",
           "no_proxy": "", "QUAY_TOKEN": "Q" * 40, "DOCKERHUB_USERNAME": "someone", "DOCKERHUB_TOKEN": "dckr_pat_x"}
    args = [*COMMANDS[command], "--api-url", "http://registry-api.example.test", "--deadline", "2"]
    refused = CliRunner().invoke(app, args, env=env)
    assert refused.exit_code == 2, refused.stderr
    assert "plain HTTP to another machine" in refused.stderr and "--allow-http" in refused.stderr
    assert proxy.seen == []
    # The opt-in sends: the same run reaches the capture proxy, so the test can see a request when there is one.
    allowed = CliRunner().invoke(app, [*args, "--allow-http"], env=env)
    assert allowed.exit_code == 1, allowed.stderr
    assert proxy.seen and all("registry-api.example.test" in line for line in proxy.seen)
