"""provision verify on a folder: every image-building hub of every cluster, its secrets decrypted in memory, checked
concurrently with bounded requests per registry host; nothing is created or changed.

Hubs come from each `cluster.yaml` as `provision doctor` reads them (verbs/fleet_hubs.py): the listed values files
merged in list order (Helm's merge), the `basehub:` wrapper of daskhub hubs removed. A hub is checked when its
merged values enable binderhub-service. Its encrypted files (sops metadata, or `secret` in the name, as the 2i2c
deployer decides) are decrypted with sops into memory, each file once however many hubs list it, then merged in
their place, and the single-hub checks of verbs/verify.py run on the result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provision import httpretry, registries, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import DEFAULT_PER_HOST, HostLimiter
from provision.hubconfig import HubRegistry
from provision.hubfiles import cluster as clusterfiles
from provision.registries.base import Retention, host_of
from provision.verbs import fleet_hubs as hubs
from provision.verbs import fleet_retention
from provision.verbs import verify as single

Result = Literal["pass", "fail", "could-not-check"]
DEFAULT_JOBS = 16  # hubs checked at once: threads mostly waiting on the network (sops: one per core)
VALUES_CHECK = "values name the registry and its credentials"
DECRYPT_CHECK = "hub secrets decrypted"
DEADLINE_REASON = "deadline passed"
# Keys whose decrypted values are credentials: redacted from every line, whatever check prints them.


@dataclass(frozen=True)
class FleetRequest:
    path: Path
    clusters: frozenset[str] = frozenset()
    hubs: frozenset[str] = frozenset()  # `hub` or `cluster/hub`
    jobs: int = DEFAULT_JOBS
    per_host: int = DEFAULT_PER_HOST
    registry_urls: Mapping[str, str] = field(default_factory=dict)  # registry host -> v2 URL to talk to instead
    ar_endpoint: str | None = None
    sops_bin: str | None = None
    deadline: float | None = None  # seconds for the whole run's registry checks (None: no limit)
    api_urls: Mapping[str, str] = field(default_factory=dict)  # registry host -> its own API (Quay's) instead
    environ: Mapping[str, str] = field(default_factory=dict)  # where kinds find retention tokens (QUAY_TOKEN)
    require_retention: bool = False  # a hub whose retention is "none" fails


@dataclass(frozen=True)
class HubResult:
    cluster: str
    hub: str
    registry: str  # the registry host, "-" when the values do not name one
    result: Result
    reason: str  # the failing check and its detail; for a pass, the checks that could not be made
    checks: tuple[single.Check, ...]
    seconds: float
    retention: Retention | None = None  # None: not read (the values could not be, or the deadline passed)

    @property
    def retention_label(self) -> str:
        return (self.retention or fleet_retention.UNKNOWN).label()

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "hub": self.hub,
            "registry": self.registry,
            "result": self.result,
            "reason": self.reason,
            "retention": fleet_retention.as_dict(self.retention),
            "seconds": round(self.seconds, 3),
            "checks": [{"check": c.name, "status": c.status, "detail": c.detail} for c in self.checks],
        }


@dataclass(frozen=True)
class FleetResult:
    path: str
    hubs: tuple[HubResult, ...]
    skipped: tuple[str, ...]  # cluster/hub without binderhub-service
    decrypted_files: int  # decrypted and read as YAML
    peak_in_flight: Mapping[str, int]
    waits_429: Mapping[str, int]
    seconds: float
    deadline: float | None = None  # seconds, when it passed before every hub was checked
    undecrypted_files: int = 0  # sops failed, the text was not a YAML mapping, or the deadline came first

    def count(self, result: Result) -> int:
        return sum(1 for h in self.hubs if h.result == result)

    @property
    def ok(self) -> bool:
        """Every hub was checked and nothing failed."""
        return all(h.result == "pass" for h in self.hubs)

    def summary(self) -> str:
        parts = [f"{len(self.hubs)} hubs checked: {self.count('pass')} passed, {self.count('fail')} failed, "
                 f"{self.count('could-not-check')} could not be checked"]  # fmt: skip
        if self.skipped:
            parts.append(f"{len(self.skipped)} without binderhub-service skipped")
        parts.append(f"{self.decrypted_files} encrypted files decrypted"
                     + (f", {self.undecrypted_files} could not be" if self.undecrypted_files else ""))  # fmt: skip
        if self.waits_429:
            parts.append(f"waited out {sum(self.waits_429.values())} rate limit answer(s) (429)")
        if self.deadline is not None:
            late = sum(1 for h in self.hubs if h.reason.startswith(DEADLINE_REASON))
            parts.append(f"the {self.deadline:g} s deadline passed with {late} hub(s) not (fully) checked: "
                         "allow more time with --deadline")  # fmt: skip
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "summary": {r: self.count(r) for r in ("pass", "fail", "could-not-check")},
            "skipped": list(self.skipped),
            "decrypted_files": self.decrypted_files,
            "undecrypted_files": self.undecrypted_files,
            "peak_requests_in_flight": dict(self.peak_in_flight),
            "waits_429": dict(self.waits_429),
            "seconds": round(self.seconds, 3),
            "deadline_passed": self.deadline is not None,
            "hubs": [h.as_dict() for h in self.hubs],
        }


# ---------------------------------------------------------------------------------------------------------------
# Checking


def _registry_url(reg: HubRegistry, request: FleetRequest) -> str | None:
    """The --registry-url HOST=URL given for the hub's registry host, if any."""
    host = registries.named(reg.kind).lookup_host(reg)
    return request.registry_urls.get(host)


def _check_hub(
    target: hubs.Target,
    decrypted: Mapping[Path, Future[hubs.Decrypted]],
    request: FleetRequest,
    *,
    reporter: Reporter,
    limiter: HostLimiter,
    deadline: httpretry.Deadline | None = None,
    reader: fleet_retention.Reader | None = None,
) -> HubResult:
    start = time.monotonic()

    def done(registry: str, result: Result, reason: str, checks: list[single.Check],
             retention: Retention | None = None) -> HubResult:  # fmt: skip
        return HubResult(target.cluster, target.hub, registry, result, reason, tuple(checks),
                         time.monotonic() - start, retention)  # fmt: skip

    def late(pending: str, checks: Iterable[single.Check] = (), sep: str = ": ") -> HubResult:
        reason = f"{DEADLINE_REASON}{sep}{pending}"
        return done(target.registry, "could-not-check", reason,
                    [*checks, single.Check("checked before the deadline", "could-not-check", reason)])  # fmt: skip

    if target.problem:
        return done(target.registry, "could-not-check", target.problem,
                    [single.Check(target.problem_check, "could-not-check", target.problem)])  # fmt: skip
    if deadline is not None and deadline.remaining() <= 0:
        return late("before this hub's turn came")
    merged: dict[Any, Any] = {}
    for path in target.files:
        doc = None if path in target.encrypted else target.plain[path]
        if doc is None:
            try:  # decrypted once, by whichever hub's file came first
                secret = decrypted[path].result(timeout=None if deadline is None else max(deadline.remaining(), 0))
            except FutureTimeout:
                secret = hubs.Decrypted(None, late=True)
            if secret.late:
                return late(f"while sops decrypted {path.name}", sep=" ")
            if secret.doc is None:
                reason = secret.error or "sops could not decrypt it"
                detail = f"{reason}. {secret.hint}" if secret.hint else reason
                return done(target.registry, "could-not-check", reason,
                            [single.Check(DECRYPT_CHECK, "could-not-check", detail)])  # fmt: skip
            doc = secret.doc
        try:  # each file's keys of the wrong type, named with the file (after the merge, no file could be named)
            single.hub_view(doc, where=hubs.relative(path, Path.cwd()), wrapped=target.chart == "daskhub")
        except UsageError as exc:
            return done(target.registry, "could-not-check", exc.message,
                        [single.Check(VALUES_CHECK, "could-not-check", str(exc))])  # fmt: skip
        merged = clusterfiles.merge(merged, doc)
    try:
        reg, pull = single.from_values(hubs.hub_values(merged, target.chart), {})
    except UsageError as exc:
        return done(target.registry, "fail", f"{VALUES_CHECK}: {exc.message}",
                    [single.Check(VALUES_CHECK, "fail", exc.message)])  # fmt: skip
    lookup = single.lookup_from_values(hubs.hub_values(merged, target.chart), {})
    req = single.VerifyRequest(reg, pull, _registry_url(reg, request), request.ar_endpoint, lookup=lookup)
    checks = [single.Check(VALUES_CHECK, "pass", f"{reg.kind} registry {reg.server}, user {reg.username}")]
    try:
        checks += single.run(req, reporter=reporter, limiter=limiter, announce=False, deadline=deadline)
    except single.DeadlinePassed as exc:
        left = f"; not checked: {', '.join(exc.not_made)}" if exc.not_made else ""
        return late(f"{exc.pending}{left}", [*checks, *exc.checks])
    reader = reader or fleet_retention.Reader({}, reporter, request.api_urls)
    retention = reader.of(reg, cluster=target.cluster, hub=target.hub, folder=target.folder, limiter=limiter,
                          deadline=deadline)  # fmt: skip
    checks += fleet_retention.checks(retention, required=request.require_retention)
    registry = host_of(reg.server)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return done(registry, "fail", f"{failed[0].name}: {failed[0].detail}", checks, retention)
    unmade = [c.name for c in checks if c.status == "could-not-check"]
    return done(registry, "pass", f"could not check: {', '.join(unmade)}" if unmade else "", checks, retention)


def _safely(target: hubs.Target, check: Callable[[], HubResult]) -> HubResult:
    """A bug in one hub's check is that hub's result, not the end of the run (its message is redacted later)."""
    try:
        return check()
    except ProvisionError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported per hub; the type only, since a message may hold values
        reason = f"unexpected {type(exc).__name__} while checking (re-run with --debug on this hub alone)"
    return HubResult(target.cluster, target.hub, "-", "could-not-check", reason, (), 0.0)


def run(request: FleetRequest, *, reporter: Reporter) -> FleetResult:
    """Check every selected hub; returns the results in cluster.yaml order. Raises UsageError for bad input and
    SopsError when no sops binary is found (before anything is decrypted or asked).

    sops runs in a pool of its own, one process per core at most (decryption is CPU work), and each hub's checks
    start as soon as its own files are decrypted: registry latency overlaps with the remaining decryptions.
    """
    if request.jobs < 1 or request.per_host < 1:
        raise UsageError("--jobs and --per-host must be at least 1")
    start = time.monotonic()
    targets, skipped = hubs.find_hubs(request.path, clusters=request.clusters, hubs=request.hubs)
    needed = list(dict.fromkeys(p for t in targets if not t.problem for p in sorted(t.encrypted, key=t.files.index)))
    runner = sops.Sops(sops.find_binary(request.sops_bin)) if needed else None
    limiter = HostLimiter(request.per_host)
    deadline = httpretry.Deadline(request.deadline) if request.deadline else None
    reader = fleet_retention.Reader(request.environ, reporter, request.api_urls)
    results: dict[int, HubResult] = {}  # by the target's position (two cluster folders may share a name)
    decrypted: dict[Path, Future[hubs.Decrypted]] = {}
    if needed:
        reporter.info(f"decrypting {len(needed)} encrypted files with sops, checking {len(targets)} hubs "
                      f"({request.jobs} at once, {request.per_host} requests per registry host)")  # fmt: skip
    sops_jobs = max(1, min(request.jobs, os.cpu_count() or 2))
    with (
        ThreadPoolExecutor(max_workers=sops_jobs, thread_name_prefix="sops") as sops_pool,
        ThreadPoolExecutor(max_workers=request.jobs, thread_name_prefix="verify") as pool,
    ):
        try:
            assert runner is not None or not needed

            def decrypt(path: Path) -> hubs.Decrypted:
                assert runner is not None
                secret = hubs.decrypt_one(runner, path, deadline)
                for value in hubs.secret_leaves(secret.doc):
                    reporter.add_secret(value)  # before any hub that uses the file can print anything
                return secret

            decrypted = {path: sops_pool.submit(decrypt, path) for path in needed}

            def check(target: hubs.Target) -> HubResult:
                return _safely(target, lambda: _check_hub(target, decrypted, request, reporter=reporter,
                                                          limiter=limiter, deadline=deadline,
                                                          reader=reader))  # fmt: skip

            futures: dict[Future[HubResult], int] = {pool.submit(check, t): i for i, t in enumerate(targets)}
            for index, future in enumerate(as_completed(futures), start=1):
                hub = future.result()
                results[futures[future]] = hub
                label = {"pass": "pass", "fail": "FAIL", "could-not-check": "could not check"}[hub.result]
                reporter.info(f"{index}/{len(targets)} hubs: {hub.cluster}/{hub.hub} {label} ({hub.seconds:.2f} s)")
        except BaseException:
            sops_pool.shutdown(wait=False, cancel_futures=True)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    ordered = tuple(results[i] for i in range(len(targets)))
    read = sum(1 for f in decrypted.values() if f.done() and not f.cancelled() and f.result().doc is not None)
    passed = deadline is not None and any(h.reason.startswith(DEADLINE_REASON) for h in ordered)
    return FleetResult(
        str(request.path), ordered, tuple(skipped), read, dict(limiter.peak), dict(limiter.waits_429),
        time.monotonic() - start, request.deadline if passed else None, undecrypted_files=len(needed) - read,
    )  # fmt: skip
