"""Plumbing shared by the HTTP servers that tests run in-process on 127.0.0.1.

``FakeQuay`` (quay.py), ``FakeDockerHub`` (dockerhub.py), ``FakeGoogle`` (artifact_registry.py) and ``TokenIssuer``
(registry.py) serve real HTTP/1.1 so that the code under test runs its real client (sessions, keep-alive, retries,
timeouts, error parsing) instead of a mock. Serving that way takes the same plumbing every time, and each server
had grown its own copy of it; this module is the one copy:

- ``LocalService``: ``host``/``url`` and ``with`` for anything started on a 127.0.0.1 port (``DistributionRegistry``
  uses it too, with a process of its own).
- ``LoopbackServer``: a ``ThreadingHTTPServer`` bound to port 0 and served by a daemon thread; ``stop()`` is safe
  twice and also wakes handler threads idling on keep-alive connections; the url stays valid after it.
- ``LoopbackHandler``: HTTP/1.1 keep-alive with TCP_NODELAY, ``read_body()`` (Content-Length), ``send_json()`` and
  ``respond()`` (always with Content-Length), ``reset_connection()`` (SO_LINGER 0, so the client sees a reset).
- ``FakeApi`` and ``FakeApiHandler``: for the two API fakes (Quay, Docker Hub), a request log (``LoggedRequest``),
  per-request latency, faults injected per method and path (``Status``, ``ResetBefore``, ``ResetAfter``, ``Delay``,
  plus any kind of answer a server adds, such as Quay's ``Html429``) and dispatch to ``_route_<name>`` methods
  (``route_pattern``, ``Response``, ``Reply``, ``json_response``).

What a server answers (its routes, state, error bodies and own kinds of fault) stays in its own module, which
re-exports the shared names tests import from it (``from tests.servers.quay import Status, ResetAfter``).
Standard library only.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, unquote, urlsplit

# --- faults and the request log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Answer with this status and JSON body (default: the server's error body for the status); not handled."""

    code: int
    body: object = None
    retry_after: str | None = None


@dataclass(frozen=True)
class ResetBefore:
    """Read the request, do not handle it, reset the TCP connection."""


@dataclass(frozen=True)
class ResetAfter:
    """Handle the request (state changes), then reset the connection instead of answering."""


@dataclass(frozen=True)
class Delay:
    """Sleep, then handle the request normally."""

    seconds: float


@dataclass(frozen=True)
class Interleave:
    """Run ``action()`` (in the server's handler thread, outside its lock), then handle the request normally.

    It slips work of another client, such as a whole concurrent run, in between two requests of the client under
    test, deterministically: the request waits until ``action`` returns.
    """

    action: Callable[[], object]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # percent-decoded, without the query
    query: str
    status: int | None  # None when the connection was reset
    fault: str | None  # class name of the injected fault, if any


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    fault: object
    times: int
    after: int


# --- routes and responses ---------------------------------------------------------------------------------


def route_pattern(template: str) -> re.Pattern[str]:
    """The regex of a path template such as ``/v2/orgs/{name}/access-tokens``: each ``{param}`` becomes a named
    group matching one path segment (still percent-encoded: match the raw path, then decode the groups)."""
    parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ...
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts)))


@dataclass(frozen=True)
class Raw:
    """Answer with these exact bytes (an HTML page, invalid UTF-8): a server that answers wrong; not handled."""

    code: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class Reply(Exception):
    """Raised inside a route handler to answer at once (an error response)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(
    status: int, obj: object, *headers: tuple[str, str], content_type: str = "application/json"
) -> Response:
    return Response(status, json.dumps(obj).encode(), (("Content-Type", content_type), *headers))


# --- servers ----------------------------------------------------------------------------------------------


class LocalService:
    """Something a test starts on a 127.0.0.1 port: ``with`` starts and stops it; ``host`` and ``url`` are known
    once it has started and stay valid after it stopped. A subclass sets ``_port`` in ``start()``."""

    _port: int | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"


class LoopbackServer(LocalService):
    """A ``ThreadingHTTPServer`` on a free 127.0.0.1 port, served by a daemon thread.

    The subclass passes its handler class (a ``LoopbackHandler``), which reaches the subclass as
    ``self.server.fake``. ``_lock`` (reentrant) guards the open connections and the subclass's own state;
    ``_log`` appends to the subclass's request log, ``requests``.
    """

    requests: list[Any]

    def __init__(self, handler: type[LoopbackHandler]) -> None:
        self._handler = handler
        self._lock = threading.RLock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    def start(self) -> Self:
        name = type(self).__name__
        if self._server is not None:
            raise RuntimeError(f"{name} is already running")
        self._server = _HTTPServer(("127.0.0.1", 0), self._handler, self)
        self._port = self._server.server_address[1]
        # A short poll interval keeps stop() fast; tests start one server each.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:  # wake handler threads idling on keep-alive connections
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _log(self, entry: Any) -> None:
        with self._lock:
            self.requests.append(entry)

    def _track(self, conn: socket.socket, *, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)


class FakeApi(LoopbackServer):
    """A ``LoopbackServer`` whose ``FakeApiHandler`` logs every request as a ``LoggedRequest``, waits ``latency``
    seconds, applies the first fault injected for its method and path, and otherwise hands the request to the
    subclass (``FakeApiHandler.call_fake``), whose route handlers ``_call_route`` runs.

    Faults: each request walks the rules in order; every matching rule with ``after > 0`` counts the request
    down and lets it pass; the first matching rule with ``after == 0`` applies its fault and, after ``times``
    uses, is dropped. ``Status`` and the server's own kinds of answer are answered by ``_fault_response``.
    """

    def __init__(self, handler: type[FakeApiHandler], *, latency: float = 0.0) -> None:
        super().__init__(handler)
        self.latency = latency
        self.requests: list[LoggedRequest] = []
        self._rules: list[_Rule] = []

    def inject(self, method: str, path_regex: str, fault: object, *, times: int = 1, after: int = 0) -> None:
        if times < 1 or after < 0:
            raise ValueError("times must be >= 1 and after >= 0")
        with self._lock:
            self._rules.append(_Rule(method.upper(), re.compile(path_regex), fault, times, after))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def writes(self) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _take_fault(self, method: str, path: str) -> object | None:
        with self._lock:
            chosen: object | None = None
            for rule in self._rules:
                if rule.method not in ("*", method) or not rule.pattern.fullmatch(path):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                elif chosen is None:
                    chosen = rule.fault
                    rule.times -= 1
            self._rules = [rule for rule in self._rules if rule.times > 0]
            return chosen

    def _call_route(self, name: str, call: object) -> Response:
        """Run the route handler ``_route_<name>`` of the subclass: its response, or that of a ``Reply`` it raises."""
        try:
            response: Response = getattr(self, f"_route_{name}")(call)
        except Reply as reply:
            return reply.response
        return response

    def _fault_response(self, fault: object) -> Response:
        """The answer to a fault that answers instead of handling the request: a ``Status`` (its body, else the
        server's ``_error_response``, with Retry-After if given), a ``Raw`` body, or a kind of the subclass's own."""
        if isinstance(fault, Raw):
            return Response(fault.code, fault.body, (("Content-Type", fault.content_type),))
        if not isinstance(fault, Status):
            return self._own_fault_response(fault)
        retry = (("Retry-After", fault.retry_after),) if fault.retry_after is not None else ()
        if fault.body is not None:
            return json_response(fault.code, fault.body, *retry)
        try:
            phrase = HTTPStatus(fault.code).phrase
        except ValueError:
            phrase = "Injected fault"
        error = self._error_response(fault.code, phrase)
        return Response(error.status, error.body, error.headers + retry)

    def _error_response(self, status: int, phrase: str) -> Response:
        """The server's usual error answer for ``status`` (reason ``phrase``): a ``Status`` fault without a body."""
        raise NotImplementedError

    def _own_fault_response(self, fault: Any) -> Response:
        """The answer to a kind of fault of the subclass's own, such as Quay's ``Html429``."""
        raise NotImplementedError


# --- HTTP plumbing ----------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[LoopbackHandler], fake: Any) -> None:
        self.fake = fake  # the LoopbackServer this serves
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up is not an error here
            super().handle_error(request, client_address)


class LoopbackHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 for a ``LoopbackServer``; a subclass adds the ``do_<METHOD>`` it serves."""

    protocol_version = "HTTP/1.1"  # keep-alive, so every response carries Content-Length
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body are two writes; without NODELAY, Nagle + delayed ACK add 40 ms per response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, alive=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the server's ``requests`` is the log."""

    def read_body(self) -> bytes:
        """The Content-Length body. Read it even when unused, so the next request on the connection parses."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(
        self,
        status: int,
        obj: object,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        content_type: str = "application/json",
    ) -> None:
        self.respond(json_response(status, obj, *headers, content_type=content_type))

    def respond(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def reset_connection(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client sees 'connection reset'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()  # the fd really closes when finish() closes rfile


class FakeApiHandler(LoopbackHandler):
    """Serves a request of a ``FakeApi``: its ``do_<METHOD>`` call ``serve()``, which applies latency
    and faults, logs the request and hands it to the fake through ``call_fake`` (unless a fault answers)."""

    def call_fake(self, method: str, split: SplitResult, body: bytes) -> Response:
        """Handle the request in the fake (``split.path`` is not percent-decoded)."""
        raise NotImplementedError

    def serve(self) -> None:
        fake = self.server.fake
        raw_body = self.read_body()  # always drain the body first
        split = urlsplit(self.path)
        path, method = unquote(split.path), self.command
        if fake.latency:
            time.sleep(fake.latency)
        fault = fake._take_fault(method, path)
        fault_name = type(fault).__name__ if fault else None
        if isinstance(fault, Delay):
            time.sleep(fault.seconds)
        if isinstance(fault, Interleave):
            fault.action()
        if isinstance(fault, ResetBefore):
            fake._log(LoggedRequest(method, path, split.query, None, fault_name))
            return self.reset_connection()
        # A Status or the server's own kind of answer replaces the handling.
        if fault is not None and not isinstance(fault, Delay | ResetAfter | Interleave):
            response = fake._fault_response(fault)
        else:
            try:
                response = self.call_fake(method, split, raw_body)
            except Exception:  # a bug in the fake: show it in the test output and answer 500
                traceback.print_exc()
                name = type(fake).__name__
                response = json_response(500, {"message": f"{name} crashed; see the traceback on stderr"})
        if isinstance(fault, ResetAfter):
            fake._log(LoggedRequest(method, path, split.query, None, fault_name))
            return self.reset_connection()
        # Log before answering, so a test that has its response also finds the entry.
        fake._log(LoggedRequest(method, path, split.query, response.status, fault_name))
        self.respond(response)
