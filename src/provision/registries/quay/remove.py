"""provision remove quay: the Quay side of a hub's removal (the repositories under its prefix when asked, then
its robot unless other hubs push with it); the removal verb (verbs/remove.py) does the rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urllib3.util.retry import Retry

from provision import httpretry
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import HostLimiter, SlotTimeout
from provision.hubconfig import Chart
from provision.hubfiles.cluster import cluster_hubs, other_hubs_using
from provision.hubfiles.removal_target import RemovalTarget
from provision.plan import Change
from provision.registries.quay.create import QuayRequest
from provision.registries.quay.create import registry_for as quay_registry
from provision.registries.quay.create import validate as validate_quay
from provision.verbs import remove
from provision.verbs.remove import Confirm, HubFilesRequest, RemotePlan, RemoveResult, local_input


@dataclass(frozen=True)
class QuayRemoveRequest:
    quay: QuayRequest  # org, api_url, robot, cluster, hub, shared_org, token
    files: HubFilesRequest = field(default_factory=HubFilesRequest)
    delete_repositories: bool = False
    yes: bool = False

    @property
    def repository_prefix(self) -> str:
        """Repository names of this hub: the image prefix after `<host>/<org>/`."""
        return self.quay.image_prefix.split("/", 2)[2]


def validate_quay_removal(req: QuayRemoveRequest) -> None:
    """The Quay options, before any request (the hub's files are checked by the removal verb). UsageError."""
    validate_quay(req.quay, removing=True)
    if req.quay.hub is None:
        raise UsageError("--hub is required: removal takes one hub's registry away")
    if req.quay.members:
        raise UsageError("--member has no meaning for a removal")


def _hub_repositories(req: QuayRemoveRequest, names: list[str]) -> tuple[list[str], list[str]]:
    """This hub's repositories, and those kept because they belong to a hub whose name extends this one's."""
    prefix = req.repository_prefix
    others: list[str] = []
    if req.files.cluster_config is not None:
        hubs = [str(h.get("name")) for h in cluster_hubs(req.files.cluster_config)]
        start = req.repository_prefix[: -len(f"{req.quay.hub}-")]
        others = [f"{start}{h}-" for h in hubs if h != req.quay.hub and f"{start}{h}-".startswith(prefix)]
    ours = [n for n in names if not any(n.startswith(o) for o in others)]
    return ours, [n for n in names if n not in ours]


def remove_quay(
    req: QuayRemoveRequest,
    *,
    reporter: Reporter,
    confirm: Confirm,
    dry_run: bool = False,
    retry: Retry | None = None,
    deadline: float = httpretry.DEFAULT_DEADLINE,
) -> RemoveResult:
    """Remove a hub's Quay registry: its repositories (if asked), its robot (unless shared) and its files' keys.

    Raises UsageError for bad input (nothing changed), QuayError/SopsError/ProvisionError with what was done.
    """
    side = QuayRemoval(req, retry=retry, deadline=deadline)
    return remove.run(side, req.files, yes=req.yes, reporter=reporter, confirm=confirm, dry_run=dry_run)


class QuayRemoval:
    """The Quay side of a hub's removal (verbs/remove.RemoteSide): the repositories under the hub's prefix (when
    asked), then the robot, unless other hubs of the cluster.yaml push with it."""

    def __init__(self, req: QuayRemoveRequest, *, retry: Retry | None, deadline: float) -> None:
        self.req, self.retry, self.deadline = req, retry, deadline
        self.hub = req.quay.hub or ""
        self.destroys_data = req.delete_repositories
        self.users: list[str] = []
        self.client: Any = None
        self.clock: httpretry.Deadline | None = None
        self.reporter: Reporter | None = None

    def validate(self) -> None:
        validate_quay_removal(self.req)

    def target(self, chart: Chart) -> RemovalTarget:
        q = self.req.quay
        return RemovalTarget(quay_registry(q, ""), chart, pull_hosts=(q.host,))

    def read(self, reporter: Reporter, *, clock: httpretry.Deadline, dry_run: bool) -> RemotePlan:
        q = self.req.quay
        self.reporter, self.clock = reporter, clock
        with local_input():
            self.users = [] if q.shared_org else robot_users(self.req.files, q.hub, q.robot_full, reporter)
        if q.token is None:
            return self._without_token(dry_run)
        from provision.registries.quay.client import QuayClient

        reporter.add_secret(q.token)
        self.client = QuayClient(q.api_url, q.token, retry=self.retry, deadline=clock)
        return self._with_token(reporter)

    def _without_token(self, dry_run: bool) -> RemotePlan:
        q, req = self.req.quay, self.req
        if not dry_run and (not q.shared_org or req.delete_repositories):
            raise UsageError("no Quay token: set QUAY_TOKEN or pass --token-file (scopes org:admin, user:admin)")
        changes: list[Change] = []
        notes: list[str] = []
        if not q.shared_org:
            notes.append("no Quay token: nothing was read; the robot is assumed to exist")
            if self.users:
                notes.append(f"kept robot {q.robot_full}: the hubs {', '.join(self.users)} push with it too")
            else:
                notes += unchecked_robot_note(req.files, q.robot_full)
                changes.append(Change("delete_robot", "delete", f"robot {q.robot_full}", "its token stops working"))
        if req.delete_repositories:
            notes.append(f"no Quay token: the repositories {q.org}/{req.repository_prefix}* were not listed")
        return RemotePlan(tuple(changes), (), tuple(notes))

    def _with_token(self, reporter: Reporter) -> RemotePlan:
        from provision.registries.quay.client import TOKEN_HINT, QuayError

        q, req, client = self.req.quay, self.req, self.client
        changes: list[Change] = []
        notes: list[str] = []
        present: list[str] = []
        with reporter.step("check the token (GET /api/v1/user/)"):
            user = client.get_user()
        org = client.get_org(q.org)
        if org is None:
            present.append(f"organization {q.org} does not exist: nothing to delete on {q.host}")
        elif not org.is_admin and q.org in user.organizations:
            # Quay caps the caller's roles by the token's scopes, but GET /user/ lists memberships uncapped.
            raise QuayError(f"the token lacks the org:admin scope for {q.org!r}", hint=TOKEN_HINT)
        elif not org.is_admin:
            raise QuayError(
                f"you are not an administrator of the organization {q.org!r}",
                hint="ask an owner to add you to its owners team, or choose another --org",
            )
        if org is not None and req.delete_repositories:
            self._plan_repositories(reporter, changes, present, notes)
        if org is not None and not q.shared_org:
            self._plan_robot(reporter, changes, present, notes)
        elif q.shared_org:
            notes.append(f"shared organization: robot {q.robot_full} stays (other hubs use it)")
        return RemotePlan(tuple(changes), tuple(present), tuple(notes))

    def _plan_repositories(
        self, reporter: Reporter, changes: list[Change], present: list[str], notes: list[str]
    ) -> None:
        from provision.registries.quay.client import QuayError, scope_hint

        q, req = self.req.quay, self.req
        with reporter.step(f"list the repositories {q.org}/{req.repository_prefix}*"):
            try:
                names = [r.name for r in self.client.list_repositories(q.org, prefix=req.repository_prefix)]
            except QuayError as exc:
                if exc.status in (401, 403):
                    exc.message = (
                        f"Quay refused to list the repositories of {q.org!r} (HTTP {exc.status}): deleting "
                        "repositories needs the token scope repo:admin (it includes repo:read, which listing "
                        "needs), which the token lacks; nothing was changed"
                    )
                    exc.hint, exc.scope = scope_hint("repo:admin"), "repo:admin"
                raise
        ours, kept = _hub_repositories(req, names)
        if kept:
            notes.append(f"kept {', '.join(kept)}: other hubs' repositories (their hub names extend {q.hub}'s)")
        elif ours and req.files.cluster_config is None:
            notes.append(
                f"every repository named {req.repository_prefix}* counts as this hub's, including those of a hub "
                f"named {q.hub}-<something>; pass --cluster-config to keep other hubs' repositories"
            )
        if not ours:
            present.append(f"no repository {q.org}/{req.repository_prefix}*")
            return
        changes.append(Change(
            "delete_repositories", "delete", f"{len(ours)} repositories {q.org}/{req.repository_prefix}*",
            "with every image: " + ", ".join(ours[:10]) + (" ..." if len(ours) > 10 else ""), args=tuple(ours),
        ))  # fmt: skip

    def _plan_robot(self, reporter: Reporter, changes: list[Change], present: list[str], notes: list[str]) -> None:
        from provision.registries.quay.client import TOKEN_HINT, QuayError

        q = self.req.quay
        try:
            robot = self.client.get_robot(q.org, q.robot)
        except QuayError as exc:
            if exc.status == 403:  # we administer the org (checked above): the token lacks org:admin
                exc.hint = TOKEN_HINT
            raise
        if robot is None:
            present.append(f"robot {q.robot_full} is already gone")
        elif self.users:
            notes.append(f"kept robot {q.robot_full}: the hubs {', '.join(self.users)} push with it too")
        else:
            reporter.add_secret(robot.token)
            notes += unchecked_robot_note(self.req.files, q.robot_full)
            changes.append(Change("delete_robot", "delete", f"robot {q.robot_full}", "its token stops working"))

    def apply(self, change: Change) -> None:
        from provision.registries.quay.client import QuayClient

        q = self.req.quay
        if change.kind == "delete_repositories":
            assert self.reporter is not None and self.clock is not None
            clock = self.clock
            delete_repositories(
                list(change.args), req=self.req, reporter=self.reporter, clock=clock,
                make_client=lambda: QuayClient(q.api_url, q.token or "", retry=self.retry, deadline=clock),
            )  # fmt: skip
        elif change.kind == "delete_robot":
            self.client.delete_robot(q.org, q.robot)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


DELETE_CONCURRENCY = 4  # repository deletions in flight at once (≈0.23 s each on a real Quay), under the host limit


def delete_repositories(
    names: list[str],
    *,
    req: QuayRemoveRequest,
    reporter: Reporter,
    clock: httpretry.Deadline,
    make_client: Callable[[], Any],
    limiter: HostLimiter | None = None,
) -> None:
    """Delete the repositories, DELETE_CONCURRENCY at a time and never more than the per-host limit allows.

    Each worker thread has its own client (session). The first failure stops the deletions not yet started; the
    error says how many were deleted and how many are left. When the command's deadline ran out while Quay was
    answering, it says so (not "cannot reach Quay"): a re-run lists what is left and deletes it.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from provision.registries.quay.client import QuayError

    q = req.quay
    limiter = limiter or HostLimiter(DELETE_CONCURRENCY)
    local = threading.local()
    clients: list[Any] = []
    guard = threading.Lock()
    stop = threading.Event()

    def client() -> Any:
        found = getattr(local, "client", None)
        if found is None:
            found = local.client = make_client()
            with guard:
                clients.append(found)
        return found

    def delete(name: str) -> bool:
        if stop.is_set():
            return False
        try:
            with limiter.request(q.api_url, timeout=max(clock.remaining(), 0.001)):
                client().delete_repository(q.org, name)
        except SlotTimeout:
            raise QuayError(f"no time left to delete {q.org}/{name}") from None
        return True

    total, deleted = len(names), 0
    failure: ProvisionError | None = None
    started = time.monotonic()
    workers = max(1, min(DELETE_CONCURRENCY, limiter.per_host, total))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="delete-repository")
    try:
        futures = {pool.submit(delete, name): name for name in names}
        for future in as_completed(futures):
            try:
                done = future.result()
            except ProvisionError as exc:
                stop.set()
                failure = failure or exc
                continue
            if done:
                deleted += 1
                reporter.info(f"  {deleted}/{total}: deleted {q.org}/{futures[future]}")
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for each in clients:
            each.close()
    if failure is None:
        return
    left = total - deleted
    if clock.remaining() <= 0 and deleted:
        each_took = (time.monotonic() - started) * workers / max(deleted, 1)
        where = f"{q.org}/{req.repository_prefix}*"
        raise QuayError(
            f"the {clock.seconds:g} s deadline ran out while deleting the repositories {where}: "
            f"{deleted} of {total} deleted, {left} left (a deletion cut off by the deadline may still have landed). "
            f"Quay was answering (about {each_took:.2f} s a deletion, {workers} at a time), it was only slow",
            hint="re-run the same command, with a longer --deadline for hundreds of repositories: it lists the "
            "repositories left and deletes them",
        )
    if deleted:
        raise failure.with_context(done=[f"deleted {deleted} of {total} repositories {q.org}/{req.repository_prefix}*"])
    raise failure


def robot_cluster_configs(req: HubFilesRequest) -> tuple[Path, ...]:
    """The cluster.yaml files that say which other hubs push with a robot: --cluster-config; else those beside
    --values-file or --secret-file (2i2c's layout, the lookup hubfiles.chart_for makes for the chart)."""
    if req.cluster_config is not None:
        return (req.cluster_config,)
    beside = [f.parent / "cluster.yaml" for f in (req.values_file, req.secret_file) if f is not None]
    return tuple(p for p in dict.fromkeys(beside) if p.is_file())


def robot_users(req: HubFilesRequest, hub: str | None, username: str, reporter: Reporter) -> list[str]:
    """Other hubs pushing as `username`, from every cluster.yaml robot_cluster_configs finds (said on stderr)."""
    from ruamel.yaml.error import YAMLError

    users: set[str] = set()
    for path in robot_cluster_configs(req):
        if req.cluster_config is None:
            reporter.info(f"other hubs pushing as {username}: looked up in {path} (beside the hub's files)")
        try:
            users.update(other_hubs_using(path, hub, username))
        except (YAMLError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(
                f"cannot tell whether other hubs push as {username}: {path} is not valid YAML ({reason}); nothing "
                "was changed. Fix it (`provision doctor` shows where), or pass --cluster-config"
            ) from None
    return sorted(users)


def unchecked_robot_note(req: HubFilesRequest, robot: str) -> list[str]:
    """The plan's note when no cluster.yaml could tell whether other hubs push with the robot being deleted."""
    if robot_cluster_configs(req):
        return []
    return [
        f"other hubs pushing as {robot} could not be checked: no --cluster-config and no cluster.yaml beside the "
        "hub's files; if another hub pushes with it, its builds stop working (pass --cluster-config to check)"
    ]
