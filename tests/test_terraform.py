"""The terraform runner: argv table (pure), diagnostics parsing, and the real OpenTofu binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from provision.terraform import Diagnostic, Terraform, TerraformError, build_args, find_binary, parse_text_diagnostics
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
        ("workspace select", {"workspace": "leap"}, ["workspace", "select", "-no-color", "leap"]),
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
        ("apply", {"plan_file": P}, ["apply", "-input=false", "-no-color", "-json", str(P)]),
        # Flags before the positional name: `output NAME -json` is an error.
        ("output", {"output_name": "registry_sa_keys"}, ["output", "-no-color", "-json", "registry_sa_keys"]),
    ],
)
def test_build_args(command: str, kwargs: dict[str, object], expected: list[str]) -> None:
    args = build_args(command, **kwargs)  # type: ignore[arg-type]
    assert args == expected
    if command != "output":
        assert "-input=false" in args or command == "workspace select"
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
        find_binary("/nonexistent/tofu")
    assert "install OpenTofu" in str(err.value)


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
    assert not again.has_changes and again.changes == ()
    assert tf.process_count == 7


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
