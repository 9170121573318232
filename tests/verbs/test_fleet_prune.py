"""provision prune PATH (verbs/fleet_prune.py): a fixture fleet (tests/fleet.py, the real sops) of Docker Hub hubs
on FakeDockerHub, and Artifact Registry hubs that provision prune leaves alone (no pruner; a server-side policy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli import app
from tests.fleet import Hub as H
from tests.fleet import write_fleet
from tests.realsops import AgeKey, sops_env
from tests.servers.dockerhub import FakeDockerHub

DH_USER, DH_PW = "hubsbot", "dckr_pat_FLEETSECRET42"
AR_KEY = '{"type": "service_account", "private_key": "FLEET-AR-KEY-SECRET"}'
TFVARS = 'registry_retention = {\n  "ar2" = { keep_recent = 5 }\n}\n'


@dataclass
class Fleet:
    clusters: Path
    server: FakeDockerHub
    env: dict[str, str]

    def invoke(self, *extra: str, answer: str = "") -> tuple[int, str, dict[str, Any] | None]:
        args = ["prune", str(self.clusters), "--older-than", "90", "--api-url", self.server.url, "--format", "json"]
        result = CliRunner().invoke(app, [*args, *extra], env=self.env, input=answer)
        doc = json.loads(result.stdout) if result.stdout.strip() else None
        return result.exit_code, result.stderr, doc


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, age_keys: tuple[AgeKey, AgeKey, AgeKey]) -> tuple[Path, AgeKey]:
    alice = age_keys[0]
    root = tmp_path_factory.mktemp("fleet-prune")
    hubs = [
        H("c-dh", "dh1", "dockerhub", DH_USER, DH_PW),
        H("c-dh", "dh2", "dockerhub", DH_USER, DH_PW, shared_secret=True),
        H("c-gcp", "ar1", "artifact-registry", "_json_key", AR_KEY),
        H("c-gcp", "ar2", "artifact-registry", "_json_key", AR_KEY),
        H("c-gcp", "nobinder", "artifact-registry", "_json_key", AR_KEY, binder=False),
    ]
    clusters = write_fleet(root, hubs, [alice.recipient])
    projects = root / "terraform" / "gcp" / "projects"
    projects.mkdir(parents=True)
    (projects / "c-gcp.tfvars").write_text(TFVARS)
    return clusters, alice


@pytest.fixture
def fleet(written: tuple[Path, AgeKey]) -> Iterator[Fleet]:
    clusters, alice = written
    with FakeDockerHub() as server:
        server.add_user(DH_USER, password=DH_PW)
        server.add_org("hubs", owners=[DH_USER], plan="team")
        for repository, tag, days in (("c-dh-dh1-a", "new", 1), ("c-dh-dh1-a", "old", 120),
                                      ("c-dh-dh1-b", "ancient", 300), ("c-dh-dh2-x", "old", 200),
                                      ("c-other-z", "old", 400)):  # fmt: skip
            server.add_tag("hubs", repository, tag, pushed_days_ago=days)
        yield Fleet(clusters, server, sops_env(alice))


def by_hub(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{h['cluster']}/{h['hub']}": h for h in doc["hubs"]}


def test_one_plan_one_confirmation_deletions_and_hubs_without_pruner(fleet: Fleet) -> None:
    code, stderr, doc = fleet.invoke(answer="y\n")
    assert code == 0, stderr
    assert stderr.count("[y/N]") == 1
    assert "delete 3 tag(s) and 2 emptied repositories from 2 hub(s)?" in stderr
    assert stderr.index("c-dh/dh1:") < stderr.index("c-dh/dh2:") < stderr.index("[y/N]")  # the whole plan first
    assert fleet.server.repositories("hubs") == {"c-dh-dh1-a": ["new"], "c-other-z": ["old"]}
    assert doc is not None and doc["ok"] and doc["deleted"] == {"tags": 3, "repositories": 2}
    hubs = by_hub(doc)
    assert list(hubs) == ["c-dh/dh1", "c-dh/dh2", "c-gcp/ar1", "c-gcp/ar2"]  # nobinder skipped
    assert doc["skipped"] == ["c-gcp/nobinder"]
    assert hubs["c-dh/dh1"]["status"] == "pruned"
    assert {r["name"]: [t["tag"] for t in r["delete"]] for r in hubs["c-dh/dh1"]["plan"]["repositories"]} == {
        "hubs/c-dh-dh1-a": ["old"], "hubs/c-dh-dh1-b": ["ancient"]}  # fmt: skip
    assert hubs["c-dh/dh1"]["retention"] == "none (client-side: provision prune)"
    assert hubs["c-gcp/ar1"]["status"] == "not-pruned"
    assert "does not prune Artifact Registry" in hubs["c-gcp/ar1"]["detail"]
    assert hubs["c-gcp/ar1"]["retention"].startswith("none (no registry_retention entry for ar1")
    assert hubs["c-gcp/ar2"]["status"] == "not-pruned" and "server-side" in hubs["c-gcp/ar2"]["detail"]
    assert hubs["c-gcp/ar2"]["retention"].startswith("server-side (cleanup policies: keep the 5 most recent")
    for secret in (DH_PW, "FLEET-AR-KEY-SECRET"):
        assert secret not in stderr and secret not in json.dumps(doc)


def test_declined_deletes_nothing_and_fails(fleet: Fleet) -> None:
    code, stderr, doc = fleet.invoke(answer="n\n")
    assert code == 1 and "declined: nothing was changed" in stderr
    assert doc is not None and doc["declined"] and doc["to_delete"] == 3
    assert len(fleet.server.repositories("hubs")) == 4


def test_hub_filter_and_dry_run_ask_nothing(fleet: Fleet) -> None:
    code, stderr, doc = fleet.invoke("--hub", "c-dh/dh2", "--dry-run")
    assert code == 0, stderr
    assert "[y/N]" not in stderr and "dry run: nothing was changed" in stderr
    assert doc is not None and list(by_hub(doc)) == ["c-dh/dh2"] and doc["to_delete"] == 1
    assert fleet.server.repositories("hubs")["c-dh-dh2-x"] == ["old"]


def test_yes_deletes_without_asking(fleet: Fleet) -> None:
    code, stderr, doc = fleet.invoke("--yes", "--cluster", "c-dh")
    assert code == 0, stderr
    assert "[y/N]" not in stderr and doc is not None and doc["deleted"]["tags"] == 3


def test_one_deadline_for_the_whole_run(written: tuple[Path, AgeKey]) -> None:
    clusters, alice = written
    with FakeDockerHub(latency=0.6) as server:
        server.add_user(DH_USER, password=DH_PW)
        server.add_org("hubs", owners=[DH_USER], plan="team")
        server.add_tag("hubs", "c-dh-dh1-a", "old", pushed_days_ago=120)
        server.add_tag("hubs", "c-dh-dh2-x", "old", pushed_days_ago=200)
        code, stderr, doc = Fleet(clusters, server, sops_env(alice)).invoke("--yes", "--deadline", "1")
        assert code == 1
        assert doc is not None and not doc["ok"]
        failed = [h for h in doc["hubs"] if h["status"] == "failed"]
        assert failed and all("deadline" in h["detail"].lower() for h in failed)
        assert server.repositories("hubs") == {"c-dh-dh1-a": ["old"], "c-dh-dh2-x": ["old"]}


def test_path_and_values_file_are_alternatives(fleet: Fleet, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("{}")
    code, stderr, _ = fleet.invoke("--values-file", str(values))
    assert code == 2 and "PATH prunes every hub under a folder" in stderr
