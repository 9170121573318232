"""provision gcp --rotate with the real OpenTofu on our module's fixture and on the 2i2c-shaped one (unchanged), the
real sops, and a real registry (docker-registry) that accepts exactly the key the terraform state holds now.

What offline tests cannot prove: that Google deletes the old key and accepts the new one. They prove that terraform
replaced exactly the hub's key instance (a new instance id in the state, the old one gone), that the key written
to the hub's files is the one terraform now outputs, and that the proof step fails the run when the registry
refuses the written key. The Artifact Registry permission check reports could-not-check here: the fixture's
keys are not real RSA keys, so google-auth cannot sign with them (tests/flows/test_verify.py covers that check with
a real key against the Google stand-in).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.registries.artifact_registry import rotate as gcp_rotate
from tests.realsops import AgeKey, decrypt_file, sops_env, write_sops_config
from tests.registries.artifact_registry import test_create as test_gcp
from tests.registries.artifact_registry import test_create_2i2c as test_gcp_2i2c
from tests.servers.live_issuer import LiveIssuer, state_key_check
from tests.servers.registry import DistributionRegistry

env = test_gcp.env
env_2i2c = test_gcp_2i2c.env


def state_file(e: test_gcp.Env) -> Path:
    if isinstance(e, test_gcp_2i2c.Env):
        return e.module / "states" / "main" / e.CLUSTER / "terraform.tfstate"
    return e.module / "terraform.tfstate.d" / e.CLUSTER / "terraform.tfstate"


def key_instance(e: test_gcp.Env, hub: str) -> tuple[str, str]:
    """(terraform_data id, key text) of the hub's key instance in the state."""
    state = json.loads(state_file(e).read_text())
    for item in state["resources"]:
        if item["name"] in ("registry_sa_key", "registry_sa_keys"):
            for inst in item["instances"]:
                if inst["index_key"] == hub:
                    return inst["attributes"]["id"], inst["attributes"]["output"]["value"]
    raise AssertionError(f"no key for {hub}")


def rotate(e: test_gcp.Env, **kwargs: Any) -> tuple[Any, str]:
    stream = io.StringIO()
    dry_run = kwargs.pop("dry_run", False)
    result = gcp_rotate.run(
        e.request(**kwargs), reporter=Reporter(stream=stream), confirm=lambda _q: True, dry_run=dry_run
    )
    return result, stream.getvalue()


@pytest.mark.parametrize("fixture", ["env", "env_2i2c"])
def test_rotate_replaces_only_the_hubs_key(fixture: str, request: pytest.FixtureRequest) -> None:
    e: test_gcp.Env = request.getfixturevalue(fixture)
    e.run()  # provision the hub
    other = "existing" if fixture == "env" else "imagebuilding"
    before, before_other = key_instance(e, e.HUB), key_instance(e, other)
    tfvars = e.tfvars.read_bytes()
    result, stderr = rotate(e)
    key = "registry_sa_key" if fixture == "env" else "registry_sa_keys"
    assert [c.describe() for c in result.plan.changes] == [f'replace terraform_data.{key}["{e.HUB}"]']
    assert result.applied and not result.tfvars_changed
    assert result.processes == 8  # init, workspace, plan -refresh=false, show, plan -replace, show, apply, output
    after = key_instance(e, e.HUB)
    assert after[0] != before[0]  # a new key instance: the old one is gone from the state
    assert before[0] not in state_file(e).read_text()
    assert result.registry.password == after[1] == e.state_keys()[e.HUB] if fixture == "env" else True
    if fixture == "env":  # our fixture's keys are new on each creation, like Google's
        assert after[1] != before[1] and json.loads(before[1])["private_key_id"] not in state_file(e).read_text()
    assert key_instance(e, other) == before_other
    assert e.tfvars.read_bytes() == tfvars
    assert "PRIVATE KEY" not in stderr


def test_2i2c_hub_keyed_disks_stay_out_of_the_rotation(env_2i2c: test_gcp_2i2c.Env) -> None:
    env_2i2c.run()
    disk = env_2i2c.instance("nfs_homedirs", "staging")
    result, _ = rotate(env_2i2c)
    assert all("registry_sa_keys" in c.subject for c in result.plan.changes)
    assert env_2i2c.instance("nfs_homedirs", "staging") == disk


def test_pending_unrelated_change_is_refused_and_nothing_is_applied(env: test_gcp.Env) -> None:
    env.run()
    before = key_instance(env, env.HUB)
    env.tfvars.write_text(env.tfvars.read_text() + 'unrelated_marker = "v2"\n')
    tfvars = env.tfvars.read_bytes()
    with pytest.raises(ProvisionError) as err:
        rotate(env)
    assert "more than the key" in str(err.value) and "terraform_data.unrelated" in str(err.value)
    assert key_instance(env, env.HUB) == before and env.tfvars.read_bytes() == tfvars


def test_hub_not_listed_is_a_usage_error_before_terraform(env: test_gcp.Env) -> None:
    with pytest.raises(UsageError) as err:
        rotate(env, hub="nothere")
    assert "no registry key to rotate" in str(err.value) and "without --rotate" in str(err.value)


def test_listed_but_never_applied_says_to_create_it(env: test_gcp.Env) -> None:
    env.tfvars.write_text(env.tfvars.read_text().replace('"existing", // the first one', '"existing", "hub1",'))
    with pytest.raises(ProvisionError) as err:
        rotate(env)
    assert "not in the state" in str(err.value) and "without --rotate" in str(err.value)


def test_dry_run_changes_nothing(env: test_gcp.Env) -> None:
    env.run()
    state, tfvars = state_file(env).read_bytes(), env.tfvars.read_bytes()
    result, stderr = rotate(env, dry_run=True)
    assert not result.applied and result.processes == 0
    assert "-replace=" in stderr and "-refresh=false" in stderr
    assert state_file(env).read_bytes() == state and env.tfvars.read_bytes() == tfvars


def test_declined_applies_nothing(env: test_gcp.Env) -> None:
    env.run()
    before = key_instance(env, env.HUB)
    stream = io.StringIO()
    with pytest.raises(ProvisionError) as err:
        gcp_rotate.run(env.request(yes=False), reporter=Reporter(stream=stream), confirm=lambda _q: False)
    assert "declined" in str(err.value) and key_instance(env, env.HUB) == before


# --- the CLI: write-through to the real sops file, then the proof against a registry -------------------------


@pytest.fixture
def registry_for(env: test_gcp.Env) -> Iterator[tuple[DistributionRegistry, LiveIssuer]]:
    issuer = LiveIssuer(state_key_check(lambda: state_file(env), env.HUB))
    with issuer, DistributionRegistry(token=issuer) as registry:
        yield registry, issuer


def cli_args(e: test_gcp.Env, folder: Path) -> list[str]:
    return [
        "gcp", "--cluster", e.CLUSTER, "--hub", e.HUB, "--terraform-dir", str(e.module), "--terraform-bin", e.tofu,
        "--yes", "--values-file", str(folder / f"{e.HUB}.values.yaml"),
        "--secret-file", str(folder / f"enc-{e.HUB}.secret.values.yaml"),
    ]  # fmt: skip


def cli_env(keys: tuple[AgeKey, AgeKey, AgeKey], sops: str) -> dict[str, str | None]:
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SOPS_")}
    return {**cleared, **sops_env(keys[0], SOPS_BIN=sops)}


def secret_key(path: Path, key: AgeKey) -> str:
    done = decrypt_file(path, key)
    assert done.returncode == 0, done.stderr
    return str(yaml.safe_load(done.stdout)["binderhub-service"]["buildPodsRegistryCredentials"]["password"])


def test_cli_rotate_writes_the_new_key_into_the_sops_file_and_proves_it(
    env: test_gcp.Env,
    registry_for: tuple[DistributionRegistry, LiveIssuer],
    tmp_path: Path,
    real_sops: str,
    age_keys: tuple[AgeKey, AgeKey, AgeKey],
) -> None:
    registry, issuer = registry_for
    folder = tmp_path / "hub"
    folder.mkdir()
    write_sops_config(folder, [age_keys[0].recipient])
    args, environ = cli_args(env, folder), cli_env(age_keys, real_sops)
    first = CliRunner().invoke(app, args, env=environ)
    assert first.exit_code == 0, first.stderr
    secret = folder / f"enc-{env.HUB}.secret.values.yaml"
    old = secret_key(secret, age_keys[0])
    assert old == env.state_keys()[env.HUB]

    rotated = CliRunner().invoke(app, [*args, "--rotate", "--verify-registry-url", registry.url], env=environ)
    assert rotated.exit_code == 0, rotated.stderr
    new = secret_key(secret, age_keys[0])
    assert new != old and new == env.state_keys()[env.HUB]  # the file was updated in the same run
    assert "verified: the new service-account key of 'hub1' works" in rotated.stderr
    assert ("_json_key", True) in issuer.logins
    # The registry refuses the old key now: the proof is not vacuous.
    assert not state_key_check(lambda: state_file(env), env.HUB)("_json_key", old)
    assert "PRIVATE KEY" not in rotated.stderr + rotated.stdout


def test_cli_rotate_whose_proof_fails_names_the_live_key_and_where_it_is(
    env: test_gcp.Env, tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    folder = tmp_path / "hub"
    folder.mkdir()
    write_sops_config(folder, [age_keys[0].recipient])
    args, environ = cli_args(env, folder), cli_env(age_keys, real_sops)
    assert CliRunner().invoke(app, args, env=environ).exit_code == 0
    old = key_instance(env, env.HUB)[1]
    # A registry that still only knows the old key (as if the new one were not accepted).
    issuer = LiveIssuer(lambda user, password: password == old)
    with issuer, DistributionRegistry(token=issuer) as registry:
        result = CliRunner().invoke(
            app, [*args, "--rotate", "--verify-registry-url", registry.url, "--verify-timeout", "0"], env=environ
        )
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "did not pass verify" in message and "push credentials accepted: fail" in message
    assert "The new service-account key of 'hub1' is live" in message
    assert f"enc-{env.HUB}.secret.values.yaml" in message
    assert secret_key(folder / f"enc-{env.HUB}.secret.values.yaml", age_keys[0]) == env.state_keys()[env.HUB]
    assert "PRIVATE KEY" not in result.stderr + result.stdout


def failing_set(folder: Path, real_sops: str) -> str:
    """The real sops, except that `sops set` (the write into the secret file) fails, as on a full disk."""
    wrapper = folder / "sops-set-fails"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = set ] && { echo "write error: no space left on device" >&2; exit 1; }; done\n'
        f'exec {real_sops} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def test_cli_rotate_whose_delivery_fails_names_the_terraform_output(
    env: test_gcp.Env, tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """The secret file cannot be written after the apply: the key is live, in the terraform output; the file keeps
    the old one; the same command without --rotate finishes the job."""
    folder = tmp_path / "hub"
    folder.mkdir()
    write_sops_config(folder, [age_keys[0].recipient])
    args, environ = cli_args(env, folder), cli_env(age_keys, real_sops)
    assert CliRunner().invoke(app, args, env=environ).exit_code == 0
    secret = folder / f"enc-{env.HUB}.secret.values.yaml"
    old = secret_key(secret, age_keys[0])
    broken = {**environ, "SOPS_BIN": failing_set(tmp_path, real_sops)}
    result = CliRunner().invoke(app, [*args, "--rotate", "--no-verify"], env=broken)
    assert result.exit_code == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert "the rotation is done but its credential was not delivered" in message
    assert "no space left on device" in message
    assert "registry_sa_keys['hub1']" in message and "without --rotate" in message
    assert secret_key(secret, age_keys[0]) == old != env.state_keys()[env.HUB]
    assert "PRIVATE KEY" not in result.stderr + result.stdout
    finish = CliRunner().invoke(app, args, env=environ)
    assert finish.exit_code == 0, finish.stderr
    assert secret_key(secret, age_keys[0]) == env.state_keys()[env.HUB]


def test_failed_apply_says_the_old_key_may_be_gone_and_how_to_finish(env: test_gcp.Env) -> None:
    """terraform deletes the old key first: when the apply then fails, the message says so and names the way out."""
    import subprocess

    env.tfvars.write_text(
        env.tfvars.read_text().replace('"existing", // the first one', '"existing", "fails-on-apply",')
    )
    applied = subprocess.run(
        [env.tofu, f"-chdir={env.module}", "apply", "-input=false", "-no-color", "-auto-approve",
         "-var-file=projects/c1.tfvars"], capture_output=True, text=True,
    )  # fmt: skip
    assert applied.returncode != 0  # the key was created, then tainted by its failing provisioner
    tfvars = env.tfvars.read_bytes()
    with pytest.raises(ProvisionError) as err:
        rotate(env, hub="fails-on-apply")
    message = str(err.value)
    assert "simulated apply failure" in message or "local-exec" in message
    assert "may already be deleted" in message and "without --rotate" in message
    assert env.tfvars.read_bytes() == tfvars


def test_interrupted_delivery_exits_130_and_names_the_live_credential() -> None:
    from provision.registries.artifact_registry.create import GcpRequest, rotated_credential
    from provision.verbs.rotate import undelivered

    error = undelivered(KeyboardInterrupt(), rotated_credential(GcpRequest(cluster="c1", hub="hub1")))
    assert error.exit_code == 130
    assert "interrupted" in str(error) and "registry_sa_keys['hub1']" in str(error)


def test_cli_rotate_dry_run_and_option_clash(env: test_gcp.Env, tmp_path: Path) -> None:
    env.run()
    state, tfvars = state_file(env).read_bytes(), env.tfvars.read_bytes()
    args = ["gcp", "--cluster", env.CLUSTER, "--hub", env.HUB, "--terraform-dir", str(env.module),
            "--terraform-bin", env.tofu, "--rotate"]  # fmt: skip
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.stderr
    assert "-replace=" in dry.stderr and "dry run: nothing was changed" in dry.stderr
    assert state_file(env).read_bytes() == state and env.tfvars.read_bytes() == tfvars
    clash = CliRunner().invoke(app, [*args, "--create-workspace"])
    assert clash.exit_code == 2 and "--create-workspace" in clash.stderr
    # No answer (stdin closed) is no: nothing is applied, the old key still stands.
    closed = CliRunner().invoke(app, args, input="")
    assert closed.exit_code == 1 and "declined" in closed.stderr
    assert state_file(env).read_bytes() == state
