"""provision prune: client-side retention for one hub's images, on registries without a server-side policy.

read the hub's files (as `provision verify` does) → list the repositories under the hub's image prefix and their
tags (concurrently, each host's requests bounded) → decide per repository (prune_rules) → show the plan → confirm
(the deadline's clock stopped while asking) → delete tags, then repositories left empty where the registry can.

Nothing is remembered between runs: a run lists the registry again, so a run after an interruption deletes what
is left. Only repositories under the hub's prefix are read or touched, and an image the hub's values name
(singleuser.image, kubespawner_override images, fancy-profiles choices) is never deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from provision import httpretry, registries
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import DEFAULT_PER_HOST, HostLimiter
from provision.registries.base import PruneAccess, Pruner, host_of
from provision.verbs import verify_values
from provision.verbs.prune_rules import Decision, Protected, Rules, decide
from provision.verbs.remove import Confirm, paused

T = TypeVar("T")
DEFAULT_JOBS = 8  # repositories listed, and tags deleted, at once (the per-host limit bounds the requests)
RESUME_HINT = "run the same command again: it lists the registry anew and deletes what is left"
PROGRESS_EVERY = 2.0  # seconds between progress lines
# A re-run fails the same way: the credential or the registry must change first.
NO_RESUME = (401, 403, 405)
REBUILD_NOTE = ("BinderHub rebuilds a deleted image on its next launch; a repository that no longer builds cannot be "
                "launched again")  # fmt: skip


@dataclass(frozen=True)
class PruneRequest:
    values_files: tuple[Path, ...]
    rules: Rules
    secret_files: tuple[Path, ...] = ()
    secret_text: str | None = None  # the decrypted secrets (--secret-stdin)
    sops_bin: str | None = None
    registry_url: str | None = None  # talk to this v2 endpoint instead (a mirror, a port-forward, tests)
    api_url: str | None = None  # the kind's own API (Docker Hub's), for tests
    deadline: float = httpretry.DEFAULT_DEADLINE
    per_host: int = DEFAULT_PER_HOST
    jobs: int = DEFAULT_JOBS
    yes: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class RepoPlan:
    name: str
    decisions: tuple[Decision, ...]
    delete_repository: bool  # every tag goes, and the registry can delete a repository

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if not d.delete]

    @property
    def delete(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    @property
    def reclaimed(self) -> int | None:
        """Bytes the deleted tags take, as the registry says (None: it does not say)."""
        sizes = [d.tag.size for d in self.delete]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


@dataclass
class PruneResult:
    registry: str
    prefix: str
    rules: Rules
    plans: list[RepoPlan]
    notes: tuple[str, ...] = ()
    dry_run: bool = False
    declined: bool = False
    deleted_tags: int = 0
    deleted_repositories: int = 0
    elapsed: float = 0.0
    peak_in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def to_delete(self) -> int:
        return sum(len(p.delete) for p in self.plans)

    def as_dict(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "prefix": self.prefix,
            "rules": {"keep": self.rules.keep, "older_than_days": self.rules.older_than,
                      "unused_for_days": self.rules.unused_for},
            "repositories": [{
                "name": p.name,
                "keep": [{"tag": d.tag.name, "reason": d.reason} for d in p.keep],
                "delete": [{"tag": d.tag.name, "reason": d.reason, "digest": d.tag.digest, "bytes": d.tag.size}
                           for d in p.delete],
                "delete_repository": p.delete_repository,
                "bytes_reclaimed": p.reclaimed,
            } for p in self.plans],
            "notes": list(self.notes),
            "dry_run": self.dry_run,
            "declined": self.declined,
            "deleted": {"tags": self.deleted_tags, "repositories": self.deleted_repositories},
        }  # fmt: skip


# --- what the hub's values protect -----------------------------------------------------------------------------


def split_reference(image: str) -> tuple[str, str, str | None, str | None]:
    """`quay.io/org/x:tag` → (host, repository path, tag, digest), Docker's rules: a first part with `.` or `:`
    (or `localhost`) is a host, else Docker Hub (`library/` for one-part names)."""
    name, _, digest = image.strip().partition("@")
    head, _, last = name.rpartition("/")
    path, sep, tag = last.partition(":")
    name = f"{head}/{path}" if head else path
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = host_of(first), rest
    else:
        host, path = "docker.io", name if slash else f"library/{name}"
    return host, path, tag if sep else None, digest or None


def images_in(doc: object) -> set[str]:
    """Every image a hub's values name: `kubespawner_override.image` anywhere (profileList entries and
    fancy-profiles choices) and `singleuser.image` (`name`, `tag`)."""
    found: set[str] = set()
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            if key == "kubespawner_override" and isinstance(value, Mapping) and isinstance(value.get("image"), str):
                found.add(value["image"])
            if key == "singleuser" and isinstance(value, Mapping) and isinstance(value.get("image"), Mapping):
                name, tag = value["image"].get("name"), value["image"].get("tag")
                if isinstance(name, str):
                    found.add(f"{name}:{tag}" if isinstance(tag, str | int) else name)
            found |= images_in(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= images_in(item)
    return found


def values_images(values_files: Sequence[Path]) -> set[str]:
    """The images named in the hub's values files (and a z2jh hub's jupyterhub release file beside them)."""
    from provision.files import read_text

    paths = list(values_files)
    for path in values_files:
        sibling = verify_values.release_sibling(path, "jupyterhub")
        if sibling is not None and sibling not in paths and sibling.is_file():
            paths.append(sibling)
    images: set[str] = set()
    for path in paths:
        text = read_text(path) or ""
        for doc in verify_values.read_documents(text, path=path, label=path.name, encrypted_hint=""):
            images |= images_in(doc.values)
    return images


def protected_in(images: Iterable[str], host: str, repository: str) -> Protected:
    refs = [split_reference(image) for image in images]
    mine = [(tag, digest) for h, path, tag, digest in refs if h == host and path == repository]
    return Protected(frozenset(t or "latest" for t, d in mine if d is None),
                     frozenset(d for _, d in mine if d is not None))  # fmt: skip


# --- the run -----------------------------------------------------------------------------------------------------


class Progress:
    """Counts done items of a phase and reports them at most every PROGRESS_EVERY seconds, with elapsed time."""

    def __init__(self, reporter: Reporter, what: str, total: int, start: float) -> None:
        self.reporter, self.what, self.total, self.start = reporter, what, total, start
        self.done = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def step(self) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if self.done == self.total or now - self._last >= PROGRESS_EVERY:
                self._last = now
                self.reporter.info(f"{self.what}: {self.done}/{self.total} ({now - self.start:.1f} s)")


def concurrently(items: Sequence[T], work: Callable[[T], Any], *, jobs: int, progress: Progress) -> list[Any]:
    """`work` on each item with `jobs` threads, results in order; the first failure stops what has not begun."""
    results: dict[int, Any] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="prune") as pool:
        futures: dict[Future[Any], int] = {pool.submit(work, item): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                progress.step()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [results[i] for i in range(len(items))]


def _resume(exc: ProvisionError, done: list[str]) -> ProvisionError:
    status = getattr(exc, "status", None)
    return exc.with_context(done=done, hint=None if status in NO_RESUME else RESUME_HINT)


def scan(pruner: Pruner, request: PruneRequest, images: set[str], reporter: Reporter, start: float) -> list[RepoPlan]:
    repositories = sorted(pruner.repositories())
    reporter.info(f"{len(repositories)} repositor{_ies(len(repositories))} under the prefix "
                  f"({time.monotonic() - start:.1f} s)")  # fmt: skip
    now = time.time()

    def plan(repository: str) -> RepoPlan:
        decisions = decide(pruner.tags(repository), request.rules, protected=protected_in(images, pruner.host,
                           repository), now=now, by_digest=pruner.by_digest)  # fmt: skip
        emptied = all(d.delete for d in decisions)
        return RepoPlan(repository, tuple(decisions), emptied and pruner.deletes_repositories)

    progress = Progress(reporter, "repositories scanned", len(repositories), start)
    return concurrently(repositories, plan, jobs=request.jobs, progress=progress)


def _ies(count: int) -> str:
    return "y" if count == 1 else "ies"


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def show(result: PruneResult, reporter: Reporter) -> None:
    reporter.always(f"{'dry run' if result.dry_run else 'plan'}: {result.registry} {result.prefix}* "
                    f"({result.rules.describe()})")  # fmt: skip
    for plan in result.plans:
        size = f", {size_text(plan.reclaimed)}" if plan.reclaimed else ""
        gone = "; the repository is deleted (left empty)" if plan.delete_repository else ""
        reporter.always(f"  {plan.name}: keep {len(plan.keep)}, delete {len(plan.delete)}{size}{gone}")
        for d in plan.delete:
            reporter.info(f"    - {d.tag.name} ({d.reason})")
        for d in plan.keep:
            reporter.debug(f"    = {d.tag.name} ({d.reason})")
    sizes = [p.reclaimed for p in result.plans if p.delete]
    total = f", {size_text(sum(s or 0 for s in sizes))}" if sizes and None not in sizes else ""
    emptied = sum(p.delete_repository for p in result.plans)
    touched = sum(bool(p.delete) for p in result.plans)
    reporter.always(f"  in all: {result.to_delete} tag(s) to delete in {touched} repositor{_ies(touched)}{total}; "
                    f"{emptied} emptied repositor{_ies(emptied)} to delete")  # fmt: skip
    for note in result.notes:
        reporter.always(f"  note: {note}")


def apply(pruner: Pruner, result: PruneResult, request: PruneRequest, reporter: Reporter, start: float) -> None:
    """Tags first, then the repositories they leave empty (an interrupted run leaves at worst an empty
    repository, which the next run finds and deletes)."""
    deletions = [(p.name, d.tag) for p in result.plans for d in p.delete]
    progress = Progress(reporter, "tags deleted", len(deletions), start)

    counted = threading.Lock()

    def delete_tag(item: tuple[str, Any]) -> None:
        pruner.delete_tag(*item)
        with counted:  # counted here, not as results arrive: a failure stops the loop before it sees them all
            result.deleted_tags += 1

    emptied = [p.name for p in result.plans if p.delete_repository]
    try:
        concurrently(deletions, delete_tag, jobs=request.jobs, progress=progress)
        if emptied:
            gone = Progress(reporter, "empty repositories deleted", len(emptied), start)
            concurrently(emptied, pruner.delete_repository, jobs=request.jobs, progress=gone)
            result.deleted_repositories = len(emptied)
    except ProvisionError as exc:
        raise _resume(exc, [f"deleted {result.deleted_tags} of {len(deletions)} tag(s)"]) from None


def check_rules(rules: Rules) -> None:
    if not rules.given:
        raise UsageError("give at least one retention rule: --keep N, --older-than DAYS or --unused-for DAYS")
    if rules.keep is not None and rules.keep < 1:
        raise UsageError("--keep must be at least 1: BinderHub rebuilds every pruned image on its next launch")
    for option, days in (("--older-than", rules.older_than), ("--unused-for", rules.unused_for)):
        if days is not None and not days > 0:
            raise UsageError(f"{option} must be a positive number of days")


def open_pruner(request: PruneRequest, reporter: Reporter, access: PruneAccess) -> tuple[Pruner, str, str]:
    """The hub's registry, read from its files, and its kind's Pruner. Raises UsageError (nothing asked yet)."""
    req = verify_values.request_from_files(request.values_files, secret_files=request.secret_files,
                                           secret_text=request.secret_text, sops_bin=request.sops_bin,
                                           reporter=reporter)  # fmt: skip
    hub = req.registry
    reporter.add_secret(hub.password)
    if not hub.image_prefix or not hub.password:
        raise UsageError("the hub's files name no image_prefix or no registry password: give its values and "
                         "its secrets (--secret-file)")  # fmt: skip
    kind = registries.named(hub.kind)
    pruner = kind.pruner(hub, access)
    if pruner is None:
        raise UsageError(f"provision prune does not prune {kind.title} registries yet",
                         hint="it prunes Docker Hub, Quay and plain registry v2 servers")  # fmt: skip
    if request.rules.unused_for is not None and not pruner.records_pulls:
        pruner.close()
        raise UsageError(f"--unused-for needs pull times, and {pruner.title} records none: use --older-than "
                         "(push time) or --keep")  # fmt: skip
    return pruner, pruner.title, hub.image_prefix


def run(
    request: PruneRequest, *, reporter: Reporter, confirm: Confirm, limiter: HostLimiter | None = None
) -> PruneResult:
    """Plan and (unless a dry run, or declined) apply the hub's retention. Raises UsageError before any request
    for bad input, ProvisionError (with what was deleted) when the registry fails."""
    check_rules(request.rules)
    clock = httpretry.Deadline(request.deadline)
    limiter = limiter or HostLimiter(request.per_host)
    access = PruneAccess(limiter, clock, request.registry_url, request.api_url)
    images = values_images(request.values_files)
    pruner, title, prefix = open_pruner(request, reporter, access)
    start = time.monotonic()
    try:
        try:
            plans = scan(pruner, request, images, reporter, start)
        except ProvisionError as exc:
            raise _resume(exc, []) from None
        notes = (*pruner.notes, REBUILD_NOTE)
        result = PruneResult(title, prefix, request.rules, plans, notes, dry_run=request.dry_run)
        show(result, reporter)
        nothing = result.to_delete == 0 and not any(p.delete_repository for p in plans)
        if not (request.dry_run or nothing):
            emptied = sum(p.delete_repository for p in plans)
            also = f" and {emptied} emptied repositor{_ies(emptied)}" if emptied else ""
            question = f"delete {result.to_delete} tag(s){also} from {title} under {prefix}?"
            if request.yes or paused(clock, confirm)(question, None):
                apply(pruner, result, request, reporter, start)
            else:
                result.declined = True
        result.elapsed = time.monotonic() - start
        result.peak_in_flight = dict(limiter.peak)
        return result
    finally:
        pruner.close()
