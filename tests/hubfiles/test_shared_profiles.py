"""Profiles defined in a shared values file (2i2c's common.values.yaml): Helm replaces lists whole, so the
image-building profile written into a hub's own file would hide them. provision refuses (before any request), or
copies them with --copy-shared-profiles; doctor reports a hub file whose list hides a shared one.

Runs the CLI against the Quay test server, with the real sops and age keys, on a cluster folder shaped like
2i2c-org/infrastructure."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision import doctor
from provision.cli import app
from provision.console import Reporter
from tests.helpers import helm_merge, validate_hub_values
from tests.realsops import AgeKey, decrypt_file, encrypt_file, sops_env, write_sops_config
from tests.servers.quay import FakeQuay

TOKEN = "S" * 40
BUILD = "build-your-own-image"
CLUSTER = """\
name: c1
provider: aws
hubs:
  - name: staging
    display_name: "C1 staging"
    domain: staging.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
      - staging.values.yaml
      - enc-staging.secret.values.yaml
  - name: prod
    domain: c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      - common.values.yaml
      - prod.values.yaml
  - name: late
    domain: late.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      # the shared file listed last: its list wins over the hub's own
      - late.values.yaml
      - common.values.yaml
  - name: dask
    domain: dask.c1.2i2c.cloud
    helm_chart: daskhub
    helm_chart_values_files:
      - daskhub-common.values.yaml
      - dask.values.yaml
"""
PROFILES = """\
    profileList:
      - display_name: "Small: up to 4 GB"
        slug: small
        default: true
        kubespawner_override:
          mem_guarantee: 4G
      - display_name: "Large: up to 16 GB"
        slug: large
        kubespawner_override:
          mem_guarantee: 16G
"""
COMMON = "jupyterhub:\n  singleuser:\n    # Every hub of the cluster offers these\n" + PROFILES
DASK_COMMON = "basehub:\n  jupyterhub:\n    singleuser:\n" + "".join(f"  {line}\n" for line in PROFILES.splitlines())
STAGING = """\
jupyterhub:
  custom:
    homepage:
      templateVars:
        org:
          name: "C1 staging" # shown on the home page
"""
SECRETS = {"jupyterhub": {"hub": {"config": {"GitHubOAuthenticator": {"client_secret": "OAUTH-SECRET-9"}}}}}
IMAGE = "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo"


class Cluster:
    def __init__(self, root: Path, sops: str, quay: FakeQuay, alice: AgeKey) -> None:
        self.root, self.sops, self.quay, self.alice = root, sops, quay, alice
        self.dir = root / "config" / "clusters" / "c1"
        self.config = self.dir / "cluster.yaml"
        self.values = self.dir / "staging.values.yaml"
        self.secret = self.dir / "enc-staging.secret.values.yaml"

    def env(self) -> dict[str, str | None]:
        cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SOPS_")}
        keep = sops_env(self.alice)
        return {**cleared, **{k: keep[k] for k in keep if k.startswith(("SOPS_", "XDG_"))},
                "QUAY_TOKEN": TOKEN, "SOPS_BIN": self.sops}  # fmt: skip

    def quay_run(self, *args: str) -> Any:
        base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", self.quay.url]
        files = ["--values-file", str(self.values), "--secret-file", str(self.secret)]
        return CliRunner().invoke(
            app, [*base, *files, "--cluster-config", str(self.config), "--image", IMAGE, *args], env=self.env()
        )

    def profile_run(self, hub: str, values: str, *args: str) -> Any:
        files = ["--hub", hub, "--values-file", str(self.dir / values), "--cluster-config", str(self.config)]
        return CliRunner().invoke(app, ["profile", *files, "--image", IMAGE, *args], env=self.env())

    def load(self, name: str) -> Any:
        return yaml.safe_load((self.dir / name).read_text())

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def doctor(self) -> list[doctor.Finding]:
        return list(doctor.run(self.dir, reporter=Reporter(stream=io.StringIO())).findings)


@pytest.fixture
def cluster(tmp_path: Path, real_sops: str, age_keys: Any) -> Iterator[Cluster]:
    with FakeQuay() as quay:
        quay.add_user("admin", email="admin@example.org")
        quay.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        c = Cluster(tmp_path / "infrastructure", real_sops, quay, age_keys[0])
        c.dir.mkdir(parents=True)
        write_sops_config(c.root, [c.alice.recipient])
        c.config.write_text(CLUSTER)
        (c.dir / "common.values.yaml").write_text(COMMON)
        (c.dir / "daskhub-common.values.yaml").write_text(DASK_COMMON)
        c.values.write_text(STAGING)
        (c.dir / "prod.values.yaml").write_text("jupyterhub:\n  singleuser:\n    profileList:\n      - slug: gpu\n")
        (c.dir / "late.values.yaml").write_text("{}\n")
        (c.dir / "dask.values.yaml").write_text("basehub:\n  jupyterhub: {}\n")
        encrypt_file(c.secret, yaml.safe_dump(SECRETS), [c.alice.recipient])
        yield c


def _slugs(doc: Any, *keys: str) -> list[str]:
    for key in (*keys, "jupyterhub", "singleuser", "profileList"):
        doc = doc[key]
    return [p["slug"] for p in doc]


def test_refused_before_any_request_with_what_to_do(cluster: Cluster) -> None:
    before = cluster.snapshot()
    result = cluster.quay_run()
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "gets its profiles (small, large) from common.values.yaml" in message
    assert "would hide all of them" in message and "--copy-shared-profiles" in message
    assert cluster.quay.requests == []  # a local check: before the first request, so before any write
    assert cluster.snapshot() == before and result.stdout == ""


def test_copied_shared_profiles_reach_the_hub_with_the_build_profile(cluster: Cluster) -> None:
    result = cluster.quay_run("--copy-shared-profiles")
    assert result.exit_code == 0, result.stderr
    assert "copied the profiles of common.values.yaml (small, large)" in " ".join(result.stderr.split())

    # What the deployer hands Helm, in cluster.yaml order: the shared profiles and ours, one default (the shared one).
    decrypted = decrypt_file(cluster.secret, cluster.alice)
    assert decrypted.returncode == 0, decrypted.stderr
    secrets = yaml.safe_load(decrypted.stdout)
    merged = helm_merge(cluster.load("common.values.yaml"), cluster.load("staging.values.yaml"), secrets)
    profiles = merged["jupyterhub"]["singleuser"]["profileList"]
    assert _slugs(merged) == ["small", "large", BUILD]
    assert profiles[:2] == cluster.load("common.values.yaml")["jupyterhub"]["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles if p.get("default")] == ["small"]
    choices = profiles[2]["profile_options"]["image"]["choices"]
    assert choices["pangeo"]["kubespawner_override"] == {"image": "pangeo/pangeo-notebook:2024.04.08"}
    assert merged["binderhub-service"]["buildPodsRegistryCredentials"]["password"]
    assert merged["jupyterhub"]["hub"] == SECRETS["jupyterhub"]["hub"]
    validate_hub_values(merged)
    assert '          name: "C1 staging" # shown on the home page\n' in cluster.values.read_text()
    assert "# Every hub of the cluster offers these" in (cluster.dir / "common.values.yaml").read_text()

    # doctor: the hub's list hides nothing now
    assert [f for f in cluster.doctor() if f.hub == "staging" and f.severity != "info"] == []

    # A re-run needs no flag (the hub has its own list now) and changes nothing.
    before = cluster.snapshot()
    again = cluster.quay_run()
    assert again.exit_code == 0, again.stderr
    assert f"{cluster.values}: already up to date" in again.stderr
    assert (
        cluster.snapshot()[str(cluster.values.relative_to(cluster.root))]
        == before[str(cluster.values.relative_to(cluster.root))]
    )


def test_a_hub_file_with_its_own_list_is_joined_and_doctor_reports_what_it_hides(cluster: Cluster) -> None:
    findings = [f for f in cluster.doctor() if f.code == "profile-list-replaced"]
    assert [(f.hub, f.severity, f.file, f.key) for f in findings] == [
        ("prod", "warning", "prod.values.yaml", "jupyterhub.singleuser.profileList")
    ]
    assert "common.values.yaml" in findings[0].message and "(small, large)" in findings[0].message

    result = cluster.profile_run("prod", "prod.values.yaml")  # the hub chose its own list: ours joins it
    assert result.exit_code == 0, result.stderr
    assert _slugs(cluster.load("prod.values.yaml")) == ["gpu", BUILD]
    assert "copied" not in result.stderr


def test_daskhub_profiles_under_basehub(cluster: Cluster) -> None:
    refused = cluster.profile_run("dask", "dask.values.yaml")
    assert refused.exit_code == 2 and "daskhub-common.values.yaml" in refused.stderr
    result = cluster.profile_run("dask", "dask.values.yaml", "--copy-shared-profiles")
    assert result.exit_code == 0, result.stderr
    written = cluster.load("dask.values.yaml")
    assert set(written) == {"basehub"}
    merged = helm_merge(cluster.load("daskhub-common.values.yaml"), written)
    assert _slugs(merged, "basehub") == ["small", "large", BUILD]
    assert [f for f in cluster.doctor() if f.hub == "dask" and f.code == "profile-list-replaced"] == []

    # A hub list that drops a shared profile is reported, at its basehub: key.
    profiles = written["basehub"]["jupyterhub"]["singleuser"]["profileList"]
    written["basehub"]["jupyterhub"]["singleuser"]["profileList"] = [p for p in profiles if p["slug"] != "large"]
    (cluster.dir / "dask.values.yaml").write_text(yaml.safe_dump(written))
    [finding] = [f for f in cluster.doctor() if f.hub == "dask" and f.code == "profile-list-replaced"]
    assert finding.key == "basehub.jupyterhub.singleuser.profileList" and "(large)" in finding.message


def test_a_values_file_not_listed_yet_counts_the_plain_files_before_it(cluster: Cluster) -> None:
    """A new file is listed after the plain files and before the encrypted ones: common.values.yaml comes first."""
    refused = cluster.profile_run("staging", "staging.binder.values.yaml")
    assert refused.exit_code == 2 and "common.values.yaml" in refused.stderr
    result = cluster.profile_run("staging", "staging.binder.values.yaml", "--copy-shared-profiles")
    assert result.exit_code == 0, result.stderr
    listed = yaml.safe_load(cluster.config.read_text())["hubs"][0]["helm_chart_values_files"]
    assert listed == [
        "common.values.yaml", "staging.values.yaml", "staging.binder.values.yaml", "enc-staging.secret.values.yaml"
    ]  # fmt: skip
    merged = helm_merge(*(cluster.load(name) for name in listed[:3]))
    assert _slugs(merged) == ["small", "large", BUILD]


def test_a_list_in_a_later_file_is_warned_about(cluster: Cluster) -> None:
    result = cluster.profile_run("late", "late.values.yaml")
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "common.values.yaml is listed after late.values.yaml in cluster.yaml and sets a profileList" in message
    assert "the image-building profile is not offered" in message


def test_without_cluster_config_a_shared_list_is_warned_about(cluster: Cluster) -> None:
    args = ["profile", "--values-file", str(cluster.values), "--image", IMAGE]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    message = " ".join(result.stderr.split())
    assert "staging.values.yaml sets a profileList, and Helm replaces lists whole" in message
    assert "pass --cluster-config" in message
    own = CliRunner().invoke(app, ["profile", "--values-file", str(cluster.dir / "prod.values.yaml"), "--image", IMAGE])
    assert own.exit_code == 0 and "replaces lists whole" not in own.stderr  # it has its own list already


def test_profiles_in_an_encrypted_earlier_file_are_refused(cluster: Cluster) -> None:
    """Its entries are ciphertext: they cannot be copied into a plain file, and hiding them is not an option."""
    encrypt_file(cluster.dir / "enc-common.secret.values.yaml", COMMON, [cluster.alice.recipient])
    listed = "      - common.values.yaml\n      - prod.values.yaml\n"
    cluster.config.write_text(cluster.config.read_text().replace(listed, listed.replace("common", "enc-common.secret")))
    (cluster.dir / "prod.values.yaml").write_text("{}\n")
    before = cluster.snapshot()
    result = cluster.profile_run("prod", "prod.values.yaml", "--copy-shared-profiles")
    assert result.exit_code == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "enc-common.secret.values.yaml, listed before prod.values.yaml in cluster.yaml, is encrypted" in message
    assert cluster.snapshot() == before


COMMENTED_COMMON = """\
jupyterhub:
  singleuser:
    # Every hub of the cluster offers these
    profileList:
      # Most users start here
      - display_name: "Small: up to 4 GB"  # the default
        slug: small
        default: true
        kubespawner_override:
          mem_guarantee: 4G  # measured in 2024
      # For big data
      - display_name: "Large: up to 16 GB"
        slug: large
        profile_options:
          image:
            display_name: Image
            choices:
              # the community's image
              pangeo:
                display_name: Pangeo  # weekly tags
                kubespawner_override:
                  image: pangeo/pangeo-notebook:2024.04.08
        kubespawner_override:
          mem_guarantee: 16G  # the node's limit
          # 16G fits the n2-highmem-4 nodes
    # Not a profile's comment: it stays in the shared file
    storage:
      capacity: 10Gi
"""
COPIED_WITH_COMMENTS = """\
  singleuser:
    profileList:
      # Most users start here
      - display_name: "Small: up to 4 GB"  # the default
        slug: small
        default: true
        kubespawner_override:
          mem_guarantee: 4G  # measured in 2024
      # For big data
      - display_name: "Large: up to 16 GB"
        slug: large
        profile_options:
          image:
            display_name: Image
            choices:
              # the community's image
              pangeo:
                display_name: Pangeo  # weekly tags
                kubespawner_override:
                  image: pangeo/pangeo-notebook:2024.04.08
        kubespawner_override:
          mem_guarantee: 16G  # the node's limit
          # 16G fits the n2-highmem-4 nodes
      - display_name:"""


def test_copied_profiles_keep_their_comments(cluster: Cluster) -> None:
    """Block comments before an entry, end-of-line comments and comments inside profile_options are copied with
    the profiles; the comment after the list (the next key's) is not; the hub file keeps its own bytes."""
    common = cluster.dir / "common.values.yaml"
    common.write_text("".join(line.split("  #")[0].rstrip() + "\n" for line in COMMENTED_COMMON.splitlines()
                              if not line.lstrip().startswith("#")))  # fmt: skip
    assert "#" not in common.read_text()
    plain_run = cluster.profile_run("staging", "staging.values.yaml", "--copy-shared-profiles")
    assert plain_run.exit_code == 0, plain_run.stderr
    without_comments = cluster.load("staging.values.yaml")

    common.write_text(COMMENTED_COMMON)
    cluster.values.write_text(STAGING)
    result = cluster.profile_run("staging", "staging.values.yaml", "--copy-shared-profiles")
    assert result.exit_code == 0, result.stderr
    written = cluster.values.read_text()
    assert written.startswith(STAGING)
    assert written[len(STAGING) :].startswith(COPIED_WITH_COMMENTS), written
    assert "Not a profile's comment" not in written and "Every hub of the cluster" not in written
    assert cluster.load("staging.values.yaml") == without_comments
    assert _slugs(without_comments) == ["small", "large", BUILD]
    assert common.read_text() == COMMENTED_COMMON
