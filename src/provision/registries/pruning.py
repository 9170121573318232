"""What a kind's Pruner gives `provision prune`, and what it is given (re-exported by registries/base.py, which
the verbs import): kept apart so that the default Pruner (registries/v2prune.py) needs nothing of base.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from provision.hostlimit import HostLimiter
    from provision.httpretry import Deadline


@dataclass(frozen=True)
class PruneAccess:
    """How a Pruner reaches its registry: the run's per-host limiter and deadline (a fleet run shares them), and
    endpoints to use instead of the configured ones (a mirror, a port-forward, tests)."""

    limiter: HostLimiter
    deadline: Deadline
    registry_url: str | None = None  # registry v2 endpoint
    api_url: str | None = None  # a kind's own API (Docker Hub's hub.docker.com)
    api_token: str | None = field(default=None, repr=False)  # that API's token where the kind needs one (Quay's)


@dataclass(frozen=True)
class TagInfo:
    """One tag as the registry describes it: times in epoch seconds (None: not recorded), size in bytes."""

    name: str
    digest: str | None = None
    pushed: float | None = None
    pulled: float | None = None  # None: never pulled, or the registry records no pulls
    size: int | None = None


class Pruner(Protocol):
    """A hub's repositories at one registry. `repositories` lists those under the hub's prefix (full names, as
    `tags`, `delete_tag` and `delete_repository` take them); `host` and `reference` name images as a hub's values
    do. `records_pulls`: tags carry a pull time; `by_digest`: a deletion removes every tag on the digest;
    `deletes_repositories`: an emptied repository can be deleted."""

    title: str
    host: str
    records_pulls: bool
    by_digest: bool
    deletes_repositories: bool
    notes: tuple[str, ...]

    def repositories(self) -> list[str]: ...

    def tags(self, repository: str) -> list[TagInfo]: ...

    def delete_tag(self, repository: str, tag: TagInfo) -> None: ...

    def delete_repository(self, repository: str) -> None: ...

    def close(self) -> None: ...
