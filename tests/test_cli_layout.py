"""`provision quay <cluster> <hub>` inside a 2i2c-layout repository (issue 21): the files come from the hub's
cluster.yaml entry, the fleet's settings from provision.toml, options still win, and outside the layout the two
words are refused with the way on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from tests.servers.quay import FakeQuay
from tests.verbs import test_remove
from tests.verbs.test_remove import TOKEN, Repo

repo = test_remove.repo
quay = test_remove.quay


def _toml(repo: Repo, quay: FakeQuay, org: str = "hubs") -> None:
    (repo.root / "provision.toml").write_text(
        f'# the fleet\'s Quay organization\n[quay]\norg = "{org}"\nemail = "ops@example.org"\napi_url = "{quay.url}"\n'
    )


def _run(repo: Repo, args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, args, env=repo.env(QUAY_TOKEN=TOKEN))


def test_cluster_and_hub_are_all_a_listed_hub_needs(
    repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(repo, quay)
    result = _run(repo, ["quay", "c1", "staging"], repo.dir, monkeypatch)  # from inside the cluster's folder
    assert result.exit_code == 0, result.stderr
    stderr = result.stderr
    assert f"files: {repo.values}, {repo.secret} (listed for the hub in {repo.cluster}" in stderr
    values = yaml.safe_load(repo.values.read_text())
    assert values["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == f"{quay.host}/hubs/c1-staging-"
    assert repo.decrypt()["binderhub-service"]["buildPodsRegistryCredentials"]["password"]
    assert quay.robot_token("hubs", "image_builder") is not None
    assert result.stdout == ""  # the secrets went into the hub's file


def test_a_hub_without_its_own_files_gets_them_named_and_listed(
    repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(repo, quay)
    result = _run(repo, ["quay", "c1", "staging-new"], repo.root, monkeypatch)
    assert result.exit_code == 0, result.stderr
    new = "new, to be listed there: staging-new.values.yaml, enc-staging-new.secret.values.yaml"
    assert new in result.stderr
    entry = next(h for h in yaml.safe_load(repo.cluster.read_text())["hubs"] if h["name"] == "staging-new")
    assert entry["helm_chart_values_files"] == [
        "common.values.yaml", "staging-new.values.yaml", "enc-staging-new.secret.values.yaml",
    ]  # fmt: skip
    assert (repo.dir / "enc-staging-new.secret.values.yaml").is_file()


def test_an_option_wins_over_provision_toml(repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(repo, quay, org="nobody-uses-this")
    result = _run(repo, ["quay", "c1", "staging", "--org", "hubs", "--dry-run"], repo.root, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert "hubs" in result.stderr and "nobody-uses-this" not in result.stderr


def test_a_bad_provision_toml_or_a_missing_org_is_a_usage_error(
    repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo.root / "provision.toml").write_text('[quay]\norganisation = "hubs"\n')
    result = _run(repo, ["quay", "c1", "staging"], repo.root, monkeypatch)
    assert result.exit_code == 2 and "unknown key quay.organisation" in result.stderr
    (repo.root / "provision.toml").unlink()
    result = _run(repo, ["quay", "c1", "staging"], repo.root, monkeypatch)
    assert result.exit_code == 2
    assert "--org is required (or set quay.org in provision.toml" in result.stderr
    assert quay.writes() == []


def test_outside_the_layout_the_words_are_refused_with_the_way_on(
    repo: Repo, quay: FakeQuay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run(repo, ["quay", "c1", "staging", "--org", "hubs", "--api-url", quay.url], elsewhere, monkeypatch)
    assert result.exit_code == 2
    assert "there is none in" in result.stderr and "--values-file" in result.stderr
    result = _run(repo, ["quay", "c1", "--org", "hubs"], repo.root, monkeypatch)
    assert result.exit_code == 2 and "two words" in result.stderr
    result = _run(repo, ["quay", "c1", "staging", "--hub", "prod", "--org", "hubs"], repo.root, monkeypatch)
    assert result.exit_code == 2 and "--hub 'prod' and the argument 'staging' disagree" in result.stderr
    assert quay.writes() == []


def test_a_hub_provisioned_by_its_words_is_removed_by_them(
    repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(repo, quay)
    assert _run(repo, ["quay", "c1", "staging"], repo.root, monkeypatch).exit_code == 0
    result = _run(repo, ["remove", "quay", "c1", "staging", "--api-url", quay.url, "--yes"], repo.root, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert f"files: {repo.values}, {repo.secret}" in result.stderr
    assert quay.robot_token("hubs", "image_builder") is None
    assert "binderhub-service" not in yaml.safe_load(repo.values.read_text())


def test_profile_takes_the_words_too(repo: Repo, quay: FakeQuay, monkeypatch: pytest.MonkeyPatch) -> None:
    image = "pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo"
    result = _run(repo, ["profile", "c1", "staging", "--image", image], repo.root, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert f"files: {repo.values}" in result.stderr and result.stdout == ""
    profiles = yaml.safe_load(repo.values.read_text())["jupyterhub"]["singleuser"]["profileList"]
    assert any("pangeo/pangeo-notebook:2024.04.08" in str(p) for p in profiles)
