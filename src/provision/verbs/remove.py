"""provision remove: validate → read the registry and the hub's files → plan → confirm → apply, for any kind.

A kind gives its registry side (`RemoteSide`: what to delete there, and how); this verb does the rest, the same for
every kind: the hub's files, the plan shown, the confirmation (the deadline's clock stopped while the user answers),
then the registry's steps and the file steps. The registry side is deleted first, then the hub's files: a run that
fails on the registry has changed no file, and every step finds its own work already done on a re-run (a robot or
token already gone, keys already removed), so an interrupted removal resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provision import clusterrepo, files, httpretry, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import Chart
from provision.hubfiles import remove as hubfiles_remove
from provision.hubfiles.removal_target import RemovalTarget
from provision.plan import Change, Plan

RESUME_HINT = "re-run the same command: what is already removed is detected and skipped"
# (question, word to type or None for yes/no) -> answer
Confirm = Callable[[str, str | None], bool]


def paused(deadline: httpretry.Deadline, confirm: Confirm) -> Confirm:
    """`confirm` with the deadline's clock stopped while the user answers: it is for the network, not for people."""

    def asking(question: str, word: str | None) -> bool:
        with deadline.paused():
            return confirm(question, word)

    return asking


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
    folders: tuple[Path, ...] = ()  # the folders the writers lock (hubfiles/write.py): the given files' folders
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
    req: HubFilesRequest, target: RemovalTarget, *, hub: str | None, sops_binary: str | None
) -> Context:
    client = sops.Sops(sops_binary) if sops_binary is not None else None
    given = hubfiles_remove.HubFiles(req.values_file, req.secret_file, req.cluster_config, hub)

    def replan() -> hubfiles_remove.HubFilesRemoval:
        with local_input():
            return hubfiles_remove.plan_hub_removal(target, given, sops_client=client)

    folders = tuple(files.folders([req.values_file, req.secret_file, req.cluster_config]))
    return Context(replan(), client, replan, folders)


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
    """The registry steps, then the file steps under the folder lock the writers take (hubfiles/write.py), planned
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


# --- the verb, driving a kind's registry side ------------------------------------------------------------------


@dataclass(frozen=True)
class RemotePlan:
    """What a kind found on its registry for the hub: the changes to make there, what is already gone, notes."""

    changes: tuple[Change, ...] = ()
    present: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class RemoteSide(Protocol):
    """A hub's credential (and, if asked, its images) at one registry, as a removal sees it: what a kind provides.

    `read` looks at the registry (no change) and plans; `apply` makes one of the planned changes; `close` releases
    the connection. `deadline` bounds the registry calls (seconds); `destroys_data`: the plan deletes images, so the
    hub's name must be typed to confirm it."""

    hub: str
    destroys_data: bool
    deadline: float

    def validate(self) -> None: ...

    def target(self, chart: Chart) -> RemovalTarget: ...

    def read(self, reporter: Reporter, *, clock: httpretry.Deadline, dry_run: bool) -> RemotePlan: ...

    def apply(self, change: Change) -> None: ...

    def close(self) -> None: ...


def run(
    side: RemoteSide,
    files_req: HubFilesRequest,
    *,
    yes: bool,
    reporter: Reporter,
    confirm: Confirm,
    dry_run: bool = False,
) -> RemoveResult:
    """Remove a hub's registry credential through its kind's RemoteSide, then the hub's files' keys.

    Raises UsageError for bad input (nothing changed), the kind's errors and ProvisionError with what was done."""
    side.validate()
    sops_binary = validate_files(files_req, hub=side.hub)
    with local_input():
        target = side.target(chart_of(files_req, side.hub))
    ctx = plan_files(files_req, target, hub=side.hub, sops_binary=sops_binary)
    clock = httpretry.Deadline(side.deadline)  # from the first call; stopped while the user answers
    try:
        remote = side.read(reporter, clock=clock, dry_run=dry_run)
        plan = Plan((*remote.changes, *ctx.files.changes()), remote.present, (*ctx.files.notes, *remote.notes))
        return finish(plan, ctx, reporter, hub=side.hub, yes=yes, dry_run=dry_run, confirm=paused(clock, confirm),
                      destroys_data=side.destroys_data, remote=side.apply)  # fmt: skip
    finally:
        side.close()
