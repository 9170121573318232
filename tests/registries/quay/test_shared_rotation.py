"""`provision quay --rotate-shared`: two hubs of one cluster.yaml push as one robot (staging made it, prod reuses it
with --shared-org). One rotation writes the new token into both hubs' real sops files (every other secret and
recipient kept) and proves it for each against a real registry whose logins the Quay test server decides; a bad
secret file of the other hub stops the run before any Quay write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from tests.realsops import decrypt_file, encrypt_file
from tests.servers.live_issuer import LiveIssuer
from tests.servers.quay import FakeQuay
from tests.servers.registry import DistributionRegistry
from tests.verbs import test_remove
from tests.verbs.test_remove import TOKEN, Repo, provision_quay, quay_args

repo = test_remove.repo
quay = test_remove.quay
ROBOT = "hubs+image_builder"
PROD_SECRETS = {"jupyterhub": {"hub": {"config": {"GitHubOAuthenticator": {"client_secret": "PROD-OAUTH-SECRET-456"}}}}}
PASSWORDS = (
    ("binderhub-service", "buildPodsRegistryCredentials", "password"),
    ("binderhub-service", "config", "DockerRegistry", "password"),
    ("jupyterhub", "imagePullSecret", "password"),
)


def prod_secret(repo: Repo) -> Path:
    return repo.dir / "enc-prod.secret.values.yaml"


def decrypted(repo: Repo, path: Path, key_index: int = 0) -> Any:
    done = decrypt_file(path, repo.keys[key_index])
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def passwords(doc: Any) -> set[str]:
    found = set()
    for keys in PASSWORDS:
        node = doc
        for key in keys:
            node = node[key]
        found.add(node)
    return found


def recipients(path: Path) -> set[str]:
    return {r["recipient"] for r in yaml.safe_load(path.read_text())["sops"]["age"]}


def share_robot_with_prod(repo: Repo, quay: FakeQuay) -> None:
    """staging creates the robot; prod (whose secret file has its own OAuth secret and all three recipients)
    reuses it with --shared-org, so both hubs' files hold the robot's token."""
    provision_quay(repo, quay)
    encrypt_file(prod_secret(repo), yaml.safe_dump(PROD_SECRETS), [k.recipient for k in repo.keys])
    args = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "prod", "--api-url", quay.url, "--shared-org",
            "--values-file", str(repo.dir / "prod.values.yaml"), "--secret-file", str(prod_secret(repo)),
            "--cluster-config", str(repo.cluster)]  # fmt: skip
    result = CliRunner().invoke(app, args, env=repo.env(QUAY_TOKEN=TOKEN))
    assert result.exit_code == 0, result.stderr
    assert passwords(decrypted(repo, prod_secret(repo))) == {quay.robot_token("hubs", "image_builder")}


def rotate_shared(repo: Repo, quay: FakeQuay, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["quay", *quay_args(quay), *repo.files_args(), "--rotate-shared", *extra]
    return CliRunner().invoke(app, args, env=env or repo.env(QUAY_TOKEN=TOKEN))


@pytest.fixture
def quay_registry(quay: FakeQuay) -> Iterator[tuple[DistributionRegistry, LiveIssuer]]:
    def live(user: str, password: str) -> bool:
        return user == ROBOT and password == quay.robot_token("hubs", "image_builder")

    issuer = LiveIssuer(live)
    with issuer, DistributionRegistry(token=issuer) as registry:
        yield registry, issuer


def test_rotate_shared_writes_the_new_token_into_every_hub_and_proves_it_for_each(
    repo: Repo, quay: FakeQuay, quay_registry: tuple[DistributionRegistry, LiveIssuer]
) -> None:
    registry, issuer = quay_registry
    share_robot_with_prod(repo, quay)
    old = quay.robot_token("hubs", "image_builder")
    assert old is not None
    quay.clear_log()
    result = rotate_shared(repo, quay, "--verify-registry-url", registry.url)
    assert result.exit_code == 0, result.stderr
    new = quay.robot_token("hubs", "image_builder")
    assert new != old
    assert [w for w in quay.writes() if "regenerate" in str(w)], quay.writes()  # rotated once
    assert len([w for w in quay.writes() if "regenerate" in str(w)]) == 1
    for key_index in range(3):  # every recipient of either file can still decrypt it
        assert passwords(decrypted(repo, repo.secret, key_index)) == {new}
        prod = decrypted(repo, prod_secret(repo), key_index)
        assert passwords(prod) == {new}
        assert prod["jupyterhub"]["hub"] == PROD_SECRETS["jupyterhub"]["hub"]  # its other secrets are kept
    assert recipients(prod_secret(repo)) == {k.recipient for k in repo.keys}
    assert not issuer.check(ROBOT, old)  # the old token no longer works
    for hub in ("staging", "prod"):
        assert f"hub {hub}: proving the new token" in result.stderr
    assert result.stderr.count(f"verified: the new token of Quay robot {ROBOT} works") == 2
    assert f"wrote the new token into {prod_secret(repo)}" in result.stderr
    for secret in (old, new, TOKEN, "PROD-OAUTH-SECRET-456"):
        assert secret not in result.stderr + result.stdout


def test_plain_rotate_is_refused_and_names_rotate_shared(repo: Repo, quay: FakeQuay) -> None:
    share_robot_with_prod(repo, quay)
    token, before = quay.robot_token("hubs", "image_builder"), repo.snapshot()
    quay.clear_log()
    args = ["quay", *quay_args(quay), *repo.files_args(), "--rotate"]
    result = CliRunner().invoke(app, args, env=repo.env(QUAY_TOKEN=TOKEN))
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "hubs prod of" in message and "--rotate-shared" in message
    assert quay.writes() == [] and quay.robot_token("hubs", "image_builder") == token
    assert repo.snapshot() == before


def test_dry_run_names_the_hubs_and_changes_nothing(repo: Repo, quay: FakeQuay) -> None:
    share_robot_with_prod(repo, quay)
    token, before = quay.robot_token("hubs", "image_builder"), repo.snapshot()
    quay.clear_log()
    result = rotate_shared(repo, quay, "--dry-run")
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert f"--rotate-shared would write the new token into {prod_secret(repo)} (hub prod)" in message
    assert "regenerate token of robot hubs+image_builder" in message
    assert quay.writes() == [] and quay.robot_token("hubs", "image_builder") == token
    assert repo.snapshot() == before


def _break(repo: Repo, how: str) -> str:
    path = prod_secret(repo)
    if how == "missing":
        path.unlink()
        return "does not exist"
    if how == "undecryptable":  # encrypted for carol only: this user (alice) cannot decrypt it
        encrypt_file(path, yaml.safe_dump(PROD_SECRETS), [repo.keys[2].recipient])
        return "cannot take the new token"
    plain = decrypted(repo, path)
    del plain["binderhub-service"]
    encrypt_file(path, yaml.safe_dump(plain), [k.recipient for k in repo.keys])
    return "none of its secret files"


@pytest.mark.parametrize("how", ["missing", "undecryptable", "no-password"])
def test_a_bad_secret_file_of_the_other_hub_stops_before_any_quay_write(repo: Repo, quay: FakeQuay, how: str) -> None:
    share_robot_with_prod(repo, quay)
    expected = _break(repo, how)
    token, before = quay.robot_token("hubs", "image_builder"), repo.snapshot()
    quay.clear_log()
    result = rotate_shared(repo, quay, "--no-verify")
    assert result.exit_code in (1, 2), result.stderr
    message = " ".join(result.stderr.split())
    assert expected in message and "prod" in message and "nothing was changed" in message
    assert quay.writes() == []  # no POST, PUT or DELETE
    assert quay.robot_token("hubs", "image_builder") == token and repo.snapshot() == before


def set_fails_for(folder: Path, real_sops: str, name: str) -> str:
    """The real sops, except that `sops set` into a copy of the file `name` fails (as on a full disk)."""
    wrapper = folder / "sops-set-fails-for-one-file"
    wrapper.write_text(
        "#!/bin/sh\n"
        'set_cmd=""; for a in "$@"; do [ "$a" = set ] && set_cmd=1; done\n'
        f'if [ -n "$set_cmd" ]; then for a in "$@"; do case "$a" in *{name}*) '
        'echo "write error: no space left on device" >&2; exit 1;; esac; done; fi\n'
        f'exec {real_sops} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def test_a_failed_write_into_the_other_hub_names_who_holds_the_token_and_how_to_finish(
    repo: Repo, quay: FakeQuay
) -> None:
    share_robot_with_prod(repo, quay)
    old = quay.robot_token("hubs", "image_builder")
    broken = repo.env(QUAY_TOKEN=TOKEN, SOPS_BIN=set_fails_for(repo.root.parent, repo.sops, "enc-prod"))
    result = rotate_shared(repo, quay, "--no-verify", env=broken)
    assert result.exit_code == 1, result.stderr
    new = quay.robot_token("hubs", "image_builder")
    assert new != old
    message = " ".join(result.stderr.split())
    assert "Hubs whose secrets hold it: staging; hubs whose secrets still hold the old token: prod" in message
    assert f"Quay shows it to administrators of hubs (robot {ROBOT}" in message
    finish = f"--org hubs --robot image_builder --shared-org --hub prod --secret-file {prod_secret(repo)}"
    assert finish in message
    assert passwords(decrypted(repo, repo.secret)) == {new} and passwords(decrypted(repo, prod_secret(repo))) == {old}
    assert new is not None and new not in result.stderr + result.stdout
    # The way out the message gives writes the live token into prod without another rotation.
    again = CliRunner().invoke(app, ["quay", "--api-url", quay.url, *finish.split()], env=repo.env(QUAY_TOKEN=TOKEN))
    assert again.exit_code == 0, again.stderr
    assert quay.robot_token("hubs", "image_builder") == new
    assert passwords(decrypted(repo, prod_secret(repo))) == {new}
    assert decrypted(repo, prod_secret(repo))["jupyterhub"]["hub"] == PROD_SECRETS["jupyterhub"]["hub"]


def test_rotate_shared_needs_cluster_config(repo: Repo, quay: FakeQuay) -> None:
    args = ["quay", *quay_args(quay), "--secret-file", str(repo.secret), "--rotate-shared"]
    result = CliRunner().invoke(app, args, env=repo.env(QUAY_TOKEN=TOKEN))
    assert result.exit_code == 2, result.stderr
    assert "--rotate-shared needs --hub and --cluster-config" in " ".join(result.stderr.split())
    assert quay.writes() == []


def test_a_failed_write_into_the_rotating_hub_says_no_hub_holds_the_token(repo: Repo, quay: FakeQuay) -> None:
    share_robot_with_prod(repo, quay)
    old = quay.robot_token("hubs", "image_builder")
    broken = repo.env(QUAY_TOKEN=TOKEN, SOPS_BIN=set_fails_for(repo.root.parent, repo.sops, "enc-staging"))
    result = rotate_shared(repo, quay, "--no-verify", env=broken)
    assert result.exit_code == 1, result.stderr
    assert quay.robot_token("hubs", "image_builder") != old
    message = " ".join(result.stderr.split())
    assert "Hubs whose secrets hold it: none; hubs whose secrets still hold the old token: staging, prod" in message
    assert "for hub staging the same `provision quay` command without --rotate-shared" in message
    assert "--shared-org --hub prod" in message
    assert passwords(decrypted(repo, repo.secret)) == {old} == passwords(decrypted(repo, prod_secret(repo)))


def test_a_failed_proof_is_reported_per_hub_after_every_file_is_written(repo: Repo, quay: FakeQuay) -> None:
    share_robot_with_prod(repo, quay)
    issuer = LiveIssuer(lambda _u, _p: False)  # a registry that accepts nothing
    with issuer, DistributionRegistry(token=issuer) as registry:
        result = rotate_shared(repo, quay, "--verify-registry-url", registry.url, "--verify-timeout", "0")
    assert result.exit_code == 1, result.stderr
    new = quay.robot_token("hubs", "image_builder")
    message = " ".join(result.stderr.split())
    assert "hub staging: proving the new token" in message and "hub prod: proving the new token" in message
    assert "did not pass verify for the hubs staging, prod" in message and "would rotate" in message
    assert passwords(decrypted(repo, repo.secret)) == {new} == passwords(decrypted(repo, prod_secret(repo)))
    assert new is not None and new not in result.stderr + result.stdout
