"""provision remove gcp: take the hub out of container_repos → plan → check that the plan destroys only this hub's
registry (the resource-based guard of `provision gcp`) → confirm by the hub's name → apply → clean the hub's files.

The tfvars edit, the plan and the apply run under the same OS lock as `provision gcp`. A run that fails or is
declined before the apply takes only its own edit out again (the name goes back; other edits made meanwhile stay);
once the apply has started the edit stays, because putting the name back would recreate what was destroyed. Each
step finds its own work done on a re-run (the name already gone, no registry resources left, keys already removed),
so an interrupted removal resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from provision import files
from provision.console import Reporter
from provision.errors import ProvisionError
from provision.hubfiles.removal_target import RemovalTarget
from provision.plan import Change, Plan
from provision.registries.artifact_registry import create as gcp
from provision.registries.artifact_registry.create import ATTRIBUTE, GcpRequest
from provision.terraform import hcl_locals, plan_judge, runner, tfvars
from provision.terraform.runner import Terraform
from provision.verbs.remove import (
    Confirm,
    Context,
    HubFilesRequest,
    RemoveResult,
    chart_of,
    finish,
    local_input,
    plan_files,
    validate_files,
)

WHAT = "the repository with every image, the service account, its key and IAM bindings"


@dataclass(frozen=True)
class GcpRemoveRequest:
    gcp: GcpRequest  # cluster, hub, repo, terraform options; yes is taken from here
    files: HubFilesRequest = field(default_factory=HubFilesRequest)


@dataclass
class _Progress:
    applying: bool = False


def remove_gcp(req: GcpRemoveRequest, *, reporter: Reporter, confirm: Confirm, dry_run: bool = False) -> RemoveResult:
    """Remove a hub's Artifact Registry repository through terraform, then its keys from the hub's files.

    Raises UsageError (bad input, nothing changed), TfvarsError, TerraformError, SopsError, ProvisionError (with
    what was done and how to resume).
    """
    gcp.validate(req.gcp)
    g = req.gcp.resolved()
    sops_binary = validate_files(req.files, hub=g.hub)
    edit = tfvars.plan_remove(g.tfvars_path, g.name, attribute=ATTRIBUTE)
    project_id, region = gcp.project_and_region(edit)
    registry = gcp.registry_for(g.name, project_id=project_id, region=region, key="")
    with local_input():
        target = RemovalTarget(registry, chart_of(req.files, g.hub))
    ctx = plan_files(req.files, target, hub=g.hub, sops_binary=sops_binary)
    if dry_run:
        return _dry_run(g, edit, ctx, reporter, confirm)
    tfvars.check_writable(g.tfvars_path)
    folders = [g.terraform_dir, *files.folders([g.tfvars_path])]
    ctx.held = tuple(folders)  # the hub files' folders are locked too, around their steps (remove._apply)
    with files.locked(folders, timeout=g.lock_timeout, on_wait=reporter.always):
        tf = gcp.terraform_for(g, reporter)
        edit = tfvars.plan_remove(g.tfvars_path, g.name, attribute=ATTRIBUTE)  # as it is now, under the lock
        progress = _Progress()
        with _own_edit_undone(edit, g.name, progress, reporter) as undo, gcp.private_dir() as tmp:
            if edit.changed:
                tfvars.write(edit.path, edit.updated)
                reporter.info(f"removed {g.name!r} from {ATTRIBUTE} in {edit.path}")
            gcp.connect(tf, g, reporter)
            with reporter.step("terraform plan"):
                result = tf.plan(var_file=edit.path, plan_file=tmp / "tfplan")
            destroys = _judge(tf, result, g) if result.has_changes else []
            changes: list[Change] = []
            present: list[str] = []
            if edit.changed:
                changes.append(Change("tfvars", "remove", f"{g.name!r} from {ATTRIBUTE}", f"in {edit.path} (done)"))
            else:
                present.append(f"{g.name!r} is not in {ATTRIBUTE} of {edit.path}")
            if destroys:
                addresses = ", ".join(c.address for c in destroys)
                changes.append(Change(
                    "terraform_destroy", "destroy", f"{len(destroys)} resources of the registry of {g.name!r}",
                    f"{WHAT}: {addresses}",
                ))  # fmt: skip
            else:
                present.append(f"no registry resources of {g.name!r} left in workspace {g.workspace_name}")
            plan = Plan(tuple(changes + ctx.files.changes()), tuple(present), ctx.files.notes)

            def remote(change: Change) -> None:
                if change.kind == "terraform_destroy":
                    progress.applying = True
                    tf.apply(result.plan_file)

            removal = finish(plan, ctx, reporter, hub=g.hub, yes=g.yes, dry_run=False, confirm=confirm,
                             destroys_data=bool(destroys), remote=remote)  # fmt: skip
            if removal.declined:
                undo()
    return removal


def _judge(tf: Terraform, result: runner.PlanResult, g: GcpRequest) -> list[plan_judge.ResourceChange]:
    """The plan may only destroy this hub's registry resources (and, with the last hub, what the registries share:
    resources counted over the whole list); anything else refuses the removal."""
    doc = tf.show_plan(result.plan_file)
    module_locals = hcl_locals.module_locals(g.terraform_dir, doc.get("configuration") or {})
    scope = plan_judge.scope(doc, [g.name], variable=ATTRIBUTE, module_locals=module_locals, wide_action="delete")
    unexpected = scope.unexpected(
        lambda c: c.action == "delete" and not c.moved, allow_foreign=g.allow_unrelated_changes
    )
    if unexpected:
        listed = ", ".join(str(c) for c in unexpected)
        raise ProvisionError(
            f"the plan does more than destroy the registry of {g.name!r}: {listed}; nothing was applied",
            hint="apply those changes separately first (they may be pending changes to other hubs or to this hub's "
            "home directories), or pass --allow-unrelated-changes after reading the plan",
        )
    return list(scope.owned)


def _dry_run(
    g: GcpRequest, edit: tfvars.TfvarsEdit, ctx: Context, reporter: Reporter, confirm: Confirm
) -> RemoveResult:
    binary = gcp.dry_run_binary(g, reporter)
    changes: list[Change] = []
    present: list[str] = []
    if edit.changed:
        reporter.always(f"dry run: would remove {g.name!r} from {ATTRIBUTE} in {edit.path}:")
        reporter.always(edit.diff().rstrip())
        changes.append(Change("tfvars", "remove", f"{g.name!r} from {ATTRIBUTE}", f"in {edit.path}"))
    else:
        present.append(f"{g.name!r} is not in {ATTRIBUTE} of {edit.path}")
    init_args, why = gcp.init_command(g)
    reporter.always(f"dry run: backend: {why}; workspace {g.workspace_name}")
    plan_file = Path("<tmp>/tfplan")
    commands = [
        init_args,
        runner.build_args("workspace select", workspace=g.workspace_name),
        runner.build_args("plan", var_file=edit.path, plan_file=plan_file),
        runner.build_args("show", plan_file=plan_file),
        runner.build_args("apply", plan_file=plan_file),
    ]
    when = "apply only when the plan destroys nothing but this hub's registry, after the hub's name is typed"
    gcp.would_run(g, binary, commands, reporter, when=when)
    changes.append(Change(
        "terraform_destroy", "destroy", f"the registry of {g.name!r} in workspace {g.workspace_name}",
        f"{WHAT}, as the plan lists them",
    ))  # fmt: skip
    plan = Plan(tuple(changes + ctx.files.changes()), tuple(present), ctx.files.notes)
    return finish(plan, ctx, reporter, hub=g.hub, yes=g.yes, dry_run=True, confirm=confirm, destroys_data=True,
                  remote=lambda _c: None)  # fmt: skip


@contextmanager
def _own_edit_undone(edit: tfvars.TfvarsEdit, name: str, progress: _Progress, reporter: Reporter) -> Iterator[_Undo]:
    """Put the name back when the run fails (or is declined) before the apply started."""
    undo = _Undo(edit, name, progress, reporter)
    try:
        yield undo
    except BaseException as exc:
        note = undo()
        if note and isinstance(exc, ProvisionError):
            exc.message = f"{exc.message.rstrip('.')}; {note}"
        raise


class _Undo:
    def __init__(self, edit: tfvars.TfvarsEdit, name: str, progress: _Progress, reporter: Reporter) -> None:
        self.edit, self.name, self.progress, self.reporter = edit, name, progress, reporter
        self.done = False

    def __call__(self) -> str | None:
        if self.done or not self.edit.changed or self.progress.applying:
            return None
        self.done = True
        path = self.edit.path
        try:
            current = path.read_bytes().decode("utf-8")
            if current == self.edit.updated:
                tfvars.write(path, self.edit.original)
                note = f"{path} was restored to its previous content"
            else:
                back = tfvars.plan_add(path, self.name, attribute=ATTRIBUTE)
                if back.changed:
                    tfvars.write(path, back.updated)
                note = f"{self.name!r} was put back into {ATTRIBUTE} of {path} (other changes to it were kept)"
        except (OSError, UnicodeDecodeError, ProvisionError) as problem:
            note = f"{self.name!r} could not be put back into {ATTRIBUTE} of {path} ({problem}): add it by hand"
        self.reporter.info(note)
        return note
