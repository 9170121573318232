"""Rotation writes through, for Quay and Docker Hub (gcp: tests/flows/test_gcp_rotate.py): `--rotate` with
`--secret-file` updates the real sops file in the same run, then proves the new credential against a real registry
(docker-registry) whose logins are decided by the test server that owns the credential at that moment, so the old
credential is refused and only the new one passes. Failures after the rotation name the live credential and where
it is, never its value."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli import app
from tests.realsops import AgeKey, sops_env, write_sops_config
from tests.registries.artifact_registry.test_rotate import failing_set
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.live_issuer import LiveIssuer
from tests.servers.quay import FakeQuay
from tests.servers.registry import DistributionRegistry
from tests.verbs import test_remove
from tests.verbs.test_remove import TOKEN, Repo, dh_args, dh_env, provision_quay, quay_args

repo = test_remove.repo
quay = test_remove.quay
dockerhub = test_remove.dockerhub
ROBOT = "hubs+image_builder"


def password_in(repo: Repo) -> str:
    return str(repo.decrypt()["binderhub-service"]["buildPodsRegistryCredentials"]["password"])


@pytest.fixture
def quay_registry(quay: FakeQuay) -> Iterator[tuple[DistributionRegistry, LiveIssuer]]:
    def live(user: str, password: str) -> bool:
        return user == ROBOT and password == quay.robot_token("hubs", "image_builder")

    issuer = LiveIssuer(live)
    with issuer, DistributionRegistry(token=issuer) as registry:
        yield registry, issuer


def rotate_quay(repo: Repo, quay: FakeQuay, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["quay", *quay_args(quay), *repo.files_args(), "--rotate", *extra]
    return CliRunner().invoke(app, args, env=env or repo.env(QUAY_TOKEN=TOKEN))


def test_quay_rotate_writes_through_and_proves_the_new_token(
    repo: Repo, quay: FakeQuay, quay_registry: tuple[DistributionRegistry, LiveIssuer]
) -> None:
    registry, issuer = quay_registry
    provision_quay(repo, quay)
    old = password_in(repo)
    assert old == quay.robot_token("hubs", "image_builder")
    result = rotate_quay(repo, quay, "--verify-registry-url", registry.url)
    assert result.exit_code == 0, result.stderr
    new = quay.robot_token("hubs", "image_builder")
    assert new != old and password_in(repo) == new  # the sops file was updated in the same run
    assert repo.decrypt()["jupyterhub"]["imagePullSecret"]["password"] == new
    assert repo.recipients() == {k.recipient for k in repo.keys}
    assert f"verified: the new token of Quay robot {ROBOT} works" in result.stderr
    assert issuer.logins[-1] == (ROBOT, True)
    assert not issuer.check(ROBOT, old)  # the registry refuses the old token: the proof is not vacuous
    for secret in (old, new, TOKEN):
        assert secret not in result.stderr + result.stdout


def test_quay_rotate_whose_proof_fails_names_the_live_token(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    issuer = LiveIssuer(lambda _u, _p: False)  # a registry that accepts nothing
    with issuer, DistributionRegistry(token=issuer) as registry:
        result = rotate_quay(repo, quay, "--verify-registry-url", registry.url, "--verify-timeout", "0")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "did not pass verify" in message and "push credentials accepted: fail" in message
    assert f"The new token of Quay robot {ROBOT} is live" in message and str(repo.secret) in message
    new = quay.robot_token("hubs", "image_builder")
    assert password_in(repo) == new and new is not None and new not in result.stderr


def test_quay_rotate_whose_delivery_fails_says_where_the_token_is(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    old = password_in(repo)
    broken = repo.env(QUAY_TOKEN=TOKEN, SOPS_BIN=failing_set(repo.root.parent, repo.sops))
    result = rotate_quay(repo, quay, "--no-verify", env=broken)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "the rotation is done but its credential was not delivered" in message
    assert f"Quay shows it to administrators of hubs (robot {ROBOT}" in message and "without --rotate" in message
    assert password_in(repo) == old != quay.robot_token("hubs", "image_builder")
    # The way out the message gives: the same command without --rotate writes the live token.
    finish = CliRunner().invoke(app, ["quay", *quay_args(quay), *repo.files_args()], env=repo.env(QUAY_TOKEN=TOKEN))
    assert finish.exit_code == 0, finish.stderr
    assert password_in(repo) == quay.robot_token("hubs", "image_builder")


@pytest.fixture
def dh_registry(dockerhub: FakeDockerHub) -> Iterator[tuple[DistributionRegistry, LiveIssuer]]:
    issuer = LiveIssuer(lambda user, password: dockerhub.token_secret_valid(user, password))
    with issuer, DistributionRegistry(token=issuer) as registry:
        yield registry, issuer


def test_dockerhub_rotate_writes_through_and_proves_the_new_token(
    repo: Repo, dockerhub: FakeDockerHub, dh_registry: tuple[DistributionRegistry, LiveIssuer]
) -> None:
    registry, issuer = dh_registry
    args = ["dockerhub", *dh_args(dockerhub), *repo.files_args()]
    assert CliRunner().invoke(app, args, env=dh_env(repo)).exit_code == 0
    old = password_in(repo)
    assert dockerhub.token_secret_valid("myorg", old)
    result = CliRunner().invoke(app, [*args, "--rotate", "--verify-registry-url", registry.url], env=dh_env(repo))
    assert result.exit_code == 0, result.stderr
    new = password_in(repo)
    assert new != old and dockerhub.token_secret_valid("myorg", new) and not dockerhub.token_secret_valid("myorg", old)
    assert "verified: the new Docker Hub organization access token 'binderhub-c1-staging' works" in result.stderr
    assert ("myorg", True) in issuer.logins
    assert len(dockerhub.oats("myorg")) == 1
    for secret in (old, new):
        assert secret not in result.stderr + result.stdout


def test_dockerhub_rotate_whose_delivery_fails_keeps_the_old_token(repo: Repo, dockerhub: FakeDockerHub) -> None:
    """Docker Hub's flow delivers before it deletes the old token, and deletes a new token it could not deliver:
    after a failed write the old token, still in the files, still works, and no token is left behind."""
    args = ["dockerhub", *dh_args(dockerhub), *repo.files_args()]
    assert CliRunner().invoke(app, args, env=dh_env(repo)).exit_code == 0
    old = password_in(repo)
    broken = dh_env(repo, SOPS_BIN=failing_set(repo.root.parent, repo.sops))
    result = CliRunner().invoke(app, [*args, "--rotate"], env=broken)
    assert result.exit_code == 1
    assert "no space left on device" in " ".join(result.stderr.split())
    assert password_in(repo) == old and dockerhub.token_secret_valid("myorg", old)
    assert [t["label"] for t in dockerhub.oats("myorg")] == ["binderhub-c1-staging"]
    assert old not in result.stderr + result.stdout


def test_dry_run_rotation_changes_nothing(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    token, before = quay.robot_token("hubs", "image_builder"), repo.snapshot()
    result = rotate_quay(repo, quay, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "regenerate token of robot hubs+image_builder" in result.stderr
    assert repo.snapshot() == before and quay.robot_token("hubs", "image_builder") == token


def test_the_proof_reads_the_written_files_back(repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch) -> None:
    """With both hub files, the proof decrypts what was written: a file without the new credential fails it."""
    import io

    from provision.console import Reporter
    from provision.errors import ProvisionError
    from provision.registries.quay.create import QuayRequest, registry_for
    from provision.registries.quay.create import rotated_credential as quay_rotated
    from provision.verbs import rotate as rotation

    provision_quay(repo, quay)
    for key, value in repo.env().items():
        monkeypatch.setenv(key, value)
    request = QuayRequest(org="hubs", api_url=quay.url, cluster="c1", hub="staging")
    rotated = quay_rotated(request)
    with pytest.raises(ProvisionError) as err:
        rotation.prove(
            registry_for(request, "a-token-that-is-not-in-the-file"), rotated=rotated, delivered_to=str(repo.secret),
            options=rotation.ProveOptions(settle=0), reporter=Reporter(stream=io.StringIO()),
            values_file=repo.values, secret_file=repo.secret, sops_binary=repo.sops,
        )  # fmt: skip
    message = str(err.value)
    assert "does not hold the new credential" in message and f"Quay robot {ROBOT} is live" in message
    assert "a-token-that-is-not-in-the-file" not in message


def test_quay_rotate_whose_secret_file_write_fails_says_the_stored_token_is_dead(
    tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """QA (issue 13: on a failure after the rotate, the message says which credential is now live and where): the
    robot token is regenerated (the one in the file stops working), then writing the file fails (`sops set`). The
    message said only "sops set … failed"."""
    alice = age_keys[0]
    write_sops_config(tmp_path, [alice.recipient])
    with FakeQuay() as quay:
        quay.add_admin("admintoken123")
        env = {**sops_env(alice), "QUAY_TOKEN": "admintoken123", "SOPS_BIN": real_sops}
        args = ["quay", "--api-url", quay.url, "--org", "myorg", "--email", "a@b.org", "--cluster", "c1", "--hub",
                "staging", "--secret-file", str(tmp_path / "enc-staging.secret.values.yaml")]  # fmt: skip
        first = CliRunner().invoke(app, args, env=env)
        assert first.exit_code == 0, first.stderr
        stored = quay.robot_token("myorg", "image_builder")
        broken = {**env, "SOPS_BIN": failing_set(tmp_path, real_sops)}
        rotated = CliRunner().invoke(app, [*args, "--rotate"], env=broken)
        live = quay.robot_token("myorg", "image_builder")
    assert rotated.exit_code == 1 and live != stored  # the stored token is dead now
    message = rotated.stderr.strip().splitlines()[-1]
    assert "regenerat" in message or "rotat" in message, message
    assert "is live (the old one no longer works)" in message and "without --rotate" in message


def test_rotation_proof_does_not_wait_out_a_registry_that_is_not_a_registry(repo: Repo, quay: FakeQuay) -> None:
    """QA (issue 13, proof): a 404 on /v2/ (a wrong registry URL) is reported at once as what it is, naming the live
    credential; only a refused credential (401/403) is worth waiting for."""
    provision_quay(repo, quay)
    started = time.monotonic()
    result = rotate_quay(repo, quay, "--verify-timeout", "2")  # the Quay test server has no /v2/: HTTP 404
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr
    assert "does not accept the new credential yet" not in result.stderr
    assert time.monotonic() - started < 2
    message = " ".join(result.stderr.split())
    assert "the registry was not asked about the credential" in message
    assert f"The new token of Quay robot {ROBOT} is live" in message and str(repo.secret) in message


def test_rotation_proof_does_not_wait_out_an_unreachable_registry(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    started = time.monotonic()
    result = rotate_quay(repo, quay, "--verify-registry-url", "http://127.0.0.1:9", "--verify-timeout", "5")
    assert result.exit_code == 1 and time.monotonic() - started < 5
    message = " ".join(result.stderr.split())
    assert "cannot reach http://127.0.0.1:9/v2/" in message and "checking again" not in message
    assert f"The new token of Quay robot {ROBOT} is live" in message


def test_ctrl_c_during_the_rotation_proof_does_not_say_rerun_to_finish(repo: Repo, quay: FakeQuay) -> None:
    """QA (issue 13; never "re-run" when a re-run does something else): Ctrl-C while the proof waits for a registry
    that refuses the new token. The token is already regenerated and in the secret file: the same command would
    rotate once more. The message names the live token and where it is, and points to `provision verify`."""
    provision_quay(repo, quay)
    issuer = LiveIssuer(lambda _u, _p: False)  # refuses everything: the proof waits
    with issuer, DistributionRegistry(token=issuer) as registry:
        args = ["quay", *quay_args(quay), *repo.files_args(), "--rotate", "--verify-timeout", "60",
                "--verify-registry-url", registry.url]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "provision", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=repo.env(QUAY_TOKEN=TOKEN),
        )  # fmt: skip
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # wait until the rotation is delivered and the proof is waiting
            seen.append(line)
            if "checking again" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    assert password_in(repo) == quay.robot_token("hubs", "image_builder")  # rotated and delivered
    message = " ".join(stderr.split())
    assert "re-run the same command" not in message and "running this command again would rotate" in message
    assert f"the new token of Quay robot {ROBOT} is live" in message and str(repo.secret) in message
    assert "provision verify" in message


def test_an_interrupted_proof_names_the_live_credential_for_every_registry() -> None:
    """The same for Docker Hub and GCP --rotate (one code path: rotation.prove): exit 130, the live credential, where
    it is, `provision verify`, never "re-run"."""
    import io

    from provision.console import Reporter
    from provision.errors import EXIT_INTERRUPTED, ProvisionError
    from provision.hubconfig import HubRegistry
    from provision.registries.dockerhub.request import DockerHubRequest
    from provision.registries.dockerhub.request import rotated_credential as dockerhub_rotated
    from provision.verbs import rotate as rotation

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    issuer = LiveIssuer(lambda _u, _p: False)
    with issuer, DistributionRegistry(token=issuer) as registry:
        host = registry.url.split("://")[1]
        reg = HubRegistry(kind="registry", server=registry.url, username="builder", image_prefix=f"{host}/hubs/x-",
                          password="a-new-token-1234")  # fmt: skip
        req = DockerHubRequest(namespace="me", cluster="c1", hub="x")
        rotated = dockerhub_rotated(req)
        with pytest.raises(ProvisionError) as info:
            rotation.prove(reg, rotated=rotated, delivered_to=rotation.destination(None),
                           options=rotation.ProveOptions(registry_url=registry.url, settle=30),
                           reporter=Reporter(stream=io.StringIO()), sleep=interrupt)  # fmt: skip
    assert info.value.exit_code == EXIT_INTERRUPTED
    text = " ".join(str(info.value).split())
    assert f"{rotated.credential} is live" in text and "standard output" in text
    assert "provision verify" in text and "re-run" not in text and "a-new-token-1234" not in text
