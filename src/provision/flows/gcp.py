"""provision gcp: validate → edit container_repos → init → workspace → plan → confirm → apply → read the key."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision import files, names, terraform, tfvars
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan
from provision.terraform import PlannedChange, PlanResult, Terraform, TerraformError

KEYS_OUTPUT = "registry_sa_keys"
ATTRIBUTE = "container_repos"


@dataclass(frozen=True)
class GcpRequest:
    cluster: str
    hub: str
    repo: str | None = None
    terraform_dir: Path = Path("terraform/gcp")
    var_file: Path | None = None
    workspace: str | None = None
    backend_configs: tuple[str, ...] = ()
    terraform_bin: str | None = None
    create_workspace: bool = False
    allow_unrelated_changes: bool = False
    yes: bool = False

    @property
    def name(self) -> str:
        return self.repo or self.hub

    @property
    def tfvars_path(self) -> Path:
        return self.var_file or self.terraform_dir / "projects" / f"{self.cluster}.tfvars"

    @property
    def workspace_name(self) -> str:
        return self.workspace or self.cluster


@dataclass(frozen=True)
class GcpResult:
    tfvars_changed: bool
    plan: Plan  # terraform's planned changes
    applied: bool
    registry: HubRegistry  # password is empty on a dry run
    processes: int


def validate(req: GcpRequest) -> None:
    """Names and paths, before terraform runs. Raises UsageError."""
    names.hub_name("cluster name", req.cluster)
    names.hub_name("hub name", req.hub)
    names.ar_repo(req.name)
    names.hub_name("workspace name", req.workspace_name)
    if not req.terraform_dir.is_dir():
        raise UsageError(f"--terraform-dir {str(req.terraform_dir)!r} is not a directory")
    if not req.tfvars_path.is_file():
        raise UsageError(
            f"var file {str(req.tfvars_path)!r} does not exist; pass --var-file, or create it from "
            f"{req.terraform_dir}/projects/example.tfvars"
        )


def registry_for(name: str, *, project_id: str, region: str, key: str) -> HubRegistry:
    """Artifact Registry: username `_json_key`, password the whole JSON key; pulls need no secret on GCP."""
    host = f"{region}-docker.pkg.dev"
    return HubRegistry(
        kind="artifact-registry",
        server=f"https://{host}",
        username="_json_key",
        password=key,
        image_prefix=f"{host}/{project_id}/{name}-registry/",
    )


def belongs_to(change: PlannedChange, name: str) -> bool:
    """Whether a planned change is one of this repository's resources (for_each key `name` or `name/...`)."""
    key = change.resource_key
    return isinstance(key, str) and (key == name or key.startswith(f"{name}/"))


def run(
    req: GcpRequest,
    *,
    reporter: Reporter,
    confirm: Callable[[str], bool],
    dry_run: bool = False,
) -> GcpResult:
    """Add the repository through terraform and read its key. Raises UsageError, TfvarsError, TerraformError.

    On a declined or failed run the tfvars file is put back byte for byte.
    """
    validate(req)
    edit = tfvars.plan_add(req.tfvars_path, req.name, attribute=ATTRIBUTE)
    project_id, region = _project_and_region(edit)
    shape = registry_for(req.name, project_id=project_id, region=region, key="")
    if dry_run:
        binary = _binary_name(req.terraform_bin)
        tf = Terraform(binary, req.terraform_dir)
        _show_dry_run(req, edit, tf, reporter)
        return GcpResult(edit.changed, Plan(), False, shape, 0)

    tf = Terraform(
        terraform.find_binary(req.terraform_bin),
        req.terraform_dir,
        on_progress=lambda line: reporter.info(f"  {line}"),
        on_output=lambda line: reporter.debug(line),
    )
    with _tfvars_restored_on_failure(edit, reporter), _private_dir() as tmp:
        if edit.changed:
            files.write_atomic(edit.path, edit.updated)
            reporter.info(f"added {req.name!r} to {ATTRIBUTE} in {edit.path}")
        else:
            reporter.info(f"{req.name!r} is already in {ATTRIBUTE} of {edit.path}")
        with reporter.step("terraform init"):
            tf.init(backend_configs=req.backend_configs)
        with reporter.step(f"terraform workspace select {req.workspace_name}"):
            _select_workspace(tf, req)
        with reporter.step("terraform plan"):
            result = tf.plan(var_file=edit.path.resolve(), plan_file=tmp / "tfplan")
        plan = _as_plan(result)
        reporter.plan(plan, title="terraform plan")
        _refuse_unrelated(result, req)
        keys = None if result.has_changes else tf.output(KEYS_OUTPUT)
        applied = False
        if not result.has_changes and not _has_key(keys, req.name):
            raise TerraformError(
                f"the plan has no changes but output {KEYS_OUTPUT} has no key for {req.name!r}",
                hint=f"check that {req.terraform_dir} is a registry module with the {KEYS_OUTPUT} output",
            )
        if result.has_changes:
            if not req.yes and not confirm(
                f"Apply these {len(plan.changes)} change(s) to workspace {req.workspace_name}?"
            ):
                raise ProvisionError(
                    "declined: nothing was applied",
                    hint="re-run with --yes to apply without asking" if edit.changed else None,
                )
            with reporter.step("terraform apply"):
                try:
                    tf.apply(result.plan_file)
                except TerraformError as exc:
                    exc.with_context(
                        hint="resources created before the failure stay in the terraform state; "
                        "fix the cause and re-run the same command to finish"
                    )
                    raise
            applied = True
        else:
            reporter.always("terraform: no changes, and the key is already in the outputs: apply skipped")
    if keys is None or applied:
        keys = tf.output(KEYS_OUTPUT)
    if not _has_key(keys, req.name):
        raise TerraformError(
            f"output {KEYS_OUTPUT} has no key for {req.name!r}",
            hint=f"check that {req.terraform_dir} is a registry module with the {KEYS_OUTPUT} output",
        )
    assert isinstance(keys, dict)
    key = str(keys[req.name])
    reporter.add_secret(key)
    registry = registry_for(req.name, project_id=project_id, region=region, key=key)
    return GcpResult(edit.changed, plan, applied, registry, tf.process_count)


def _project_and_region(edit: tfvars.TfvarsEdit) -> tuple[str, str]:
    project_id, region = edit.values.get("project_id"), edit.values.get("region")
    if not isinstance(project_id, str) or not isinstance(region, str):
        raise tfvars.TfvarsError(
            "project_id and region must be set as strings: the image prefix is <region>-docker.pkg.dev/<project_id>/",
            path=edit.path,
        )
    return project_id, region


def _binary_name(explicit: str | None) -> str:
    try:
        return terraform.find_binary(explicit)
    except TerraformError:
        return explicit or "tofu"


def _show_dry_run(req: GcpRequest, edit: tfvars.TfvarsEdit, tf: Terraform, reporter: Reporter) -> None:
    if edit.changed:
        reporter.always(f"dry run: would add {req.name!r} to {ATTRIBUTE} in {edit.path}:")
        reporter.always(edit.diff().rstrip())
    else:
        reporter.always(f"dry run: {req.name!r} is already in {ATTRIBUTE} of {edit.path}")
    var_file, plan_file = edit.path.resolve(), Path("<tmp>/tfplan")
    commands = [
        terraform.build_args("init", backend_configs=req.backend_configs),
        terraform.build_args("workspace select", workspace=req.workspace_name, create_workspace=req.create_workspace),
        terraform.build_args("plan", var_file=var_file, plan_file=plan_file),
        terraform.build_args("apply", plan_file=plan_file),
        terraform.build_args("output", output_name=KEYS_OUTPUT),
    ]
    reporter.block(
        f"would run in {req.terraform_dir} (apply only after the plan is shown and confirmed):",
        [tf.display(args) for args in commands],
    )


def _select_workspace(tf: Terraform, req: GcpRequest) -> None:
    try:
        tf.select_workspace(req.workspace_name, create=req.create_workspace)
    except TerraformError as exc:
        if "doesn't exist" in f"{exc.stderr_tail} {exc.message}":
            # A typo here would plan a whole new cluster: creating a workspace must be asked for.
            raise TerraformError(
                f"terraform workspace {req.workspace_name!r} does not exist",
                cmd=exc.cmd,
                returncode=exc.returncode,
                hint="check --workspace (default: the cluster name); pass --create-workspace to create it",
            ) from None
        raise


def _as_plan(result: PlanResult) -> Plan:
    changes = tuple(Change(c.action, c.action, c.address) for c in result.changes if c.action not in ("noop", "read"))
    return Plan(changes=changes)


def _refuse_unrelated(result: PlanResult, req: GcpRequest) -> None:
    unrelated = [c for c in result.changes if c.action not in ("noop", "read") and not belongs_to(c, req.name)]
    if unrelated and not req.allow_unrelated_changes:
        listed = ", ".join(f"{c.action} {c.address}" for c in unrelated)
        raise ProvisionError(
            f"the plan also changes resources that are not repository {req.name!r}'s: {listed}",
            hint="apply those changes separately first, or pass --allow-unrelated-changes",
        )


def _has_key(keys: object, name: str) -> bool:
    return isinstance(keys, dict) and isinstance(keys.get(name), str) and bool(keys[name])


@contextmanager
def _tfvars_restored_on_failure(edit: tfvars.TfvarsEdit, reporter: Reporter) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if edit.changed and edit.path.read_bytes() != edit.original.encode("utf-8"):
            files.write_atomic(edit.path, edit.original)
            reporter.info(f"restored {edit.path} to its previous content")
            if isinstance(exc, ProvisionError):
                exc.message = f"{exc.message.rstrip('.')}; {edit.path} was restored to its previous content"
        raise


@contextmanager
def _private_dir() -> Iterator[Path]:
    """A 0700 directory for the plan file (a plan embeds prior state, keys included); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="provision-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
