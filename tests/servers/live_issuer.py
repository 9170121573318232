"""A registry whose logins are decided by the system that owns the credentials, at the moment of the login.

``LiveIssuer`` is the ``TokenIssuer`` of tests/servers/registry.py with one change: a user name and password are
accepted when ``check(user, password)`` says so *now*. Tests wire it to the Quay test server's robot token, the
Docker Hub test server's tokens, or the key in an OpenTofu state, so a rotated-away credential is refused by the
registry as soon as the rotation happened, as the real registries do, and the new one is accepted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from tests.servers.registry import TokenIssuer

Check = Callable[[str, str], bool]


class LiveIssuer(TokenIssuer):
    def __init__(self, check: Check, *, repositories: str = "*") -> None:
        super().__init__({}, {})
        self.check = check
        self.repositories = repositories
        self.logins: list[tuple[str, bool]] = []  # (user, accepted), never the password

    def granted_actions(self, user: str, repository: str, requested: object) -> list[str]:
        # Whoever logged in may push and pull everywhere: the proof is about the credential, not the grants.
        return [a for a in dict.fromkeys(requested) if a in ("pull", "push")]  # type: ignore[call-overload]

    def _authenticate(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except ValueError:
            return None
        accepted = bool(sep) and self.check(user, password)
        self.logins.append((user, accepted))
        return user if accepted else None


def state_key_check(state_file: Callable[[], Path], hub: str) -> Check:
    """`_json_key` with the key that the OpenTofu state holds for `hub` right now (the registry_sa_keys output)."""

    def check(user: str, password: str) -> bool:
        try:
            state = json.loads(state_file().read_text())
        except (OSError, ValueError):
            return False
        live = (state.get("outputs", {}).get("registry_sa_keys", {}).get("value") or {}).get(hub)
        return user == "_json_key" and live is not None and password == live

    return check
