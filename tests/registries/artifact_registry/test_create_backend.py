"""provision gcp's init on a module with `backend "local" {}` and workspace states at the default paths (real
OpenTofu): where `-reconfigure` makes the engine ask to migrate states, which it cannot without input (issue 18)."""

from __future__ import annotations

import shutil

from provision.terraform.runner import TerraformError
from tests.registries.artifact_registry import test_create as test_gcp
from tests.registries.artifact_registry.test_create import Env

env = test_gcp.env


def test_backend_config_the_folder_already_records_needs_no_reconfigure(env: Env) -> None:
    """The default paths written out as --backend-config are the backend .terraform records: a plain init."""
    result, stderr = env.run(backend_configs=("workspace_dir=terraform.tfstate.d", "path=terraform.tfstate"))
    assert result.applied and "hub1" in env.state_keys()
    assert "terraform init ..." in stderr and "init -reconfigure" not in stderr
    assert "already set up for local (default settings), as asked" in stderr


def test_a_migration_question_is_explained_and_its_command_works(env: Env) -> None:
    """A fresh clone (no .terraform) of a module whose workspace states sit at the default paths: the engine wants
    to ask about copying them onto themselves. The message says what that means and the command that answers it;
    after that command, the same provision command works."""
    shutil.rmtree(env.module / ".terraform")
    error, before = env.fails()
    assert isinstance(error, TerraformError)
    message = str(error)
    assert "Error asking for state migration action" in message
    assert "which is the same local folder" in message and "Nothing was changed" in message
    assert env.tfvars.read_bytes() == before and "hub1" not in env.tfvars.read_text()
    command = message.split("run `", 1)[1].split("`", 1)[0]
    argv = command.split()
    assert argv[:2] == ["tofu", f"-chdir={env.module}"] and argv[2:] == ["init", "-input=false", "-force-copy"]
    states = sorted(p.read_bytes() for p in (env.module / "terraform.tfstate.d").rglob("terraform.tfstate"))
    env.tf(*argv[2:])
    assert sorted(p.read_bytes() for p in (env.module / "terraform.tfstate.d").rglob("terraform.tfstate")) == states
    result, _ = env.run()
    assert result.applied and "hub1" in env.state_keys() and "existing" in env.state_keys()
