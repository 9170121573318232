"""provision remove quay|dockerhub: validate → read the registry and the hub's files → plan → confirm → apply.

The registry side is deleted first (repositories, then the robot or the token), then the hub's files: a run that
fails on the registry has changed no file, and every step finds its own work already done on a re-run (a robot or
token already gone, keys already removed), so an interrupted removal resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urllib3.util.retry import Retry

from provision import clusterrepo, files, httpretry, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import HostLimiter, SlotTimeout
from provision.hubconfig import Chart
from provision.hubfiles import remove as hubfiles_remove
from provision.hubfiles.cluster import cluster_hubs, other_hubs_using
from provision.plan import Change, Plan
from provision.registries.dockerhub.create import SERVER as DOCKERHUB_SERVER
from provision.registries.dockerhub.create import DockerHubRequest
from provision.registries.dockerhub.create import registry_for as dockerhub_registry
from provision.registries.dockerhub.create import validate as validate_dockerhub
from provision.registries.quay.create import QuayRequest
from provision.registries.quay.create import registry_for as quay_registry
from provision.registries.quay.create import validate as validate_quay

RESUME_HINT = "re-run the same command: what is already removed is detected and skipped"
# (question, word to type or None for yes/no) -> answer
Confirm = Callable[[str, str | None], bool]


def paused(deadline: httpretry.Deadline, confirm: Confirm) -> Confirm:
    """`confirm` with the deadline's clock stopped while the user answers: it is for the network, not for people."""

    def asking(question: str, word: str | None) -> bool:
        with deadline.paused():
            return confirm(question, word)

    return asking


DOCKERHUB_PULL_HOSTS = (DOCKERHUB_SERVER, "docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class HubFilesRequest:
    """The hub's files to clean, and how their values are shaped."""

    values_file: Path | None = None
    secret_file: Path | None = None
    cluster_config: Path | None = None
    chart: Chart | None = None  # None: the hub's helm_chart in cluster_config, else basehub
    sops_bin: str | None = None

    @property
    def any(self) -> bool:
        return any((self.values_file, self.secret_file))


@dataclass(frozen=True)
class RemoveResult:
    plan: Plan
    applied: tuple[str, ...]
    declined: bool = False


@dataclass
class Context:
    """What apply needs besides the plan: the file steps and the clients."""

    files: hubfiles_remove.HubFilesRemoval = field(default_factory=hubfiles_remove.HubFilesRemoval)
    sops_client: sops.Sops | None = None
    # Plans the file steps again from the files as they are (under the lock, before they are changed).
    replan: Callable[[], hubfiles_remove.HubFilesRemoval] | None = None
    folders: tuple[Path, ...] = ()  # the folders the writers lock (flows/hubfiles.py): the given files' folders
    # Folders the caller holds locked already (remove gcp: its terraform folders); a second flock on a new
    # descriptor of one of them would wait for this very process.
    held: tuple[Path, ...] = ()


FILE_STEPS = ("secret_unset", "values_edit", "unlist", "delete_file")


# --- shared: files, confirmation, apply ------------------------------------------------------------------------


def validate_files(req: HubFilesRequest, *, hub: str | None) -> str | None:
    """Check the file options before any request. Returns the sops binary when the secret file needs one."""
    for option, path in (("--values-file", req.values_file), ("--secret-file", req.secret_file),
                         ("--cluster-config", req.cluster_config)):  # fmt: skip
        if path is not None:
            files.link_target(path, label=option)  # a dangling link is refused (a link is edited where it points)
    if req.cluster_config is not None:
        if req.chart == "z2jh":
            raise UsageError(
                "--cluster-config is for 2i2c's deployer, which installs one chart per hub; a z2jh hub's release "
                "files (beside --values-file and --secret-file) are deleted when left empty: drop --cluster-config"
            )
        if hub is None:
            raise UsageError("--cluster-config needs --hub: the hub whose helm_chart_values_files to update")
        if not req.cluster_config.is_file():
            raise UsageError(f"--cluster-config {str(req.cluster_config)!r} does not exist")
        if not req.any:
            raise UsageError("--cluster-config unlists files emptied by --values-file or --secret-file")
    for option, path in (("--values-file", req.values_file), ("--secret-file", req.secret_file)):
        if path is not None and path.is_dir():
            raise UsageError(f"{option} {str(path)!r} is a folder, not a file")
    return sops.find_binary(req.sops_bin) if req.secret_file is not None else None


def chart_of(req: HubFilesRequest, hub: str | None) -> Chart:
    if req.chart is not None:
        return req.chart
    if req.cluster_config is not None and hub is not None:
        helm_chart = clusterrepo.hub_chart(req.cluster_config, hub)
        if helm_chart == "daskhub":
            return "daskhub"
    return "basehub"


@contextmanager
def local_input() -> Iterator[None]:
    """Unreadable local files (binary, a folder, no permission) are bad input: exit 2, no traceback."""
    from ruamel.yaml.error import YAMLError

    try:
        yield
    except UnicodeDecodeError:
        raise UsageError("a hub file is not UTF-8 text (binary?): pass the hub's YAML files") from None
    except YAMLError as exc:
        raise UsageError(f"a hub file is not valid YAML ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None


def plan_files(
    req: HubFilesRequest, target: hubfiles_remove.RemovalTarget, *, hub: str | None, sops_binary: str | None
) -> Context:
    client = sops.Sops(sops_binary) if sops_binary is not None else None
    given = hubfiles_remove.HubFiles(req.values_file, req.secret_file, req.cluster_config, hub)

    def replan() -> hubfiles_remove.HubFilesRemoval:
        with local_input():
            return hubfiles_remove.plan_hub_removal(target, given, sops_client=client)

    folders = tuple(files.folders([req.values_file, req.secret_file, req.cluster_config]))
    return Context(replan(), client, replan, folders)


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


def _confirm(plan: Plan, *, hub: str, yes: bool, confirm: Confirm, destroys_data: bool) -> bool:
    if yes or plan.empty:
        return True
    if destroys_data:
        return confirm(f"this deletes images for good; type the hub name ({hub}) to go on", hub)
    return confirm(f"apply these {len(plan.changes)} change(s)?", None)


def _show(plan: Plan, ctx: Context, reporter: Reporter, *, dry_run: bool) -> None:
    if plan.empty:
        reporter.always("nothing to remove: everything is already gone")
        for note in plan.notes:
            reporter.always(f"  note: {note}")
        return
    reporter.plan(plan, title="dry run" if dry_run else "plan")
    hubfiles_remove.show(ctx.files, reporter)


def _apply(plan: Plan, ctx: Context, reporter: Reporter, remote: Callable[[Change], None]) -> tuple[str, ...]:
    """The registry steps, then the file steps under the folder lock the writers take (flows/hubfiles.py), planned
    again there: a provision run that wrote the files since they were read keeps its edit, and none can write
    between a step's check and its write."""
    done: list[str] = []
    remote_steps = [c for c in plan.changes if c.kind not in FILE_STEPS]
    total = len(plan.changes)

    def run(index: int, change: Change, step: Callable[[Change], None]) -> None:
        label = f"{change.action} {change.subject}"  # the plan showed the details
        with reporter.step(label, index=index, total=total):
            step(change)
        done.append(label)

    def file_step(change: Change) -> None:
        hubfiles_remove.apply_step(ctx.files, change, sops_client=ctx.sops_client)

    try:
        for index, change in enumerate(remote_steps, start=1):
            run(index, change, remote)
        if len(remote_steps) < total:
            held = {p.resolve() for p in ctx.held}
            with files.locked([p for p in ctx.folders if p.resolve() not in held], on_wait=reporter.always):
                if ctx.replan is not None:
                    ctx.files = ctx.replan()  # as the files are now that no writer can change them
                file_steps = ctx.files.changes()
                total = len(remote_steps) + len(file_steps)
                for index, change in enumerate(file_steps, start=len(remote_steps) + 1):
                    run(index, change, file_step)
    except ProvisionError as exc:
        # A refusal for want of a token scope fails the same way on a re-run: its own hint says what to change.
        resume = None if getattr(exc, "scope", None) else RESUME_HINT
        raise exc.with_context(done=done, hint=resume) from None
    return tuple(done)


def finish(
    plan: Plan,
    ctx: Context,
    reporter: Reporter,
    *,
    hub: str,
    yes: bool,
    dry_run: bool,
    confirm: Confirm,
    destroys_data: bool,
    remote: Callable[[Change], None],
) -> RemoveResult:
    _show(plan, ctx, reporter, dry_run=dry_run)
    if dry_run or plan.empty:
        return RemoveResult(plan, ())
    if not _confirm(plan, hub=hub, yes=yes, confirm=confirm, destroys_data=destroys_data):
        return RemoveResult(plan, (), declined=True)
    return RemoveResult(plan, _apply(plan, ctx, reporter, remote))


# --- quay ------------------------------------------------------------------------------------------------------


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


def validate_quay_removal(req: QuayRemoveRequest) -> str | None:
    """Every local input, before any request. Returns the sops binary (None if no secret file). UsageError."""
    validate_quay(req.quay, removing=True)
    if req.quay.hub is None:
        raise UsageError("--hub is required: removal takes one hub's registry away")
    if req.quay.members:
        raise UsageError("--member has no meaning for a removal")
    return validate_files(req.files, hub=req.quay.hub)


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
    from provision.registries.quay.client import TOKEN_HINT, QuayClient, QuayError, scope_hint

    sops_binary = validate_quay_removal(req)
    q = req.quay
    with local_input():
        target = hubfiles_remove.RemovalTarget(quay_registry(q, ""), chart_of(req.files, q.hub), pull_hosts=(q.host,))
        users = [] if q.shared_org else robot_users(req.files, q.hub, q.robot_full, reporter)
    ctx = plan_files(req.files, target, hub=q.hub, sops_binary=sops_binary)
    changes: list[Change] = []
    notes: list[str] = list(ctx.files.notes)
    present: list[str] = []
    if q.token is None:
        if not dry_run and (not q.shared_org or req.delete_repositories):
            raise UsageError("no Quay token: set QUAY_TOKEN or pass --token-file (scopes org:admin, user:admin)")
        if not q.shared_org:
            notes.append("no Quay token: nothing was read; the robot is assumed to exist")
            if users:
                notes.append(f"kept robot {q.robot_full}: the hubs {', '.join(users)} push with it too")
            else:
                notes += unchecked_robot_note(req.files, q.robot_full)
                changes.append(Change("delete_robot", "delete", f"robot {q.robot_full}", "its token stops working"))
        if req.delete_repositories:
            notes.append(f"no Quay token: the repositories {q.org}/{req.repository_prefix}* were not listed")
        plan = Plan(tuple(changes + ctx.files.changes()), notes=tuple(notes))
        return finish(plan, ctx, reporter, hub=q.hub or "", yes=req.yes, dry_run=dry_run, confirm=confirm,
                       destroys_data=req.delete_repositories, remote=lambda c: None)  # fmt: skip

    reporter.add_secret(q.token)
    clock = httpretry.Deadline(deadline)  # from the first call; stopped while the user answers
    confirm = paused(clock, confirm)
    client = QuayClient(q.api_url, q.token, retry=retry, deadline=clock)
    try:
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
            with reporter.step(f"list the repositories {q.org}/{req.repository_prefix}*"):
                try:
                    names = [r.name for r in client.list_repositories(q.org, prefix=req.repository_prefix)]
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
            if ours:
                changes.append(
                    Change(
                        "delete_repositories",
                        "delete",
                        f"{len(ours)} repositories {q.org}/{req.repository_prefix}*",
                        "with every image: " + ", ".join(ours[:10]) + (" ..." if len(ours) > 10 else ""),
                        args=tuple(ours),
                    )
                )
            else:
                present.append(f"no repository {q.org}/{req.repository_prefix}*")
        if org is not None and not q.shared_org:
            try:
                robot = client.get_robot(q.org, q.robot)
            except QuayError as exc:
                if exc.status == 403:  # we administer the org (checked above): the token lacks org:admin
                    exc.hint = TOKEN_HINT
                raise
            if robot is None:
                present.append(f"robot {q.robot_full} is already gone")
            elif users:
                notes.append(f"kept robot {q.robot_full}: the hubs {', '.join(users)} push with it too")
            else:
                reporter.add_secret(robot.token)
                notes += unchecked_robot_note(req.files, q.robot_full)
                changes.append(Change("delete_robot", "delete", f"robot {q.robot_full}", "its token stops working"))
        elif q.shared_org:
            notes.append(f"shared organization: robot {q.robot_full} stays (other hubs use it)")
        plan = Plan(tuple(changes + ctx.files.changes()), tuple(present), tuple(notes))

        def remote(change: Change) -> None:
            if change.kind == "delete_repositories":
                delete_repositories(
                    list(change.args), req=req, reporter=reporter, clock=clock,
                    make_client=lambda: QuayClient(q.api_url, q.token or "", retry=retry, deadline=clock),
                )  # fmt: skip
            elif change.kind == "delete_robot":
                client.delete_robot(q.org, q.robot)

        return finish(plan, ctx, reporter, hub=q.hub or "", yes=req.yes, dry_run=dry_run, confirm=confirm,
                       destroys_data=req.delete_repositories, remote=remote)  # fmt: skip
    finally:
        client.close()


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


# --- dockerhub -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerHubRemoveRequest:
    dockerhub: DockerHubRequest  # namespace, hub, cluster, org, label, username, secret, api_url
    files: HubFilesRequest = field(default_factory=HubFilesRequest)
    yes: bool = False


def remove_dockerhub(
    req: DockerHubRemoveRequest,
    *,
    reporter: Reporter,
    confirm: Confirm,
    dry_run: bool = False,
    retry: Retry | None = None,
    deadline: float = httpretry.DEFAULT_DEADLINE,
) -> RemoveResult:
    """Remove a hub's Docker Hub token (by label) and its files' keys. Raises UsageError, DockerHubError..."""
    from provision.registries.dockerhub.client import DockerHubClient, DockerHubError

    d = req.dockerhub
    validate_dockerhub(d)
    sops_binary = validate_files(req.files, hub=d.hub)
    registry = dockerhub_registry(d, password="")
    if not d.org and d.username is None:
        from dataclasses import replace

        registry = replace(registry, username="")  # unknown: any user name in the files matches
    with local_input():
        target = hubfiles_remove.RemovalTarget(registry, chart_of(req.files, d.hub), pull_hosts=DOCKERHUB_PULL_HOSTS)
    ctx = plan_files(req.files, target, hub=d.hub, sops_binary=sops_binary)
    kind = "organization access token" if d.org else "personal access token"
    subject = f"{kind} {d.token_label!r}"
    if d.username is None or d.secret is None:
        if not dry_run:
            raise UsageError("no Docker Hub credentials: set DOCKERHUB_USERNAME and DOCKERHUB_TOKEN (or --token-file)")
        plan = Plan(
            (Change("delete_token", "delete", subject, "it stops working"), *ctx.files.changes()),
            notes=("no Docker Hub credentials: nothing was read; the token is assumed to exist", *ctx.files.notes),
        )
        return finish(plan, ctx, reporter, hub=d.hub, yes=req.yes, dry_run=True, confirm=confirm,
                       destroys_data=False, remote=lambda c: None)  # fmt: skip
    reporter.add_secret(d.secret)
    clock = httpretry.Deadline(deadline)  # from the first call; stopped while the user answers
    confirm = paused(clock, confirm)
    client = DockerHubClient(d.api_url, identifier=d.username, secret=d.secret, retry=retry, deadline=clock)
    org = d.namespace if d.org else None
    try:
        with reporter.step(f"log in to Docker Hub as {d.username}"):
            client.login()
        try:
            # A token still under its pending label (its secret was never stored), or a rotation's new one whose
            # old one was not deleted yet (delivered label), belongs to the hub too.
            labels = (d.token_label, d.pending_label, d.delivered_label)
            tokens = [t for t in client.list_tokens(org=org) if t.label in labels]
        except DockerHubError as exc:
            if exc.status == 403 and d.org:
                exc.hint = f"DOCKERHUB_USERNAME must be an owner of {d.namespace!r}, logged in with a password or PAT"
            raise
        changes = [Change("delete_token", "delete", subject, "it stops working")] if tokens else []
        present = () if tokens else (f"no {kind} labelled {d.token_label!r}",)
        plan = Plan(tuple(changes + ctx.files.changes()), present, ctx.files.notes)

        def remote(change: Change) -> None:
            for token in tokens:
                client.delete_token(token, org=org)

        return finish(plan, ctx, reporter, hub=d.hub, yes=req.yes, dry_run=dry_run, confirm=confirm,
                       destroys_data=False, remote=remote)  # fmt: skip
    finally:
        client.close()
