"""Writing a hub's files end to end: provision quay against the Quay test server, the sops stand-in at the
subprocess boundary, and a cluster folder shaped like 2i2c-org/infrastructure."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from tests.helpers import helm_merge, validate_hub_values
from tests.servers.quay import FakeQuay
from tests.test_cli import _run_on_terminal

TOKEN = "H" * 40
CLUSTER = """\
name: c1
provider: aws # EKS
hubs:
  - name: staging
    display_name: "C1 staging"
    domain: staging.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      # The order matters: later files win
      - common.values.yaml
      - staging.values.yaml
      - enc-staging.secret.values.yaml
  - name: dask
    domain: dask.c1.2i2c.cloud
    helm_chart: daskhub
    helm_chart_values_files:
      - dask.values.yaml
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
# An existing secrets file: OAuth secrets nested under jupyterhub, and an old registry password.
SECRETS = {
    "jupyterhub": {
        "hub": {"config": {"GitHubOAuthenticator": {"client_id": "abc", "client_secret": "OAUTH-SECRET-123"}}},
        "imagePullSecret": {"create": True, "registry": "quay.io", "username": "old+robot", "password": "OLD-PW"},
    },
    "binderhub-service": {"config": {"DockerRegistry": {"password": "OLD-PW"}}},
}


class Repo:
    def __init__(self, root: Path, sops: str, quay: FakeQuay) -> None:
        self.root, self.sops, self.quay = root, sops, quay
        self.cluster_dir = root / "config" / "clusters" / "c1"
        self.cluster = self.cluster_dir / "cluster.yaml"
        self.values = self.cluster_dir / "staging.values.yaml"
        self.secret = self.cluster_dir / "enc-staging.secret.values.yaml"

    def env(self, **extra: str) -> dict[str, str]:
        return {"QUAY_TOKEN": TOKEN, "SOPS_BIN": self.sops, **extra}

    def invoke(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
        base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", self.quay.url]
        return CliRunner().invoke(app, [*base, *args], env=env or self.env(), input=input)

    def files_args(self) -> list[str]:
        return [
            *("--values-file", str(self.values)),
            *("--secret-file", str(self.secret)),
            *("--cluster-config", str(self.cluster)),
        ]

    def decrypt(self, path: Path | None = None) -> Any:
        argv = [self.sops, "decrypt", str(path or self.secret)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True)
        return yaml.safe_load(out.stdout)

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path, sops_bin: str) -> Iterator[Repo]:
    with FakeQuay() as quay:
        quay.add_user("admin", email="admin@example.org")
        quay.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        r = Repo(tmp_path / "infrastructure", sops_bin, quay)
        r.cluster_dir.mkdir(parents=True)
        (r.root / ".sops.yaml").write_text("creation_rules:\n  - path_regex: .*secret.*\n    age: age1test\n")
        r.cluster.write_text(CLUSTER)
        r.values.write_text(VALUES)
        (r.cluster_dir / "common.values.yaml").write_text("nfs:\n  enabled: false\n")
        plaintext = yaml.safe_dump(SECRETS, sort_keys=False)
        encrypted = subprocess.run(
            [sops_bin, "encrypt", "--filename-override", str(r.secret)],
            input=plaintext,
            capture_output=True,
            text=True,
            check=True,
            cwd=r.cluster_dir,
        )
        r.secret.write_text(encrypted.stdout)
        yield r


def test_writes_values_secrets_and_registration(repo: Repo) -> None:
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # the secrets went into the encrypted file
    token = repo.quay.robot_token("hubs", "image_builder")
    assert token

    values = yaml.safe_load(repo.values.read_text())
    assert values["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == f"{repo.quay.host}/hubs/c1-staging-"
    assert [p["slug"] for p in values["jupyterhub"]["singleuser"]["profileList"]] == ["small", "build-your-own-image"]
    assert '          name: "C1" # shown on the home page\n' in repo.values.read_text()

    secrets = repo.decrypt()
    assert secrets["jupyterhub"]["hub"] == SECRETS["jupyterhub"]["hub"]  # nested OAuth secrets kept
    assert secrets["binderhub-service"]["config"]["DockerRegistry"]["password"] == token
    assert secrets["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == token
    assert secrets["jupyterhub"]["imagePullSecret"]["username"] == "hubs+image_builder"
    validate_hub_values(helm_merge(values, secrets))

    listed = yaml.safe_load(repo.cluster.read_text())["hubs"][0]["helm_chart_values_files"]
    assert listed == ["common.values.yaml", "staging.values.yaml", "enc-staging.secret.values.yaml"]  # already there
    assert "# The order matters: later files win" in repo.cluster.read_text()

    # Conflicts are reported by path, never by value.
    assert "enc-staging.secret.values.yaml: binderhub-service.config.DockerRegistry.password" in result.stderr
    for secret in (token, "OLD-PW", "OAUTH-SECRET-123", TOKEN):
        assert secret not in result.stderr
    changed = {k for k, v in repo.snapshot().items() if before.get(k) != v}
    assert changed == {"config/clusters/c1/staging.values.yaml", "config/clusters/c1/enc-staging.secret.values.yaml"}
    assert token not in repo.secret.read_text()  # encrypted

    again = repo.invoke(*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo")
    assert again.exit_code == 0, again.stderr
    assert repo.snapshot() == {**before, **{k: repo.snapshot()[k] for k in changed}}
    assert "already up to date" in again.stderr and "written:" not in again.stderr


def test_new_files_and_registration(repo: Repo) -> None:
    values = repo.cluster_dir / "staging.binder.values.yaml"
    secret = repo.cluster_dir / "enc-staging.binder.secret.values.yaml"
    args = ["--values-file", str(values), "--secret-file", str(secret), "--cluster-config", str(repo.cluster)]
    result = repo.invoke(*args)
    assert result.exit_code == 0, result.stderr
    listed = yaml.safe_load(repo.cluster.read_text())["hubs"][0]["helm_chart_values_files"]
    assert listed == [
        "common.values.yaml",
        "staging.values.yaml",
        "staging.binder.values.yaml",
        "enc-staging.secret.values.yaml",
        "enc-staging.binder.secret.values.yaml",
    ]
    assert repo.decrypt(secret)["binderhub-service"]["buildPodsRegistryCredentials"]["password"]


def test_no_plaintext_written_anywhere(repo: Repo) -> None:
    tmp = Path(tempfile.gettempdir())
    tmp_before = {p for p in tmp.iterdir()}
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 0, result.stderr
    token = repo.quay.robot_token("hubs", "image_builder")
    assert token
    for root in (repo.root, repo.root.parent, *(p for p in tmp.iterdir() if p not in tmp_before)):
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            assert token.encode() not in data, f"plaintext token in {path}"
            assert b"OAUTH-SECRET-123" not in data, f"plaintext secret in {path}"


def test_daskhub_detected_from_cluster_yaml(repo: Repo) -> None:
    values = repo.cluster_dir / "dask.values.yaml"
    args = ["--values-file", str(values), "--cluster-config", str(repo.cluster)]  # dask-gateway implied by daskhub
    result = CliRunner().invoke(
        app,
        ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "dask", "--api-url", repo.quay.url, *args],
        env=repo.env(),
    )
    assert result.exit_code == 0, result.stderr
    written = yaml.safe_load(values.read_text())
    assert set(written) == {"basehub"}
    backend = written["basehub"]["dask-gateway"]["gateway"]["backend"]
    assert backend["imagePullSecrets"] == [{"name": "image-pull-secret"}]
    assert set(yaml.safe_load(result.stdout)) == {"basehub"}  # the secrets are wrapped too


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing-binary", "sops not found"),
        ("no-rule", "no creation rule"),
        ("wrong-key", "no usable key"),
    ],
)
def test_sops_failures_leave_every_file_untouched(repo: Repo, setup: str, message: str) -> None:
    env = repo.env()
    if setup == "missing-binary":
        env["SOPS_BIN"] = str(repo.root / "no-such-sops")
    elif setup == "no-rule":
        (repo.root / ".sops.yaml").write_text("creation_rules:\n  - path_regex: nothing-matches\n    age: age1test\n")
    else:
        env["SOPS_STANDIN_KEY"] = "someone-else"
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), env=env)
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr
    assert repo.snapshot() == before
    assert result.stdout == ""
    if setup == "missing-binary":
        assert repo.quay.requests == []  # checked before the first request


def test_dry_run_writes_nothing_and_needs_no_key(repo: Repo) -> None:
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), "--dry-run", env=repo.env(SOPS_STANDIN_KEY="not-needed"))
    assert result.exit_code == 0, result.stderr
    assert repo.snapshot() == before
    assert "+  enabled: true" in result.stderr or "+binderhub-service:" in result.stderr
    assert "would encrypt binderhub-service.config.DockerRegistry.password" in result.stderr
    assert repo.quay.writes() == []


def test_profile_command(repo: Repo) -> None:
    args = ["profile", "--values-file", str(repo.values), "--image", "r=rocker/binder:4.3;R"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    profiles = yaml.safe_load(repo.values.read_text())["jupyterhub"]["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles] == ["small", "build-your-own-image"]
    choice = profiles[1]["profile_options"]["image"]["choices"]["r"]
    assert choice["kubespawner_override"] == {"image": "rocker/binder:4.3"}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already up to date" in again.stderr
    printed = CliRunner().invoke(app, ["profile", "--chart", "z2jh", "--image", "r=rocker/binder:4.3"])
    doc = yaml.safe_load(printed.stdout)  # the jupyterhub chart's own values: one release, one document
    assert "setup_ui(c)" in doc["hub"]["extraConfig"]["07-enable-fancy-profiles"]
    assert "hub image must contain jupyterhub-fancy-profiles" in printed.stderr
    validate_hub_values({"jupyterhub": doc})


def test_secret_file_allows_a_terminal(repo: Repo) -> None:
    env = {**os.environ, **repo.env()}
    base = ["quay", "--org", "hubs", "--hub", "staging", "--api-url", repo.quay.url]
    code, output = _run_on_terminal([*base, "--secret-file", str(repo.secret)], env)
    assert code == 0, output
    assert repo.quay.robot_token("hubs", "image_builder") not in output
    code, output = _run_on_terminal(base, env)
    assert code == 2 and "--secret-file" in output


@pytest.mark.parametrize("chart_args", [[], ["--dask-gateway"]])
def test_what_we_write_passes_doctor(repo: Repo, chart_args: list[str]) -> None:
    """provision doctor finds no error in the files provision writes (the two commands agree)."""
    from provision.console import Reporter
    from provision.flows import doctor

    result = repo.invoke(*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08", *chart_args)
    assert result.exit_code == 0, result.stderr
    report = doctor.run(repo.cluster_dir, reporter=Reporter(stream=io.StringIO()))
    staging = [f for f in report.findings if f.hub == "staging"]
    assert [f for f in staging if f.severity != "info"] == [], staging
