"""Static checks of terraform/gcp and its provider-free twin tests/fixtures/terraform/registry.

terraform/gcp needs the google provider, which cannot be downloaded here, so it is never `init`ed: it is checked
with `tofu fmt` and by parsing it with python-hcl2. The fixture has the same variables (with the same validation
rules) and outputs, so running the real `tofu` on the fixture checks the name rules of both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
GCP = REPO / "terraform" / "gcp"
FIXTURE = REPO / "tests" / "fixtures" / "terraform" / "registry"

NAME_REGEX = "^[a-z][a-z0-9-]*$"
VARIABLE_TYPES = {
    "project_id": "string",
    "region": "string",
    "container_repos": "list(string)",
    "registry_reader_members": "list(string)",
    "cleanup_keep_recent": "number",
    "cleanup_untagged_older_than_days": "number",
    "registry_retention": "map(object({keep_recent = optional(number), delete_older_than_days = optional(number), "
    "delete_untagged_older_than_days = optional(number)}))",
}
OUTPUTS = {"registry_sa_keys", "image_prefixes", "registry_servers"}


# --- running tofu -------------------------------------------------------------------------------------------------


def tofu_binary() -> Path:
    """The OpenTofu binary: $TOFU_BIN, else <repo>/.tools/bin/tofu. Missing means a failed test, never a skip."""
    binary = Path(os.environ.get("TOFU_BIN") or REPO / ".tools" / "bin" / "tofu")
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"OpenTofu binary not found at {binary}: run scripts/install-opentofu (or set TOFU_BIN to a tofu binary)",
            pytrace=False,
        )
    return binary


def tofu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run tofu without prompts, colours or the caller's TF_* settings (a TF_WORKSPACE would change the state)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    # os.devnull: no user CLI config, and no warning about a configured file that does not exist.
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", TF_CLI_CONFIG_FILE=os.devnull)
    return subprocess.run(
        [str(tofu_binary()), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_diagnostics(stdout: str) -> list[dict[str, Any]]:
    """The error diagnostics of a `-json` run (they arrive on stdout, one JSON object per line)."""
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [e["diagnostic"] for e in events if e.get("type") == "diagnostic" and e.get("@level") == "error"]


@pytest.mark.parametrize(
    "module", [GCP, FIXTURE, FIXTURE.parent / "twoi2c"], ids=["terraform-gcp", "fixture", "fixture-2i2c"]
)
def test_module_is_fmt_clean(module: Path) -> None:
    result = tofu("fmt", "-check", "-recursive", "-no-color", str(module), cwd=REPO)
    assert result.returncode == 0, (
        f"`tofu fmt -check -recursive` on {module.relative_to(REPO)} failed; run `.tools/bin/tofu fmt -recursive "
        f"{module.relative_to(REPO)}`.\nfiles: {result.stdout}\n{result.stderr}"
    )


# --- parsing with python-hcl2 -------------------------------------------------------------------------------------


def unwrap(expression: Any) -> Any:
    """python-hcl2 writes expressions as "${...}"; literal strings stay as they are."""
    if isinstance(expression, str) and expression.startswith("${") and expression.endswith("}"):
        return expression[2:-1]
    return expression


class Module:
    """The blocks of every .tf file of one directory, keyed by name."""

    def __init__(self, directory: Path) -> None:
        import hcl2
        from hcl2 import SerializationOptions

        # 8.x keeps string quotes and adds comment keys unless told otherwise.
        options = SerializationOptions(with_comments=False, strip_string_quotes=True)
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.providers: dict[str, dict[str, Any]] = {}
        self.terraform: list[dict[str, Any]] = []
        self.locals: dict[str, Any] = {}
        self.files = sorted(directory.glob("*.tf"))
        assert self.files, f"no .tf files in {directory}"
        for path in self.files:
            doc = hcl2.loads(path.read_text(), serialization_options=options)
            for block in doc.get("variable", []):
                self.variables.update(_named(block))
            for block in doc.get("output", []):
                self.outputs.update(_named(block))
            for block in doc.get("provider", []):
                self.providers.update(_named(block))
            for block in doc.get("resource", []):
                for rtype, by_name in _named(block).items():
                    for rname, body in _named(by_name).items():
                        assert (rtype, rname) not in self.resources, f"{rtype}.{rname} declared twice"
                        self.resources[(rtype, rname)] = body
            for block in doc.get("locals", []):
                self.locals.update(_named(block))
            self.terraform.extend(doc.get("terraform", []))

    def resource(self, rtype: str, rname: str) -> dict[str, Any]:
        assert (rtype, rname) in self.resources, f"resource {rtype}.{rname} is missing"
        return self.resources[(rtype, rname)]


def _named(block: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if not key.startswith("__")}


@cache
def module(directory: Path) -> Module:
    return Module(directory)


def test_gcp_versions_and_partial_gcs_backend() -> None:
    (terraform,) = module(GCP).terraform
    assert terraform["required_version"] == ">= 1.5"
    (providers,) = terraform["required_providers"]
    assert providers["google"] == {"source": "hashicorp/google", "version": "~> 7.0"}
    (backend,) = terraform["backend"]
    assert _named(backend) == {"gcs": {"__is_block__": True}}, "the gcs backend must stay empty (-backend-config)"


def test_gcp_provider_uses_the_project_and_region_variables() -> None:
    google = module(GCP).providers["google"]
    assert unwrap(google["project"]) == "var.project_id"
    assert unwrap(google["region"]) == "var.region"


def test_gcp_variables_have_types_descriptions_and_defaults() -> None:
    variables = module(GCP).variables
    assert set(variables) == set(VARIABLE_TYPES)
    for name, expected_type in VARIABLE_TYPES.items():
        assert unwrap(variables[name]["type"]) == expected_type, name
        assert str(variables[name].get("description", "")).strip(), f"variable {name} has no description"
    for name in ("project_id", "region"):
        assert "default" not in variables[name], f"{name} must be required"
    assert variables["container_repos"]["default"] == []
    assert variables["registry_reader_members"]["default"] == []
    for name in ("cleanup_keep_recent", "cleanup_untagged_older_than_days"):
        assert variables[name]["default"] is None
        assert variables[name]["nullable"] is True
    assert variables["registry_retention"]["default"] == {}


def test_gcp_container_repos_validation_states_the_gcp_name_rules() -> None:
    validations = module(GCP).variables["container_repos"]["validation"]
    conditions = [unwrap(v["condition"]) for v in validations]
    assert any(NAME_REGEX in c for c in conditions), conditions
    assert any(re.search(r"length\(name\) <= 18\b", c) for c in conditions), conditions
    assert any("distinct(var.container_repos)" in c for c in conditions), conditions
    messages = " ".join(v["error_message"] for v in validations)
    assert "18" in messages and "30-character" in messages and NAME_REGEX in messages


def test_gcp_registry_resources_are_keyed_by_repo_name() -> None:
    gcp = module(GCP)
    per_repo = [
        ("google_artifact_registry_repository", "registry"),
        ("google_service_account", "registry_sa"),
        ("google_artifact_registry_repository_iam_member", "registry_sa_writer"),
        ("google_service_account_key", "registry_sa_keys"),
    ]
    for rtype, rname in per_repo:
        assert unwrap(gcp.resource(rtype, rname)["for_each"]) == "toset(var.container_repos)", f"{rtype}.{rname}"

    repository = gcp.resource("google_artifact_registry_repository", "registry")
    assert repository["repository_id"] == "${each.key}-registry"
    assert repository["format"] == "DOCKER"
    assert unwrap(repository["location"]) == "var.region"
    assert unwrap(repository["project"]) == "var.project_id"
    assert repository["cleanup_policy_dry_run"] is False

    sa = gcp.resource("google_service_account", "registry_sa")
    assert sa["account_id"] == "${each.key}-registry-sa"
    assert sa.get("display_name")

    key = gcp.resource("google_service_account_key", "registry_sa_keys")
    assert "google_service_account.registry_sa[each.key]" in key["service_account_id"]


def test_gcp_cleanup_policies_are_per_hub_dynamic_and_optional() -> None:
    """Each repository's policies come from its own registry_retention entry (else the module-wide cleanup_*
    defaults), so one hub's retention changes that hub's repository only; at most 3 of the 10 policies allowed."""
    gcp = module(GCP)
    repository = gcp.resource("google_artifact_registry_repository", "registry")
    assert repository["cleanup_policy_dry_run"] is False
    policies = [d["cleanup_policies"] for d in repository["dynamic"] if "cleanup_policies" in d]
    assert len(policies) == 3 <= 10
    by_field = {}
    for policy in policies:
        for_each = unwrap(policy["for_each"])
        (field,) = set(re.findall(r"local\.retention\[each\.key\]\.(\w+)", for_each))
        assert f"local.retention[each.key].{field} == null ? []" in for_each
        by_field[field] = policy["content"][0]
    assert set(by_field) == {"keep_recent", "delete_untagged_older_than_days", "delete_older_than_days"}
    retention = unwrap(gcp.locals["retention"])
    assert "for name in var.container_repos : name => lookup(var.registry_retention, name, " in retention
    assert unwrap(gcp.locals["module_wide_retention"]["keep_recent"]) == "var.cleanup_keep_recent"

    keep = by_field["keep_recent"]
    assert keep["action"] == "KEEP" and "condition" not in keep  # most_recent_versions and condition: exclusive
    assert unwrap(keep["most_recent_versions"][0]["keep_count"]) == "cleanup_policies.value"
    untagged = by_field["delete_untagged_older_than_days"]
    assert untagged["action"] == "DELETE" and "most_recent_versions" not in untagged
    assert untagged["condition"][0] == {"tag_state": "UNTAGGED", "older_than": "${cleanup_policies.value * 86400}s",
                                        "__is_block__": True}  # fmt: skip
    older = by_field["delete_older_than_days"]
    assert older["action"] == "DELETE" and "most_recent_versions" not in older
    assert older["condition"][0]["tag_state"] == "ANY"
    assert "cleanup_policies.value * 86400}s" in older["condition"][0]["older_than"]  # durations as "<seconds>s"
    assert len({p["id"] for p in by_field.values() if "$" not in p["id"]}) == 2


def test_fixture_records_the_same_per_hub_retention() -> None:
    """The stand-in repository puts the hub's retention in its input, as terraform/gcp computes it, so a policy
    change shows in a plan as an update of that hub's registry only."""
    registry = module(FIXTURE).resource("terraform_data", "registry")
    retention = registry["input"]["retention"]
    assert unwrap(retention).startswith("lookup(var.registry_retention, each.key, ")


def test_gcp_writer_role_is_granted_on_the_repository_not_the_project() -> None:
    gcp = module(GCP)
    writer = gcp.resource("google_artifact_registry_repository_iam_member", "registry_sa_writer")
    assert writer["role"] == "roles/artifactregistry.writer"
    assert unwrap(writer["repository"]).startswith("google_artifact_registry_repository.registry[each.key]")
    assert "google_service_account.registry_sa[each.key].email" in writer["member"]

    project_wide = sorted(f"{t}.{n}" for t, n in gcp.resources if t.startswith("google_project_iam"))
    assert project_wide == [], "least privilege: no project-level IAM grants"
    roles = {body.get("role") for (rtype, _), body in gcp.resources.items() if rtype.endswith("_iam_member")}
    assert roles == {"roles/artifactregistry.writer", "roles/artifactregistry.reader"}


def test_gcp_reader_members_get_the_reader_role_per_repository() -> None:
    gcp = module(GCP)
    readers = [
        body
        for (rtype, _), body in gcp.resources.items()
        if rtype == "google_artifact_registry_repository_iam_member" and body["role"] == "roles/artifactregistry.reader"
    ]
    assert len(readers) == 1
    (reader,) = readers
    for_each = unwrap(reader["for_each"])
    if for_each.startswith("local."):
        for_each = unwrap(gcp.locals[for_each.removeprefix("local.")])
    assert "setproduct(var.container_repos, var.registry_reader_members)" in for_each
    assert "=>" in for_each, "the reader bindings need a stable string key, not a list index"
    assert unwrap(reader["member"]) == "each.value.member"


def test_gcp_every_resource_is_traceable_to_container_repos() -> None:
    """provision gcp accepts a planned change only for resources whose for_each visibly derives from
    var.container_repos (plan_judge.registry_resources); a for_each through a local would make our own resources
    look foreign."""
    for (rtype, rname), body in module(GCP).resources.items():
        for_each = unwrap(body.get("for_each", ""))
        assert "var.container_repos" in for_each or for_each.startswith("google_"), (rtype, rname, for_each)
        assert "local." not in for_each, (rtype, rname)


def test_gcp_outputs() -> None:
    outputs = module(GCP).outputs
    assert set(outputs) == OUTPUTS
    keys = outputs["registry_sa_keys"]
    assert keys["sensitive"] is True
    assert "base64decode(key.private_key)" in unwrap(keys["value"])
    assert "google_service_account_key.registry_sa_keys" in unwrap(keys["value"])
    assert "-docker.pkg.dev/${var.project_id}/${name}-registry/" in unwrap(outputs["image_prefixes"]["value"])
    assert "https://${var.region}-docker.pkg.dev" in unwrap(outputs["registry_servers"]["value"])
    for name in OUTPUTS - {"registry_sa_keys"}:
        assert outputs[name].get("sensitive") is not True, name


def test_example_tfvars_sets_only_declared_variables() -> None:
    import hcl2
    from hcl2 import SerializationOptions

    text = (GCP / "projects" / "example.tfvars").read_text()
    values = hcl2.loads(text, serialization_options=SerializationOptions(with_comments=False, strip_string_quotes=True))
    assert set(values) <= set(VARIABLE_TYPES)
    assert {"project_id", "region", "container_repos"} <= set(values)
    assert isinstance(values["container_repos"], list)


def test_fixture_has_the_interface_of_terraform_gcp() -> None:
    gcp, fixture = module(GCP), module(FIXTURE)
    assert set(fixture.variables) == set(gcp.variables) | {"unrelated_marker"}
    for name, body in gcp.variables.items():
        assert fixture.variables[name]["type"] == body["type"], name
        assert fixture.variables[name].get("default") == body.get("default"), name
        # Same rules, so the tofu runs on the fixture below also check terraform/gcp's validation.
        assert fixture.variables[name].get("validation") == body.get("validation"), name
    assert set(fixture.outputs) == set(gcp.outputs) == OUTPUTS
    assert fixture.outputs["registry_sa_keys"]["sensitive"] is True
    for name in OUTPUTS - {"registry_sa_keys"}:
        assert fixture.outputs[name]["value"] == gcp.outputs[name]["value"], name

    assert not fixture.providers
    assert {rtype for rtype, _ in fixture.resources} == {"terraform_data"}
    assert {rname for _, rname in fixture.resources} == {"registry", "registry_sa", "registry_sa_key", "unrelated"}
    (terraform,) = fixture.terraform
    assert "required_providers" not in terraform
    (backend,) = terraform["backend"]
    assert "local" in backend


# --- the validation rules, enforced by the real tofu on the fixture ----------------------------------------------


@pytest.fixture(scope="module")
def initialised_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("registry-fixture") / "registry"
    shutil.copytree(FIXTURE, workdir)
    result = tofu("init", "-input=false", "-no-color", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir


def plan(workdir: Path, **variables: Any) -> subprocess.CompletedProcess[str]:
    values = {"project_id": "example-project", "region": "us-central1", **variables}
    args = [f"-var={name}={value if isinstance(value, str) else json.dumps(value)}" for name, value in values.items()]
    flags = ["-input=false", "-no-color", "-json", "-refresh=false", "-detailed-exitcode"]
    return tofu("plan", *flags, *args, cwd=workdir)


@pytest.mark.parametrize(
    ("variables", "rule", "culprit"),
    [
        ({"container_repos": ["Bad_Name"]}, "start with a lowercase letter", '"Bad_Name"'),
        ({"container_repos": ["ok", "1starts-with-digit"]}, "start with a lowercase letter", '"1starts-with-digit"'),
        ({"container_repos": ["has.dot"]}, "only lowercase letters, digits and hyphens", '"has.dot"'),
        ({"container_repos": ["a" * 19]}, "at most 18 characters", '"' + "a" * 19 + '"'),
        ({"container_repos": ["twice", "twice"]}, "must be unique", ""),
        ({"registry_reader_members": ["nodes@example.iam.gserviceaccount.com"]}, "IAM principal", ""),
        ({"cleanup_keep_recent": 0}, "whole number of at least 1", ""),
        ({"cleanup_untagged_older_than_days": 1.5}, "whole number of days", ""),
        ({"registry_retention": {"hub1": {"keep_recent": 0}}}, "whole number of at least 1", ""),
        ({"registry_retention": {"hub1": {"delete_older_than_days": 2.5}}}, "whole number of days", ""),
        ({"registry_retention": {"hub1": {"delete_untagged_older_than_days": 0}}}, "use at least 1", ""),
        ({"registry_retention": {"hub1": {"delete_older_than_days": 0}}}, "it needs keep_recent", ""),
    ],
    ids=["uppercase", "leading-digit", "dot", "19-chars", "duplicate", "member-prefix", "keep-0", "days-1.5",
         "hub-keep-0", "hub-days-2.5", "hub-untagged-0", "hub-delete-all"],  # fmt: skip
)
def test_validation_rejects(initialised_fixture: Path, variables: dict[str, Any], rule: str, culprit: str) -> None:
    result = plan(initialised_fixture, **variables)
    assert result.returncode == 1, result.stdout
    diagnostics = error_diagnostics(result.stdout)
    assert [d["summary"] for d in diagnostics] == ["Invalid value for variable"], diagnostics
    assert rule in diagnostics[0]["detail"]
    assert culprit in diagnostics[0]["detail"]


def test_validation_accepts_18_characters_and_cleanup_settings(initialised_fixture: Path) -> None:
    name = "a2345678901234-xyz"
    assert len(name) == 18
    result = plan(
        initialised_fixture,
        container_repos=[name, "hub1"],
        registry_reader_members=["serviceAccount:nodes@example-project.iam.gserviceaccount.com"],
        cleanup_keep_recent=20,
        cleanup_untagged_older_than_days=30,
        registry_retention={"hub1": {"keep_recent": 10, "delete_older_than_days": 0}},
    )
    assert error_diagnostics(result.stdout) == []
    assert result.returncode == 2, result.stdout  # changes present: 3 resources per repository + the unrelated one
    summary = [json.loads(line) for line in result.stdout.splitlines() if '"type":"change_summary"' in line]
    assert summary[-1]["changes"]["add"] == 7
