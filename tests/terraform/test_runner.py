"""The terraform runner: argv table (pure), diagnostics parsing, and the real OpenTofu binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provision.terraform.backends import Backend
from provision.terraform.binary import (
    Evidence,
    binary_kind,
    choose_binary,
    local_state_files,
    probe_kind,
    state_evidence,
)
from provision.terraform.runner import Diagnostic, Terraform, TerraformError, build_args, parse_text_diagnostics
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "terraform" / "registry"
P = Path("/tmp/x/tfplan")
V = Path("/abs/projects/c1.tfvars")


@pytest.mark.parametrize(
    ("command", "kwargs", "expected"),
    [
        ("init", {}, ["init", "-input=false", "-no-color"]),
        (
            "init",
            {"backend_configs": ["backends/cloudbank.hcl", "prefix=x"]},
            [
                "init",
                "-input=false",
                "-no-color",
                "-backend-config=backends/cloudbank.hcl",
                "-backend-config=prefix=x",
                "-reconfigure",
            ],
        ),
        ("init", {"reconfigure": True}, ["init", "-input=false", "-no-color", "-reconfigure"]),
        ("workspace select", {"workspace": "leap"}, ["workspace", "select", "-no-color", "leap"]),
        ("workspace list", {}, ["workspace", "list", "-no-color"]),
        ("show", {"plan_file": P}, ["show", "-no-color", "-json", str(P)]),
        (
            "workspace select",
            {"workspace": "leap", "create_workspace": True},
            ["workspace", "select", "-no-color", "-or-create", "leap"],
        ),
        (
            "plan",
            {"var_file": V, "plan_file": P},
            ["plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", f"-out={P}", f"-var-file={V}"],
        ),
        (
            "plan",
            {"var_file": V, "plan_file": P, "replace": ['m.k["a b"]'], "refresh": False},
            ["plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", "-refresh=false",
             '-replace=m.k["a b"]', f"-out={P}", f"-var-file={V}"],
        ),  # fmt: skip
        ("apply", {"plan_file": P}, ["apply", "-input=false", "-no-color", "-json", str(P)]),
        # Flags before the positional name: `output NAME -json` is an error.
        ("output", {"output_name": "registry_sa_keys"}, ["output", "-no-color", "-json", "registry_sa_keys"]),
    ],
)
def test_build_args(command: str, kwargs: dict[str, object], expected: list[str]) -> None:
    args = build_args(command, **kwargs)  # type: ignore[arg-type]
    assert args == expected
    if command not in ("output", "show"):
        assert "-input=false" in args or command.startswith("workspace")
    assert "-no-color" in args


def test_text_diagnostics_with_and_without_boxes() -> None:
    text = (
        "╷\n│ Warning: Unable to open CLI configuration file\n╵\n"
        "╷\n│ Error: Invalid value for input variable\n│ \n│   on projects/c1.tfvars line 4:\n"
        '│    4: container_repos = "x"\n╵\n'
        'Error: Output "registry_sa_keys" not found\n'
    )
    assert parse_text_diagnostics(text) == [
        Diagnostic("warning", "Unable to open CLI configuration file"),
        Diagnostic("error", "Invalid value for input variable", filename="projects/c1.tfvars", line=4),
        Diagnostic("error", 'Output "registry_sa_keys" not found'),
    ]


def test_missing_binary() -> None:
    with pytest.raises(TerraformError) as err:
        choose_binary("/nonexistent/tofu", evidence=[])
    assert "install OpenTofu" in str(err.value)
    with pytest.raises(TerraformError, match="no terraform binary found"):
        choose_binary(None, evidence=[], search_path="/nonexistent")


def _path_with(tmp_path: Path, tofu: str, *names: str) -> str:
    """A PATH folder with the real tofu linked as `tofu` and fake scripts (presence only) for `names`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "tofu").symlink_to(tofu)
    for name in names:
        (folder / name).write_text("#!/bin/sh\nexit 99\n")
        (folder / name).chmod(0o755)
    return str(folder)


TF_LOCK = Evidence("terraform", ".terraform.lock.hcl lists providers from registry.terraform.io")
TOFU_STATE = Evidence("opentofu", "the state terraform.tfstate uses providers from registry.opentofu.org")


@pytest.mark.parametrize(
    ("explicit", "evidence", "allow", "extra", "expected"),
    [
        # Evidence decides when no binary is named.
        (None, [TF_LOCK], False, ["terraform"], ("terraform", "registry.terraform.io")),
        (None, [TOFU_STATE], False, ["terraform"], ("opentofu", "registry.opentofu.org")),
        # No evidence: the only one on PATH, or a refusal when both are there.
        (None, [], False, [], ("opentofu", "the only one")),
        (None, [], False, ["terraform"], "both tofu and terraform are on PATH"),
        # The evidence's binary is missing: never the other one.
        (None, [TF_LOCK], False, [], "`terraform` is not on PATH"),
        # Disagreeing evidence needs a choice.
        (None, [TF_LOCK, TOFU_STATE], False, ["terraform"], "cannot tell which binary"),
        # An explicit choice against the evidence needs --allow-binary-switch.
        ("tofu", [TF_LOCK], False, [], "refusing to run OpenTofu"),
        ("tofu", [TF_LOCK], True, [], ("opentofu", "switching from HashiCorp Terraform")),
        ("terraform", [TF_LOCK], False, ["terraform"], ("terraform", "matches .terraform.lock.hcl")),
        ("tofu", [], False, ["terraform"], ("opentofu", "asked for")),
    ],
)
def test_choose_binary(
    tmp_path: Path,
    tofu: str,
    explicit: str | None,
    evidence: list[Evidence],
    allow: bool,
    extra: list[str],
    expected: tuple[str, str] | str,
) -> None:
    path = _path_with(tmp_path, tofu, *extra)
    if isinstance(expected, str):
        with pytest.raises(TerraformError, match=expected.replace("`", ".")):
            choose_binary(explicit, evidence=evidence, allow_switch=allow, search_path=path)
        return
    choice = choose_binary(explicit, evidence=evidence, allow_switch=allow, search_path=path)
    assert choice.kind == expected[0] and expected[1] in choice.reason
    assert Path(choice.path).parent == Path(path)


def test_binary_kind_follows_names_and_symlinks(tmp_path: Path, tofu: str) -> None:
    link = tmp_path / "tf"
    link.symlink_to(tofu)
    assert binary_kind(str(link)) == "opentofu"
    assert binary_kind("/usr/bin/terraform") == "terraform"
    assert binary_kind("/usr/bin/tf") is None


def test_state_evidence_from_lock_file_and_local_state(tmp_path: Path) -> None:
    assert state_evidence(tmp_path, []) == []
    (tmp_path / ".terraform.lock.hcl").write_text('provider "registry.terraform.io/hashicorp/google" {}\n')
    state = tmp_path / "terraform.tfstate.d" / "leap" / "terraform.tfstate"
    state.parent.mkdir(parents=True)
    provider = 'provider[\\"registry.opentofu.org/hashicorp/google\\"]'
    state.write_text('{"terraform_version": "1.8.0", "resources": [{"provider": "' + provider + '"}]}')
    files = local_state_files(tmp_path, "leap", Backend("local", {}))
    assert files == [state]
    found = state_evidence(tmp_path, files)
    assert [e.kind for e in found] == ["terraform", "opentofu"]
    assert "written by version 1.8.0" in found[1].source
    # Built-in providers say nothing; remote backends have no local state files.
    state.write_text('{"resources": [{"provider": "provider[\\"terraform.io/builtin/terraform\\"]"}]}')
    assert [e.kind for e in state_evidence(tmp_path, files)] == ["terraform"]
    assert local_state_files(tmp_path, "leap", Backend("gcs", {"bucket": "b"})) == []


@pytest.fixture
def module(tmp_path: Path) -> Path:
    target = tmp_path / "module"
    shutil.copytree(FIXTURE, target)
    (target / "c1.tfvars").write_text('project_id = "p"\nregion = "r"\ncontainer_repos = ["hub1"]\n')
    return target


def test_runner_against_real_tofu(tofu: str, module: Path, tmp_path: Path) -> None:
    progress: list[str] = []
    tf = Terraform(tofu, module, on_progress=progress.append)
    tf.init()
    tf.select_workspace("c1", create=True)
    plan = tf.plan(var_file=module / "c1.tfvars", plan_file=tmp_path / "tfplan")
    assert plan.has_changes
    assert {c.address for c in plan.changes} >= {'terraform_data.registry_sa_key["hub1"]', "terraform_data.unrelated"}
    assert any("Plan to create" in line for line in progress)
    assert tf.output("registry_sa_keys") is None  # nothing applied yet
    tf.apply(plan.plan_file)
    keys = tf.output("registry_sa_keys")
    assert '"client_email":"hub1-registry-sa@p.iam.gserviceaccount.com"' in keys["hub1"]
    assert not any("PRIVATE KEY" in line for line in progress)  # outputs never reach progress
    again = tf.plan(var_file=module / "c1.tfvars", plan_file=tmp_path / "tfplan2")
    assert not again.has_changes and again.changes == () and not again.output_only
    assert tf.list_workspaces() == ["default", "c1"]
    assert tf.process_count == 8


def test_json_diagnostic_carries_file_and_line(tofu: str, module: Path, tmp_path: Path) -> None:
    (module / "c1.tfvars").write_text('project_id = "p"\nregion = "r"\n\nunrelated_marker = ["x"]\n')
    tf = Terraform(tofu, module)
    tf.init()
    with pytest.raises(TerraformError) as err:
        tf.plan(var_file=module / "c1.tfvars", plan_file=tmp_path / "tfplan")
    assert err.value.returncode == 1
    assert str(err.value).startswith("`tofu plan` failed with exit code 1: Invalid value for input variable (")
    assert str(err.value).endswith("/module/c1.tfvars:4).")
    assert err.value.exit_code == 1  # the process exit code provision uses is unaffected


def test_unknown_workspace(tofu: str, module: Path) -> None:
    tf = Terraform(tofu, module)
    tf.init()
    with pytest.raises(TerraformError) as err:
        tf.select_workspace("nope")
    assert "doesn't exist" in str(err.value)


def test_terraform_children_get_no_provision_api_credentials(tmp_path: Path) -> None:
    """terraform (and its providers and local-exec provisioners) never see QUAY_TOKEN or the Docker Hub login."""
    seen = tmp_path / "env.txt"
    binary = tmp_path / "terraform-like"
    binary.write_text(f'#!/bin/sh\nenv > "{seen}"\necho "OpenTofu v1.6.2"\n')
    binary.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "QUAY_TOKEN": "q", "DOCKERHUB_TOKEN": "d", "DOCKERHUB_USERNAME": "u", "KEEP": "1"}
    assert probe_kind(str(binary), env) == "opentofu"
    names = {line.split("=", 1)[0] for line in seen.read_text().splitlines()}
    assert "KEEP" in names and not {"QUAY_TOKEN", "DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"} & names
    runner = Terraform(str(binary), tmp_path, env=env)
    assert "KEEP" in runner.env and not {"QUAY_TOKEN", "DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"} & set(runner.env)


# What the Google provider reports when the organization forbids keys (the error text Google's API returns).
KEY_POLICY_FAILURE = """\
terraform {}
resource "terraform_data" "registry_sa_key" {
  provisioner "local-exec" {
    command = <<-EOT
      echo 'Error creating service account key: googleapi: Error 400:' >&2
      echo 'Key creation is not allowed on this service account.' >&2
      echo '  type: constraints/iam.disableServiceAccountKeyCreation' >&2
      exit 1
    EOT
  }
}
"""


def test_a_key_blocked_by_organization_policy_is_explained(tofu: str, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(KEY_POLICY_FAILURE)
    tf = Terraform(tofu, tmp_path)
    tf.init()
    (tmp_path / "empty.tfvars").write_text("")
    plan = tf.plan(var_file=tmp_path / "empty.tfvars", plan_file=tmp_path / "tfplan")
    with pytest.raises(TerraformError) as failed:
        tf.apply(plan.plan_file)
    message = str(failed.value)
    assert "organization policy iam.disableServiceAccountKeyCreation" in message
    assert "Organization Policy Administrator" in message
    assert "gcloud resource-manager org-policies disable-enforce iam.disableServiceAccountKeyCreation" in message
