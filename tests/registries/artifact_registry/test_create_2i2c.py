"""provision gcp with the real OpenTofu on a module shaped like 2i2c's terraform/gcp (facts/terraform.md §6).

The fixture keys hub names into the registry and into home-directory disks, snapshot schedules and workload
service accounts; its keys iterate over the registry service accounts; one output drifts by itself; its backend
is hard-coded with an alternate in backends/cloudbank.hcl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.errors import UsageError
from provision.terraform.runner import TerraformError
from provision.terraform.tfvars import TfvarsError
from tests.conftest import REPO
from tests.registries.artifact_registry.test_create import Env as BaseEnv

FIXTURE = REPO / "tests" / "fixtures" / "terraform" / "twoi2c"
# Shaped like 2i2c's projects/leap.tfvars: hub-keyed disks and permissions beside container_repos.
TFVARS = """\
prefix     = "leap"
project_id = "leap-pangeo"
region     = "us-central1"

persistent_disks = {
  "staging" = {
    size = 10
  }
  "prod" = {
    size = 100
  }
}

hub_cloud_permissions = {
  "staging" : {
    requestor_pays : true,
  },
}

container_repos = [
  "imagebuilding",
]
"""


class Env(BaseEnv):
    CLUSTER, HUB = "leap", "staging"

    def __init__(self, root: Path, tofu: str) -> None:
        super().__init__(root, tofu)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        self.env["TF_CLI_CONFIG_FILE"] = os.devnull

    def tf(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tofu, f"-chdir={self.module}", *args], capture_output=True, text=True, check=ok, env=self.env
        )

    def apply(self, var_file: str = "projects/leap.tfvars") -> None:
        self.tf("apply", "-input=false", "-no-color", "-auto-approve", f"-var-file={var_file}")

    def state(self, workspace: str = "leap", folder: str = "main") -> dict[str, Any]:
        path = self.module / "states" / folder / workspace / "terraform.tfstate"
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    def keys(self, workspace: str = "leap", folder: str = "main") -> dict[str, str]:
        value = self.state(workspace, folder)["outputs"]["registry_sa_keys"]["value"]
        return value  # type: ignore[no-any-return]

    def instance(self, resource: str, key: str) -> Any:
        for item in self.state()["resources"]:
            if item["name"] == resource:
                for inst in item["instances"]:
                    if inst["index_key"] == key:
                        return inst["attributes"]["input"]["value"]
        return None


@pytest.fixture
def env(tmp_path: Path, tofu: str) -> Env:
    e = Env(tmp_path, tofu)
    shutil.copytree(FIXTURE, e.module)
    (e.module / "projects").mkdir()
    e.tfvars.write_text(TFVARS)
    e.tf("init", "-input=false", "-no-color")
    e.tf("workspace", "new", "-no-color", "leap")
    e.apply()  # the cluster is in sync with its tfvars before provision runs
    return e


def test_registry_resources_of_the_new_hub_are_applied(env: Env) -> None:
    result, stderr = env.run()
    assert result.applied
    changed = sorted(c.subject for c in result.plan.changes)
    assert changed == [
        'terraform_data.registry["staging"]',
        'terraform_data.registry_sa["staging"]',
        'terraform_data.registry_sa_keys["staging"]',  # for_each = terraform_data.registry_sa
        'terraform_data.registry_sa_roles["staging"]',
    ]
    assert (
        json.loads(result.registry.password)["client_email"]
        == "staging-registry-sa@leap-pangeo.iam.gserviceaccount.com"
    )
    assert "terraform: backend local (workspace_dir=states/main), workspace leap" in stderr
    assert "PRIVATE KEY" not in stderr


@pytest.mark.parametrize(
    ("edit", "pending"),
    [
        (("size = 10", "size = 20"), 'update terraform_data.nfs_homedirs["staging"]'),
        (("size = 10", "size = 10\n    snapshot_days = 1"), 'replace terraform_data.snapshot_schedule["staging"]'),
        (("requestor_pays : true", "requestor_pays : false"), 'update terraform_data.workload_sa["staging"]'),
    ],
    ids=["home-directory-disk", "snapshot-schedule", "workload-sa"],
)
def test_pending_change_to_a_hub_keyed_resource_that_is_not_its_registry_is_refused(
    env: Env, edit: tuple[str, str], pending: str
) -> None:
    env.tfvars.write_text(TFVARS.replace(*edit))
    error, before = env.fails()
    assert pending in str(error) and "--allow-unrelated-changes" in str(error)
    assert "nothing was applied" in str(error)
    assert 'terraform_data.registry["staging"]' not in str(error).split("'staging':")[1]  # its own are not listed
    assert env.tfvars.read_bytes() == before  # byte-identical
    assert "staging" not in env.keys()
    assert env.instance("nfs_homedirs", "staging") == 10
    assert env.instance("snapshot_schedule", "staging") == 7


def test_another_hubs_registry_change_is_foreign_too(env: Env) -> None:
    env.tfvars.write_text(TFVARS.replace('  "imagebuilding",\n', ""))  # would destroy imagebuilding's registry
    error, _ = env.fails()
    assert 'delete terraform_data.registry["imagebuilding"]' in str(error)
    assert "imagebuilding" in env.keys()


def test_output_only_drift_applies_nothing_and_asks_nothing(env: Env) -> None:
    first, _ = env.run()
    again, stderr = env.run(yes=False, confirm=lambda _q: pytest.fail("nothing to confirm"))
    assert not again.applied and again.plan.empty
    assert again.processes == 4  # init, workspace select, plan, output
    assert "only outputs would change" in stderr and "apply skipped" in stderr
    assert again.registry.password == first.registry.password


def test_output_only_drift_through_the_cli_with_stdin_closed(env: Env) -> None:
    env.run()
    args = ["gcp", "--cluster", "leap", "--hub", "staging", "--terraform-dir", str(env.module),
            "--terraform-bin", env.tofu]  # fmt: skip
    result = CliRunner().invoke(app, args, input="")
    assert result.exit_code == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert secret["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == env.keys()["staging"]
    assert "[y/N]" not in result.stderr and "4 terraform processes" in result.stderr


def test_backend_from_an_earlier_init_is_reset_to_the_modules_own(env: Env) -> None:
    # An earlier run for another cluster configured the folder for the alternate backend (2i2c: cloudbank).
    env.tf("init", "-input=false", "-no-color", "-backend-config=backends/cloudbank.hcl", "-reconfigure")
    env.tf("workspace", "new", "-no-color", "cloudbank")
    result, stderr = env.run()
    assert result.applied
    assert "staging" in env.keys("leap", "main")
    assert not (env.module / "states" / "cloudbank" / "leap").exists()
    assert "earlier init had set the folder up for local (workspace_dir=states/cloudbank)" in stderr
    assert "terraform: backend local (workspace_dir=states/main), workspace leap" in stderr


def test_backend_config_file_is_relative_to_the_current_folder(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.tf("init", "-input=false", "-no-color", "-backend-config=backends/cloudbank.hcl", "-reconfigure")
    env.tf("workspace", "new", "-no-color", "cloudbank")
    (env.module / "projects" / "cloudbank.tfvars").write_text(TFVARS.replace('"leap"', '"cloudbank"'))
    env.apply("projects/cloudbank.tfvars")
    env.tf("init", "-input=false", "-no-color", "-reconfigure", ok=False)  # may fail: the flow must not care
    monkeypatch.chdir(env.root)
    result, stderr = env.run(
        cluster="cloudbank",
        terraform_dir=Path("terraform/gcp"),
        backend_configs=("terraform/gcp/backends/cloudbank.hcl",),
    )
    assert result.applied and "staging" in env.keys("cloudbank", "cloudbank")
    assert "backend local (workspace_dir=states/cloudbank), workspace cloudbank" in stderr

    # A path written as if from the module folder is refused before anything runs, with the likely meaning.
    with pytest.raises(UsageError) as err:
        env.run(cluster="cloudbank", terraform_dir=Path("terraform/gcp"), backend_configs=("backends/cloudbank.hcl",))
    assert "'backends/cloudbank.hcl' does not exist" in str(err.value) and "current folder" in str(err.value)
    assert "did you mean terraform/gcp/backends/cloudbank.hcl?" in str(err.value)


def test_missing_workspace_names_the_backend_first(env: Env) -> None:
    error, before = env.fails(cluster="leap", workspace="cloudbank")
    message = str(error)
    assert "workspace 'cloudbank' does not exist in backend local (workspace_dir=states/main)" in message
    assert "its workspaces: default, leap" in message
    assert message.index("--backend-config") < message.index("--create-workspace")
    assert str(env.module / "backends" / "cloudbank.hcl") in message
    assert env.tfvars.read_bytes() == before


def test_2i2c_cluster_uses_pilot_hubs_tfvars_and_workspace(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(env.root)
    pilot = env.module / "projects" / "pilot-hubs.tfvars"
    pilot.write_text(TFVARS.replace('"leap"', '"pilot-hubs"'))
    (env.module / "projects" / "cluster.tfvars.template").write_text("prefix = {{ cluster_name }}\n")
    cluster_yaml = env.root / "config" / "clusters" / "2i2c" / "cluster.yaml"
    cluster_yaml.parent.mkdir(parents=True)
    cluster_yaml.write_text(
        "name: 2i2c\nprovider: gcp\ngcp:\n  project: two-eye-two-see\n  cluster: pilot-hubs-cluster\n"
    )
    env.tf("workspace", "new", "-no-color", "pilot-hubs")
    env.apply("projects/pilot-hubs.tfvars")

    with pytest.raises(UsageError) as err:
        env.run(cluster="2i2c", terraform_dir=Path("terraform/gcp"))
    assert "pass --var-file terraform/gcp/projects/pilot-hubs.tfvars" in str(err.value)
    assert "cluster.tfvars.template" in str(err.value) and "example.tfvars" not in str(err.value)

    result, stderr = env.run(
        cluster="2i2c", terraform_dir=Path("terraform/gcp"), var_file=Path("terraform/gcp/projects/pilot-hubs.tfvars")
    )
    assert result.applied and "workspace pilot-hubs" in stderr
    assert "staging" in env.keys("pilot-hubs")


def test_new_cluster_hint_names_the_template(env: Env) -> None:
    (env.module / "projects" / "cluster.tfvars.template").write_text("")
    error, _ = env.fails(cluster="newcluster")
    assert isinstance(error, UsageError)
    assert "projects/cluster.tfvars.template" in str(error) and "leap" in str(error)


def test_declined_run_takes_out_only_its_own_entry(env: Env) -> None:
    def someone_else_edits(_question: str) -> bool:
        # While we ask, another tool (not provision: it would wait for the lock) adds a hub.
        text = env.tfvars.read_text().replace('  "imagebuilding",\n', '  "imagebuilding",\n  "other",\n')
        env.tfvars.write_text(text)
        return False

    error, _ = env.fails(yes=False, confirm=someone_else_edits)
    assert "declined" in str(error) and "other changes to it were kept" in str(error)
    assert env.tfvars.read_text() == TFVARS.replace('  "imagebuilding",\n', '  "imagebuilding",\n  "other",\n')


PROVISION = [sys.executable, "-m", "provision"]


def _spawn(env: Env, hub: str, stderr: Path, *, yes: bool = True) -> subprocess.Popen[str]:
    args = [*PROVISION, "gcp", "--cluster", "leap", "--hub", hub, "--terraform-dir", str(env.module),
            "--terraform-bin", env.tofu, *(["--yes"] if yes else [])]  # fmt: skip
    with stderr.open("w") as err:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, env=env.env, cwd=REPO
        )


def test_processes_at_once_on_one_tfvars_lose_nothing(env: Env) -> None:
    """Three runs wait on one lock and are then released together; the middle one fails after its edit (no
    --yes, stdin closed: declined). Before the lock, the failing run restored its snapshot over the others' edits."""
    import fcntl
    import time

    logs = [env.root / f"stderr-{i}" for i in range(3)]
    fd = os.open(env.module, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held here until all three are waiting
        runs = [_spawn(env, "staging", logs[0]), _spawn(env, "declined", logs[1], yes=False),
                _spawn(env, "prod", logs[2])]  # fmt: skip
        deadline = time.monotonic() + 60
        while not all("waiting for another provision run" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            time.sleep(0.05)
    finally:
        os.close(fd)
    outs = [p.communicate(timeout=120)[0] for p in runs]
    errs = [log.read_text() for log in logs]
    assert [p.returncode for p in runs] == [0, 1, 0], errs
    assert "declined" in errs[1]
    text = env.tfvars.read_text()
    assert '"staging"' in text and '"prod"' in text and "declined" not in text
    keys = env.keys()
    assert yaml.safe_load(outs[0])["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == keys["staging"]
    assert yaml.safe_load(outs[2])["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == keys["prod"]


def test_second_run_refuses_after_the_lock_timeout(env: Env) -> None:
    import fcntl

    fd = os.open(env.module, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        error, before = env.fails(lock_timeout=0.3)
    finally:
        os.close(fd)
    assert "held the lock" in str(error) and "--lock-timeout" in str(error)
    assert env.tfvars.read_bytes() == before


@pytest.mark.parametrize("target", ["file", "folder"])
def test_unwritable_tfvars_or_projects_folder_is_one_paragraph(env: Env, target: str) -> None:
    path = env.tfvars if target == "file" else env.tfvars.parent
    mode = path.stat().st_mode
    path.chmod(0o444 if target == "file" else 0o555)
    try:
        args = ["gcp", "--cluster", "leap", "--hub", "staging", "--terraform-dir", str(env.module),
                "--terraform-bin", env.tofu, "--yes", "--chart", "basehub"]  # fmt: skip
        result = CliRunner().invoke(app, args)
    finally:
        path.chmod(mode)
    assert result.exit_code == 1
    assert "not writable" in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert env.tfvars.read_text() == TFVARS


def test_tfvars_that_is_a_folder_or_binary(env: Env) -> None:
    (env.module / "projects" / "dir.tfvars").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        env.run(cluster="dir")
    (env.module / "projects" / "bin.tfvars").write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(TfvarsError, match="not UTF-8"):
        env.run(cluster="bin")


# --- the binary ---------------------------------------------------------------------------------------------------

LOCK_TERRAFORM = 'provider "registry.terraform.io/hashicorp/google" {\n  version = "7.21.0"\n}\n'


def _bin_dir(root: Path, tofu: str, *, terraform: bool) -> str:
    """A PATH folder with the real tofu and (for presence only) a `terraform` script that must never run."""
    folder = root / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "tofu").symlink_to(tofu)
    if terraform:
        fake = folder / "terraform"
        fake.write_text("#!/bin/sh\necho 'this fake terraform must not run' >&2\nexit 99\n")
        fake.chmod(0o755)
    return str(folder)


def test_terraform_lock_file_refuses_tofu_unless_told(env: Env) -> None:
    (env.module / ".terraform.lock.hcl").write_text(LOCK_TERRAFORM)
    error, before = env.fails()
    assert isinstance(error, TerraformError)
    assert "managed by HashiCorp Terraform" in str(error) and "registry.terraform.io" in str(error)
    assert "--allow-binary-switch" in str(error)
    assert env.tfvars.read_bytes() == before and "staging" not in env.keys()
    result, stderr = env.run(allow_binary_switch=True)
    assert result.applied and "switching from HashiCorp Terraform" in stderr


def test_without_option_the_evidence_picks_the_binary(env: Env) -> None:
    path = _bin_dir(env.root, env.tofu, terraform=True)
    # Both on PATH and nothing says which manages the state: refused, before anything runs.
    error, before = env.fails(terraform_bin=None, search_path=path)
    assert "both tofu and terraform are on PATH" in str(error) and "--terraform-bin" in str(error)
    assert env.tfvars.read_bytes() == before
    # A lock file with registry.opentofu.org providers was written by OpenTofu: tofu runs, the fake never does.
    (env.module / ".terraform.lock.hcl").write_text(LOCK_TERRAFORM.replace("terraform.io", "opentofu.org"))
    result, stderr = env.run(terraform_bin=None, search_path=path)
    assert result.applied
    assert (
        f"binary: {path}/tofu (OpenTofu (tofu)): .terraform.lock.hcl lists providers from registry.opentofu.org"
        in stderr
    )


def test_terraform_state_with_only_tofu_installed_is_refused(env: Env) -> None:
    (env.module / ".terraform.lock.hcl").write_text(LOCK_TERRAFORM)
    path = _bin_dir(env.root, env.tofu, terraform=False)
    error, before = env.fails(terraform_bin=None, search_path=path)
    assert "`terraform` is not on PATH" in str(error) and "migrate" in str(error)
    assert env.tfvars.read_bytes() == before


# --- the README's examples, as written ----------------------------------------------------------------------------


def readme_commands(marker: str) -> list[list[str]]:
    """The `provision gcp …` commands (up to any `|`) of the gcp tutorial's code block that contains `marker`."""
    import re
    import shlex

    section = (REPO / "docs" / "tutorials" / "first-hub-gcp.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if marker in b)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("|")[0])[1:] for line in lines if line.startswith("provision gcp")]


def test_readme_examples_for_2i2c_run_as_written(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = readme_commands("--terraform-bin terraform")
    assert [c[c.index("--cluster") + 1] for c in commands] == ["leap", "cloudbank", "2i2c"]
    for name in ("pilot-hubs", "cloudbank"):
        (env.module / "projects" / f"{name}.tfvars").write_text(TFVARS.replace('"leap"', f'"{name}"'))
    env.tf("workspace", "new", "-no-color", "pilot-hubs")
    env.apply("projects/pilot-hubs.tfvars")
    env.tf("init", "-input=false", "-no-color", "-backend-config=backends/cloudbank.hcl", "-reconfigure")
    env.tf("workspace", "new", "-no-color", "cloudbank")
    env.apply("projects/cloudbank.tfvars")  # the folder is left on cloudbank's backend, as after a real run
    bin_dir = env.root / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").symlink_to(env.tofu)  # the real tofu runs, under the name the README uses
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(env.root)
    for args, (workspace, folder) in zip(
        commands, [("leap", "main"), ("cloudbank", "cloudbank"), ("pilot-hubs", "main")], strict=True
    ):
        result = CliRunner().invoke(app, args, input="y\n")  # the user answers the confirmation
        assert result.exit_code == 0, result.stderr
        assert "Apply these 4 change(s)" in result.stderr
        password = yaml.safe_load(result.stdout)["binderhub-service"]["buildPodsRegistryCredentials"]["password"]
        assert password == env.keys(workspace, folder)["staging"]
        assert f"workspace {workspace}" in result.stderr
