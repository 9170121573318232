"""Each hub's image retention, as fleet verify reports it: the kind reads it (RegistryKind's retention block) from
the infrastructure repository's files or, with a token, from the registry's API; never named here by kind.

`--require-retention` (a nightly check) turns a hub whose retention is "none" into a failing check; "unknown"
stays a check that could not be made.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision import httpretry, registries
from provision.console import Reporter
from provision.hostlimit import HostLimiter
from provision.hubconfig import HubRegistry
from provision.registries.base import Retention, RetentionQuery, host_of, infrastructure_root
from provision.verbs import verify as single

RETENTION_CHECK = "image retention policy"
UNKNOWN = Retention("unknown", "the hub's registry values could not be read")


def tokens(environ: Mapping[str, str], reporter: Reporter) -> dict[str, str]:
    """Each kind's retention token from the environment, by kind name, redacted from every line."""
    found: dict[str, str] = {}
    for kind in registries.KINDS:
        token = kind.retention_token(environ)
        if token:
            reporter.add_secret(token)
            found[kind.name] = token
    return found


class Reader:
    """The retention of a run's hubs: the kinds' tokens read once, and a policy that several hubs share (a Quay
    organization's, keyed by RegistryKind.retention_scope) asked of the registry once, however many hubs use it."""

    def __init__(self, environ: Mapping[str, str], reporter: Reporter, api_urls: Mapping[str, str] | None = None):
        self.tokens = tokens(environ, reporter)
        self.api_urls = dict(api_urls or {})
        self._known: dict[tuple[str, str], Retention] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def of(
        self, registry: HubRegistry, *, cluster: str, hub: str, folder: Path | None,
        limiter: HostLimiter | None = None, deadline: httpretry.Deadline | None = None,
    ) -> Retention:  # fmt: skip
        kind = registries.named(registry.kind)
        scope = kind.retention_scope(registry)

        def ask() -> Retention:
            return hub_retention(registry, cluster=cluster, hub=hub, folder=folder, tokens=self.tokens,
                                 api_urls=self.api_urls, limiter=limiter, deadline=deadline)  # fmt: skip

        if scope is None:
            return ask()
        with self._lock:  # one lock per shared policy: hubs checked at once wait for the first to ask
            key_lock = self._locks.setdefault((kind.name, scope), threading.Lock())
        with key_lock:
            known = self._known.get((kind.name, scope))
            if known is None:
                known = ask()
                if known.state != "unknown":  # an unknown answer may be the deadline's: the next hub asks again
                    self._known[(kind.name, scope)] = known
            return known


def hub_retention(
    registry: HubRegistry, *, cluster: str, hub: str, folder: Path | None, tokens: Mapping[str, str],
    api_urls: Mapping[str, str], limiter: HostLimiter | None = None, deadline: httpretry.Deadline | None = None,
) -> Retention:  # fmt: skip
    """The hub's retention as its kind reads it; a kind's failure is "unknown", never the end of the run."""
    kind = registries.named(registry.kind)
    query = RetentionQuery(registry, cluster, hub, infrastructure_root(folder) if folder else None,
                           tokens.get(kind.name), api_urls.get(host_of(registry.server)), limiter,
                           deadline)  # fmt: skip
    try:
        return kind.retention(query)
    except Exception as exc:  # noqa: BLE001 - a hub's retention is a report, not a verdict on the run
        return Retention("unknown", f"unexpected {type(exc).__name__} while reading it")


def checks(retention: Retention, *, required: bool) -> list[single.Check]:
    """With --require-retention: "none" fails, "unknown" could not be checked; otherwise no check."""
    if not required:
        return []
    status = {"server-side": "pass", "none": "fail", "unknown": "could-not-check"}[retention.state]
    return [single.Check(RETENTION_CHECK, status, retention.label())]  # type: ignore[arg-type]


def as_dict(retention: Retention | None) -> dict[str, Any]:
    found = retention or UNKNOWN
    return {"state": found.state, "detail": found.detail}
