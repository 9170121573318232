"""Writing a hub's files end to end: provision quay against the Quay test server, the real sops 3.11 binary with
age identities made for the test session, and a cluster folder shaped like 2i2c-org/infrastructure."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from tests.conftest import REPO
from tests.helpers import helm_merge, validate_hub_values
from tests.realsops import AgeKey, decrypt_file, encrypt_file, read_calls, recording_sops, sops_env, write_sops_config
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
    def __init__(self, root: Path, sops: str, quay: FakeQuay, keys: tuple[AgeKey, AgeKey, AgeKey]) -> None:
        self.root, self.sops, self.quay, self.keys = root, sops, quay, keys
        self.alice, self.bob, self.carol = keys
        self.cluster_dir = root / "config" / "clusters" / "c1"
        self.cluster = self.cluster_dir / "cluster.yaml"
        self.values = self.cluster_dir / "staging.values.yaml"
        self.secret = self.cluster_dir / "enc-staging.secret.values.yaml"

    def env(self, identity: AgeKey | None = None, **extra: str) -> dict[str, str | None]:
        """The caller's SOPS_* variables unset (CliRunner only overrides), alice's identity, the real sops."""
        cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SOPS_")}
        keep = sops_env(identity or self.alice)
        return {**cleared, **{k: keep[k] for k in keep if k.startswith(("SOPS_", "XDG_"))},
                "QUAY_TOKEN": TOKEN, "SOPS_BIN": self.sops, **extra}  # fmt: skip

    def invoke(self, *args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Any:
        base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", self.quay.url]
        return CliRunner().invoke(app, [*base, *args], env=env or self.env(), input=input)

    def files_args(self) -> list[str]:
        return [
            *("--values-file", str(self.values)),
            *("--secret-file", str(self.secret)),
            *("--cluster-config", str(self.cluster)),
        ]

    def decrypt(self, path: Path | None = None, identity: AgeKey | None = None) -> Any:
        out = decrypt_file(path or self.secret, identity or self.alice)
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)

    def encrypt_secrets(self, recipients: list[str], *extra_args: str) -> None:
        encrypt_file(self.secret, yaml.safe_dump(SECRETS, sort_keys=False), recipients, extra_args=extra_args)

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path, real_sops: str, age_keys: Any) -> Iterator[Repo]:
    with FakeQuay() as quay:
        quay.add_user("admin", email="admin@example.org")
        quay.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        r = Repo(tmp_path / "infrastructure", real_sops, quay, age_keys)
        r.cluster_dir.mkdir(parents=True)
        write_sops_config(r.root, [r.alice.recipient])  # the repository's rule names alice only
        r.cluster.write_text(CLUSTER)
        r.values.write_text(VALUES)
        (r.cluster_dir / "common.values.yaml").write_text("nfs:\n  enabled: false\n")
        r.encrypt_secrets([r.alice.recipient])
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


def test_no_plaintext_written_anywhere(repo: Repo, tmp_path: Path) -> None:
    """A recording wrapper runs the real sops: it logs each call and, at each call, which files hold a plaintext
    secret. None ever does; argv carries paths and key names only; the values travel on stdin."""
    wrapper, log = recording_sops(tmp_path / "rec", scan=(repo.root, "OAUTH-SECRET-123"))
    tmp = Path(tempfile.gettempdir())
    tmp_before = {p for p in tmp.iterdir()}
    result = repo.invoke(*repo.files_args(), env=repo.env(SOPS_BIN=str(wrapper)))
    assert result.exit_code == 0, result.stderr
    token = repo.quay.robot_token("hubs", "image_builder")
    assert token
    calls = read_calls(log)
    # One decrypt before the first remote write, then one `set` per changed branch, on a copy beside the file:
    # a new branch is set whole, an existing value is replaced alone (keys and comments around it stay).
    assert [c["argv"][2] for c in calls] == ["decrypt", *["set"] * 5]
    assert [c["argv"][-1] for c in calls[1:]] == [
        '["binderhub-service"]["config"]["DockerRegistry"]["password"]',
        '["binderhub-service"]["buildPodsRegistryCredentials"]',
        '["jupyterhub"]["imagePullSecret"]["registry"]',
        '["jupyterhub"]["imagePullSecret"]["username"]',
        '["jupyterhub"]["imagePullSecret"]["password"]',
    ]
    assert all(c["argv"][:2] == ["--config", str(repo.root / ".sops.yaml")] for c in calls)
    assert all(c["cwd"] == os.getcwd() for c in calls)  # the caller's directory: relative env paths keep meaning
    for call in calls[1:]:
        assert call["argv"][4].startswith(str(repo.cluster_dir / ".enc-staging.secret.values.yaml."))
        assert call["stdin_bytes"] > 0
    assert all(call["plaintext_files"] == [] for call in calls)
    assert not any(token in " ".join(c["argv"]) for c in calls)  # type: ignore[arg-type]
    for root in (repo.root, repo.root.parent, *(p for p in tmp.iterdir() if p not in tmp_before)):
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if path.parent == wrapper.parent:
                continue  # the recorder holds the needle it looks for
            data = path.read_bytes()
            assert token.encode() not in data, f"plaintext token in {path}"
            assert b"OAUTH-SECRET-123" not in data, f"plaintext secret in {path}"
    assert sorted(p.name for p in repo.cluster_dir.iterdir()) == [
        "cluster.yaml",
        "common.values.yaml",
        "enc-staging.secret.values.yaml",
        "staging.values.yaml",
    ]  # no copy left behind


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


def _tamper(repo: Repo, how: str) -> None:
    text = repo.secret.read_text()
    if how == "delete-line":  # an encrypted key removed: the MAC no longer matches
        lines = text.splitlines(keepends=True)
        repo.secret.write_text("".join(line for line in lines if "client_id:" not in line))
    else:  # one ciphertext character changed: AES-GCM authentication fails
        start = text.index("client_secret: ENC[AES256_GCM,data:") + len("client_secret: ENC[AES256_GCM,data:")
        repo.secret.write_text(text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1 :])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing-binary", "sops not found at SOPS_BIN="),
        ("wrong-key", "none of your keys can unwrap its data key. sops said: Failed to get the data key"),
        ("delete-line", "fails its integrity check (MAC mismatch)"),
        ("change-char", "its ciphertext was changed. sops said: Error decrypting tree"),
        ("invalid-yaml", "sops could not parse"),
        ("plaintext-file", "has no sops metadata (it is not encrypted)"),
        ("no-rule", "no creation rule in "),
        ("gcp-kms", "sops cannot use the keys of the creation rule"),
        ("bad-recipient", "Bech32"),
        ("values-yaml", "not valid YAML"),
    ],
)
def test_local_failures_stop_before_any_remote_write(repo: Repo, setup: str, message: str) -> None:
    """Every sops and file check runs before the first request that changes Quay; nothing is written anywhere."""
    env = repo.env()
    rules = repo.root / ".sops.yaml"
    if setup == "missing-binary":
        env["SOPS_BIN"] = str(repo.root / "no-such-sops")
    elif setup == "wrong-key":
        env = repo.env(repo.carol)
    elif setup in ("delete-line", "change-char"):
        _tamper(repo, setup)
    elif setup == "invalid-yaml":
        repo.secret.write_text(repo.secret.read_text().replace("jupyterhub:", "jupyterhub: [", 1))
    elif setup == "plaintext-file":
        repo.secret.write_text("jupyterhub:\n  hub:\n    config: {}\n")
    else:
        repo.secret.unlink()  # a new file: its creation rule is what is checked
        if setup == "no-rule":
            rules.write_text(f"creation_rules:\n  - path_regex: nothing-matches\n    age: {repo.alice.recipient}\n")
        elif setup == "gcp-kms":
            rules.write_text(
                "creation_rules:\n  - path_regex: .*secret.*\n    gcp_kms: "
                "projects/p/locations/global/keyRings/sops/cryptoKeys/k\n"
            )
            env["GOOGLE_APPLICATION_CREDENTIALS"] = str(repo.root / "no-such-credentials.json")
        elif setup == "bad-recipient":
            rules.write_text("creation_rules:\n  - path_regex: .*secret.*\n    age: age1test\n")
        elif setup == "values-yaml":
            repo.values.write_text("jupyterhub: [\n")
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), env=env)
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr
    assert "\n" not in result.stderr.strip().removeprefix("error: ")  # one paragraph
    for secret in ("OAUTH-SECRET-123", "OLD-PW"):
        assert secret not in result.stderr
    assert repo.snapshot() == before
    assert result.stdout == ""
    assert repo.quay.requests == []  # checked before the first request, so before any write


def test_sops_messages_say_what_to_do(repo: Repo) -> None:
    wrong = repo.invoke(*repo.files_args(), env=repo.env(repo.carol))
    assert "SOPS_AGE_KEY_FILE" in wrong.stderr and "Recovery failed" not in wrong.stderr
    assert f"Group 0: FAILED; {repo.alice.recipient}: FAILED; failed to create reader" in wrong.stderr
    assert repo.alice.recipient in wrong.stderr  # the recipient that could have decrypted it
    _tamper(repo, "delete-line")
    mac = repo.invoke(*repo.files_args())
    assert f"git checkout -- {repo.secret}" in mac.stderr
    repo.secret.unlink()
    (repo.root / ".sops.yaml").write_text("creation_rules:\n  - path_regex: nothing\n    age: x\n")
    rule = repo.invoke(*repo.files_args())
    assert f"no creation rule in {repo.root / '.sops.yaml'} matches {repo.secret}" in rule.stderr
    assert "no matching creation rules found" in rule.stderr  # sops's own words, not withheld


def test_dry_run_writes_nothing_and_checks_the_key(repo: Repo) -> None:
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert repo.snapshot() == before
    assert "+  enabled: true" in result.stderr or "+binderhub-service:" in result.stderr
    assert "would encrypt binderhub-service.config.DockerRegistry.password" in result.stderr
    assert "enc-staging.secret.values.yaml: binderhub-service.config.DockerRegistry.password" in result.stderr
    assert repo.quay.writes() == []
    # A dry run says now what the real run would hit, before reading anything remote.
    wrong = repo.invoke(*repo.files_args(), "--dry-run", env=repo.env(repo.carol))
    assert wrong.exit_code == 1 and "none of your keys" in wrong.stderr
    assert repo.snapshot() == before


def test_dry_run_says_the_secret_file_would_be_updated_not_that_it_was(repo: Repo) -> None:
    """Nothing is written in a dry run: the note about the existing encrypted file is in the conditional."""
    before = repo.snapshot()
    dry = repo.invoke(*repo.files_args(), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert repo.snapshot() == before
    note = "enc-staging.secret.values.yaml: would be updated in place with sops set"
    assert note in dry.stderr
    assert dry.stderr.replace(note, "").count("updated in place") == 0
    real = repo.invoke(*repo.files_args())
    assert real.exit_code == 0, real.stderr
    assert "enc-staging.secret.values.yaml: updated in place with sops set" in real.stderr
    assert "would be updated" not in real.stderr


def test_two_recipients_and_encrypted_regex_are_kept(repo: Repo) -> None:
    """The file was re-keyed for alice and bob and encrypts only passwords; .sops.yaml names alice alone."""
    repo.encrypt_secrets([repo.alice.recipient, repo.bob.recipient], "--encrypted-regex", "^(password|client_secret)$")
    metadata_before = yaml.safe_load(repo.secret.read_text())["sops"]
    result = repo.invoke(*repo.files_args(), env=repo.env(repo.bob))  # bob is not in the creation rule
    assert result.exit_code == 0, result.stderr
    assert "recipients and key groups stay as they are" in result.stderr
    token = repo.quay.robot_token("hubs", "image_builder")
    for identity in (repo.alice, repo.bob):
        secrets = repo.decrypt(identity=identity)
        assert secrets["jupyterhub"]["hub"] == SECRETS["jupyterhub"]["hub"]
        assert secrets["binderhub-service"]["config"]["DockerRegistry"]["password"] == token
    assert decrypt_file(repo.secret, repo.carol).returncode == 128
    after = yaml.safe_load(repo.secret.read_text())
    assert [a["recipient"] for a in after["sops"]["age"]] == [a["recipient"] for a in metadata_before["age"]]
    assert after["sops"]["encrypted_regex"] == "^(password|client_secret)$"
    assert after["jupyterhub"]["imagePullSecret"]["username"] == "hubs+image_builder"  # not encrypted, by the regex
    assert after["jupyterhub"]["imagePullSecret"]["password"].startswith("ENC[")


def test_key_groups_and_shamir_threshold_are_kept(repo: Repo, tmp_path: Path) -> None:
    groups = tmp_path / "groups.sops.yaml"
    groups.write_text(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
        f"      - age: [{repo.alice.recipient}, {repo.bob.recipient}]\n      - age: [{repo.carol.recipient}]\n"
    )
    plain = yaml.safe_dump(SECRETS, sort_keys=False)
    encrypt_file(repo.secret, plain, [repo.alice.recipient], env={**sops_env(), "SOPS_CONFIG": str(groups)})
    # encrypt_file's --age wins over the config's keys: re-encrypt through the config alone.
    subprocess.run(
        [repo.sops, "--config", str(groups), "encrypt", "--filename-override", str(repo.secret),
         "--output", str(repo.secret)],
        input=plain.encode(), check=True, capture_output=True, env=sops_env(), cwd="/",
    )  # fmt: skip
    before = repo.snapshot()
    alone = repo.invoke(*repo.files_args())  # alice's key opens one group of the two the threshold needs
    assert alone.exit_code == 1, alone.stderr
    assert "split across 2 key groups and needs keys of 2 of them (shamir_threshold 2)" in alone.stderr
    assert repo.quay.writes() == [] and repo.snapshot() == before
    both = tmp_path / "alice+carol.txt"
    both.write_text(repo.alice.identity_file.read_text() + repo.carol.identity_file.read_text())
    result = repo.invoke(*repo.files_args(), env=repo.env(SOPS_AGE_KEY_FILE=str(both)))
    assert result.exit_code == 0, result.stderr
    meta = yaml.safe_load(repo.secret.read_text())["sops"]
    assert meta["shamir_threshold"] == 2 and len(meta["key_groups"]) == 2
    assert [a["recipient"] for a in meta["key_groups"][1]["age"]] == [repo.carol.recipient]
    out = subprocess.run([repo.sops, "decrypt", str(repo.secret)], capture_output=True, text=True,
                         env=sops_env(SOPS_AGE_KEY_FILE=str(both)), cwd="/")  # fmt: skip
    assert out.returncode == 0, out.stderr
    secrets = yaml.safe_load(out.stdout)
    assert secrets["jupyterhub"]["hub"] == SECRETS["jupyterhub"]["hub"]
    assert secrets["jupyterhub"]["imagePullSecret"]["password"] == repo.quay.robot_token("hubs", "image_builder")
    assert decrypt_file(repo.secret, repo.alice).returncode == 128  # one group is not enough, as before


def test_sops_config_is_not_used_for_repository_files(repo: Repo, tmp_path: Path) -> None:
    decoy = write_sops_config(tmp_path / "decoy", [repo.carol.recipient])
    new = repo.cluster_dir / "enc-staging.binder.secret.values.yaml"
    result = repo.invoke("--secret-file", str(new), env=repo.env(SOPS_CONFIG=str(decoy)))
    assert result.exit_code == 0, result.stderr
    assert f"creation rule of {repo.root / '.sops.yaml'} (the repository)" in result.stderr
    assert f"SOPS_CONFIG={decoy} is not used for repository files" in result.stderr
    assert repo.decrypt(new)["jupyterhub"]["imagePullSecret"]["username"] == "hubs+image_builder"
    assert decrypt_file(new, repo.carol).returncode == 128


def test_sops_config_applies_where_the_repository_has_none(repo: Repo, tmp_path: Path) -> None:
    (repo.root / ".sops.yaml").unlink()
    user_config = write_sops_config(tmp_path / "mine", [repo.bob.recipient])
    new = repo.cluster_dir / "enc-staging.binder.secret.values.yaml"
    result = repo.invoke("--secret-file", str(new), env=repo.env(SOPS_CONFIG=str(user_config)))
    assert result.exit_code == 0, result.stderr
    assert f"{user_config} (SOPS_CONFIG)" in result.stderr
    assert repo.decrypt(new, identity=repo.bob)["jupyterhub"]["imagePullSecret"]["password"]


def test_relative_key_file_from_the_repository_root(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = repo.root / "keys"
    keys.mkdir()
    (keys / "age.txt").write_text(repo.alice.identity_file.read_text())
    monkeypatch.chdir(repo.root)
    result = repo.invoke(*repo.files_args(), env=repo.env(SOPS_AGE_KEY_FILE="keys/age.txt"))
    assert result.exit_code == 0, result.stderr
    assert repo.decrypt()["binderhub-service"]["config"]["DockerRegistry"]["password"] == repo.quay.robot_token(
        "hubs", "image_builder"
    )


@pytest.mark.parametrize("lead", ["", "---\n"])
def test_comment_only_file_is_encrypted_by_the_rule_and_keeps_its_comment(repo: Repo, lead: str) -> None:
    repo.secret.write_text(lead + "# registry secrets for staging, written by provision\n")
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 0, result.stderr
    assert "type:comment]" in repo.secret.read_text()
    out = decrypt_file(repo.secret, repo.alice)
    assert out.stdout.startswith("# registry secrets for staging, written by provision\n")
    assert list(yaml.safe_load(out.stdout)) == ["binderhub-service", "jupyterhub"]  # one document, not two


def test_an_edit_made_after_the_preflight_is_kept(repo: Repo) -> None:
    """Another run changed the file between our decrypt and our write: we merge into its version."""
    from provision.hubconfig import HubOptions, HubRegistry
    from provision.hubfiles import edits
    from provision.hubfiles import write as hubfiles

    req = edits.FilesRequest(secret_file=repo.secret, sops_bin=repo.sops)
    env = repo.env()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            if v is None:
                mp.delenv(k, raising=False)
            else:
                mp.setenv(k, v)
        state = hubfiles.preflight(req, sops_binary=repo.sops)
        subprocess.run(
            [repo.sops, "set", "--value-stdin", str(repo.secret), '["other"]["token"]'],
            input='"OTHER-RUN-TOKEN"',
            text=True,
            check=True,
            capture_output=True,
            env=sops_env(repo.alice),
        )
        registry = HubRegistry(kind="quay", server="quay.io", username="hubs+b", image_prefix="quay.io/hubs/x-",
                               password="NEW-PASSWORD")  # fmt: skip
        hubfiles.publish(registry, HubOptions(), req, sops_binary=repo.sops, state=state,
                         reporter=Reporter(stream=io.StringIO()), dry_run=False)  # fmt: skip
    secrets = repo.decrypt()
    assert secrets["other"]["token"] == "OTHER-RUN-TOKEN"
    assert secrets["binderhub-service"]["config"]["DockerRegistry"]["password"] == "NEW-PASSWORD"


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
    from provision import doctor
    from provision.console import Reporter

    result = repo.invoke(*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08", *chart_args)
    assert result.exit_code == 0, result.stderr
    report = doctor.run(repo.cluster_dir, reporter=Reporter(stream=io.StringIO()))
    staging = [f for f in report.findings if f.hub == "staging"]
    assert [f for f in staging if f.severity != "info"] == [], staging


def test_concurrent_runs_take_turns_and_keep_each_others_edits(repo: Repo) -> None:
    """A run that finds the folder locked by another writer waits, then merges into that writer's version."""
    import fcntl
    import sys
    import time

    provision = str(Path(sys.executable).with_name("provision"))
    base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", repo.quay.url]
    env = {k: v for k, v in {**os.environ, **repo.env()}.items() if v is not None}
    folder = os.open(repo.cluster_dir, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # "another run" holds the folder
        proc = subprocess.Popen([provision, *base, "--secret-file", str(repo.secret)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while not repo.quay.robot_token("hubs", "image_builder") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()  # waiting for the lock, the file untouched
        subprocess.run(
            [repo.sops, "set", "--value-stdin", str(repo.secret), '["other"]["token"]'],
            input='"OTHER-RUN-TOKEN"',
            text=True,
            check=True,
            capture_output=True,
            env=sops_env(repo.alice),
        )  # the other run's edit, made while it holds the lock
    finally:
        os.close(folder)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    secrets = repo.decrypt()
    assert secrets["other"]["token"] == "OTHER-RUN-TOKEN"
    token = repo.quay.robot_token("hubs", "image_builder")
    assert secrets["binderhub-service"]["config"]["DockerRegistry"]["password"] == token


def test_no_sops_config_anywhere_keeps_the_files_own_indent(repo: Repo, tmp_path: Path) -> None:
    """With no .sops.yaml up the tree and no SOPS_CONFIG, sops would re-emit a 2-space file with its default 4-space
    indent; provision gives it the file's own indent, so every line it did not change keeps its bytes."""
    (repo.root / ".sops.yaml").unlink()
    indent_only = tmp_path / "elsewhere" / ".sops.yaml"  # not an ancestor of the repository
    indent_only.parent.mkdir()
    indent_only.write_text("stores:\n  yaml:\n    indent: 2\n")
    encrypt_file(repo.secret, yaml.safe_dump(SECRETS, sort_keys=False), [repo.alice.recipient],
                 env=sops_env(SOPS_CONFIG=str(indent_only)))  # fmt: skip
    before = repo.secret.read_text().splitlines()
    assert before[1].startswith("  hub:")  # written with a 2-space indent
    result = repo.invoke("--secret-file", str(repo.secret))
    assert result.exit_code == 0, result.stderr
    after = repo.secret.read_text().splitlines()
    assert repo.decrypt()["binderhub-service"]["config"]["DockerRegistry"]["password"]
    # The lines provision changed: the 4 replaced values, the metadata's timestamp and MAC; all others kept.
    import difflib

    removed = [line[2:] for line in difflib.ndiff(before, after) if line.startswith("- ")]
    assert 5 <= len(removed) <= 6, "\n".join(removed)  # lastmodified may fall in the same second
    assert all("ENC[" in line or line.startswith("  lastmodified:") for line in removed), "\n".join(removed)
    assert [line for line in before if line not in removed] == [line for line in after if line in before]


def test_rerun_with_nothing_to_change_leaves_the_secret_file_alone(repo: Repo, tmp_path: Path) -> None:
    """A second identical run reports the encrypted file as up to date, runs no `sops set` and leaves it as it was."""
    args = [*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo"]
    first = repo.invoke(*args)
    assert first.exit_code == 0, first.stderr
    before = repo.snapshot()
    wrapper, log = recording_sops(tmp_path / "rec")
    again = repo.invoke(*args, env=repo.env(SOPS_BIN=str(wrapper)))
    assert again.exit_code == 0, again.stderr
    assert [c["argv"][2] for c in read_calls(log)] == ["decrypt"]
    assert repo.snapshot() == before
    assert f"{repo.secret}: already up to date" in again.stderr
    assert "updated in place" not in again.stderr and "encrypting" not in again.stderr


K8S_RULE = "^(data|stringData)$"  # the common rule for Kubernetes Secret manifests: a password is not under it


def test_a_creation_rule_that_would_leave_the_password_in_plaintext_is_refused(repo: Repo) -> None:
    """A new secret file under a Kubernetes-style encrypted_regex: the real sops would store the token in clear
    text, so nothing is created anywhere and no file changes."""
    config = repo.root / ".sops.yaml"
    config.write_text(config.read_text().replace("    age:", f"    encrypted_regex: '{K8S_RULE}'\n    age:", 1))
    repo.secret.unlink()
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 2, result.stderr
    assert "would leave" in result.stderr and "in plaintext" in result.stderr
    assert "binderhub-service.config.DockerRegistry.password" in result.stderr
    assert f"encrypted_regex: '{K8S_RULE}'" in result.stderr and str(config) in result.stderr
    assert repo.quay.writes() == []
    assert repo.snapshot() == before


def test_an_existing_file_whose_selector_would_leave_the_password_in_plaintext_is_refused(repo: Repo) -> None:
    repo.encrypt_secrets([repo.alice.recipient], "--encrypted-regex", K8S_RULE)
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 2, result.stderr
    assert f"its own sops metadata (encrypted_regex: '{K8S_RULE}')" in result.stderr
    assert repo.quay.writes() == []
    assert repo.snapshot() == before


def test_a_secret_left_in_plaintext_by_sops_is_never_written(repo: Repo) -> None:
    """A selector Python cannot judge (Go's \\z) passes the first check; the ciphertext check catches it: the file
    is not written (the robot stays on Quay, whose API gives its token again to the next run)."""
    repo.encrypt_secrets([repo.alice.recipient], "--encrypted-regex", r"^(data|stringData)\z")
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 1, result.stderr
    assert "in plaintext" in result.stderr and "was not written" in result.stderr
    assert repo.snapshot() == before


def test_an_invalid_sops_config_is_named_as_the_problem(repo: Repo) -> None:
    config = repo.root / ".sops.yaml"
    config.write_text("creation_rules: 5\n")
    repo.secret.unlink()
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 1, result.stderr
    assert f"the sops configuration {config} is invalid" in result.stderr
    assert "`creation_rules` must be a list of rules" in result.stderr
    assert repo.quay.writes() == []


def test_rotating_a_robot_another_hub_pushes_with_is_refused(repo: Repo) -> None:
    """A --shared-org hub of the same cluster.yaml pushes as the same robot: rotating it would lock that hub out."""
    first = repo.invoke(*repo.files_args())
    assert first.exit_code == 0, first.stderr
    (repo.cluster_dir / "prod.values.yaml").write_text(
        "binderhub-service:\n  buildPodsRegistryCredentials:\n    username: hubs+image_builder\n"
    )
    repo.cluster.write_text(repo.cluster.read_text() + "  - name: prod\n    helm_chart: basehub\n"
                            "    helm_chart_values_files: [prod.values.yaml]\n")  # fmt: skip
    token = repo.quay.robot_token("hubs", "image_builder")
    before = repo.snapshot()
    repo.quay.clear_log()
    result = repo.invoke(*repo.files_args(), "--rotate")
    assert result.exit_code == 2, result.stderr
    assert "hubs prod of" in result.stderr and "hubs+image_builder" in result.stderr
    assert repo.quay.writes() == [] and repo.quay.robot_token("hubs", "image_builder") == token
    assert repo.snapshot() == before


def test_sops_runs_without_provisions_api_credentials(repo: Repo, tmp_path: Path) -> None:
    """QUAY_TOKEN (and the Docker Hub login) stay in provision: sops, and anything it runs, never sees them."""
    wrapper, log = recording_sops(tmp_path / "rec")
    env = repo.env(SOPS_BIN=str(wrapper), DOCKERHUB_TOKEN="dckr_pat_x", DOCKERHUB_USERNAME="someone")
    result = repo.invoke(*repo.files_args(), env=env)
    assert result.exit_code == 0, result.stderr
    calls = read_calls(log)
    assert calls and all(c["code"] == 0 for c in calls)
    for call in calls:
        assert not {"QUAY_TOKEN", "DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"} & set(call["env_names"])
        assert "SOPS_AGE_KEY_FILE" in call["env_names"] or "SOPS_AGE_KEY" in call["env_names"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("values", "staging.values.yaml: binderhub-service: is a scalar where provision writes a mapping"),
        ("values-list", "staging.values.yaml: jupyterhub.singleuser.profileList[1]: is a scalar in a list"),
        ("secret", "enc-staging.secret.values.yaml: jupyterhub.imagePullSecret: is a scalar where provision"),
        ("alias", "staging.values.yaml: jupyterhub: is shared through the YAML anchor &x"),
    ],
)
def test_wrongly_typed_values_are_refused_before_any_remote_write(repo: Repo, target: str, message: str) -> None:
    if target == "values":
        repo.values.write_text(VALUES + 'binderhub-service: "x"\n')
    elif target == "values-list":
        repo.values.write_text(VALUES + "      - 3\n")
    elif target == "alias":
        repo.values.write_text("base: &x\n  singleuser: {}\njupyterhub: *x\n")
    else:
        secrets = {**SECRETS, "jupyterhub": {**SECRETS["jupyterhub"], "imagePullSecret": "x"}}
        encrypt_file(repo.secret, yaml.safe_dump(secrets, sort_keys=False), [repo.alice.recipient])
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args(), "--image", "pangeo=pangeo/pangeo-notebook:2024.04.08")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert repo.snapshot() == before
    assert repo.quay.requests == []


LEAP_CLUSTER_YAML = (
    "name: leap\nprovider: gcp\nhubs:\n  - name: staging\n    helm_chart: daskhub\n"
    "    helm_chart_values_files:\n      - staging.values.yaml\n      - enc-staging.secret.values.yaml\n"
)


def test_secret_file_of_a_daskhub_hub_without_cluster_config_gets_keys_the_chart_reads(
    tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """QA: the README's commands write a hub's secrets without --cluster-config, for 2i2c's cluster leap, whose hubs
    use `helm_chart: daskhub`. The chart defaulted to basehub: the secrets landed at the top level, which daskhub
    ignores (the hub gets no registry password). The chart is taken from the cluster.yaml beside --secret-file."""
    alice = age_keys[0]
    write_sops_config(tmp_path, [alice.recipient])
    folder = tmp_path / "config" / "clusters" / "leap"
    folder.mkdir(parents=True)
    (folder / "cluster.yaml").write_text(LEAP_CLUSTER_YAML)
    (folder / "staging.values.yaml").write_text("basehub:\n  nfs:\n    enabled: true\n")
    with FakeQuay() as quay:
        quay.add_admin("admintoken123")
        env = {**sops_env(alice), "QUAY_TOKEN": "admintoken123", "PYTHONPATH": str(REPO / "src")}
        result = subprocess.run(
            [sys.executable, "-m", "provision", "quay", "--api-url", quay.url, "--org", "myorg", "--email", "a@b.org",
             "--cluster", "leap", "--hub", "staging",
             "--secret-file", "config/clusters/leap/enc-staging.secret.values.yaml"],
            capture_output=True, text=True, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plain = decrypt_file(folder / "enc-staging.secret.values.yaml", alice).stdout
    assert plain.startswith("basehub:"), plain.splitlines()[0]
    assert "chart daskhub, from config/clusters/leap/cluster.yaml" in result.stderr


def _chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: str | None = None, **files: Path
) -> tuple[str, str]:
    from provision.hubfiles.edits import FilesRequest
    from provision.hubfiles.write import chart_for

    monkeypatch.chdir(tmp_path)
    stream = io.StringIO()
    chart = chart_for(FilesRequest(hub="staging", **files), None, cluster=cluster, reporter=Reporter(stream=stream))
    return chart, stream.getvalue()


def test_chart_from_the_cluster_yaml_beside_the_values_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cluster.yaml").write_text(LEAP_CLUSTER_YAML)
    chart, stderr = _chart(tmp_path, monkeypatch, values_file=Path("staging.values.yaml"))
    assert chart == "daskhub" and "chart daskhub, from cluster.yaml (hub 'staging'" in stderr


def test_chart_of_the_named_cluster_in_stdout_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `provision gcp --cluster leap --hub staging | sops encrypt …`, run from the repository root."""
    folder = tmp_path / "config" / "clusters" / "leap"
    folder.mkdir(parents=True)
    (folder / "cluster.yaml").write_text(LEAP_CLUSTER_YAML)
    chart, stderr = _chart(tmp_path, monkeypatch, cluster="leap")
    assert chart == "daskhub" and "chart daskhub, from config/clusters/leap/cluster.yaml" in stderr
    other, stderr = _chart(tmp_path, monkeypatch, cluster="cloudbank")
    assert other == "basehub"
    assert "chart basehub assumed" in stderr and "config/clusters/cloudbank/cluster.yaml" in stderr
    assert "--chart daskhub" in stderr


def test_a_cluster_yaml_without_the_hub_leaves_the_default_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cluster.yaml").write_text(LEAP_CLUSTER_YAML.replace("staging", "prod"))
    chart, stderr = _chart(tmp_path, monkeypatch, secret_file=Path("enc-staging.secret.values.yaml"))
    assert chart == "basehub" and "chart basehub assumed" in stderr and "no hub named 'staging'" in stderr
    nothing, quiet = _chart(tmp_path / "..", monkeypatch)  # no file, no cluster: nothing to look at, nothing said
    assert nothing == "basehub" and quiet == ""


# --- symlinks: a linked file is edited where it points -------------------------------------------------------


def _link_to_shared(repo: Repo, path: Path) -> Path:
    """Move `path` into a shared folder beside the cluster's (another hub's files may link there too) and put a
    relative symlink in its place; returns the shared file."""
    shared = repo.root / "config" / "shared" / path.name
    shared.parent.mkdir(parents=True, exist_ok=True)
    path.rename(shared)
    path.symlink_to(os.path.relpath(shared, path.parent))
    return shared


def test_symlinked_secret_and_values_files_are_edited_where_they_point(repo: Repo) -> None:
    secret = _link_to_shared(repo, repo.secret)
    values = _link_to_shared(repo, repo.values)
    links = {p: os.readlink(p) for p in (repo.secret, repo.values)}
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 0, result.stderr
    token = repo.quay.robot_token("hubs", "image_builder")
    assert token and token not in secret.read_text()
    assert repo.decrypt(secret)["binderhub-service"]["config"]["DockerRegistry"]["password"] == token
    assert repo.decrypt(secret)["jupyterhub"]["hub"] == SECRETS["jupyterhub"]["hub"]  # its other secrets kept
    assert "image_prefix" in values.read_text() and '# shown on the home page' in values.read_text()
    assert {p: os.readlink(p) for p in links} == links  # the links stay links, pointing where they did
    for link, target in ((repo.secret, secret), (repo.values, values)):
        assert f"{link} is a symlink: edited {target}" in result.stderr
    assert not [p for p in (repo.root / "config").rglob(".*") if p.name != ".sops.yaml"]  # no temporary file left

    # --rotate goes through the link too: the shared file holds the new token, not a copy beside the link.
    rotated = repo.invoke(*repo.files_args(), "--rotate", "--no-verify")
    assert rotated.exit_code == 0, rotated.stderr
    new = repo.quay.robot_token("hubs", "image_builder")
    assert new != token and repo.decrypt(secret)["binderhub-service"]["config"]["DockerRegistry"]["password"] == new
    assert repo.secret.is_symlink() and f"{repo.secret} is a symlink: edited {secret}" in rotated.stderr


@pytest.mark.parametrize("option", ["--secret-file", "--values-file", "--cluster-config"])
def test_a_dangling_symlink_is_refused_before_any_remote_write(repo: Repo, option: str) -> None:
    path = {"--secret-file": repo.secret, "--values-file": repo.values, "--cluster-config": repo.cluster}[option]
    path.unlink()
    path.symlink_to("../shared/gone.yaml")
    before = repo.snapshot()
    result = repo.invoke(*repo.files_args())
    assert result.exit_code == 2, result.stderr
    message = result.stderr.strip()
    assert f"{option} '{path}' is a symlink to '../shared/gone.yaml', which does not exist" in message
    assert "\n" not in message.removeprefix("error: ")  # one paragraph
    assert repo.quay.requests == []  # refused before the first request
    assert repo.snapshot() == before and path.is_symlink() and os.readlink(path) == "../shared/gone.yaml"
