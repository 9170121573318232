"""A loopback reverse proxy for registries in tests and benchmarks: latency, faults (429 with Retry-After, resets)
and a count of requests in flight, in front of a real ``docker-registry`` or ``TokenIssuer``.

``RegistryProxy(upstream, latency=0.1)`` forwards every GET/HEAD to ``upstream`` (path and query unchanged) and
answers with the upstream's status, body and registry headers. A ``WWW-Authenticate`` realm naming a URL in
``rewrite`` is rewritten, so that a registry's token service can sit behind its own proxy too. ``peak`` is the
largest number of requests the proxy was handling at once: what a client's per-host limit must bound.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import SplitResult

import requests

from tests.servers.base import FakeApi, FakeApiHandler, Response, Status, json_response

__all__ = ["RegistryProxy", "Status"]
_PASSED_HEADERS = ("Content-Type", "WWW-Authenticate", "Docker-Distribution-Api-Version", "Docker-Content-Digest")


class RegistryProxy(FakeApi):
    def __init__(self, upstream: str, *, latency: float = 0.0, rewrite: dict[str, str] | None = None) -> None:
        super().__init__(_ProxyHandler, latency=latency)
        self.upstream = upstream.rstrip("/")
        self.rewrite = dict(rewrite or {})
        self.in_flight = 0
        self.peak = 0
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def forward(self, method: str, split: SplitResult, headers: dict[str, str]) -> Response:
        url = f"{self.upstream}{split.path}" + (f"?{split.query}" if split.query else "")
        answer = self._session().request(method, url, headers=headers, allow_redirects=False, timeout=10)
        passed = []
        for name in _PASSED_HEADERS:
            value = answer.headers.get(name)
            if value is None:
                continue
            if name == "WWW-Authenticate":
                for old, new in self.rewrite.items():
                    value = value.replace(old, new)
            passed.append((name, value))
        return Response(answer.status_code, answer.content, tuple(passed))

    def _error_response(self, status: int, phrase: str) -> Response:
        return json_response(status, {"errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNKNOWN",
                                                  "message": phrase}]})  # fmt: skip

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _ProxyHandler(FakeApiHandler):
    def call_fake(self, method: str, split: SplitResult, body: bytes) -> Response:
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
        proxy: Any = self.server.fake
        return proxy.forward(method, split, headers)

    def _counted(self) -> None:
        proxy: Any = self.server.fake
        proxy._enter()
        self._counting = True
        try:
            self.serve()
        finally:
            self._done_counting()

    def _done_counting(self) -> None:
        if getattr(self, "_counting", False):
            self._counting = False
            self.server.fake._leave()

    def respond(self, response: Response) -> None:
        # Counted out before the answer is written: a client may send its next request as soon as it has read it.
        self._done_counting()
        super().respond(response)

    def do_GET(self) -> None:
        self._counted()

    def do_HEAD(self) -> None:
        self._counted()
