"""provision gcp: validate → lock → choose the binary → edit container_repos → init → workspace → plan → judge the
plan by resource → confirm → apply → read the key."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from provision import files, names
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan
from provision.registries.artifact_registry import apply as tfapply
from provision.registries.artifact_registry import hub_edit
from provision.registries.artifact_registry import retention as ar_retention
from provision.registries.base import Rotated
from provision.terraform import backends, binary, hcl_locals, plan_judge, runner, tfvars
from provision.terraform.backends import Backend
from provision.terraform.binary import BinaryChoice
from provision.terraform.runner import PlanResult, Terraform, TerraformError

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
    allow_binary_switch: bool = False
    lock_timeout: float = 600.0
    search_path: str | None = None  # PATH for finding tofu/terraform (None: the environment's)
    yes: bool = False
    retention: ar_retention.Retention | None = None  # --keep-tags/--prune-older-than (retention.py)

    @property
    def name(self) -> str:
        return self.repo or self.hub

    @property
    def tfvars_path(self) -> Path:
        return self.var_file or self.terraform_dir / "projects" / f"{self.cluster}.tfvars"

    @property
    def workspace_name(self) -> str:
        """--workspace, else the var file's name (2i2c: one workspace per tfvars, pilot-hubs for cluster 2i2c),
        else the cluster."""
        return self.workspace or (self.var_file.stem if self.var_file else self.cluster)

    def resolved(self) -> GcpRequest:
        """Paths made absolute against the folder provision runs in (terraform runs with -chdir elsewhere)."""
        cwd = Path.cwd()
        configs = tuple(c if "=" in c else str(cwd / c) for c in self.backend_configs)
        binary = self.terraform_bin
        if binary and os.sep in binary:
            binary = str(cwd / binary)
        return replace(
            self,
            terraform_dir=cwd / self.terraform_dir,
            var_file=cwd / self.var_file if self.var_file else None,
            backend_configs=configs,
            terraform_bin=binary,
        )


@dataclass(frozen=True)
class GcpResult:
    tfvars_changed: bool
    plan: Plan  # terraform's planned resource changes
    applied: bool
    registry: HubRegistry  # password is empty on a dry run
    processes: int


def validate(req: GcpRequest) -> None:
    """Names and paths, before terraform runs. Relative paths are taken from the current folder. Raises UsageError."""
    names.hub_name("cluster name", req.cluster)
    names.hub_name("hub name", req.hub)
    names.ar_repo(req.name)
    names.hub_name("workspace name", req.workspace_name)
    shown = req.terraform_dir
    req = req.resolved()
    if not req.terraform_dir.is_dir():
        raise UsageError(
            f"--terraform-dir {str(shown)!r} is not a folder (paths are taken from the current folder, {Path.cwd()})"
        )
    if req.retention is not None:
        ar_retention.check(req.retention)
        ar_retention.require_support(req.terraform_dir, shown)
    path = req.tfvars_path
    if path.is_dir():
        raise UsageError(f"var file {str(path)!r} is a folder; pass the .tfvars file with --var-file")
    files.link_target(path, label="var file")  # a dangling link is refused, not taken for a missing file
    if not path.is_file():
        raise UsageError(f"var file {str(path)!r} does not exist; {_missing_tfvars_hint(req)}")
    for config in req.backend_configs:
        if "=" not in config:  # terraform's rule: KEY=VALUE, else the name of a file
            _check_backend_file(Path(config), req.terraform_dir)


def _check_backend_file(path: Path, module: Path) -> None:
    if path.is_file():
        try:
            path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise UsageError(f"--backend-config file {str(path)!r} cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise UsageError(f"--backend-config file {str(path)!r} is not UTF-8 text (an HCL file is)") from None
        return
    beside = module / path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else None
    guess = f"; did you mean {_shown(beside)}?" if beside is not None and beside.is_file() else ""
    raise UsageError(
        f"--backend-config file {str(_shown(path))!r} does not exist (a value without '=' is a file, taken from "
        f"the current folder {Path.cwd()}, not from --terraform-dir){guess}"
    )


def _missing_tfvars_hint(req: GcpRequest) -> str:
    """Name the likely cause: a cluster whose tfvars has another name (2i2c's `2i2c` is `pilot-hubs`), or a new
    cluster whose tfvars is still to be made from the template."""
    projects = _shown(req.terraform_dir / "projects")
    existing = sorted(p.stem for p in projects.glob("*.tfvars")) if projects.is_dir() else []
    hints: list[str] = []
    alias = _tfvars_named_in_cluster_yaml(req.cluster)
    if alias and alias in existing:
        hints.append(
            f"cluster {req.cluster!r} keeps its terraform in {alias}.tfvars (its cluster.yaml names the GKE cluster "
            f"{alias}-cluster): pass --var-file {projects / (alias + '.tfvars')} (the workspace follows the file's "
            "name)"
        )
    elif existing:
        listed = ", ".join(existing[:12]) + (", …" if len(existing) > 12 else "")
        hints.append(
            f"{projects} has: {listed}; if the cluster's file has another name (2i2c's cluster 2i2c uses "
            "pilot-hubs.tfvars and workspace pilot-hubs), pass --var-file"
        )
    for template in ("cluster.tfvars.template", "example.tfvars"):
        if (projects / template).is_file():
            how = (
                "rendered by 2i2c's `deployer generate dedicated-cluster gcp`"
                if template.endswith(".template")
                else "copy and edit it"
            )
            hints.append(f"for a new cluster, create it from {projects / template} ({how})")
            break
    return "; ".join(hints) or "pass --var-file with the cluster's .tfvars file"


def _shown(path: Path) -> Path:
    """A path as the user would type it: relative to the current folder when it is below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _tfvars_named_in_cluster_yaml(cluster: str) -> str | None:
    """2i2c's config/clusters/<cluster>/cluster.yaml names the GKE cluster `<prefix>-cluster`, and the tfvars is
    named after the prefix (cluster 2i2c: gcp.cluster pilot-hubs-cluster, projects/pilot-hubs.tfvars)."""
    path = Path("config") / "clusters" / cluster / "cluster.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    pattern = r"^gcp:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+cluster:[ \t]*['\"]?([a-z0-9-]+?)-cluster['\"]?[ \t]*$"
    match = re.search(pattern, text, re.M)
    return match.group(1) if match else None


def registry_for(name: str, *, project_id: str, region: str, key: str) -> HubRegistry:
    """Artifact Registry: username `_json_key`, password the whole JSON key; pulls need no secret on GCP."""
    host = f"{region}-docker.pkg.dev"
    # A domain-scoped project `example.com:proj` is written `example.com/proj` in image paths (Google's docs on
    # Artifact Registry repository paths); a colon there would be read as a port or a tag.
    path_project = project_id.replace(":", "/", 1)
    return HubRegistry(
        kind="artifact-registry",
        server=f"https://{host}",
        username="_json_key",
        password=key,
        image_prefix=f"{host}/{path_project}/{name}-registry/",
    )


def choose_binary(req: GcpRequest) -> BinaryChoice:
    """tofu or terraform, from the module's lock file and readable state, the option, and PATH."""
    backend = backends.stored_backend(req.terraform_dir) or backends.declared_backend(req.terraform_dir)
    states = binary.local_state_files(req.terraform_dir, req.workspace_name, backend)
    evidence = binary.state_evidence(req.terraform_dir, states)
    return binary.choose_binary(
        req.terraform_bin, evidence=evidence, allow_switch=req.allow_binary_switch, search_path=req.search_path
    )


def run(
    req: GcpRequest,
    *,
    reporter: Reporter,
    confirm: Callable[[str], bool],
    dry_run: bool = False,
) -> GcpResult:
    """Add the repository through terraform and read its key. Raises UsageError, TfvarsError, TerraformError.

    Runs on one module and tfvars folder are serialized by an OS lock held until the key is read. A declined or
    failed run removes its own entry again (never restores an older copy over another run's edit).
    """
    validate(req)
    req = req.resolved()
    if dry_run:
        return _dry_run(req, reporter)
    tfvars.check_writable(req.tfvars_path)
    folders = [req.terraform_dir, *files.folders([req.tfvars_path])]
    with files.locked(folders, timeout=req.lock_timeout, on_wait=reporter.always):
        tf = terraform_for(req, reporter)
        change = hub_edit.plan(req.tfvars_path, req.name, req.retention)
        edit = change.file
        project_id, region = project_and_region(edit)
        progress = hub_edit.Progress()
        with hub_edit.undone_on_failure(change, progress, reporter), private_dir() as tmp:
            if edit.changed:
                tfvars.write(edit.path, edit.updated)
            hub_edit.report(change, reporter)
            connect(tf, req, reporter)
            with reporter.step("terraform plan"):
                result = tf.plan(var_file=edit.path, plan_file=tmp / "tfplan")
            plan = _judge(tf, result, req, reporter)
            if result.has_changes:
                if not req.yes and not confirm(
                    f"Apply these {len(plan.changes)} change(s) to workspace {req.workspace_name}?"
                ):
                    raise ProvisionError(
                        "declined: nothing was applied",
                        hint="re-run with --yes to apply without asking" if change.changed else None,
                    )
                target = tfapply.Target(req.name, ATTRIBUTE, edit.path, req.workspace_name)
                with reporter.step("terraform apply"):
                    try:
                        tfapply.apply(tf, result.plan_file, target, reporter)
                    except (tfapply.ApplyFailed, tfapply.ApplyInterrupted) as exc:
                        progress.applied = exc.keeps_entry
                        raise
                progress.applied = True
            else:
                drift = " (only outputs would change)" if result.output_only else ""
                reporter.always(f"terraform: no resource changes{drift}: apply skipped")
            keys = tf.output(KEYS_OUTPUT)
            if not _has_key(keys, req.name):
                raise TerraformError(
                    f"output {KEYS_OUTPUT} has no key for {req.name!r}",
                    hint=f"check that {req.terraform_dir} is a registry module with the {KEYS_OUTPUT} output"
                    + ("" if progress.applied else " and that its state is up to date"),
                )
    assert isinstance(keys, dict)
    key = str(keys[req.name])
    reporter.add_secret(key)
    registry = registry_for(req.name, project_id=project_id, region=region, key=key)
    return GcpResult(change.changed, plan, progress.applied, registry, tf.process_count)


def terraform_for(req: GcpRequest, reporter: Reporter) -> Terraform:
    """The runner for the binary this module's state calls for (reported on stderr). Raises TerraformError."""
    choice = choose_binary(req)
    reporter.always(f"binary: {choice.path} ({binary.KINDS[choice.kind]}): {choice.reason}")
    return Terraform(
        choice.path,
        req.terraform_dir,
        on_progress=lambda line: reporter.info(f"  {line}"),
        on_output=lambda line: reporter.debug(line),
        on_interrupt=lambda count: reporter.always(_INTERRUPT_NOTES[min(count, 2) - 1]),
    )


_INTERRUPT_NOTES = (
    "interrupt: passed on to terraform, which stops gracefully and saves its state; waiting for it "
    "(Ctrl-C again makes it quit at once, which can lose track of what it was creating)",
    "second interrupt: terraform was told to quit at once",
)


def connect(tf: Terraform, req: GcpRequest, reporter: Reporter) -> Backend:
    """init (to the right backend) and select the workspace. Raises TerraformError."""
    backend = _init(tf, req, reporter)
    with reporter.step(f"terraform workspace select {req.workspace_name}"):
        _select_workspace(tf, req, backend)
    reporter.always(f"terraform: backend {backend.describe()}, workspace {req.workspace_name}")
    return backend


def _judge(tf: Terraform, result: PlanResult, req: GcpRequest, reporter: Reporter) -> Plan:
    """The plan's resource changes, refused when any is not this hub's registry (judged from the module's
    configuration in `show -json` and its locals' expressions: keys alone cannot tell a hub's registry from its
    home-directory disk). Adding a hub may create what the registries share (counted over the whole list)."""
    if not result.has_changes:
        return Plan()
    doc = tf.show_plan(result.plan_file)
    module_locals = hcl_locals.module_locals(req.terraform_dir, doc.get("configuration") or {})
    scope = plan_judge.scope(doc, [req.name], variable=ATTRIBUTE, module_locals=module_locals, wide_action="create")
    plan = Plan(changes=tuple(Change(c.action, *c.describe()) for c in scope.changes))
    reporter.plan(plan, title="terraform plan")
    if scope.foreign and not req.allow_unrelated_changes:
        listed = ", ".join(str(c) for c in scope.foreign)
        raise ProvisionError(
            f"the plan also changes resources outside the registry of repository {req.name!r}: {listed}; nothing "
            "was applied",
            hint="apply those changes separately first (they may be pending changes or moves of this or other "
            "hubs' resources, such as home-directory disks), or pass --allow-unrelated-changes after reading the "
            "plan",
        )
    return plan


def _init(tf: Terraform, req: GcpRequest, reporter: Reporter) -> Backend:
    init = backends.plan_init(req.terraform_dir, req.backend_configs)
    with reporter.step("terraform init" + (" -reconfigure" if init.reconfigure else "")):
        try:
            tf.init(backend_configs=init.backend_configs, reconfigure=init.reconfigure)
        except TerraformError as exc:
            exc.with_context(hint=_init_hint(exc, tf, req, init))
            raise
    backend = backends.stored_backend(req.terraform_dir) or Backend("local", {})
    reporter.info(f"terraform: backend {backend.describe()}: {init.why}")
    return backend


def _init_hint(exc: TerraformError, tf: Terraform, req: GcpRequest, init: backends.InitPlan) -> str | None:
    """What a failed init means where we can tell: a migration question it could not ask, or a partial backend
    block whose settings must come from --backend-config."""
    if backends.asks_to_migrate([exc.message, exc.stderr_tail, *(d.summary for d in exc.diagnostics)]):
        return backends.migration_hint(req.terraform_dir, Path(tf.binary).name, init)
    declared = backends.declared_backend(req.terraform_dir)
    if not req.backend_configs and declared is not None and declared.type != "local" and not declared.config:
        return (
            f"the module's backend block ({declared.type}) leaves its settings to init: pass "
            "--backend-config FILE or --backend-config KEY=VALUE (e.g. bucket=…) on every run"
        )
    return None


def project_and_region(edit: tfvars.TfvarsEdit) -> tuple[str, str]:
    project_id, region = edit.values.get("project_id"), edit.values.get("region")
    if not isinstance(project_id, str) or not isinstance(region, str):
        raise tfvars.TfvarsError(
            "project_id and region must be set as strings: the image prefix is <region>-docker.pkg.dev/<project_id>/",
            path=edit.path,
        )
    return project_id, region


def _dry_run(req: GcpRequest, reporter: Reporter) -> GcpResult:
    change = hub_edit.plan(req.tfvars_path, req.name, req.retention)
    edit = change.file
    project_id, region = project_and_region(edit)
    binary = dry_run_binary(req, reporter)
    hub_edit.report_dry_run(change, reporter)
    init_args, why = init_command(req)
    reporter.always(f"dry run: backend: {why}; workspace {req.workspace_name}")
    var_file, plan_file = edit.path, Path("<tmp>/tfplan")
    commands = [
        init_args,
        runner.build_args("workspace select", workspace=req.workspace_name, create_workspace=req.create_workspace),
        runner.build_args("plan", var_file=var_file, plan_file=plan_file),
        runner.build_args("show", plan_file=plan_file),
        runner.build_args("apply", plan_file=plan_file),
        runner.build_args("output", output_name=KEYS_OUTPUT),
    ]
    when = "show and apply only when the plan changes resources; apply only after the plan is judged and confirmed"
    would_run(req, binary, commands, reporter, when=when)
    shape = registry_for(req.name, project_id=project_id, region=region, key="")
    return GcpResult(edit.changed, Plan(), False, shape, 0)


def init_command(req: GcpRequest) -> tuple[list[str], str]:
    """The init a real run would start (for dry runs), and why."""
    init = backends.plan_init(req.terraform_dir, req.backend_configs)
    return runner.build_args("init", backend_configs=init.backend_configs, reconfigure=init.reconfigure), init.why


def dry_run_binary(req: GcpRequest, reporter: Reporter) -> str:
    """The binary a real run would choose (reported), or where a real run would stop, for a dry run."""
    try:
        choice = choose_binary(req)
    except TerraformError as exc:
        reporter.always(f"dry run: a real run would stop here: {exc}")
        return req.terraform_bin or "tofu"
    reporter.always(f"dry run: binary {choice.path} ({binary.KINDS[choice.kind]}): {choice.reason}")
    return choice.path


def would_run(req: GcpRequest, binary: str, commands: list[list[str]], reporter: Reporter, *, when: str) -> None:
    """The terraform commands a real run would start, as typed in the module folder."""
    tf = Terraform(binary, req.terraform_dir)
    reporter.block(f"would run in {req.terraform_dir} ({when}):", [tf.display(args) for args in commands])


def _select_workspace(tf: Terraform, req: GcpRequest, backend: Backend) -> None:
    try:
        tf.select_workspace(req.workspace_name, create=req.create_workspace)
    except TerraformError as exc:
        if "doesn't exist" not in f"{exc.stderr_tail} {exc.message}":
            raise
        try:
            listed = ", ".join(tf.list_workspaces()) or "none"
        except TerraformError:
            listed = "unknown"
        # The likelier cause first: workspaces live inside a backend, and a typo'd --create-workspace would plan
        # a whole new cluster into the wrong state.
        others = sorted((req.terraform_dir / "backends").glob("*.hcl"))
        alternatives = (
            f" This module has other backends: {', '.join(str(_shown(p)) for p in others)}; pass the one that holds "
            f"{req.workspace_name!r} with --backend-config."
            if others
            else ""
        )
        raise TerraformError(
            f"terraform workspace {req.workspace_name!r} does not exist in backend {backend.describe()} "
            f"(its workspaces: {listed}); nothing was applied",
            cmd=exc.cmd,
            returncode=exc.returncode,
            hint=f"most likely this is not the backend that holds the cluster's state: check --backend-config."
            f"{alternatives} Then check --workspace and --var-file (2i2c's cluster 2i2c uses pilot-hubs). Only for a "
            "new cluster, pass --create-workspace",
        ) from None


def _has_key(keys: object, name: str) -> bool:
    return isinstance(keys, dict) and isinstance(keys.get(name), str) and bool(keys[name])


@contextmanager
def private_dir() -> Iterator[Path]:
    """A 0700 directory for the plan file (a plan embeds prior state, keys included); removed afterwards."""
    try:
        path = Path(tempfile.mkdtemp(prefix="provision-"))
    except OSError as exc:
        raise ProvisionError(
            f"cannot create a private temporary folder for the plan file in {tempfile.gettempdir()} ({exc.strerror})",
            hint="set TMPDIR to a writable folder",
        ) from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def rotated_credential(req: GcpRequest, *, new: bool = True) -> Rotated:
    """The hub's key after a rotation (`new`), or as terraform holds it (a run without --rotate)."""
    return Rotated(
        f"the {'new ' if new else ''}service-account key of {req.name!r}",
        f"the sensitive terraform output {KEYS_OUTPUT}[{req.name!r}] of workspace {req.workspace_name} in "
        f"{req.terraform_dir}",
        "the same `provision gcp` command without --rotate (it reads the key from terraform and writes it)",
    )
