"""provision remove quay|dockerhub end to end: a hub provisioned by the real `provision quay|dockerhub` run (Quay and
Docker Hub test servers, the real sops 3.11.0 with age keys, a 2i2c-shaped cluster folder) is taken apart again,
then `provision doctor` must find nothing dangling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.sops import build_args
from tests.realsops import AgeKey, decrypt_file, encrypt_file, sops_env, write_sops_config
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import FakeQuay, Status

TOKEN = "Q" * 40
DH_PASSWORD = "owner-password-123"
CLUSTER = """\
name: c1
provider: aws # EKS
hubs:
  - name: staging
    domain: staging.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      # The order matters: later files win
      - common.values.yaml
      - staging.values.yaml
      - enc-staging.secret.values.yaml
  - name: staging-new
    domain: staging-new.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
  - name: prod
    domain: prod.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
"""
VALUES = """\
jupyterhub:
  custom:
    homepage:
      templateVars:
        org:
          name: "C1" # shown on the home page
  singleuser:
    profileList:
      - display_name: "Small"
        slug: small
        kubespawner_override:
          mem_limit: 2G
"""
SECRETS = {"jupyterhub": {"hub": {"config": {"GitHubOAuthenticator": {"client_secret": "OAUTH-SECRET-123"}}}}}


class Repo:
    """A 2i2c-shaped cluster folder whose secret file is encrypted for alice, bob and carol (more recipients than
    the creation rule names: a removal must keep them all)."""

    def __init__(self, root: Path, keys: tuple[AgeKey, AgeKey, AgeKey], sops: str) -> None:
        self.root, self.keys, self.sops = root, keys, sops
        self.dir = root / "config" / "clusters" / "c1"
        self.cluster = self.dir / "cluster.yaml"
        self.values = self.dir / "staging.values.yaml"
        self.secret = self.dir / "enc-staging.secret.values.yaml"

    def env(self, **extra: str) -> dict[str, str]:
        return sops_env(self.keys[0], **{"SOPS_BIN": self.sops, **extra})

    def files_args(self) -> list[str]:
        return [
            "--values-file",
            str(self.values),
            "--secret-file",
            str(self.secret),
            "--cluster-config",
            str(self.cluster),
        ]

    def decrypt(self, key: AgeKey | None = None) -> Any:
        done = decrypt_file(self.secret, key or self.keys[0])
        assert done.returncode == 0, done.stderr
        return yaml.safe_load(done.stdout)

    def recipients(self) -> set[str]:
        doc = yaml.safe_load(self.secret.read_text())
        return {r["recipient"] for r in doc["sops"]["age"]}

    def add_recipients(self) -> None:
        """Re-encrypt for all three keys (as `sops updatekeys` after adding someone would)."""
        plaintext = decrypt_file(self.secret, self.keys[0]).stdout
        encrypt_file(self.secret, plaintext, [k.recipient for k in self.keys])

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def doctor(self) -> list[dict[str, Any]]:
        result = CliRunner().invoke(app, ["doctor", str(self.dir), "--format", "json"])
        return [f for f in json.loads(result.stdout)["findings"] if f["hub"] == "staging"]


@pytest.fixture
def repo(tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]) -> Repo:
    r = Repo(tmp_path / "infrastructure", age_keys, real_sops)
    r.dir.mkdir(parents=True)
    write_sops_config(r.root, [age_keys[0].recipient, age_keys[1].recipient])
    r.cluster.write_text(CLUSTER)
    r.values.write_text(VALUES)
    (r.dir / "common.values.yaml").write_text("nfs:\n  enabled: false\n")
    encrypt_file(r.secret, yaml.safe_dump(SECRETS), [k.recipient for k in age_keys[:2]])
    return r


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay(repositories_page_size=2) as server:
        server.add_user("admin", email="admin@example.org")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin", "repo:admin"})
        yield server


def quay_args(quay: FakeQuay) -> list[str]:
    return ["--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url]


def provision_quay(repo: Repo, quay: FakeQuay) -> None:
    image = "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo"
    result = CliRunner().invoke(
        app, ["quay", *quay_args(quay), *repo.files_args(), "--image", image], env=repo.env(QUAY_TOKEN=TOKEN)
    )
    assert result.exit_code == 0, result.stderr
    repo.add_recipients()
    for name in ("c1-staging-binder-2dexamples-abc", "c1-staging-other-def", "c1-staging-third-123"):
        quay.add_repository("hubs", name)
    quay.add_repository("hubs", "c1-staging-new-binder-xyz")  # hub staging-new: its names extend staging's prefix
    quay.add_repository("hubs", "c1-prod-binder-xyz")


def remove_quay(
    repo: Repo, quay: FakeQuay, *extra: str, env: dict[str, str] | None = None, input: str | None = None
) -> Any:
    args = ["remove", "quay", *quay_args(quay), *repo.files_args(), *extra]
    return CliRunner().invoke(app, args, env=env or repo.env(QUAY_TOKEN=TOKEN), input=input)


def assert_removed(repo: Repo, quay: FakeQuay) -> None:
    assert quay.robot_token("hubs", "image_builder") is None
    values = yaml.safe_load(repo.values.read_text())
    assert "binderhub-service" not in values
    assert [p["slug"] for p in values["jupyterhub"]["singleuser"]["profileList"]] == ["small"]
    assert '          name: "C1" # shown on the home page\n' in repo.values.read_text()
    for key in repo.keys:  # every recipient can still decrypt, and only OAuth secrets are left
        assert repo.decrypt(key) == SECRETS
    assert repo.recipients() == {k.recipient for k in repo.keys}
    assert "# The order matters: later files win" in repo.cluster.read_text()
    assert repo.doctor() == []


def test_quay_removal_from_a_provisioned_hub(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    assert repo.doctor() == []  # provisioned cleanly
    robot_token = quay.robot_token("hubs", "image_builder")
    assert robot_token
    before = repo.snapshot()
    quay.clear_log()

    dry = remove_quay(repo, quay, "--delete-repositories", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert repo.snapshot() == before and quay.writes() == [] and quay.robot_token("hubs", "image_builder")
    steps = ["delete 3 repositories hubs/c1-staging-*", "delete robot hubs+image_builder"]
    steps += [f"remove from {repo.secret}", f"remove from {repo.values}", "dry run: nothing was changed"]
    for step in steps:
        assert step in dry.stderr
    assert "-    BinderHub:" in dry.stderr or "-      image_prefix" in dry.stderr  # the values diff is shown

    result = remove_quay(repo, quay, "--delete-repositories", "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert quay.repositories("hubs") == ["c1-staging-new-binder-xyz", "c1-prod-binder-xyz"]
    assert_removed(repo, quay)
    listed = yaml.safe_load(repo.cluster.read_text())["hubs"][0]["helm_chart_values_files"]
    assert listed == ["common.values.yaml", "staging.values.yaml", "enc-staging.secret.values.yaml"]
    for secret in (TOKEN, robot_token, "OAUTH-SECRET-123"):
        assert secret not in result.stderr + dry.stderr

    after = repo.snapshot()
    quay.clear_log()
    again = remove_quay(repo, quay, "--delete-repositories", "--yes")
    assert again.exit_code == 0, again.stderr
    assert "nothing to remove" in again.stderr
    assert quay.writes() == [] and repo.snapshot() == after


def test_emptied_files_are_deleted_and_unlisted(repo: Repo, quay: FakeQuay) -> None:
    """A hub whose values and secret files provision created: removal deletes them and unlists them."""
    repo.values.unlink()
    repo.secret.unlink()
    cluster_before = repo.cluster.read_text().replace(
        "      - staging.values.yaml\n      - enc-staging.secret.values.yaml\n", ""
    )
    repo.cluster.write_text(cluster_before)
    provision_quay(repo, quay)
    assert "enc-staging.secret.values.yaml" in repo.cluster.read_text()
    result = remove_quay(repo, quay, "--yes")
    assert result.exit_code == 0, result.stderr
    assert not repo.values.exists() and not repo.secret.exists()
    assert repo.cluster.read_text() == cluster_before
    assert quay.robot_token("hubs", "image_builder") is None
    assert len(quay.repositories("hubs")) == 5  # not asked to delete repositories
    assert repo.doctor() == []


def test_interrupted_quay_removal_resumes(repo: Repo, quay: FakeQuay, tmp_path: Path) -> None:
    provision_quay(repo, quay)
    before = repo.snapshot()
    # 1. The second repository deletion fails: the others (deleted concurrently) may be gone, no file changed.
    quay.inject("DELETE", r"/api/v1/repository/.*", Status(403), after=1)
    first = remove_quay(repo, quay, "--delete-repositories", "--yes")
    assert first.exit_code == 1 and "Already done" not in first.stderr.split("error:")[0]
    left = len(quay.repositories("hubs")) - 2  # hub staging's, besides staging-new's and prod's
    assert left in (1, 2) and repo.snapshot() == before
    # 2. The robot deletion fails: the repositories are gone, no file changed.
    quay.clear_faults()
    quay.inject("DELETE", r"/api/v1/organization/hubs/robots/.*", Status(403))
    second = remove_quay(repo, quay, "--delete-repositories", "--yes")
    assert second.exit_code == 1, second.stderr
    assert f"Already done: delete {left} repositories" in second.stderr and "re-run" in second.stderr
    assert quay.repositories("hubs") == ["c1-staging-new-binder-xyz", "c1-prod-binder-xyz"]
    assert quay.robot_token("hubs", "image_builder") and repo.snapshot() == before
    # 3. sops fails on the secret file: the robot is gone, the secret file is as it was.
    quay.clear_faults()
    failing = tmp_path / "sops-failing-unset"
    failing.write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = unset ] && {{ echo "injected failure" >&2; exit 128; }}; done\n'
            f'exec {repo.sops} "$@"\n'
    )
    failing.chmod(0o755)
    third = remove_quay(
        repo, quay, "--delete-repositories", "--yes", env=repo.env(QUAY_TOKEN=TOKEN, SOPS_BIN=str(failing))
    )
    assert third.exit_code == 1 and "Already done: delete robot hubs+image_builder" in third.stderr
    assert quay.robot_token("hubs", "image_builder") is None and repo.snapshot() == before
    assert not [p for p in repo.dir.iterdir() if p.name.startswith(".enc-")]  # no copy left behind
    # 4. The files were cleaned one at a time (only the secret file first): the full run finishes the rest.
    partial = CliRunner().invoke(
        app, ["remove", "quay", *quay_args(quay), "--secret-file", str(repo.secret), "--yes"],
        env=repo.env(QUAY_TOKEN=TOKEN),
    )  # fmt: skip
    assert partial.exit_code == 0, partial.stderr
    assert repo.values.read_bytes() == before["config/clusters/c1/staging.values.yaml"]
    last = remove_quay(repo, quay, "--delete-repositories", "--yes")
    assert last.exit_code == 0, last.stderr
    assert_removed(repo, quay)


def test_repository_deletion_needs_the_typed_hub_name(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    before = repo.snapshot()
    quay.clear_log()
    declined = remove_quay(repo, quay, "--delete-repositories", input="yes\n")
    assert declined.exit_code == 1 and "declined: nothing was changed" in declined.stderr
    assert "type the hub name (staging)" in declined.stderr
    assert quay.writes() == [] and repo.snapshot() == before
    no_answer = remove_quay(repo, quay)  # stdin closed: no
    assert no_answer.exit_code == 1 and quay.writes() == [] and repo.snapshot() == before
    typed = remove_quay(repo, quay, "--delete-repositories", input="staging\n")
    assert typed.exit_code == 0, typed.stderr
    assert_removed(repo, quay)


def test_files_of_another_registry_are_refused_before_any_change(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    quay.add_org("other", admin="admin")
    quay.add_robot("other", "image_builder")
    before = repo.snapshot()
    quay.clear_log()
    args = ["remove", "quay", "--org", "other", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url]
    result = CliRunner().invoke(app, [*args, *repo.files_args(), "--yes"], env=repo.env(QUAY_TOKEN=TOKEN))
    assert result.exit_code == 2, result.stderr
    assert "describes another registry" in result.stderr and "image_prefix" in result.stderr
    assert quay.requests == [] and repo.snapshot() == before


def test_shared_org_touches_only_the_files(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    quay.clear_log()
    result = remove_quay(repo, quay, "--shared-org", "--yes")
    assert result.exit_code == 0, result.stderr
    assert quay.writes() == [] and quay.robot_token("hubs", "image_builder")
    assert "binderhub-service" not in yaml.safe_load(repo.values.read_text())
    assert repo.decrypt() == SECRETS and repo.doctor() == []


def test_a_robot_other_hubs_push_with_is_kept(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    (repo.dir / "prod.values.yaml").write_text(
        "binderhub-service:\n  buildPodsRegistryCredentials:\n    username: hubs+image_builder\n"
    )
    repo.cluster.write_text(repo.cluster.read_text() + "      - prod.values.yaml\n")
    result = remove_quay(repo, quay, "--yes")
    assert result.exit_code == 0, result.stderr
    assert "kept robot hubs+image_builder: the hubs prod push with it too" in result.stderr
    assert quay.robot_token("hubs", "image_builder")


# --- Docker Hub --------------------------------------------------------------------------------------------------


@pytest.fixture
def dockerhub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as server:
        server.add_user("alice", password=DH_PASSWORD)
        server.add_org("myorg", owners=["alice"], plan="team")
        yield server


def dh_env(repo: Repo, **extra: str) -> dict[str, str]:
    return repo.env(DOCKERHUB_USERNAME="alice", DOCKERHUB_TOKEN=DH_PASSWORD, **extra)


def dh_args(dockerhub: FakeDockerHub) -> list[str]:
    return ["--namespace", "myorg", "--org", "--cluster", "c1", "--hub", "staging", "--api-url", dockerhub.url]


def test_dockerhub_removal_from_a_provisioned_hub(repo: Repo, dockerhub: FakeDockerHub) -> None:
    args = ["dockerhub", *dh_args(dockerhub), "--private", *repo.files_args(), "--image", "r=rocker/binder:4.3"]
    provisioned = CliRunner().invoke(app, args, env=dh_env(repo))
    assert provisioned.exit_code == 0, provisioned.stderr
    repo.add_recipients()
    assert [t["label"] for t in dockerhub.oats("myorg")] == ["binderhub-c1-staging"]
    assert repo.decrypt()["jupyterhub"]["imagePullSecret"]["create"] is True
    before = repo.snapshot()

    remove = ["remove", "dockerhub", *dh_args(dockerhub), *repo.files_args()]
    dry = CliRunner().invoke(app, [*remove, "--dry-run"], env=dh_env(repo))
    assert dry.exit_code == 0, dry.stderr
    assert "delete organization access token 'binderhub-c1-staging'" in dry.stderr
    assert repo.snapshot() == before and len(dockerhub.oats("myorg")) == 1

    # Interrupted: the token deletion fails; nothing else changed. Then the re-run finishes.
    dockerhub.inject("DELETE", r"/v2/orgs/myorg/access-tokens/.*", Status(403))
    failed = CliRunner().invoke(app, [*remove, "--yes"], env=dh_env(repo))
    assert failed.exit_code == 1 and repo.snapshot() == before and len(dockerhub.oats("myorg")) == 1
    result = CliRunner().invoke(app, [*remove, "--yes"], env=dh_env(repo))
    assert result.exit_code == 0, result.stderr
    assert dockerhub.oats("myorg") == []
    values = yaml.safe_load(repo.values.read_text())
    assert "binderhub-service" not in values
    assert [p["slug"] for p in values["jupyterhub"]["singleuser"]["profileList"]] == ["small"]
    for key in repo.keys:
        assert repo.decrypt(key) == SECRETS
    assert repo.doctor() == []
    assert DH_PASSWORD not in result.stderr + failed.stderr + dry.stderr

    after = repo.snapshot()
    again = CliRunner().invoke(app, [*remove, "--yes"], env=dh_env(repo))
    assert again.exit_code == 0 and "nothing to remove" in again.stderr and repo.snapshot() == after


@pytest.mark.parametrize(
    ("keys", "index"),
    [
        (("jupyterhub", "imagePullSecret"), '["jupyterhub"]["imagePullSecret"]'),
        (("binderhub-service",), '["binderhub-service"]'),
        (("basehub", 'we"ird'), '["basehub"]["we\\"ird"]'),
    ],
)
def test_unset_args(keys: tuple[str, ...], index: str) -> None:
    assert build_args("unset", path=Path("/r/enc-a.secret.values.yaml"), keys=keys) == [
        "unset", "--idempotent", "/r/enc-a.secret.values.yaml", index,
    ]  # fmt: skip


def test_unset_args_need_a_key() -> None:
    with pytest.raises(ValueError):
        build_args("unset", path=Path("/r/x.yaml"), keys=())


def test_unset_keeps_recipients_and_the_file_on_failure(repo: Repo) -> None:
    from provision.sops import Sops, SopsError, unset_keys

    encrypt_file(repo.secret, yaml.safe_dump({**SECRETS, "x": {"y": "1"}}), [k.recipient for k in repo.keys])
    client = Sops(repo.sops, env=repo.env())
    unset_keys(client, repo.secret, [("x",), ("not", "there")])
    assert repo.decrypt(repo.keys[2]) == SECRETS and repo.recipients() == {k.recipient for k in repo.keys}
    before = repo.secret.read_bytes()
    stranger = Sops(repo.sops, env=sops_env(None))
    with pytest.raises(SopsError):
        unset_keys(stranger, repo.secret, [("jupyterhub",)])
    assert repo.secret.read_bytes() == before
    assert sorted(p.name for p in repo.dir.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("chart", "extra"),
    [
        ("basehub", ["--dask-gateway"]),
        ("daskhub", []),  # values under basehub:, dask pods given the pull secret by default
        # z2jh (one file per Helm release, no cluster.yaml): test_z2jh_provision_then_remove_gives_back_the_files
    ],
)
def test_provision_then_remove_gives_back_the_files(repo: Repo, quay: FakeQuay, chart: str, extra: list[str]) -> None:
    """Whatever shape the values had, removing gives back the values file byte for byte and the secrets as they
    were (the secret file's ciphertext differs: sops re-encrypts each value)."""
    original = VALUES if chart != "daskhub" else "basehub:\n" + "".join(f"  {line}\n" for line in VALUES.splitlines())
    repo.values.write_text(original)
    image = ["--image", "r=rocker/binder:4.3"]
    provision = ["quay", *quay_args(quay), *repo.files_args(), "--chart", chart, *image, *extra]
    provisioned = CliRunner().invoke(app, provision, env=repo.env(QUAY_TOKEN=TOKEN))
    assert provisioned.exit_code == 0, provisioned.stderr
    assert repo.values.read_text() != original
    result = remove_quay(repo, quay, "--chart", chart, "--yes")
    assert result.exit_code == 0, result.stderr
    assert repo.values.read_text() == original
    assert repo.decrypt() == SECRETS
    assert quay.robot_token("hubs", "image_builder") is None


def z2jh_files(repo: Repo) -> dict[str, Path]:
    """A plain Zero to JupyterHub hub's files: the jupyterhub chart's values and secrets themselves (no
    `jupyterhub:` key), encrypted for all three keys; no cluster.yaml."""
    repo.values.write_text("".join(line[2:] + "\n" for line in VALUES.splitlines()[1:]))
    encrypt_file(repo.secret, yaml.safe_dump(SECRETS["jupyterhub"]), [k.recipient for k in repo.keys])
    repo.cluster.unlink()
    return {
        release: repo.dir / name
        for release, name in (
            ("binderhub-service", "staging.binderhub-service.values.yaml"),
            ("binderhub-service secret", "enc-staging.binderhub-service.secret.values.yaml"),
            ("dask-gateway", "staging.dask-gateway.values.yaml"),
        )
    }


@pytest.mark.parametrize("registry", ["quay", "dockerhub"])
def test_z2jh_provision_then_remove_gives_back_the_files(
    repo: Repo, quay: FakeQuay, dockerhub: FakeDockerHub, registry: str
) -> None:
    """A z2jh hub's values live in one file per Helm release: removal cleans the hub's files and deletes the
    release files provision created (every one listed by the dry run); the rest comes back byte for byte, the
    secrets decrypt to what they were and keep their recipients. In the quay case the binderhub-service release
    already had files of its own (they are cleaned, not deleted)."""
    siblings = z2jh_files(repo)
    own_secret = {"config": {"GitHubRepoProvider": {"access_token": "GH-TOKEN-456"}}}
    if registry == "quay":
        siblings["binderhub-service"].write_text("# the BinderHub release\nnodeSelector:\n  pool: build # big nodes\n")
        encrypt_file(siblings["binderhub-service secret"], yaml.safe_dump(own_secret), [k.recipient for k in repo.keys])
        existing = [siblings.pop("binderhub-service"), siblings.pop("binderhub-service secret")]
    original = repo.values.read_text()
    before = repo.snapshot()
    files = ["--values-file", str(repo.values), "--secret-file", str(repo.secret), "--chart", "z2jh"]
    image = ["--image", "r=rocker/binder:4.3"]
    if registry == "quay":
        provision = ["quay", *quay_args(quay), *files, *image, "--dask-gateway"]
        remove = ["remove", "quay", *quay_args(quay), *files]
        env = repo.env(QUAY_TOKEN=TOKEN)
    else:
        provision = ["dockerhub", *dh_args(dockerhub), "--private", *files, *image, "--dask-gateway"]
        remove = ["remove", "dockerhub", *dh_args(dockerhub), *files]
        env = dh_env(repo)
    provisioned = CliRunner().invoke(app, provision, env=env)
    assert provisioned.exit_code == 0, provisioned.stderr
    assert all(path.is_file() for path in siblings.values()), provisioned.stderr
    assert repo.values.read_text() != original and "imagePullSecret" in repo.decrypt()
    provisioned_files = repo.snapshot()

    dry = CliRunner().invoke(app, [*remove, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.stderr
    assert repo.snapshot() == provisioned_files
    steps = [f"remove from {repo.secret}", f"remove from {repo.values}", *(f"delete {p}" for p in siblings.values())]
    steps += [f"remove from {p}" for p in existing] if registry == "quay" else []
    for step in steps:
        assert step in dry.stderr, step
    assert "-  extraConfig:" in dry.stderr  # the hub file's diff: fancy-profiles' setup leaves it

    result = CliRunner().invoke(app, [*remove, "--yes"], env=env)
    assert result.exit_code == 0, result.stderr
    assert not any(path.exists() for path in siblings.values())
    assert repo.values.read_text() == original
    after = repo.snapshot()
    assert {k: v for k, v in after.items() if "enc-" not in k} == {k: v for k, v in before.items() if "enc-" not in k}
    assert after.keys() == before.keys()
    for key in repo.keys:  # every recipient can still decrypt, and only the OAuth secret is left
        assert repo.decrypt(key) == SECRETS["jupyterhub"]
    assert repo.recipients() == {k.recipient for k in repo.keys}
    if registry == "quay":
        done = decrypt_file(existing[1], repo.keys[2])
        assert done.returncode == 0 and yaml.safe_load(done.stdout) == own_secret
    assert quay.robot_token("hubs", "image_builder") is None and dockerhub.oats("myorg") == []
    for secret in (TOKEN, DH_PASSWORD, "OAUTH-SECRET-123", "GH-TOKEN-456"):
        assert secret not in result.stderr + dry.stderr

    again = CliRunner().invoke(app, [*remove, "--yes"], env=env)
    assert again.exit_code == 0 and "nothing to remove" in again.stderr and repo.snapshot() == after


def test_z2jh_removal_wants_the_hub_files(repo: Repo, quay: FakeQuay) -> None:
    """A release's sibling given as the hub's file, or --cluster-config with z2jh: refused before any request.
    Without --chart z2jh, a sibling beside the values file is pointed out."""
    z2jh_files(repo)
    sibling = repo.dir / "staging.binderhub-service.values.yaml"
    given = ["remove", "quay", *quay_args(quay), "--values-file", str(sibling), "--chart", "z2jh", "--yes"]
    result = CliRunner().invoke(app, given, env=repo.env(QUAY_TOKEN=TOKEN))
    assert result.exit_code == 2 and f"give the hub's own file ({repo.values}" in result.stderr
    sibling.write_text("enabled: true\n")
    no_chart = ["remove", "quay", *quay_args(quay), "--values-file", str(repo.values), "--dry-run"]
    unsaid = CliRunner().invoke(app, no_chart, env=repo.env())
    assert unsaid.exit_code == 0, unsaid.stderr
    assert f"{sibling} is there: if it is this hub's (a z2jh hub), pass --chart z2jh" in unsaid.stderr
    repo.cluster.write_text(CLUSTER)
    clustered = remove_quay(repo, quay, "--chart", "z2jh", "--yes")
    assert clustered.exit_code == 2 and "drop --cluster-config" in clustered.stderr
    assert quay.requests == []


def test_dry_run_without_a_token_reads_nothing_and_plans_everything(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    before = repo.snapshot()
    quay.clear_log()
    env = repo.env()
    result = CliRunner().invoke(app, ["remove", "quay", *quay_args(quay), *repo.files_args(), "--dry-run"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "delete robot hubs+image_builder" in result.stderr and "no Quay token" in result.stderr
    assert f"remove from {repo.values}" in result.stderr
    assert quay.requests == [] and repo.snapshot() == before
    refused = CliRunner().invoke(app, ["remove", "quay", *quay_args(quay), *repo.files_args(), "--yes"], env=env)
    assert refused.exit_code == 2 and "QUAY_TOKEN" in refused.stderr and repo.snapshot() == before


def test_unreadable_hub_files_are_bad_input(repo: Repo, quay: FakeQuay) -> None:
    repo.values.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    result = remove_quay(repo, quay, "--yes")
    # files.read_text names the file: "is a binary file" (NUL bytes) or "is not UTF-8 text".
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "binary file" in result.stderr or "not UTF-8" in result.stderr
    repo.values.unlink()
    repo.values.mkdir()
    folder = remove_quay(repo, quay, "--yes")
    assert folder.exit_code == 2 and "is a directory" in folder.stderr
    assert quay.requests == []


def test_shared_org_without_a_token_cleans_the_files(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    quay.clear_log()
    result = remove_quay(repo, quay, "--shared-org", "--yes", env=repo.env())
    assert result.exit_code == 0, result.stderr
    assert quay.requests == [] and quay.robot_token("hubs", "image_builder")
    assert repo.decrypt() == SECRETS and repo.doctor() == []


def test_a_token_without_org_admin_is_explained(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    quay.add_token("U" * 40, user="admin", scopes={"user:admin"})
    before = repo.snapshot()
    result = remove_quay(repo, quay, "--yes", env=repo.env(QUAY_TOKEN="U" * 40))
    assert result.exit_code == 1 and "lacks the org:admin scope" in result.stderr
    assert repo.snapshot() == before and quay.robot_token("hubs", "image_builder")
    no_repo_scope = remove_quay(repo, quay, "--yes", "--delete-repositories", env=repo.env(QUAY_TOKEN="V" * 40))
    assert no_repo_scope.exit_code == 1  # an unknown token: refused by the preflight
    quay.add_token("W" * 40, user="admin", scopes={"user:admin", "org:admin"})
    scoped = remove_quay(repo, quay, "--yes", "--delete-repositories", env=repo.env(QUAY_TOKEN="W" * 40))
    assert scoped.exit_code == 1 and "repo:admin" in scoped.stderr
    assert repo.snapshot() == before and len(quay.repositories("hubs")) == 5


def test_dockerhub_removal_takes_a_token_whose_secret_was_never_stored(repo: Repo, dockerhub: FakeDockerHub) -> None:
    """provision dockerhub labels a new token <label>.pending until its secret is stored, and a rotation's new one
    <label>.new until the old one is deleted: they are the hub's too."""
    resources = [{"type": "TYPE_REPO", "path": "myorg/*", "scopes": ["scope-image-push"]}]
    dockerhub.add_oat("myorg", label="binderhub-c1-staging.pending", resources=resources)
    dockerhub.add_oat("myorg", label="binderhub-c1-staging.new", resources=resources)
    result = CliRunner().invoke(app, ["remove", "dockerhub", *dh_args(dockerhub), "--yes"], env=dh_env(repo))
    assert result.exit_code == 0, result.stderr
    assert dockerhub.oats("myorg") == []


def test_a_non_owner_gets_a_way_out(repo: Repo, dockerhub: FakeDockerHub) -> None:
    dockerhub.add_user("bob", password="bob-pw")
    env = repo.env(DOCKERHUB_USERNAME="bob", DOCKERHUB_TOKEN="bob-pw")
    result = CliRunner().invoke(app, ["remove", "dockerhub", *dh_args(dockerhub), "--yes"], env=env)
    assert result.exit_code == 1 and "must be an owner of 'myorg'" in result.stderr and "bob-pw" not in result.stderr


def test_secret_file_problems_stop_the_removal_before_any_request(repo: Repo, quay: FakeQuay) -> None:
    provision_quay(repo, quay)
    before = repo.snapshot()
    quay.clear_log()
    no_key = remove_quay(repo, quay, "--yes", env=sops_env(None, SOPS_BIN=repo.sops, QUAY_TOKEN=TOKEN))
    assert no_key.exit_code == 1 and "cannot decrypt" in no_key.stderr and "Already done" not in no_key.stderr
    assert quay.writes() == [] and repo.snapshot() == before
    repo.secret.write_text("jupyterhub:\n  imagePullSecret:\n    password: PLAIN-PW-1\n")
    plaintext = remove_quay(repo, quay, "--yes")
    assert plaintext.exit_code == 1 and "not encrypted" in plaintext.stderr and "PLAIN-PW-1" not in plaintext.stderr
    assert quay.writes() == [] and quay.robot_token("hubs", "image_builder")


def test_removal_waits_for_a_writer_and_keeps_its_edits(repo: Repo, quay: FakeQuay) -> None:
    """A removal whose file steps find the folder locked by a writer (a provision run) waits for it, then removes
    its keys from the files as that writer left them: the writer's edits stay."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    provision_quay(repo, quay)
    provision = str(Path(sys.executable).with_name("provision"))
    args = [provision, "remove", "quay", *quay_args(quay), *repo.files_args(), "--yes"]
    folder = os.open(repo.dir, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # "a provision run" holds the hub's folder
        proc = subprocess.Popen(args, env=repo.env(QUAY_TOKEN=TOKEN), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while quay.robot_token("hubs", "image_builder") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()  # the robot is gone; the file steps wait for the lock
        # The writer's edits, made while it holds the lock: a key in each file.
        subprocess.run(
            [repo.sops, "set", "--value-stdin", str(repo.secret), '["other"]["token"]'],
            input='"OTHER-RUN-TOKEN"', text=True, check=True, capture_output=True, env=repo.env(),
        )  # fmt: skip
        repo.values.write_text(repo.values.read_text() + "other: kept # written by the other run\n")
    finally:
        os.close(folder)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "waiting for another provision run" in stderr
    assert repo.decrypt() == {**SECRETS, "other": {"token": "OTHER-RUN-TOKEN"}}
    values = yaml.safe_load(repo.values.read_text())
    assert "binderhub-service" not in values and values["other"] == "kept"
    assert "other: kept # written by the other run\n" in repo.values.read_text()


def test_remove_quay_for_a_z2jh_hub_cleans_its_files(
    tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """QA (issue 13: hub files lose the keys provision wrote) for a plain Zero to JupyterHub user: `remove quay
    --chart z2jh` with the options that wrote four files deleted the robot and left BinderHub's registry values,
    the dead robot's passwords and the pull secret in place. A refusal (exit 2, nothing deleted) would be honest too."""
    alice = age_keys[0]
    write_sops_config(tmp_path, [alice.recipient])
    files = ["--chart", "z2jh", "--values-file", str(tmp_path / "staging.values.yaml"),
             "--secret-file", str(tmp_path / "enc-staging.secret.values.yaml")]  # fmt: skip
    with FakeQuay() as quay:
        quay.add_admin("admintoken123")
        env = {**sops_env(alice), "QUAY_TOKEN": "admintoken123", "SOPS_BIN": real_sops}
        names = ["--api-url", quay.url, "--org", "myorg", "--hub", "staging"]
        made = CliRunner().invoke(
            app, ["quay", *names, "--email", "a@b.org", "--image", "p=pangeo/base:1.0", *files], env=env
        )
        assert made.exit_code == 0, made.stderr
        sibling = tmp_path / "staging.binderhub-service.values.yaml"
        assert "image_prefix" in sibling.read_text()
        removed = CliRunner().invoke(app, ["remove", "quay", *names, *files, "--yes"], env=env)
    assert removed.exit_code in (0, 2), removed.stderr
    if removed.exit_code == 0:
        assert not sibling.exists() or "image_prefix" not in sibling.read_text(), removed.stderr


def provision_prod(repo: Repo, quay: FakeQuay) -> Path:
    """Hub prod of the same cluster.yaml, provisioned into the same organization: it pushes with the same robot."""
    prod_values, prod_secret = repo.dir / "prod.values.yaml", repo.dir / "enc-prod.secret.values.yaml"
    prod = CliRunner().invoke(
        app,
        ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "prod", "--api-url", quay.url,
         "--values-file", str(prod_values), "--secret-file", str(prod_secret), "--cluster-config", str(repo.cluster)],
        env=repo.env(QUAY_TOKEN=TOKEN),
    )  # fmt: skip
    assert prod.exit_code == 0, prod.stderr
    assert "hubs+image_builder" in prod_values.read_text()
    return prod_values


def remove_without_cluster_config(repo: Repo, quay: FakeQuay) -> Any:
    """`provision remove quay` of hub staging with its files only: the cluster.yaml beside them is found."""
    args = ["remove", "quay", *quay_args(quay), "--values-file", str(repo.values), "--secret-file", str(repo.secret)]
    return CliRunner().invoke(app, [*args, "--yes"], env=repo.env(QUAY_TOKEN=TOKEN))


def test_removal_without_cluster_config_keeps_a_robot_another_hub_of_the_cluster_pushes_with(
    repo: Repo, quay: FakeQuay
) -> None:
    """QA (issue 13; the README: "the robot also stays when another hub ... pushes with it"): without
    --cluster-config, the cluster.yaml beside --values-file is read (as for the chart), so the robot that hub prod of
    the same cluster still pushes with is kept, and stderr says which cluster.yaml told."""
    provision_quay(repo, quay)
    provision_prod(repo, quay)
    result = remove_without_cluster_config(repo, quay)
    assert result.exit_code in (0, 2), result.stderr
    assert quay.robot_token("hubs", "image_builder") is not None  # prod's credential still works
    message = " ".join(result.stderr.split())
    assert str(repo.cluster) in message and "kept robot hubs+image_builder: the hubs prod push with it too" in message


def test_removal_with_no_cluster_yaml_says_other_hubs_were_not_checked(tmp_path: Path, quay: FakeQuay) -> None:
    """Plain files with no cluster.yaml anywhere: the robot is deleted as before, but the plan says that other hubs
    pushing with it could not be checked."""
    values = tmp_path / "staging.values.yaml"
    args = ["--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url]
    env = {"QUAY_TOKEN": TOKEN}
    made = CliRunner().invoke(app, ["quay", *args, "--values-file", str(values), "--email", "a@b.org"], env=env)
    assert made.exit_code == 0, made.stderr
    result = CliRunner().invoke(app, ["remove", "quay", *args, "--values-file", str(values), "--yes"], env=env)
    assert result.exit_code == 0, result.stderr
    assert quay.robot_token("hubs", "image_builder") is None
    message = " ".join(result.stderr.split())
    assert "other hubs pushing as hubs+image_builder could not be checked" in message


def test_removal_refuses_when_the_cluster_yaml_beside_cannot_be_read(repo: Repo, quay: FakeQuay) -> None:
    """A cluster.yaml beside the hub's files that does not parse cannot say whether another hub pushes with the
    robot: the removal stops before any change (exit 2), naming the file, rather than delete a shared robot."""
    provision_quay(repo, quay)
    repo.cluster.write_text("name: c1\nhubs: [\n")  # an unfinished edit
    before = repo.snapshot()
    result = remove_without_cluster_config(repo, quay)
    assert result.exit_code == 2, result.stderr
    assert quay.robot_token("hubs", "image_builder") is not None and repo.snapshot() == before
    message = " ".join(result.stderr.split())
    assert str(repo.cluster) in message and "cannot tell whether other hubs push as hubs+image_builder" in message


def test_deleting_repositories_without_repo_admin_names_the_scope(repo: Repo, quay: FakeQuay) -> None:
    """Issue 18: a token that may list repositories (repo:read) but not delete them: Quay answers 403
    insufficient_scope to the first DELETE. The message names the scope the call needs (repo:admin), and does not
    say "re-run" (the same token fails the same way)."""
    provision_quay(repo, quay)
    weak = "W" * 40
    quay.add_token(weak, user="admin", scopes={"org:admin", "user:admin", "repo:read"})
    result = remove_quay(repo, quay, "--delete-repositories", "--yes", env=repo.env(QUAY_TOKEN=weak))
    assert result.exit_code == 1, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "repo:admin" in line and "DELETE /repository/hubs/" in line
    assert "re-run" not in line
    assert len(quay.repositories("hubs")) == 5

    none = "N" * 40  # no repo scope at all: listing (repo:read) is refused before any change
    quay.add_token(none, user="admin", scopes={"org:admin", "user:admin"})
    result = remove_quay(repo, quay, "--delete-repositories", "--yes", env=repo.env(QUAY_TOKEN=none))
    assert result.exit_code == 1, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "repo:admin" in line and "nothing was changed" in line and "re-run" not in line
