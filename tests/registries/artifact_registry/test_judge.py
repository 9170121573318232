"""The plan judge of `provision gcp` and `provision remove gcp` on modules shaped unlike our fixture: registries
keyed through a local, something every registry shares (counted over the whole list), pending `moved` blocks.
Real OpenTofu on a copy of the fixture module."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from provision.console import Reporter
from provision.errors import ProvisionError
from provision.registries.artifact_registry import rotate as gcp_rotate
from provision.registries.artifact_registry.remove import GcpRemoveRequest, remove_gcp
from provision.verbs.remove import HubFilesRequest
from tests.registries.artifact_registry.test_create import FIXTURE, Env

TFVARS = """\
project_id      = "c1-project"
region          = "us-central1"
container_repos = []
"""
# created with the cluster's first registry, destroyed with its last
SHARED = """
resource "terraform_data" "shared" {
  count = length(local.repos) > 0 ? 1 : 0
  input = var.project_id
}
locals {
  repos = toset(var.container_repos)
}
"""


@pytest.fixture
def env(tmp_path: Path, tofu: str) -> Env:
    """Our fixture module with every registry resource keyed by `local.repos`, and no registry yet."""
    e = Env(tmp_path, tofu)
    shutil.copytree(FIXTURE, e.module)
    main = e.module / "main.tf"
    text, count = re.subn(r"for_each = toset\(var\.container_repos\)", "for_each = local.repos", main.read_text())
    assert count == 3
    main.write_text(text + SHARED)
    e.tfvars.parent.mkdir()
    e.tfvars.write_text(TFVARS)
    e.tf("init", "-input=false", "-no-color")
    e.tf("workspace", "new", "-no-color", "c1")
    e.tf("apply", "-input=false", "-no-color", "-auto-approve", "-var-file=projects/c1.tfvars")
    return e


def resources(e: Env) -> set[str]:
    return set(e.tf("state", "list").stdout.split())


def test_first_hub_through_a_local_creates_what_registries_share_and_its_removal_destroys_it(env: Env) -> None:
    result, stderr = env.run()
    assert result.applied
    assert "create terraform_data.shared[0]" in stderr and 'create terraform_data.registry["hub1"]' in stderr
    assert {"terraform_data.shared[0]", 'terraform_data.registry_sa_key["hub1"]'} <= resources(env)

    stream = io.StringIO()
    request = GcpRemoveRequest(gcp=env.request(), files=HubFilesRequest())
    removal = remove_gcp(request, reporter=Reporter(stream=stream), confirm=lambda *_: True)
    assert any("destroy" in done for done in removal.applied), stream.getvalue()
    assert "terraform_data.shared[0]" in stream.getvalue()
    assert resources(env) == {"terraform_data.unrelated"}


def test_an_update_of_what_registries_share_is_refused(env: Env) -> None:
    env.run()
    env.tfvars.write_text(env.tfvars.read_text().replace('"c1-project"', '"c1-project-2"'))
    error, before = env.fails(hub="hub2")
    assert "update terraform_data.shared[0]" in str(error) and "--allow-unrelated-changes" in str(error)
    assert env.tfvars.read_bytes() == before


def test_moves_are_listed_and_only_the_hubs_own_pass(env: Env) -> None:
    env.run()
    main = env.module / "main.tf"
    renamed = main.read_text().replace('"registry" {', '"repository" {').replace(
        "terraform_data.registry[", "terraform_data.repository["
    )
    main.write_text(renamed + 'moved {\n  from = terraform_data.registry\n  to   = terraform_data.repository\n}\n')
    result, stderr = env.run()  # hub1's repository moves, nothing else: its own
    assert result.applied
    assert 'move terraform_data.registry["hub1"] → terraform_data.repository["hub1"]' in stderr
    assert 'terraform_data.repository["hub1"]' in resources(env)

    main.write_text(main.read_text().replace('"unrelated" {', '"renamed" {')
                    + 'moved {\n  from = terraform_data.unrelated\n  to   = terraform_data.renamed\n}\n')  # fmt: skip
    with pytest.raises(ProvisionError) as error:
        env.run(hub="hub2")
    assert "move terraform_data.unrelated → terraform_data.renamed" in str(error.value)
    assert "terraform_data.unrelated" in resources(env)


def test_rotation_finds_the_key_keyed_through_a_local(env: Env) -> None:
    first, _ = env.run()
    rotated = gcp_rotate.run(env.request(), reporter=Reporter(stream=io.StringIO()), confirm=lambda _q: True)
    assert rotated.applied and rotated.registry.password != first.registry.password
