"""The registry kinds, in one list: each kind's package holds everything specific to it (base.py: the interface).

Kept light: a kind's API client and flows are imported by the functions that use them, so listing the kinds costs
nothing at start-up.
"""

from __future__ import annotations

from provision.registries.artifact_registry import KIND as ARTIFACT_REGISTRY
from provision.registries.base import RegistryKind, host_of
from provision.registries.dockerhub import KIND as DOCKERHUB
from provision.registries.quay import KIND as QUAY

GENERIC = RegistryKind()  # any other registry v2 server: verified, never set up
# In the order a hub's server is recognised: Quay last, as it also claims any user name with a `+` (its robots).
KINDS: list[RegistryKind] = [ARTIFACT_REGISTRY, DOCKERHUB, QUAY]


def recognise(server: str, username: str) -> RegistryKind:
    """The kind of the registry a hub pushes to, from its push server and user name (GENERIC when none claims it)."""
    host = host_of(server)
    return next((kind for kind in KINDS if kind.recognises(host, username)), GENERIC)


def named(name: str) -> RegistryKind:
    """The kind a HubRegistry names (GENERIC for `registry` or a name no kind has)."""
    return next((kind for kind in KINDS if kind.name == name), GENERIC)


def register(kind: RegistryKind) -> None:
    """Add a kind (first, so it is asked before the others), e.g. a toy kind in the tests."""
    if kind not in KINDS:
        KINDS.insert(0, kind)


def unregister(kind: RegistryKind) -> None:
    if kind in KINDS:
        KINDS.remove(kind)
