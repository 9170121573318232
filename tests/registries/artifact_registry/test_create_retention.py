"""provision gcp --keep-tags/--prune-older-than (issue 20): the hub's cleanup policies through its registry_retention
entry, judged by the plan guard; real OpenTofu on the fixture modules (ours and 2i2c-shaped)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli import app
from provision.errors import UsageError
from provision.registries.artifact_registry.retention import Retention
from tests.registries.artifact_registry import test_create_2i2c as twoi2c
from tests.registries.artifact_registry.test_create import TFVARS, Env
from tests.registries.artifact_registry.test_create import env as env  # noqa: F401  (the fixture)

RETENTION = Retention(keep_tags=30, prune_older_than_days=90)
BLOCK = """
# Per-hub settings written by provision (see the module's variables.tf)
registry_retention = {
  "hub1" = { keep_recent = 30, delete_older_than_days = 90 }
}
"""
WITH_HUB1 = TFVARS.replace('  "existing", // the first one\n', '  "existing", // the first one\n  "hub1",\n')


def retention_in_state(env: Env, hub: str) -> dict[str, object]:
    state = json.loads(env.tf("state", "pull").stdout)
    (registry,) = [r for r in state["resources"] if r["name"] == "registry"]
    (instance,) = [i for i in registry["instances"] if i["index_key"] == hub]
    return instance["attributes"]["input"]["value"]["retention"]  # type: ignore[no-any-return]


def test_first_run_sets_the_policy_keeping_comments_and_a_rerun_changes_nothing(env: Env) -> None:
    result, stderr = env.run(retention=RETENTION)
    assert result.applied and result.tfvars_changed
    assert env.tfvars.read_text() == WITH_HUB1 + BLOCK  # every other byte and comment kept
    assert retention_in_state(env, "hub1") == {
        "keep_recent": 30, "delete_older_than_days": 90, "delete_untagged_older_than_days": None,
    }  # fmt: skip
    assert "set registry_retention['hub1'] = {'keep_recent': 30, 'delete_older_than_days': 90}" in stderr

    before = env.tfvars.read_bytes()
    again, stderr = env.run(retention=RETENTION, confirm=lambda _q: pytest.fail("nothing to confirm on a re-run"))
    assert not again.applied and not again.tfvars_changed
    assert env.tfvars.read_bytes() == before and "apply skipped" in stderr


def test_policy_on_an_existing_hub_is_an_update_of_its_registry_only(env: Env) -> None:
    result, _ = env.run(hub="existing", retention=Retention(keep_tags=5))
    assert result.applied
    assert [c.describe() for c in result.plan.changes] == ['update terraform_data.registry["existing"]']
    # --keep-tags alone: keep 5 and delete the rest (delete_older_than_days = 0), as Quay's number_of_tags does.
    assert retention_in_state(env, "existing")["delete_older_than_days"] == 0
    assert '  "existing" = { keep_recent = 5, delete_older_than_days = 0 }\n' in env.tfvars.read_text()
    # Without the options, a later run leaves the policy as it is.
    again, _ = env.run(hub="existing")
    assert not again.applied and not again.tfvars_changed


@pytest.mark.parametrize(
    "pending",
    ['registry_retention = {\n  "existing" = { keep_recent = 3 }\n}\n', "cleanup_keep_recent = 3\n"],
    ids=["other-hubs-entry", "module-wide"],
)
def test_another_hubs_pending_policy_change_is_refused(env: Env, pending: str) -> None:
    env.tfvars.write_text(TFVARS + pending)  # by hand, not applied
    error, before = env.fails(retention=RETENTION)
    assert 'update terraform_data.registry["existing"]' in str(error)
    assert "outside the registry of repository 'hub1'" in str(error) and "restored" in str(error)
    assert env.tfvars.read_bytes() == before
    assert "hub1" not in env.state_keys()


def test_dry_run_shows_the_tfvars_diff_and_changes_nothing(env: Env) -> None:
    args = ["gcp", "--cluster", "c1", "--hub", "hub1", "--terraform-dir", str(env.module), "--terraform-bin", env.tofu]
    before, state = env.tfvars.read_bytes(), json.loads(env.tf("state", "pull").stdout)["serial"]
    result = CliRunner().invoke(app, [*args, "--keep-tags", "30", "--prune-older-than", "90", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert '+  "hub1" = { keep_recent = 30, delete_older_than_days = 90 }' in result.stderr
    assert '+  "hub1",' in result.stderr
    assert env.tfvars.read_bytes() == before and json.loads(env.tf("state", "pull").stdout)["serial"] == state

    for bad, message in ((["--keep-tags", "0"], "--keep-tags"), (["--rotate", "--keep-tags", "3"], "--rotate")):
        refused = CliRunner().invoke(app, [*args, *bad])
        assert refused.exit_code == 2 and message in refused.stderr, refused.stderr
    assert env.tfvars.read_bytes() == before


def test_module_without_cleanup_support_is_refused_before_any_change(tmp_path: Path, tofu: str) -> None:
    root = tmp_path / "2i2c"
    e = twoi2c.Env(root, tofu)
    shutil.copytree(twoi2c.FIXTURE, e.module)
    (e.module / "projects").mkdir()
    e.tfvars.write_text(twoi2c.TFVARS)
    with pytest.raises(UsageError) as err:
        e.run(retention=RETENTION)
    message = " ".join(str(err.value).split())
    assert "has none: it declares no variable 'registry_retention'" in message
    assert 'dynamic "cleanup_policies"' in message and "lookup(var.registry_retention, each.key, null)" in message
    assert "nothing was changed" in message and "\n" not in str(err.value).strip()
    assert e.tfvars.read_text() == twoi2c.TFVARS
    assert not (e.module / ".terraform").exists()  # refused before terraform ran at all
