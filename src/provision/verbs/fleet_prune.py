"""provision prune PATH: client-side retention for every image-building hub under a folder of the 2i2c layout.

The hubs are found as fleet verify finds them (verbs/fleet_hubs.find_hubs: cluster.yaml's files merged in order,
the hubs that enable binderhub-service), each encrypted file decrypted once. Then, under one deadline and one per-host
limiter: every hub's repositories are listed and planned (verbs/prune.scan), the whole plan is shown (per hub and
repository), asked about once, and applied hub by hub. A hub whose kind has no pruner, or whose registry has a
server-side policy, is reported and left alone; a hub that fails is reported and the others go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provision import httpretry, registries, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import DEFAULT_PER_HOST, HostLimiter
from provision.hubfiles import cluster as clusterfiles
from provision.registries.base import PruneAccess, Pruner, host_of
from provision.verbs import fleet_hubs, fleet_retention, prune
from provision.verbs import verify_values as values
from provision.verbs.prune_rules import Rules
from provision.verbs.remove import Confirm, paused

Status = Literal["planned", "pruned", "declined", "not-pruned", "failed"]
LATE = "the deadline passed before this hub's turn: run the same command again (it lists the registries anew)"


@dataclass(frozen=True)
class FleetPruneRequest:
    path: Path
    rules: Rules
    clusters: frozenset[str] = frozenset()
    hubs: frozenset[str] = frozenset()  # `hub` or `cluster/hub`
    registry_urls: Mapping[str, str] = field(default_factory=dict)  # registry host -> v2 URL to talk to instead
    api_url: str | None = None  # the kinds' own API (Docker Hub's), for tests
    environ: Mapping[str, str] = field(default_factory=dict)  # retention tokens (a server-side policy is left alone)
    sops_bin: str | None = None
    deadline: float = httpretry.DEFAULT_DEADLINE
    per_host: int = DEFAULT_PER_HOST
    jobs: int = prune.DEFAULT_JOBS
    yes: bool = False
    dry_run: bool = False


@dataclass
class HubPrune:
    """One hub's part of the run: its plan and what was done (`detail`: why it was not pruned, or failed)."""

    cluster: str
    hub: str
    status: Status
    detail: str = ""
    retention: str = ""
    prefix: str = ""  # the hub's image prefix
    result: prune.PruneResult | None = None
    pruner: Pruner | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "hub": self.hub, "status": self.status, "detail": self.detail,
                "retention": self.retention, "plan": self.result.as_dict() if self.result else None}  # fmt: skip


@dataclass
class FleetPruneResult:
    path: str
    hubs: list[HubPrune]
    skipped: tuple[str, ...]  # cluster/hub without binderhub-service
    dry_run: bool = False
    declined: bool = False
    elapsed: float = 0.0
    peak_in_flight: dict[str, int] = field(default_factory=dict)

    def count(self, attribute: str) -> int:
        return sum(getattr(h.result, attribute) for h in self.hubs if h.result is not None)

    @property
    def to_delete(self) -> int:
        return self.count("to_delete")

    @property
    def ok(self) -> bool:
        return not self.declined and all(h.status != "failed" for h in self.hubs)

    def summary(self) -> str:
        by = {s: sum(1 for h in self.hubs if h.status == s) for s in ("pruned", "not-pruned", "failed")}
        return (f"{len(self.hubs)} hubs: deleted {self.count('deleted_tags')} tag(s) and "
                f"{self.count('deleted_repositories')} empty repositories in {by['pruned']} hub(s); "
                f"{by['not-pruned']} not pruned, {by['failed']} failed ({self.elapsed:.1f} s)")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "dry_run": self.dry_run, "declined": self.declined,
                "to_delete": self.to_delete, "deleted": {"tags": self.count("deleted_tags"),
                                                         "repositories": self.count("deleted_repositories")},
                "skipped": list(self.skipped), "seconds": round(self.elapsed, 3),
                "hubs": [h.as_dict() for h in self.hubs]}  # fmt: skip


# --- opening each hub --------------------------------------------------------------------------------------------


def _decrypt_all(targets: list[fleet_hubs.Target], request: FleetPruneRequest, reporter: Reporter,
                 clock: httpretry.Deadline) -> dict[Path, fleet_hubs.Decrypted]:  # fmt: skip
    """Each encrypted file once, however many hubs list it; its secret values redacted from then on."""
    needed = list(dict.fromkeys(p for t in targets if not t.problem for p in sorted(t.encrypted, key=t.files.index)))
    if not needed:
        return {}
    runner = sops.Sops(sops.find_binary(request.sops_bin))
    reporter.info(f"decrypting {len(needed)} encrypted files with sops")
    with ThreadPoolExecutor(max_workers=max(1, min(len(needed), os.cpu_count() or 2))) as pool:
        found = dict(zip(needed, pool.map(lambda p: fleet_hubs.decrypt_one(runner, p, clock), needed), strict=True))
    for secret in found.values():
        for value in fleet_hubs.secret_leaves(secret.doc):
            reporter.add_secret(value)
    return found


def _hub_values(target: fleet_hubs.Target, secrets: Mapping[Path, fleet_hubs.Decrypted]) -> Mapping[Any, Any]:
    """The hub's merged values (its secrets in their place). Raises UsageError saying which file is missing."""
    if target.problem:
        raise UsageError(target.problem)
    merged: dict[Any, Any] = {}
    for path in target.files:
        doc = secrets[path].doc if path in target.encrypted else target.plain[path]
        if doc is None:
            secret = secrets[path]
            raise UsageError(f"{path.name}: " + ("the deadline passed while sops decrypted it" if secret.late
                                                 else secret.error or "sops could not decrypt it"))  # fmt: skip
        merged = clusterfiles.merge(merged, doc)
    return fleet_hubs.hub_values(merged, target.chart)


def _open(target: fleet_hubs.Target, view: Mapping[Any, Any], request: FleetPruneRequest, access: PruneAccess,
          reader: fleet_retention.Reader, reporter: Reporter) -> HubPrune:  # fmt: skip
    """The hub's Pruner, or why it is not pruned: no pruner for its kind, or a server-side policy."""
    hub = HubPrune(target.cluster, target.hub, "planned")
    reg, _ = values.from_values(view, {})
    reporter.add_secret(reg.password)
    hub.prefix = reg.image_prefix
    kind = registries.named(reg.kind)
    retention = reader.of(reg, cluster=target.cluster, hub=target.hub, folder=target.folder, limiter=access.limiter,
                          deadline=access.deadline)  # fmt: skip
    hub.retention = retention.label()
    if retention.state == "server-side":
        hub.status, hub.detail = "not-pruned", f"{kind.title} prunes it server-side"
        return hub
    url = request.registry_urls.get(kind.lookup_host(reg)) or request.registry_urls.get(host_of(reg.server))
    pruner = kind.pruner(reg, PruneAccess(access.limiter, access.deadline, url, request.api_url))
    if pruner is None:
        hub.status, hub.detail = "not-pruned", f"provision prune does not prune {kind.title} registries yet"
    elif request.rules.unused_for is not None and not pruner.records_pulls:
        pruner.close()
        hub.status, hub.detail = "not-pruned", f"--unused-for needs pull times, and {pruner.title} records none"
    else:
        hub.pruner = pruner
    return hub


def _failed(target: fleet_hubs.Target, exc: ProvisionError) -> HubPrune:
    return HubPrune(target.cluster, target.hub, "failed", str(exc))


# --- the run -----------------------------------------------------------------------------------------------------


def _plan(hub: HubPrune, request: prune.PruneRequest, images: set[str], reporter: Reporter, start: float) -> None:
    """List and decide the hub's repositories; a failure is the hub's, not the run's."""
    assert hub.pruner is not None
    try:
        plans = prune.scan(hub.pruner, request, images, reporter, start)
    except ProvisionError as exc:
        hub.status, hub.detail = "failed", str(exc)
        return
    notes = (*hub.pruner.notes, prune.REBUILD_NOTE)
    hub.result = prune.PruneResult(hub.pruner.title, hub.prefix, request.rules, plans, notes,
                                   dry_run=request.dry_run)  # fmt: skip


def _show(result: FleetPruneResult, reporter: Reporter) -> None:
    for hub in result.hubs:
        reporter.always(f"{hub.cluster}/{hub.hub}:")
        if hub.result is not None:
            prune.show(hub.result, reporter)
        else:
            reporter.always(f"  {hub.status}: {hub.detail}" + (f"; retention: {hub.retention}" if hub.retention
                                                               else ""))  # fmt: skip


def _apply(result: FleetPruneResult, request: prune.PruneRequest, reporter: Reporter, start: float) -> None:
    for hub in result.hubs:
        if hub.result is None or hub.pruner is None or not (hub.result.to_delete or _emptied(hub.result)):
            continue
        reporter.info(f"{hub.cluster}/{hub.hub}: deleting")
        try:
            prune.apply(hub.pruner, hub.result, request, reporter, start)
            hub.status = "pruned"
        except ProvisionError as exc:
            hub.status, hub.detail = "failed", str(exc)


def _emptied(result: prune.PruneResult) -> int:
    return sum(p.delete_repository for p in result.plans)


def run(request: FleetPruneRequest, *, reporter: Reporter, confirm: Confirm) -> FleetPruneResult:
    """Plan every hub, ask once, apply. Raises UsageError for bad input (before any request)."""
    prune.check_rules(request.rules)
    targets, skipped = fleet_hubs.find_hubs(request.path, clusters=request.clusters, hubs=request.hubs)
    clock = httpretry.Deadline(request.deadline)
    limiter = HostLimiter(request.per_host)
    access = PruneAccess(limiter, clock, None, request.api_url)
    reader = fleet_retention.Reader(request.environ, reporter)
    secrets = _decrypt_all(targets, request, reporter, clock)
    one = prune.PruneRequest((), request.rules, jobs=request.jobs, dry_run=request.dry_run)
    result = FleetPruneResult(str(request.path), [], tuple(skipped), dry_run=request.dry_run)
    start = time.monotonic()
    try:
        for target in targets:
            result.hubs.append(_open_and_plan(target, secrets, request, one, access, reader, reporter, start))
        _show(result, reporter)
        emptied = sum(_emptied(h.result) for h in result.hubs if h.result is not None)
        if not request.dry_run and (result.to_delete or emptied):
            touched = sum(1 for h in result.hubs if h.result and (h.result.to_delete or _emptied(h.result)))
            also = f" and {emptied} emptied repositories" if emptied else ""
            question = f"delete {result.to_delete} tag(s){also} from {touched} hub(s)?"
            if request.yes or paused(clock, confirm)(question, None):
                _apply(result, one, reporter, start)
            else:
                result.declined = True
    finally:
        for hub in result.hubs:
            if hub.pruner is not None:
                hub.pruner.close()
    result.elapsed = time.monotonic() - start
    result.peak_in_flight = dict(limiter.peak)
    return result


def _open_and_plan(target: fleet_hubs.Target, secrets: Mapping[Path, fleet_hubs.Decrypted], request: FleetPruneRequest,
                   one: prune.PruneRequest, access: PruneAccess, reader: fleet_retention.Reader, reporter: Reporter,
                   start: float) -> HubPrune:  # fmt: skip
    if access.deadline is not None and access.deadline.remaining() <= 0:
        return HubPrune(target.cluster, target.hub, "failed", LATE)
    try:
        view = _hub_values(target, secrets)
        hub = _open(target, view, request, access, reader, reporter)
    except ProvisionError as exc:
        return _failed(target, exc)
    if hub.pruner is not None:
        reporter.info(f"{target.cluster}/{target.hub}: listing {hub.pruner.title}")
        _plan(hub, one, prune.images_in(view), reporter, start)
    return hub
