"""The toy kind's credentials API on 127.0.0.1: one credential per hub (user `toy-<hub>`, a random password),
created by POST, read by GET (password only at creation, like a real token API), deleted by DELETE."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.servers.base import LoopbackHandler, LoopbackServer


@dataclass(frozen=True)
class Call:
    method: str
    path: str


class _Handler(LoopbackHandler):
    server: Any

    def _serve(self) -> None:
        self.read_body()
        vault: ToyVault = self.server.fake
        path = urlsplit(self.path).path
        vault.requests.append(Call(self.command, path))
        hub = path.removeprefix("/v1/hubs/").removesuffix("/credential")
        if not path.startswith("/v1/hubs/") or not path.endswith("/credential") or "/" in hub:
            self.send_json(404, {"error": "no such route"})
            return
        status, body = vault.handle(self.command, hub)
        self.send_json(status, body)

    do_GET = do_POST = do_DELETE = _serve


class ToyVault(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.credentials: dict[str, str] = {}  # user -> password
        self.requests: list[Call] = []

    def handle(self, method: str, hub: str) -> tuple[int, object]:
        user = f"toy-{hub}"
        with self._lock:
            if method == "GET":
                return (200, {"username": user}) if user in self.credentials else (404, {"error": "none"})
            if method == "POST":
                if user in self.credentials:
                    return 409, {"error": "exists"}
                self.credentials[user] = secrets.token_urlsafe(24)
                return 201, {"username": user, "password": self.credentials[user]}
            if method == "DELETE":
                return (204, {}) if self.credentials.pop(user, None) else (404, {"error": "none"})
        return 405, {"error": method}

    def accepts(self, user: str, password: str) -> bool:
        """For the registry's LiveIssuer: the login is the vault's credential right now."""
        with self._lock:
            return self.credentials.get(user) == password

    @staticmethod
    def body(text: bytes) -> Any:
        return json.loads(text or b"{}")
