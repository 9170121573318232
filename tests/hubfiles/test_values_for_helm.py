"""Issue 11 through the command line: z2jh values one document (and file) per release, profiles that always render,
Docker Hub namespaces BinderHub reads, and the quay.io e-mail warning. Refusals happen before any request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from tests.charts.kit import CHARTS, docs_by_chart, helm_render
from tests.helpers import CHART_DEFAULTS, chart_schema, helm_merge
from tests.realsops import AgeKey, decrypt_file, sops_env, write_sops_config
from tests.servers.dockerhub import FakeDockerHub
from tests.servers.quay import FakeQuay

TOKEN = "T" * 40


@pytest.fixture
def quay() -> FakeQuay:
    with FakeQuay() as server:
        server.add_user("admin", email="admin@example.org")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        yield server


def run_quay(quay: FakeQuay, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url]
    return CliRunner().invoke(app, [*base, *args], env={"QUAY_TOKEN": TOKEN, **(env or {})})


def _validate(chart: str, doc: dict[str, object]) -> None:
    import jsonschema

    schema = {"jupyterhub": "z2jh", "binderhub-service": "binderhub-service"}[chart]
    jsonschema.validate(helm_merge(CHART_DEFAULTS[chart], doc), chart_schema(schema))


# -- 1. z2jh: one values document per release -------------------------------------------------------------------


def test_z2jh_stdout_is_one_document_per_release(quay: FakeQuay) -> None:
    result = run_quay(quay, "--chart", "z2jh", "--image", "r=rocker/binder:4.3")
    assert result.exit_code == 0, result.stderr
    docs = docs_by_chart(result.stdout)
    assert list(docs) == ["jupyterhub", "binderhub-service"]
    for chart, doc in docs.items():
        assert chart not in doc  # each document is the chart's own values, passed whole to `helm -f`
        _validate(str(chart), doc)
    assert docs["jupyterhub"]["imagePullSecret"]["password"] == quay.robot_token("hubs", "image_builder")
    for chart, doc in docs.items():  # Helm's engine takes each document whole with its chart (schemas checked)
        assert helm_render(CHARTS / str(chart), doc)
    assert "jupyterhub:" not in result.stderr.split("public values", 1)[1]  # stderr shows the same shape


def test_z2jh_json_is_keyed_by_release(quay: FakeQuay) -> None:
    result = run_quay(quay, "--chart", "z2jh", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["chart"] == "z2jh"
    assert set(doc["secret_values"]) == {"jupyterhub", "binderhub-service"}
    assert doc["public_values"]["binderhub-service"]["config"]["BinderHub"]["use_registry"] is True


def test_z2jh_files_one_per_release(
    quay: FakeQuay, tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, ...]
) -> None:
    alice = age_keys[0]
    write_sops_config(tmp_path, [alice.recipient])
    values, secret = tmp_path / "staging.values.yaml", tmp_path / "enc-staging.secret.values.yaml"
    values.write_text("hub:\n  config:\n    JupyterHub:\n      admin_access: true # kept\n")
    args = [
        "--chart",
        "z2jh",
        "--values-file",
        str(values),
        "--secret-file",
        str(secret),
        "--image",
        "r=rocker/binder:4.3",
    ]
    result = run_quay(quay, *args, env={**sops_env(alice), "SOPS_BIN": real_sops})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    sibling = tmp_path / "staging.binderhub-service.values.yaml"
    secret_sibling = tmp_path / "enc-staging.binderhub-service.secret.values.yaml"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".yaml") == sorted(
        [".sops.yaml", values.name, secret.name, sibling.name, secret_sibling.name]
    )
    assert "# kept" in values.read_text()
    hub_public = yaml.safe_load(values.read_text())
    hub_secret = yaml.safe_load(decrypt_file(secret, alice).stdout)
    binder_public = yaml.safe_load(sibling.read_text())
    binder_secret = yaml.safe_load(decrypt_file(secret_sibling, alice).stdout)
    assert set(hub_secret) == {"imagePullSecret"} and "binderhub-service" not in hub_public
    assert binder_secret["buildPodsRegistryCredentials"]["password"] == quay.robot_token("hubs", "image_builder")
    _validate("jupyterhub", helm_merge(hub_public, hub_secret))
    _validate("binderhub-service", helm_merge(binder_public, binder_secret))


def test_z2jh_refuses_cluster_config_before_any_request(quay: FakeQuay, tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("name: c1\nhubs:\n  - name: staging\n")
    args = ["--chart", "z2jh", "--values-file", str(tmp_path / "v.yaml"), "--cluster-config", str(cluster)]
    result = run_quay(quay, *args)
    assert result.exit_code == 2 and "--chart z2jh" in result.stderr
    assert quay.requests == []


# -- 2, 3. profiles that always render --------------------------------------------------------------------------


def test_a_profile_with_no_image_is_refused_before_any_request(quay: FakeQuay) -> None:
    result = run_quay(quay, "--profile")
    assert result.exit_code == 2
    assert "at least one image choice" in result.stderr
    assert quay.requests == []
    assert CliRunner().invoke(app, ["profile"]).exit_code == 2


def test_profile_runs_keep_one_default_and_one_default_profile(tmp_path: Path) -> None:
    values = tmp_path / "hub.values.yaml"
    values.write_text(
        "jupyterhub:\n  singleuser:\n    profileList:\n      - display_name: Small\n        slug: small\n"
        "        default: true\n"
    )

    def profile(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(app, ["profile", "--values-file", str(values), *args])
        assert result.exit_code == 0, result.stderr
        return yaml.safe_load(values.read_text())  # type: ignore[no-any-return]

    def defaults(doc: dict[str, object]) -> tuple[list[str], list[str]]:
        profiles = doc["jupyterhub"]["singleuser"]["profileList"]  # type: ignore[index]
        [ours] = [p for p in profiles if p["slug"] == "build-your-own-image"]
        choices = ours["profile_options"]["image"]["choices"]
        return [p["slug"] for p in profiles if p.get("default")], [s for s, c in choices.items() if c.get("default")]

    assert defaults(profile("--image", "a=a/a:1")) == (["small"], ["a"])
    assert defaults(profile("--image", "b=b/b:1")) == (["small"], ["a"])  # the existing default stays
    assert defaults(profile("--image", "c=c/c:1", "--default-image", "c")) == (["small"], ["c"])
    assert defaults(profile()) == (["small"], ["c"])  # no image: the file's choices are enough
    assert defaults(profile("--default-image", "b")) == (["small"], ["b"])
    bad = CliRunner().invoke(app, ["profile", "--values-file", str(values), "--default-image", "zz"])
    assert bad.exit_code == 2 and "not one of the image choices" in bad.stderr


# -- 4. Docker Hub namespaces BinderHub reads ---------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["my-org", "my.org", "ab", "abc", "my_org", "x" * 41])
def test_dockerhub_refuses_namespaces_binderhub_misreads_before_any_request(namespace: str) -> None:
    with FakeDockerHub() as hub:
        hub.add_user("alice", password="pw-123456")
        args = ["dockerhub", "--namespace", namespace, "--hub", "staging", "--api-url", hub.url]
        result = CliRunner().invoke(app, args, env={"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": "pw-123456"})
        assert result.exit_code == 2, result.stderr
        assert repr(namespace) in result.stderr and "BinderHub" in result.stderr
        assert hub.requests == []


# -- README: the quay.io dry run without --email ------------------------------------------------------------------


def test_quay_io_dry_run_without_email_warns() -> None:
    result = CliRunner().invoke(app, ["quay", "--org", "new-org", "--hub", "staging", "--dry-run"], env={})
    assert result.exit_code == 0, result.stderr
    assert "quay.io requires an e-mail" in result.stderr
    with_email = ["quay", "--org", "new-org", "--hub", "staging", "--dry-run", "--email", "ops@example.org"]
    assert "requires an e-mail" not in CliRunner().invoke(app, with_email, env={}).stderr


def test_z2jh_sibling_secret_file_is_checked_before_any_request(
    quay: FakeQuay, tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, ...]
) -> None:
    """The binderhub-service release's encrypted file is decrypted in the preflight too: one alice cannot read stops
    the run before Quay is asked anything."""
    from tests.realsops import encrypt_file

    alice, bob = age_keys[0], age_keys[1]
    write_sops_config(tmp_path, [alice.recipient])
    encrypt_file(tmp_path / "enc-staging.binderhub-service.secret.values.yaml", "a: 1\n", [bob.recipient])
    args = ["--chart", "z2jh", "--secret-file", str(tmp_path / "enc-staging.secret.values.yaml")]
    result = run_quay(quay, *args, env={**sops_env(alice), "SOPS_BIN": real_sops})
    assert result.exit_code != 0 and "enc-staging.binderhub-service.secret.values.yaml" in result.stderr
    assert quay.requests == []
