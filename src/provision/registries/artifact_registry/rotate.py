"""provision gcp --rotate: replace a hub's service-account key through terraform and read the new one.

validate → lock → init → workspace → look (plan -refresh=false: which instance is the hub's key) → plan -replace of
that instance → judge (only that key is replaced) → confirm → apply → read the key.

The key resource is not named in provision: it is the registry resource that the `registry_sa_keys` output reads
(plan_judge.key_resources), so our module, 2i2c's unchanged module and the test fixtures all work. terraform replaces a
google_service_account_key by deleting the old key and creating a new one, so the old key no longer exists after
the apply; in between, pushes with the old key fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from provision import files
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.plan import Change, Plan
from provision.registries.artifact_registry import create as gcp
from provision.registries.artifact_registry.create import ATTRIBUTE, KEYS_OUTPUT, GcpRequest, GcpResult
from provision.terraform import hcl_locals, plan_judge, runner, tfvars
from provision.terraform.runner import Terraform, TerraformError


def check_listed(req: GcpRequest) -> tfvars.TfvarsEdit:
    """The tfvars, read (not edited): the hub must already be in container_repos. Raises UsageError, TfvarsError."""
    edit = tfvars.plan_add(req.tfvars_path, req.name, attribute=ATTRIBUTE)
    if edit.changed:
        raise UsageError(
            f"{req.name!r} is not in {ATTRIBUTE} of {edit.path}: it has no registry key to rotate; nothing was changed",
            hint="provision it first with the same command without --rotate",
        )
    return edit


def run(req: GcpRequest, *, reporter: Reporter, confirm: Callable[[str], bool], dry_run: bool = False) -> GcpResult:
    """Replace the hub's key and read the new one. Raises UsageError, TfvarsError, TerraformError, ProvisionError.

    Runs on one module are serialized by the same OS lock as `provision gcp`, held until the key is read.
    """
    gcp.validate(req)
    req = req.resolved()
    edit = check_listed(req)
    project_id, region = gcp.project_and_region(edit)
    if dry_run:
        return _dry_run(req, edit.path, reporter, project_id=project_id, region=region)
    folders = [req.terraform_dir, *files.folders([req.tfvars_path])]
    with files.locked(folders, timeout=req.lock_timeout, on_wait=reporter.always):
        tf = gcp.terraform_for(req, reporter)
        with gcp.private_dir() as tmp:
            gcp.connect(tf, req, reporter)
            addresses = _key_instances(tf, req, edit.path, tmp)
            with reporter.step(f"terraform plan -replace={' '.join(addresses)}"):
                result = tf.plan(var_file=edit.path, plan_file=tmp / "tfplan", replace=addresses)
            plan = _judge(tf, result.plan_file, req, addresses, reporter)
            if not req.yes and not confirm(
                f"Replace the key of {req.name!r} in workspace {req.workspace_name}? The old key stops working"
            ):
                raise ProvisionError("declined: nothing was applied; the old key still works")
            with reporter.step("terraform apply"):
                try:
                    tf.apply(result.plan_file)
                except TerraformError as exc:
                    exc.message += (
                        f"; the old key of {req.name!r} may already be deleted (terraform deletes it before creating "
                        "the new one)"
                    )
                    exc.with_context(
                        hint="fix the cause, then run the same command without --rotate: it creates the missing key "
                        "and writes it (or, if the old key is still in the state, run it again with --rotate)"
                    )
                    raise
            keys = tf.output(KEYS_OUTPUT)
    if not isinstance(keys, dict) or not isinstance(keys.get(req.name), str) or not keys[req.name]:
        raise TerraformError(
            f"the key of {req.name!r} was replaced, but output {KEYS_OUTPUT} has no key for it",
            hint=f"check that {req.terraform_dir} is a registry module with the {KEYS_OUTPUT} output",
        )
    key = str(keys[req.name])
    reporter.add_secret(key)
    registry = gcp.registry_for(req.name, project_id=project_id, region=region, key=key)
    return GcpResult(False, plan, True, registry, tf.process_count)


def _key_instances(tf: Terraform, req: GcpRequest, var_file: Path, tmp: Path) -> list[str]:
    """The addresses of the hub's key instances in the state, from a plan that reads nothing remote."""
    with_refresh_off = tmp / "look"
    tf.plan(var_file=var_file, plan_file=with_refresh_off, refresh=False)
    doc = tf.show_plan(with_refresh_off)
    module_locals = hcl_locals.module_locals(req.terraform_dir, doc.get("configuration") or {})
    keys = plan_judge.hub_keys(doc, req.name, variable=ATTRIBUTE, module_locals=module_locals)
    if not keys:
        found = sorted(plan_judge.output_sources(doc.get("configuration") or {}, KEYS_OUTPUT))
        raise TerraformError(
            f"no key of {req.name!r} found in {req.terraform_dir}: the output {KEYS_OUTPUT} reads "
            f"{', '.join(found) or 'no resource'}, and none of that is a registry resource keyed by {ATTRIBUTE}; "
            "nothing was changed",
            hint=f"check --terraform-dir: rotation needs the registry module whose {KEYS_OUTPUT} output reads the "
            "service-account keys",
        )
    missing = [k.address for k in keys if k.action == "create"]
    if missing:
        raise TerraformError(
            f"the key of {req.name!r} is not in the state of workspace {req.workspace_name} "
            f"({', '.join(missing)} would be created): there is nothing to rotate; nothing was changed",
            hint="run the same command without --rotate: it creates the key and writes it",
        )
    return [k.address for k in keys]


def _judge(tf: Terraform, plan_file: Path, req: GcpRequest, addresses: list[str], reporter: Reporter) -> Plan:
    """Only the hub's key may be replaced: any other change (pending changes to this hub's registry, other hubs',
    home-directory disks …) is refused, foreign ones unless --allow-unrelated-changes."""
    doc = tf.show_plan(plan_file)
    module_locals = hcl_locals.module_locals(req.terraform_dir, doc.get("configuration") or {})
    scope = plan_judge.scope(doc, [req.name], variable=ATTRIBUTE, module_locals=module_locals)
    plan = Plan(changes=tuple(Change(c.action, *c.describe()) for c in scope.changes))
    reporter.plan(plan, title="terraform plan")
    replaced = {c.address for c in scope.owned if c.action == "replace"}
    unexpected = scope.unexpected(
        lambda c: c.address in addresses and c.action == "replace" and not c.moved,
        allow_foreign=req.allow_unrelated_changes,
    )
    if unexpected:
        listed = ", ".join(str(c) for c in unexpected)
        raise ProvisionError(
            f"the plan changes more than the key of {req.name!r}: {listed}; nothing was applied",
            hint="apply pending changes first (`provision gcp` without --rotate for this hub's registry, terraform "
            "for the rest), then rotate; or pass --allow-unrelated-changes after reading the plan, for changes "
            "outside this hub's registry",
        )
    if replaced != set(addresses):
        raise ProvisionError(
            f"the plan does not replace {', '.join(sorted(set(addresses) - replaced))}; nothing was applied",
            hint="check the module: the key resource must be replaceable",
        )
    return plan


def _dry_run(req: GcpRequest, var_file: Path, reporter: Reporter, *, project_id: str, region: str) -> GcpResult:
    binary = gcp.dry_run_binary(req, reporter)
    init_args, why = gcp.init_command(req)
    reporter.always(f"dry run: {req.name!r} is in {ATTRIBUTE} of {var_file} (left unchanged)")
    reporter.always(f"dry run: backend: {why}; workspace {req.workspace_name}")
    plan_file = Path("<tmp>/tfplan")
    key = f"<the key instance of {req.name!r}, found by the first plan>"
    commands = [
        init_args,
        runner.build_args("workspace select", workspace=req.workspace_name),
        runner.build_args("plan", var_file=var_file, plan_file=Path("<tmp>/look"), refresh=False),
        runner.build_args("show", plan_file=Path("<tmp>/look")),
        runner.build_args("plan", var_file=var_file, plan_file=plan_file, replace=[key]),
        runner.build_args("show", plan_file=plan_file),
        runner.build_args("apply", plan_file=plan_file),
        runner.build_args("output", output_name=KEYS_OUTPUT),
    ]
    when = "apply only when the plan replaces nothing but that key, and after confirmation; it deletes the old key"
    gcp.would_run(req, binary, commands, reporter, when=when)
    shape = gcp.registry_for(req.name, project_id=project_id, region=region, key="")
    return GcpResult(False, Plan(), False, shape, 0)
