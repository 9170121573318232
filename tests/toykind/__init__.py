"""A toy registry kind that exists only in the tests: a credentials vault (vault.py) beside a real registry v2
server whose logins follow the vault. Its package is all a kind needs: the RegistryKind (here), how a hub's
credential is created (setup.py) and removed (remove.py). Nothing under src/ names it."""

from __future__ import annotations

from provision.registries.base import RegistryKind


class ToyKind(RegistryKind):
    """A registry at `host` (127.0.0.1:PORT of the test's docker-registry), credentials from a ToyVault."""

    name = "toyreg"
    title = "Toy registry"

    def __init__(self, host: str) -> None:
        self.host = host

    def recognises(self, host: str, username: str) -> bool:
        return host == self.host
