"""Doctor's registry rules through the kinds (RegistryKind's doctor block): which kind doctor takes a host for, and
the rules that differ between kinds, on one-hub clusters written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.doctor import run
from provision.doctor.registry_rules import kind_of
from provision.registries import GENERIC
from provision.registries.artifact_registry import KIND as ARTIFACT_REGISTRY
from provision.registries.base import HubFacts, RegistryKind
from provision.registries.dockerhub import KIND as DOCKERHUB
from provision.registries.quay import KIND as QUAY

ENC = "ENC[AES256_GCM,data:AA,iv:BB,tag:CC,type:str]"


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("quay.io", QUAY),
        ("quay.example.org", GENERIC),  # registries.recognise says Quay: doctor never did
        ("index.docker.io", DOCKERHUB),
        ("registry-1.docker.io", DOCKERHUB),
        ("us-central1-docker.pkg.dev", ARTIFACT_REGISTRY),
        ("a.us-docker.pkg.dev", GENERIC),  # not an Artifact Registry host: no dot before -docker
        ("eu.gcr.io", GENERIC),  # shut down: a rule of doctor's, no kind
    ],
)
def test_doctor_takes_a_host_for_a_kind_by_the_host_alone(host: str, kind: RegistryKind) -> None:
    assert kind_of(host) is kind


@pytest.mark.parametrize(
    ("prefix", "provider", "project", "readable"),
    [
        ("us-docker.pkg.dev/p1/repo/", "gcp", "p1", True),
        ("us-docker.pkg.dev/p2/repo/", "gcp", "p1", False),  # the node account reads its own project only
        ("us-docker.pkg.dev/p2/repo/", "gcp", None, True),  # no project in cluster.yaml: taken for the cluster's
        ("us-docker.pkg.dev/p1/", "gcp", "p1", True),  # no project named by a prefix that does not fit
        ("us-docker.pkg.dev/p1/repo/", "aws", None, False),
    ],
)
def test_artifact_registry_nodes_pull_in_their_own_project(
    prefix: str, provider: str, project: str | None, readable: bool
) -> None:
    facts = HubFacts("us-docker.pkg.dev", prefix, "_json_key", provider, project)
    assert ARTIFACT_REGISTRY.nodes_can_pull(facts) is readable


def _one_hub(tmp_path: Path, server: str, prefix: str, username: str) -> Path:
    folder = tmp_path / "c1"
    folder.mkdir()
    login = {"username": username, "password": ENC}
    values = {
        "binderhub-service": {
            "enabled": True,
            "config": {"BinderHub": {"image_prefix": prefix}, "DockerRegistry": {"url": server, **login}},
            "buildPodsRegistryCredentials": {"server": server, **login},
        }
    }
    hub = {"name": "h", "helm_chart": "basehub", "helm_chart_values_files": ["h.values.yaml"]}
    (folder / "cluster.yaml").write_text(yaml.safe_dump({"name": "c1", "provider": "aws", "hubs": [hub]}))
    (folder / "h.values.yaml").write_text(yaml.safe_dump(values))
    return folder


def test_a_self_hosted_quay_is_checked_as_a_plain_registry(tmp_path: Path) -> None:
    """Its robot must still push into its own organization; the missing pull secret is a warning (quay.io: an
    error, as its repositories are private)."""
    folder = _one_hub(tmp_path, "https://quay.example.org", "quay.example.org/org/h-", "other+robot")
    found = {(f.severity, f.code) for f in run(folder).findings}
    assert found == {("error", "robot-org-mismatch"), ("warning", "missing-image-pull-secret")}


def test_quay_io_without_a_pull_secret_is_an_error(tmp_path: Path) -> None:
    folder = _one_hub(tmp_path, "quay.io", "quay.io/org/h-", "org+robot")
    (finding,) = run(folder).findings
    assert (finding.severity, finding.code) == ("error", "missing-image-pull-secret")
    assert finding.message.startswith("quay.io makes pushed repositories private")


def test_docker_hub_values_may_leave_binderhubs_url_out(tmp_path: Path) -> None:
    folder = _one_hub(tmp_path, "https://index.docker.io/v1/", "someone/h-", "someone")
    values = yaml.safe_load((folder / "h.values.yaml").read_text())
    values["binderhub-service"]["config"]["DockerRegistry"]["url"] = None
    (folder / "h.values.yaml").write_text(yaml.safe_dump(values))
    assert [(f.severity, f.code) for f in run(folder).findings] == [("warning", "missing-image-pull-secret")]
