"""provision remove gcp end to end: a hub provisioned by the real `provision gcp` (the real OpenTofu on the
2i2c-shaped module and on ours, the real sops with age keys, a 2i2c-shaped cluster folder) is taken apart again;
then `provision doctor` must find nothing dangling."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from provision.errors import UsageError
from provision.registries.artifact_registry.remove import GcpRemoveRequest, remove_gcp
from provision.verbs.remove import HubFilesRequest
from tests.registries.artifact_registry import test_create as test_gcp
from tests.registries.artifact_registry import test_create_2i2c as test_gcp_2i2c
from tests.verbs import test_remove
from tests.verbs.test_remove import SECRETS, VALUES, Repo

env = test_gcp.env
env_2i2c = test_gcp_2i2c.env
repo = test_remove.repo
REGISTRY = ("registry", "registry_sa", "registry_sa_roles", "registry_sa_keys", "registry_sa_key")


def state(e: test_gcp.Env) -> dict[str, Any]:
    if isinstance(e, test_gcp_2i2c.Env):
        return e.state()
    return json.loads((e.module / "terraform.tfstate.d" / e.CLUSTER / "terraform.tfstate").read_text())  # type: ignore[no-any-return]


def instances(e: test_gcp.Env) -> set[tuple[str, str]]:
    return {(r["name"], str(i.get("index_key"))) for r in state(e)["resources"] for i in r["instances"]}


def registry_of(e: test_gcp.Env, hub: str) -> set[tuple[str, str]]:
    return {(name, key) for name, key in instances(e) if name in REGISTRY and key == hub}


def tf_args(e: test_gcp.Env) -> list[str]:
    """The cluster folder's hub is staging; our module's env names its repository hub1 (--repo)."""
    hub = ["--hub", e.HUB] if e.HUB == "staging" else ["--hub", "staging", "--repo", e.HUB]
    return ["--cluster", e.CLUSTER, *hub, "--terraform-dir", str(e.module), "--terraform-bin", e.tofu]


def provision(e: test_gcp.Env, r: Repo) -> None:
    result = CliRunner().invoke(app, ["gcp", *tf_args(e), "--yes", *r.files_args()], env=r.env())
    assert result.exit_code == 0, result.stderr
    assert registry_of(e, e.HUB)
    r.add_recipients()


def remove(e: test_gcp.Env, r: Repo, *extra: str, input: str | None = None, files: bool = True) -> Any:
    args = ["remove", "gcp", *tf_args(e), *(r.files_args() if files else []), *extra]
    return CliRunner().invoke(app, args, env=r.env(), input=input)


def snapshot(e: test_gcp.Env, r: Repo) -> dict[str, bytes]:
    files = {str(p): p.read_bytes() for p in sorted(e.module.rglob("*")) if p.is_file() and ".terraform" not in p.parts}
    return {**files, **r.snapshot()}


def assert_files_clean(r: Repo) -> None:
    values = yaml.safe_load(r.values.read_text())
    assert "binderhub-service" not in values
    assert r.values.read_text() == VALUES
    for key in r.keys:
        assert r.decrypt(key) == SECRETS
    assert r.recipients() == {k.recipient for k in r.keys}
    assert r.doctor() == []


def test_removal_from_a_fully_provisioned_2i2c_hub(env_2i2c: test_gcp_2i2c.Env, repo: Repo) -> None:
    e = env_2i2c
    provision(e, repo)
    disks = {k for k in instances(e) if k[0] in ("nfs_homedirs", "snapshot_schedule", "workload_sa")}
    other = registry_of(e, "imagebuilding")
    before = snapshot(e, repo)

    dry = remove(e, repo, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert snapshot(e, repo) == before
    steps = ["would remove 'staging' from container_repos", '-  "staging",', "tofu apply", "destroy the registry"]
    steps += [f"remove from {repo.secret}", f"remove from {repo.values}", "dry run: nothing was changed"]
    for step in steps:
        assert step in dry.stderr, step

    result = remove(e, repo, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert registry_of(e, "staging") == set()
    assert registry_of(e, "imagebuilding") == other and other
    assert {k for k in instances(e) if k[0] in ("nfs_homedirs", "snapshot_schedule", "workload_sa")} == disks
    assert '"staging"' not in e.tfvars.read_text().split("container_repos")[1]
    assert '"staging" = {' in e.tfvars.read_text()  # its home-directory disk stays configured
    assert "destroy 4 resources of the registry of 'staging'" in result.stderr
    assert_files_clean(repo)
    assert "PRIVATE KEY" not in result.stderr + dry.stderr

    after = snapshot(e, repo)
    again = remove(e, repo, "--yes")
    assert again.exit_code == 0, again.stderr
    assert "nothing to remove" in again.stderr and snapshot(e, repo) == after


def test_removal_with_our_module_keeps_other_hubs(env: test_gcp.Env, repo: Repo) -> None:
    provision(env, repo)
    result = remove(env, repo, "--yes")
    assert result.exit_code == 0, result.stderr
    assert registry_of(env, "hub1") == set() and registry_of(env, "existing")
    assert ("unrelated", "None") in instances(env)
    assert env.tfvars.read_text() == test_gcp.TFVARS
    assert_files_clean(repo)


def test_z2jh_removal_gives_back_the_files(env: test_gcp.Env, repo: Repo) -> None:
    """A z2jh hub (one file per Helm release, no cluster.yaml): Artifact Registry needs no pull secret, so the hub's
    secret file is never touched; the binderhub-service files provision created are deleted again."""
    siblings = test_remove.z2jh_files(repo)
    before = repo.snapshot()
    files = ["--values-file", str(repo.values), "--secret-file", str(repo.secret), "--chart", "z2jh"]
    provisioned = CliRunner().invoke(app, ["gcp", *tf_args(env), "--yes", *files, "--image", "r=rocker/binder:4.3"],
                                     env=repo.env())  # fmt: skip
    assert provisioned.exit_code == 0, provisioned.stderr
    assert siblings["binderhub-service"].is_file() and siblings["binderhub-service secret"].is_file()
    result = CliRunner().invoke(app, ["remove", "gcp", *tf_args(env), "--yes", *files], env=repo.env())
    assert result.exit_code == 0, result.stderr
    assert f"delete {siblings['binderhub-service secret']}" in result.stderr
    assert registry_of(env, "hub1") == set() and env.tfvars.read_text() == test_gcp.TFVARS
    assert repo.snapshot() == before  # the hub's secret file too: provision gcp wrote nothing into it
    assert repo.decrypt(repo.keys[2]) == SECRETS["jupyterhub"]


def test_destroy_needs_the_typed_hub_name(env_2i2c: test_gcp_2i2c.Env, repo: Repo) -> None:
    provision(env_2i2c, repo)
    before = snapshot(env_2i2c, repo)
    declined = remove(env_2i2c, repo, input="yes\n")
    assert declined.exit_code == 1 and "type the hub name (staging)" in declined.stderr
    assert "declined" in declined.stderr
    assert snapshot(env_2i2c, repo) == before  # tfvars put back as it was, nothing applied, files untouched
    typed = remove(env_2i2c, repo, input="staging\n")
    assert typed.exit_code == 0, typed.stderr
    assert registry_of(env_2i2c, "staging") == set()


def test_a_plan_touching_anything_else_is_refused_and_tfvars_restored(env_2i2c: test_gcp_2i2c.Env, repo: Repo) -> None:
    e = env_2i2c
    provision(e, repo)
    e.tfvars.write_text(e.tfvars.read_text().replace("size = 10", "size = 20"))  # a pending change to a disk
    before = snapshot(e, repo)
    result = remove(e, repo, "--yes")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "does more than destroy the registry of 'staging'" in message and "nfs_homedirs" in message
    assert "restored to its previous content" in message
    assert snapshot(e, repo) == before and registry_of(e, "staging")


def flow_request(e: test_gcp.Env, r: Repo, *, files: bool = True) -> GcpRemoveRequest:
    hub_files = HubFilesRequest(r.values, r.secret, r.cluster, sops_bin=r.sops) if files else HubFilesRequest()
    return GcpRemoveRequest(gcp=e.request(), files=hub_files)


def test_interrupted_at_each_step_then_resumed(
    env_2i2c: test_gcp_2i2c.Env, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = env_2i2c
    provision(e, repo)
    for key, value in repo.env().items():
        monkeypatch.setenv(key, value)
    before = snapshot(e, repo)

    # 1. Ctrl-C at the confirmation (after the tfvars edit and the plan): the edit is taken back.
    def interrupt(_q: str, _w: str | None) -> bool:
        raise KeyboardInterrupt

    request = GcpRemoveRequest(gcp=e.request(yes=False), files=flow_request(e, repo).files)
    with pytest.raises(KeyboardInterrupt):
        remove_gcp(request, reporter=Reporter(stream=io.StringIO()), confirm=interrupt)
    assert snapshot(e, repo) == before

    # 2. Killed right after the tfvars edit (nothing could undo it): the re-run plans the destroy and finishes.
    e.tfvars.write_text(e.tfvars.read_text().replace('  "staging",\n', ""))
    # 3. ...and stopped again after the apply, before the files: run the terraform part alone.
    stream = io.StringIO()
    done = remove_gcp(flow_request(e, repo, files=False), reporter=Reporter(stream=stream), confirm=lambda *_: True)
    assert registry_of(e, "staging") == set() and any("destroy" in d for d in done.applied)
    assert "is not in container_repos" in stream.getvalue()

    # 4. The hub files step fails half-way (sops cannot write): nothing but the registry side is done.
    from tests.registries.artifact_registry.test_rotate import failing_set

    wrapper = Path(failing_set(repo.root.parent, repo.sops))
    wrapper.write_text(wrapper.read_text().replace("= set ]", "= unset ]"))  # `sops unset` fails this time
    args = ["remove", "gcp", *tf_args(e), *repo.files_args(), "--yes"]
    failed = CliRunner().invoke(app, args, env=repo.env(SOPS_BIN=str(wrapper)))
    assert failed.exit_code == 1, failed.stderr
    assert "no space left on device" in failed.stderr and "re-run the same command" in failed.stderr

    # 5. The re-run finishes the files; a last run has nothing left to do.
    result = remove(e, repo, "--yes")
    assert result.exit_code == 0, result.stderr
    assert "no registry resources of 'staging' left" in result.stderr or "already" in result.stderr
    assert_files_clean(repo)
    final = remove(e, repo, "--yes")
    assert final.exit_code == 0 and "nothing to remove" in final.stderr


def test_failed_plan_puts_the_name_back(env: test_gcp.Env, repo: Repo) -> None:
    provision(env, repo)
    before = env.tfvars.read_bytes()
    (env.module / "broken.tf").write_text('resource "terraform_data" "x" {\n  input = var.nope\n}\n')
    result = remove(env, repo, "--yes")
    assert result.exit_code == 1
    assert "restored to its previous content" in " ".join(result.stderr.split())
    assert env.tfvars.read_bytes() == before and registry_of(env, "hub1")


def test_bad_hub_name_is_refused_before_terraform(env: test_gcp.Env) -> None:
    before = env.tfvars.read_bytes()
    with pytest.raises(UsageError):
        remove_gcp(
            GcpRemoveRequest(gcp=env.request(hub="Bad_Name")), reporter=Reporter(stream=io.StringIO()),
            confirm=lambda *_: True,
        )  # fmt: skip
    assert env.tfvars.read_bytes() == before


def test_hub_files_beside_the_tfvars_do_not_wait_for_the_removal_itself(env: test_gcp.Env, repo: Repo) -> None:
    """The removal holds the tfvars folder's lock; hub files in that same folder are edited under it, without a
    second lock on the folder (which would wait for this very run for ever)."""
    import shutil
    import subprocess
    import sys

    from tests.realsops import write_sops_config

    folder = env.tfvars.parent
    for name in ("cluster", "values", "secret"):
        moved = folder / getattr(repo, name).name
        shutil.move(getattr(repo, name), moved)
        setattr(repo, name, moved)
    shutil.move(repo.dir / "common.values.yaml", folder / "common.values.yaml")
    repo.dir = folder
    write_sops_config(folder, [k.recipient for k in repo.keys[:2]])
    provision(env, repo)
    provision_bin = str(Path(sys.executable).with_name("provision"))
    done = subprocess.run([provision_bin, "remove", "gcp", *tf_args(env), *repo.files_args(), "--yes"],
                          env=repo.env(), capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert registry_of(env, "hub1") == set()
    assert_files_clean(repo)
