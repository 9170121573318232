"""provision gcp end to end with the real OpenTofu binary on the fixture module (built-ins, local backend)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.registries.artifact_registry.create import GcpRequest, GcpResult, run
from provision.terraform.runner import TerraformError
from provision.terraform.tfvars import TfvarsError
from tests.conftest import REPO
from tests.helpers import helm_merge, validate_hub_values
from tests.realsops import (
    AgeKey,
    decrypt_file,
    encrypt_file,
    sops_env,
    write_sops_config,
)
from tests.realsops import sops_binary as real_sops_path

FIXTURE = REPO / "tests" / "fixtures" / "terraform" / "registry"
# Shaped like 2i2c-org/infrastructure terraform/gcp/projects/leap.tfvars: comments, other settings, a list.
TFVARS = """\
# Cluster c1 (2i2c layout)
prefix     = "c1"
project_id = "c1-project"
region     = "us-central1"

# Hubs that build images with BinderHub
container_repos = [
  "existing", // the first one
]

enable_network_policy = true # not a variable of the module: terraform warns, never fails
"""


class Env:
    """A module copied to <root>/terraform/gcp with projects/<CLUSTER>.tfvars, and the flow run on it."""

    CLUSTER, HUB = "c1", "hub1"

    def __init__(self, root: Path, tofu: str) -> None:
        self.root, self.tofu = root, tofu
        self.module = root / "terraform" / "gcp"
        self.tfvars = self.module / "projects" / f"{self.CLUSTER}.tfvars"

    def tf(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.tofu, f"-chdir={self.module}", *args], capture_output=True, text=True, check=True)

    def request(self, **kwargs: Any) -> GcpRequest:
        fields: dict[str, Any] = {
            "cluster": self.CLUSTER,
            "hub": self.HUB,
            "terraform_dir": self.module,
            "terraform_bin": self.tofu,
            "yes": True,
        }
        return GcpRequest(**{**fields, **kwargs})

    def run(
        self, *, confirm: Callable[[str], bool] = lambda _q: True, dry_run: bool = False, **kwargs: Any
    ) -> tuple[GcpResult, str]:
        stream = io.StringIO()
        result = run(self.request(**kwargs), reporter=Reporter(stream=stream), confirm=confirm, dry_run=dry_run)
        return result, stream.getvalue()

    def fails(self, **kwargs: Any) -> tuple[ProvisionError, bytes]:
        before = self.tfvars.read_bytes()
        with pytest.raises(ProvisionError) as err:
            self.run(**kwargs)
        return err.value, before

    def state_keys(self) -> dict[str, str]:
        out = self.tf("output", "-no-color", "-json", "registry_sa_keys").stdout
        return json.loads(out)


@pytest.fixture
def env(tmp_path: Path, tofu: str) -> Env:
    e = Env(tmp_path, tofu)
    shutil.copytree(FIXTURE, e.module)
    e.tfvars.parent.mkdir()
    e.tfvars.write_text(TFVARS)
    e.tf("init", "-input=false", "-no-color")
    e.tf("workspace", "new", "-no-color", "c1")
    # The cluster is in sync with its tfvars before provision runs (the `existing` hub and the rest are applied).
    e.tf("apply", "-input=false", "-no-color", "-auto-approve", "-var-file=projects/c1.tfvars")
    return e


def test_first_run_then_rerun(env: Env) -> None:
    result, stderr = env.run()
    assert result.applied and result.tfvars_changed
    assert env.tfvars.read_text() == TFVARS.replace(
        '  "existing", // the first one\n', '  "existing", // the first one\n  "hub1",\n'
    )
    key = json.loads(result.registry.password)
    assert key["client_email"] == "hub1-registry-sa@c1-project.iam.gserviceaccount.com"
    assert result.registry.username == "_json_key"
    assert result.registry.server == "https://us-central1-docker.pkg.dev"
    assert result.registry.image_prefix == "us-central1-docker.pkg.dev/c1-project/hub1-registry/"
    assert result.registry.pull_secret_registry is None
    assert result.processes == 6  # init, workspace select, plan, show (to judge the plan), apply, output
    assert "terraform apply: done (" in stderr  # progress with elapsed time
    assert 'terraform_data.registry_sa_key["hub1"]: Creation complete' in stderr
    assert "PRIVATE KEY" not in stderr

    before = env.tfvars.read_bytes()
    again, stderr = env.run(confirm=lambda _q: pytest.fail("nothing to confirm on a re-run"))
    assert not again.applied and not again.tfvars_changed
    assert again.processes == 4
    assert "apply skipped" in stderr
    assert again.registry.password == result.registry.password
    assert env.tfvars.read_bytes() == before


def test_declined_confirmation_restores_tfvars(env: Env) -> None:
    error, before = env.fails(yes=False, confirm=lambda _q: False)
    assert "declined" in str(error) and "restored" in str(error)
    assert env.tfvars.read_bytes() == before
    assert "hub1" not in env.state_keys()


def test_failed_apply_keeps_the_entry_whose_resources_the_state_holds(env: Env) -> None:
    """Issue 18: apply created part of the hub's registry and failed; taking the hub out of container_repos again
    would make the next apply (for another hub) destroy what was created, so the entry stays and the message says
    what the state holds."""
    error, before = env.fails(hub="fails-on-apply")
    assert isinstance(error, TerraformError)
    message = str(error)
    assert "local-exec provisioner error" in message
    assert "the state of workspace c1 now holds 3 registry resource(s) of 'fails-on-apply'" in message
    assert 'terraform_data.registry["fails-on-apply"]' in message
    assert 'terraform_data.registry_sa_key["fails-on-apply"]' in message  # created, then tainted
    assert f"'fails-on-apply' stays in container_repos of {env.tfvars}" in message
    assert "run the same command to finish" in message and "provision remove gcp" in message
    assert "restored" not in message
    assert '"fails-on-apply",' in env.tfvars.read_text() and env.tfvars.read_bytes() != before


def test_bad_tfvars_syntax_names_file_and_line(env: Env) -> None:
    env.tfvars.write_text(TFVARS.replace('  "existing",', '  "existing"\n  oops ='))
    error, before = env.fails()
    assert isinstance(error, TfvarsError)
    assert f"{env.tfvars}:9" in str(error)
    assert env.tfvars.read_bytes() == before


def test_bad_tfvars_value_gives_terraform_diagnostic_with_file_and_line(env: Env) -> None:
    env.tfvars.write_text(TFVARS + 'unrelated_marker = ["not", "a", "string"]\n')
    error, before = env.fails()
    assert isinstance(error, TerraformError)
    assert "Invalid value for input variable" in str(error) and "c1.tfvars:13)" in str(error)
    assert env.tfvars.read_bytes() == before


def test_missing_binary_touches_nothing(env: Env) -> None:
    error, before = env.fails(terraform_bin=str(env.root / "no-such-tofu"))
    assert "no terraform binary found" in str(error) and "--terraform-bin" in str(error)
    assert env.tfvars.read_bytes() == before


def test_unknown_workspace_is_refused_unless_asked(env: Env) -> None:
    error, before = env.fails(workspace="c2")
    assert "workspace 'c2' does not exist" in str(error) and "--create-workspace" in str(error)
    assert env.tfvars.read_bytes() == before
    # A new workspace has an empty state: its plan recreates the whole cluster, which the guard refuses too.
    error, _ = env.fails(workspace="c2", create_workspace=True)
    assert "terraform_data.unrelated" in str(error)
    result, _ = env.run(workspace="c2", create_workspace=True, allow_unrelated_changes=True)
    assert result.applied


def test_plan_touching_an_unrelated_resource_is_refused(env: Env) -> None:
    env.run()  # applies with unrelated_marker v1
    env.tfvars.write_text(env.tfvars.read_text() + 'unrelated_marker = "v2"\n')
    error, before = env.fails(hub="hub2")
    assert "terraform_data.unrelated" in str(error) and "--allow-unrelated-changes" in str(error)
    assert env.tfvars.read_bytes() == before
    assert "hub2" not in env.state_keys()
    result, _ = env.run(hub="hub2", allow_unrelated_changes=True)
    assert result.applied and "hub2" in env.state_keys()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hub": "Hub1"}, "invalid hub name"),
        ({"repo": "a-name-that-is-too-long"}, "invalid repository name"),
        ({"repo": "9lives"}, "invalid repository name"),
        ({"cluster": "nope"}, "does not exist"),
    ],
)
def test_validation_before_terraform(env: Env, kwargs: dict[str, str], message: str) -> None:
    error, before = env.fails(**kwargs)
    assert isinstance(error, UsageError) and message in str(error)
    assert env.tfvars.read_bytes() == before


def test_dry_run_shows_diff_and_commands_and_runs_nothing(env: Env) -> None:
    shutil.rmtree(env.module / ".terraform")
    before = env.tfvars.read_bytes()
    result, stderr = env.run(dry_run=True)
    assert result.processes == 0 and not (env.module / ".terraform").exists()
    assert env.tfvars.read_bytes() == before
    assert '+  "hub1",' in stderr
    assert "tofu plan -input=false -no-color -json -detailed-exitcode" in stderr
    assert "tofu apply -input=false -no-color -json '<tmp>/tfplan'" in stderr


def test_cli_end_to_end(env: Env) -> None:
    args = [
        "gcp",
        "--cluster",
        "c1",
        "--hub",
        "hub1",
        "--terraform-dir",
        str(env.module),
        "--terraform-bin",
        env.tofu,
        "--yes",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    key = secret["binderhub-service"]["buildPodsRegistryCredentials"]["password"]
    assert json.loads(key)["type"] == "service_account"
    assert key == env.state_keys()["hub1"]
    public = yaml.safe_load(result.stderr.split("public values (for <hub>.values.yaml):\n")[1].split("dry run")[0])
    validate_hub_values(helm_merge(public, secret))
    assert "jupyterhub" not in secret
    assert "PRIVATE KEY" not in result.stderr

    # Without --yes and with stdin closed (CI, pipes) there is nobody to answer: that is a "no".
    declined = CliRunner().invoke(app, [*args[:-1], "--hub", "hub2"], input="")
    assert declined.exit_code == 1 and "declined" in declined.stderr
    assert "Apply these 3 change(s) to workspace c1? [y/N]" in declined.stderr
    # Answering yes on stdin applies, and stdout still carries nothing but the YAML.
    confirmed = CliRunner().invoke(app, [*args[:-1], "--hub", "hub2"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.stderr
    assert confirmed.stdout.startswith("binderhub-service:\n")
    assert declined.stdout == ""


def test_readme_example_for_our_module_as_written(tmp_path: Path, tofu: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our terraform/gcp needs its state bucket at init, which is not reachable offline: the README's command runs
    as written with --dry-run (options, paths, backend settings and the commands it would run)."""
    from tests.registries.artifact_registry.test_create_2i2c import readme_commands

    section = (REPO / "docs" / "tutorials" / "first-hub-gcp.md").read_text()
    cp_line = next(line for line in section.splitlines() if line.startswith("cp terraform/gcp/"))
    shutil.copytree(REPO / "terraform" / "gcp", tmp_path / "terraform" / "gcp")
    subprocess.run(cp_line.split("#")[0], shell=True, cwd=tmp_path, check=True)
    (args,) = readme_commands("--backend-config bucket=")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tofu").symlink_to(tofu)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert '+  "staging",' in result.stderr
    assert (
        "tofu init -input=false -no-color -backend-config=bucket=my-terraform-state "
        "-backend-config=prefix=terraform/state/registries -reconfigure" in result.stderr
    )
    assert "tofu workspace select -no-color -or-create leap" in result.stderr
    assert "OpenTofu (tofu)): asked for" in result.stderr


def test_secret_file_write_failing_after_apply_says_where_the_key_is(
    env: Env, tmp_path: Path, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """QA (the brief's "a credential created and then not delivered ... the message says exactly where it is"):
    terraform applied and made the hub's key, then writing --secret-file fails (sops cannot write). The message says
    that the key exists, where (the sensitive terraform output in its workspace), that it was not written, and what
    to do: the same command without --rotate reads it back and writes it."""
    alice = age_keys[0]
    hubs = tmp_path / "hubs"
    write_sops_config(hubs, [alice.recipient])
    secret = hubs / "enc-hub1.secret.values.yaml"
    encrypt_file(secret, "jupyterhub:\n  custom: {}\n", [alice.recipient])
    before = secret.read_bytes()
    args = ["gcp", "--cluster", "c1", "--hub", "hub1", "--terraform-dir", str(env.module), "--terraform-bin",
            env.tofu, "--yes", "--secret-file", str(secret)]  # fmt: skip
    from tests.registries.artifact_registry.test_rotate import failing_set

    result = CliRunner().invoke(app, args, env=sops_env(alice, SOPS_BIN=failing_set(tmp_path, real_sops_path())))
    assert result.exit_code == 1, result.stderr
    assert "hub1" in env.state_keys() and secret.read_bytes() == before  # applied; the file as it was
    message = " ".join(result.stderr.strip().splitlines()[-1].split())
    assert "no space left on device" in message, result.stderr
    assert message.startswith("error: the service-account key of 'hub1' exists but was not delivered: sops set")
    assert "It can be read from the sensitive terraform output " in message
    assert "registry_sa_keys['hub1'] of workspace c1" in message
    assert f"it was not written to the encrypted file {secret}" in message
    assert "Run the same `provision gcp` command without --rotate (it reads the key from terraform" in message
    assert "PRIVATE KEY" not in result.stderr
    again = CliRunner().invoke(app, args, env=sops_env(alice, SOPS_BIN=real_sops_path()))
    assert again.exit_code == 0, again.stderr
    written = yaml.safe_load(decrypt_file(secret, alice).stdout)
    assert written["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == env.state_keys()["hub1"]


def test_stdout_mode_takes_the_chart_of_the_named_cluster(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `provision gcp --cluster leap --hub staging … | sops encrypt …`, run from the root of the
    infrastructure repository: a daskhub hub's secrets must be under `basehub:` (the chart reads nothing else)."""
    folder = env.root / "config" / "clusters" / "c1"
    folder.mkdir(parents=True)
    (folder / "cluster.yaml").write_text("name: c1\nhubs:\n  - name: hub1\n    helm_chart: daskhub\n")
    monkeypatch.chdir(env.root)
    args = ["gcp", "--cluster", "c1", "--hub", "hub1", "--terraform-dir", str(env.module), "--terraform-bin",
            env.tofu, "--yes"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert list(secret) == ["basehub"]
    credentials = secret["basehub"]["binderhub-service"]["buildPodsRegistryCredentials"]
    assert credentials["password"] == env.state_keys()["hub1"]
    assert "chart daskhub, from config/clusters/c1/cluster.yaml" in result.stderr


@pytest.mark.parametrize(
    ("project", "prefix"),
    [
        ("proj-1", "us-central1-docker.pkg.dev/proj-1/staging-registry/"),
        ("example.com:proj", "us-central1-docker.pkg.dev/example.com/proj/staging-registry/"),  # domain-scoped
    ],
)
def test_image_prefix_of_plain_and_domain_scoped_projects(project: str, prefix: str) -> None:
    from provision.registries.artifact_registry.client import RepositoryRef
    from provision.registries.artifact_registry.create import registry_for

    registry = registry_for("staging", project_id=project, region="us-central1", key="k")
    assert registry.image_prefix == prefix
    # verify reads the prefix back to the same project (Artifact Registry's resource name keeps the colon)
    assert RepositoryRef.from_image_prefix(prefix).project == project
