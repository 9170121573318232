"""provision verify PATH: a fixture fleet (tests/fleet.py) encrypted with the real sops, against Debian's
docker-registry (token and htpasswd auth) behind loopback proxies, and the Artifact Registry test endpoints."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli import app
from tests.fleet import Hub as H
from tests.fleet import MultiKeyIssuer, write_fleet
from tests.realsops import AgeKey, encrypt_file, sops_env
from tests.servers.artifact_registry import READER, WRITER, FakeGoogle, make_service_account_key
from tests.servers.proxy import RegistryProxy, Status
from tests.servers.registry import DistributionRegistry

ROBOT, ROBOT_PW = "hubs+image_builder", "ROBOTPW0123456789ABCDEF"
DH_USER, DH_PW = "hubsbot", "dckr_pat_SECRETVALUE42"
BASIC_USER, BASIC_PW = "builder", "basic-SECRET-pw-77"


@dataclass
class Fleet:
    clusters: Path
    hubs: list[H]
    passwords: list[str]
    token_registry: DistributionRegistry
    basic_registry: DistributionRegistry
    proxies: dict[str, RegistryProxy]
    google: FakeGoogle
    sops_log: Path
    env: dict[str, str]

    def args(self, *extra: str) -> list[str]:
        args = ["verify", str(self.clusters), "--ar-endpoint", self.google.url]
        for host, proxy in self.proxies.items():
            args += ["--registry-url", f"{host}={proxy.url}"]
        return [*args, *extra]

    def sops_runs(self) -> list[str]:
        return self.sops_log.read_text().splitlines() if self.sops_log.exists() else []


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, age_keys: tuple[AgeKey, AgeKey, AgeKey]) -> Iterator[Fleet]:
    alice, _, carol = age_keys
    root = tmp_path_factory.mktemp("fleet")
    with FakeGoogle() as google:
        good_key = make_service_account_key(google, email="ar1-sa@proj.iam.gserviceaccount.com", project="proj")
        reader_key = make_service_account_key(google, email="ar2-sa@proj.iam.gserviceaccount.com", project="proj")
        for email, repo, perms in (("ar1-sa", "c-gcp-ar1-registry", WRITER), ("ar2-sa", "c-gcp-ar2-registry", READER)):
            name = google.add_repository("proj", "us-central1", repo)
            google.grant(f"{email}@proj.iam.gserviceaccount.com", name, sorted(perms))
        users = {ROBOT: [ROBOT_PW], DH_USER: [DH_PW], "_json_key": [good_key, reader_key]}
        grants = {ROBOT: [("hubs/*", {"pull", "push"})], DH_USER: [("hubs/*", {"pull", "push"})],
                  "_json_key": [("proj/*", {"pull", "push"})]}  # fmt: skip
        with (
            MultiKeyIssuer(users, grants) as issuer,
            DistributionRegistry(token=issuer) as token_registry,
            DistributionRegistry(htpasswd={BASIC_USER: BASIC_PW}) as basic_registry,
        ):
            basic = basic_registry.host
            hubs = [
                H("c-quay", "staging", "quay", ROBOT, ROBOT_PW),
                H("c-quay", "prod", "quay", ROBOT, "WRONG-robot-token-xyz"),
                H("c-quay", "dask", "quay", ROBOT, ROBOT_PW, chart="daskhub"),
                H("c-quay", "stale", "quay", ROBOT, ROBOT_PW, lookup_password="STALE-lookup-token-1"),
                H("c-quay", "nolookup", "quay", ROBOT, ROBOT_PW, lookup_password=None),
                H("c-gcp", "ar1", "artifact-registry", "_json_key", good_key),
                H("c-gcp", "ar2", "artifact-registry", "_json_key", reader_key),
                H("c-gcp", "nobinder", "artifact-registry", "_json_key", good_key, binder=False),
                H("c-dh", "dh1", "dockerhub", DH_USER, DH_PW),
                H("c-dh", "missing", "dockerhub", DH_USER, None),
                H("c-dh", "locked", "dockerhub", DH_USER, DH_PW, recipients=(carol.recipient,)),
                H("c-self", "basic1", "registry", BASIC_USER, BASIC_PW, server=basic),
                H("c-self", "shared-a", "registry", BASIC_USER, BASIC_PW, server=basic, shared_secret=True),
                H("c-self", "shared-b", "registry", BASIC_USER, BASIC_PW, server=basic, shared_secret=True),
                H("c-down", "gone", "registry", BASIC_USER, BASIC_PW, server="127.0.0.1:9"),
            ]  # fmt: skip
            clusters = write_fleet(root, hubs, [alice.recipient])
            proxies = {
                "quay.io": RegistryProxy(token_registry.url),
                "docker.io": RegistryProxy(token_registry.url),
                "us-central1-docker.pkg.dev": RegistryProxy(token_registry.url),
            }
            for proxy in proxies.values():
                proxy.start()
            sops_log = root / "sops-runs.log"
            wrapper = root / "bin" / "sops"
            wrapper.parent.mkdir()
            from tests.realsops import sops_binary

            wrapper.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(sops_log))}\n'
                               f'exec {shlex.quote(sops_binary())} "$@"\n')  # fmt: skip
            wrapper.chmod(0o755)
            passwords = [ROBOT_PW, DH_PW, BASIC_PW, "WRONG-robot-token-xyz", "STALE-lookup-token-1", good_key,
                         reader_key]  # fmt: skip
            try:
                yield Fleet(clusters, hubs, passwords, token_registry, basic_registry, proxies, google, sops_log,
                            sops_env(alice, SOPS_BIN=str(wrapper)))  # fmt: skip
            finally:
                for proxy in proxies.values():
                    proxy.stop()


def invoke(fleet: Fleet, *extra: str) -> tuple[int, str, str, dict[str, Any] | None]:
    fleet.sops_log.unlink(missing_ok=True)
    for proxy in fleet.proxies.values():
        proxy.clear_log()
        proxy.peak = 0
    result = CliRunner().invoke(app, fleet.args(*extra), env=fleet.env)
    doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, result.stdout, result.stderr, doc


def by_hub(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{h['cluster']}/{h['hub']}": h for h in doc["hubs"]}


def assert_no_secret(fleet: Fleet, *outputs: str) -> None:
    text = "".join(outputs)
    for password in fleet.passwords:
        assert password not in text
    assert "PRIVATE KEY" not in text and "private_key" not in text


def assert_nothing_written(fleet: Fleet) -> None:
    """Only GETs reached the registries, and neither registry holds a repository."""
    for proxy in fleet.proxies.values():
        assert {r.method for r in proxy.requests} <= {"GET"}
    for registry in (fleet.token_registry, fleet.basic_registry):
        assert registry._dir is not None
        repositories = registry._dir / "storage" / "docker" / "registry" / "v2" / "repositories"
        assert not repositories.exists() or not any(repositories.iterdir())


def test_fleet_run_checks_every_image_building_hub(fleet: Fleet) -> None:
    code, stdout, stderr, doc = invoke(fleet, "--format", "json")
    assert code == 1, stderr
    assert doc is not None
    hubs = by_hub(doc)
    results = {name: h["result"] for name, h in hubs.items()}
    assert results == {
        "c-quay/staging": "pass", "c-quay/prod": "fail", "c-quay/dask": "pass",
        "c-quay/stale": "fail", "c-quay/nolookup": "fail",
        "c-gcp/ar1": "pass", "c-gcp/ar2": "fail",
        "c-dh/dh1": "pass", "c-dh/missing": "fail", "c-dh/locked": "could-not-check",
        "c-self/basic1": "pass", "c-self/shared-a": "pass", "c-self/shared-b": "pass",
        "c-down/gone": "fail",
    }  # fmt: skip
    assert doc["skipped"] == ["c-gcp/nobinder"]
    # The reasons name the failing check.
    assert hubs["c-quay/prod"]["reason"].startswith("push credentials accepted")
    # BinderHub's own login: a stale password, and none at all (the image lookups get 401: rebuilds every launch).
    assert hubs["c-quay/stale"]["reason"].startswith("BinderHub image lookup credentials accepted")
    assert "config.DockerRegistry.password not set" in hubs["c-quay/nolookup"]["reason"]
    assert "uploadArtifacts" in hubs["c-gcp/ar2"]["reason"]
    assert "buildPodsRegistryCredentials.password" in hubs["c-dh/missing"]["reason"]
    assert "none of your keys can unwrap its data key" in hubs["c-dh/locked"]["reason"]  # sops's reason
    assert "cannot reach" in hubs["c-down/gone"]["reason"]
    # Every check of every hub is in the JSON.
    staging = {c["check"]: c["status"] for c in hubs["c-quay/staging"]["checks"]}
    assert staging["may push and pull under image_prefix"] == "pass"
    assert staging["pull secret is for the push registry"] == "pass"
    # The table on stderr: one row per hub, and progress hubs done/total.
    assert "c-dh      locked" in stderr or "locked" in stderr
    assert "14/14 hubs:" in stderr and "could not check" in stderr
    assert_no_secret(fleet, stdout, stderr)
    assert_nothing_written(fleet)


def test_each_encrypted_file_is_decrypted_once(fleet: Fleet) -> None:
    """One sops process per encrypted file of a checked hub; the shared file once for both hubs; none for the
    hub that is skipped."""
    invoke(fleet)
    runs = fleet.sops_runs()
    files = [run.split()[-1] for run in runs]
    assert len(files) == len(set(files)) == 15  # 14 hubs' own files + the shared one
    assert sum(f.endswith("enc-binderhub-service-common.secret.values.yaml") for f in files) == 1
    assert not any("nobinder" in f for f in files)


def test_filters_and_a_clean_selection_exits_0(fleet: Fleet) -> None:
    code, stdout, stderr, doc = invoke(fleet, "--hub", "c-quay/staging", "--hub", "ar1", "--cluster", "c-quay",
                                       "--cluster", "c-gcp", "--format", "json")  # fmt: skip
    assert code == 0, stderr
    assert doc is not None and sorted(by_hub(doc)) == ["c-gcp/ar1", "c-quay/staging"]
    assert len(fleet.sops_runs()) == 2
    code, _, stderr, _ = invoke(fleet, "--cluster", "c-self")
    assert code == 0, stderr
    assert "3 hubs checked: 3 passed" in stderr


def test_unknown_filter_is_a_usage_error(fleet: Fleet) -> None:
    code, stdout, stderr, _ = invoke(fleet, "--hub", "no-such-hub")
    assert code == 2 and "no-such-hub" in stderr and stdout == ""
    assert fleet.sops_runs() == []


def test_requests_in_flight_per_host_stay_within_the_bound(fleet: Fleet) -> None:
    code, _, stderr, doc = invoke(fleet, "--cluster", "c-quay", "--cluster", "c-dh", "--jobs", "8",
                                  "--per-host", "1", "--format", "json")  # fmt: skip
    assert doc is not None, stderr
    assert fleet.proxies["quay.io"].peak == 1 and fleet.proxies["docker.io"].peak == 1
    assert all(peak <= 1 for peak in doc["peak_requests_in_flight"].values())


def test_429_with_retry_after_is_waited_out(fleet: Fleet) -> None:
    quay = fleet.proxies["quay.io"]
    quay.inject("GET", "/v2/", Status(429, retry_after="1"))
    try:
        code, _, stderr, doc = invoke(fleet, "--hub", "c-quay/staging", "--format", "json")
    finally:
        quay.clear_faults()
    assert code == 0, stderr
    assert doc is not None
    hub = by_hub(doc)["c-quay/staging"]
    assert hub["result"] == "pass" and hub["seconds"] >= 1.0  # Retry-After honoured, not failed
    assert sum(doc["waits_429"].values()) == 1 and "waited out 1 rate limit answer(s) (429)" in stderr
    assert [r.status for r in quay.requests[:2]] == [429, 401]  # then the challenge, as usual


def test_single_hub_options_with_a_folder_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["verify", str(fleet.clusters), "--values-file", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and "--values-file" in result.stderr


def test_no_binderhub_hub_at_all_is_a_usage_error(tmp_path: Path) -> None:
    folder = tmp_path / "c1"
    folder.mkdir()
    (folder / "cluster.yaml").write_text("name: c1\nhubs:\n  - name: h\n    helm_chart_values_files: [h.values.yaml]\n")
    (folder / "h.values.yaml").write_text("jupyterhub: {}\n")
    result = CliRunner().invoke(app, ["verify", str(folder)], env={"SOPS_BIN": os.devnull})
    assert result.exit_code == 2 and "nothing to verify" in result.stderr


def test_a_listed_file_that_is_missing_makes_the_hub_could_not_check(tmp_path: Path) -> None:
    folder = tmp_path / "c1"
    folder.mkdir()
    (folder / "cluster.yaml").write_text(
        "name: c1\nhubs:\n  - name: h\n    helm_chart: basehub\n"
        "    helm_chart_values_files: [h.values.yaml, enc-h.secret.values.yaml]\n"
    )
    (folder / "h.values.yaml").write_text(
        "binderhub-service:\n  enabled: true\n"
        "  buildPodsRegistryCredentials: {server: https://quay.io, username: o+r}\n"
    )
    result = CliRunner().invoke(app, ["verify", str(tmp_path), "--format", "json"], env={"SOPS_BIN": os.devnull})
    assert result.exit_code == 1, result.stderr
    (hub,) = json.loads(result.stdout)["hubs"]
    assert (hub["result"], hub["registry"]) == ("could-not-check", "quay.io")
    assert "enc-h.secret.values.yaml is listed in cluster.yaml but does not exist" in hub["reason"]


@pytest.mark.parametrize("value", ["quay.io=ftp://x", "quay.io", "http://127.0.0.1:5000"])
def test_registry_url_with_a_folder_must_be_host_equals_url(value: str, tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text("name: c1\nhubs: []\n")
    result = CliRunner().invoke(app, ["verify", str(tmp_path), "--registry-url", value])
    assert result.exit_code == 2 and "--registry-url" in result.stderr


def test_verbose_run_prints_no_secret(fleet: Fleet) -> None:
    code, stdout, stderr, _ = invoke(fleet, "-v", "--format", "json")
    assert code == 1 and "debug: provision.registry: GET" in stderr
    assert_no_secret(fleet, stdout, stderr)


@pytest.mark.parametrize("chart", ["basehub", "daskhub"])
def test_a_key_of_the_wrong_type_makes_the_hub_could_not_check_naming_file_and_key(tmp_path: Path, chart: str) -> None:
    """QA: a string where a mapping is expected was "unexpected TypeError (re-run with --debug on this hub alone)"."""
    folder = tmp_path / "c1"
    folder.mkdir()
    (folder / "cluster.yaml").write_text(
        f"name: c1\nhubs:\n  - name: h\n    helm_chart: {chart}\n    helm_chart_values_files: [h.values.yaml]\n"
    )
    values = ("binderhub-service:\n  enabled: true\n  config:\n    BinderHub: {image_prefix: quay.io/o/h-}\n"
              "  buildPodsRegistryCredentials: quay.io\n")  # fmt: skip
    if chart == "daskhub":
        values = "basehub:\n" + "".join(f"  {line}\n" for line in values.splitlines())
    (folder / "h.values.yaml").write_text(values)
    result = CliRunner().invoke(app, ["verify", str(tmp_path), "--format", "json"], env={"SOPS_BIN": os.devnull})
    assert result.exit_code == 1, result.stderr
    (hub,) = json.loads(result.stdout)["hubs"]
    assert hub["result"] == "could-not-check", hub
    key = ("basehub." if chart == "daskhub" else "") + "binderhub-service.buildPodsRegistryCredentials"
    assert "h.values.yaml" in hub["reason"] and f"{key} is a string, where a mapping is expected" in hub["reason"]
    assert "unexpected" not in result.stderr + result.stdout


FLEET_VALUES = """\
binderhub-service:
  enabled: true
  config:
    BinderHub:
      use_registry: true
      image_prefix: 127.0.0.1:9/hubs/c1-staging-
    DockerRegistry:
      url: http://127.0.0.1:9
      username: hubs+image_builder
      password: not-a-secret
  buildPodsRegistryCredentials:
    server: http://127.0.0.1:9
    username: hubs+image_builder
    password: not-a-secret
"""
C1 = (
    "name: c1\nhubs:\n  - name: staging\n    helm_chart: basehub\n"
    "    helm_chart_values_files: [staging.values.yaml]\n"
)  # fmt: skip


def _two_clusters(tmp_path: Path, c2: str) -> Path:
    clusters = tmp_path / "config" / "clusters"
    for name in ("c1", "c2"):
        (clusters / name).mkdir(parents=True)
    (clusters / "c1" / "cluster.yaml").write_text(C1)
    (clusters / "c1" / "staging.values.yaml").write_text(FLEET_VALUES)
    (clusters / "c2" / "cluster.yaml").write_text(c2)
    return clusters


@pytest.mark.parametrize(
    ("c2", "reason"),
    [
        ("name: c2\nhubs: [\n", "c2/cluster.yaml is not valid YAML"),  # an unfinished edit
        ("- name: c2\n", "c2/cluster.yaml is not a YAML mapping at the top level"),
    ],
)
def test_a_broken_cluster_yaml_is_could_not_check_not_left_out(tmp_path: Path, c2: str, reason: str) -> None:
    """A cluster.yaml that does not parse (or is not a mapping) hides its hubs: the cluster is reported as "could
    not check" with the file and the parse error, and the run does not pass, even when every other hub would."""
    clusters = _two_clusters(tmp_path, c2)
    fleet = CliRunner().invoke(app, ["verify", str(clusters), "--format", "json"])
    assert fleet.exit_code == 1, fleet.stderr
    doc = json.loads(fleet.stdout)
    assert doc["ok"] is False and doc["summary"] == {"pass": 0, "fail": 1, "could-not-check": 1}
    broken = by_hub(doc)["c2/-"]
    assert broken["result"] == "could-not-check" and broken["reason"].startswith(reason)
    assert broken["checks"][0]["check"] == "cluster.yaml lists the hubs"
    assert any(line.split()[:2] == ["c2", "-"] and "could not check" in line for line in fleet.stderr.splitlines())
    # The cluster alone: the cause is named, not "no hub enables binderhub-service".
    one = CliRunner().invoke(app, ["verify", str(clusters / "c2")])
    assert one.exit_code == 1, one.stderr
    assert reason.replace("c2/", "") in one.stderr and "enables binderhub-service" not in one.stderr
    # --cluster c1 leaves it out; --hub c2/x (it may be in there) keeps it.
    only_c1 = CliRunner().invoke(app, ["verify", str(clusters), "--cluster", "c1"])
    assert "c2" not in only_c1.stderr.replace(str(tmp_path), "")
    maybe = CliRunner().invoke(app, ["verify", str(clusters), "--hub", "c2/prod"])
    assert maybe.exit_code == 1 and reason in maybe.stderr


def test_hub_entries_the_deployer_cannot_use_are_could_not_check(tmp_path: Path) -> None:
    clusters = _two_clusters(tmp_path, "name: c2\nhubs:\n  - just-a-name\n  - helm_chart: basehub\n")
    result = CliRunner().invoke(app, ["verify", str(clusters), "--format", "json"])
    assert result.exit_code == 1, result.stderr
    hubs = by_hub(json.loads(result.stdout))
    assert hubs["c2/hubs[0]"]["result"] == hubs["c2/hubs[1]"]["result"] == "could-not-check"
    assert hubs["c2/hubs[0]"]["reason"].startswith("c2/cluster.yaml: hubs[0] is a string, not a hub")
    assert hubs["c2/hubs[1]"]["reason"].startswith("c2/cluster.yaml: hubs[1].name is missing or not a string")
    mapping = _two_clusters(tmp_path / "m", "name: c2\nhubs:\n  prod: {}\n")
    result = CliRunner().invoke(app, ["verify", str(mapping), "--format", "json"])
    assert result.exit_code == 1, result.stderr
    assert by_hub(json.loads(result.stdout))["c2/-"]["reason"].startswith("c2/cluster.yaml: hubs is a mapping")


def test_an_undecryptable_file_is_not_counted_as_decrypted(
    tmp_path: Path, real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey]
) -> None:
    """The summary and --format json count the files sops decrypted, not the sops processes started."""
    folder = tmp_path / "c1"
    folder.mkdir()
    (folder / "cluster.yaml").write_text(
        "name: c1\nhubs:\n  - name: staging\n    helm_chart: basehub\n"
        "    helm_chart_values_files: [staging.values.yaml, enc-staging.secret.values.yaml]\n"
    )
    (folder / "staging.values.yaml").write_text(FLEET_VALUES)
    encrypt_file(folder / "enc-staging.secret.values.yaml", "a: 1\n", [age_keys[1].recipient])  # bob only
    env = sops_env(age_keys[0], SOPS_BIN=real_sops)
    result = CliRunner().invoke(app, ["verify", str(folder), "--format", "json"], env=env)
    report = json.loads(result.stdout)
    assert report["summary"]["could-not-check"] == 1
    assert (report["decrypted_files"], report["undecrypted_files"]) == (0, 1)
    assert "0 encrypted files decrypted, 1 could not be" in result.stderr
    assert "1 encrypted files decrypted" not in result.stderr
    readable = CliRunner().invoke(
        app, ["verify", str(folder), "--format", "json"], env=sops_env(age_keys[1], SOPS_BIN=real_sops)
    )
    counts = json.loads(readable.stdout)
    assert (counts["decrypted_files"], counts["undecrypted_files"]) == (1, 0)
    assert "1 encrypted files decrypted (" in readable.stderr or "1 encrypted files decrypted;" in readable.stderr


# --- retention (verbs/fleet_retention.py): each hub's policy, and --require-retention ----------------------------

QUAY_ADMIN = "quay-admin-token-SECRET-9"


def invoke_env(fleet: Fleet, env: dict[str, str | None], *extra: str) -> tuple[int, str, dict[str, Any] | None]:
    result = CliRunner().invoke(app, fleet.args(*extra), env={**fleet.env, **env})
    return result.exit_code, result.stderr, json.loads(result.stdout) if result.stdout.strip() else None


def retention_of(doc: dict[str, Any] | None) -> dict[str, str]:
    assert doc is not None
    return {name: h["retention"]["state"] for name, h in by_hub(doc).items()}


def test_retention_without_token_or_tfvars(fleet: Fleet) -> None:
    code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": None}, "--hub", "c-quay/staging", "--hub", "ar1",
                                   "--hub", "dh1", "--hub", "basic1", "--format", "json")  # fmt: skip
    assert code == 0, stderr
    assert retention_of(doc) == {"c-quay/staging": "unknown", "c-gcp/ar1": "unknown", "c-dh/dh1": "none",
                                 "c-self/basic1": "none"}  # fmt: skip
    hubs = by_hub(doc or {})
    assert "QUAY_TOKEN" in hubs["c-quay/staging"]["retention"]["detail"]
    assert "tfvars" in hubs["c-gcp/ar1"]["retention"]["detail"]
    assert hubs["c-dh/dh1"]["retention"]["detail"] == "client-side: provision prune"
    assert not any(c["check"] == "image retention policy" for h in hubs.values() for c in h["checks"])


def test_retention_read_with_a_quay_token_and_from_tfvars(fleet: Fleet) -> None:
    from tests.servers.quay import FakeQuay

    tfvars = fleet.clusters.parent.parent / "terraform" / "gcp" / "projects" / "c-gcp.tfvars"
    tfvars.parent.mkdir(parents=True, exist_ok=True)
    tfvars.write_text('registry_retention = {\n  ar1 = { delete_older_than_days = 30 }\n}\n')
    try:
        with FakeQuay() as quay:
            quay.add_admin(QUAY_ADMIN)
            quay.add_org("hubs", admin="admin")
            quay.add_prune_policy("hubs", "number_of_tags", 10)
            code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": QUAY_ADMIN}, "--hub", "c-quay/staging", "--hub",
                                           "ar1", "--api-url", f"quay.io={quay.url}", "--require-retention")
    finally:
        tfvars.unlink()
    assert code == 0, stderr
    lines = stderr.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("CLUSTER")):]
    assert lines[0].split() == ["CLUSTER", "HUB", "REGISTRY", "RESULT", "RETENTION", "CHECK", "AND", "REASON"]
    assert lines[2].split()[:5] == ["c-quay", "staging", "quay.io", "pass", "server-side"]  # cluster.yaml order
    assert "  c-quay/staging: server-side (auto-prune of hubs: keep the 10 newest tags of each repository)" in lines
    assert "  c-gcp/ar1: server-side (cleanup policies: delete versions older than 30 days)" in lines
    assert QUAY_ADMIN not in stderr


def test_require_retention_fails_none_and_keeps_unknown_a_could_not_check(fleet: Fleet) -> None:
    code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": None}, "--cluster", "c-self", "--require-retention",
                                   "--format", "json")  # fmt: skip
    assert code == 1, stderr
    hubs = by_hub(doc or {})
    assert {h["result"] for h in hubs.values()} == {"fail"}
    assert hubs["c-self/basic1"]["reason"] == "image retention policy: none (client-side: provision prune)"
    code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": None}, "--hub", "c-quay/staging", "--require-retention",
                                   "--format", "json")  # fmt: skip
    assert code == 0, stderr
    staging = by_hub(doc or {})["c-quay/staging"]
    assert staging["result"] == "pass" and "image retention policy" in staging["reason"]  # "could not check: …"
    code, stderr, _ = invoke_env(fleet, {"QUAY_TOKEN": None}, "--cluster", "c-self")
    assert code == 0, stderr  # without the option, "none" is reported, not failed
    assert "  c-self/basic1: none (client-side: provision prune)" in stderr.splitlines()


@pytest.mark.parametrize(("auto_prune", "detail"), [(True, "hubs has no auto-prune policy"),
                                                     (False, "this Quay has no auto-prune")])  # fmt: skip
def test_quay_without_a_policy_is_none_and_fails_the_nightly_check(fleet: Fleet, auto_prune: bool, detail: str) -> None:
    from tests.servers.quay import FakeQuay

    with FakeQuay(auto_prune=auto_prune) as quay:
        quay.add_admin(QUAY_ADMIN)
        quay.add_org("hubs", admin="admin")
        code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": QUAY_ADMIN}, "--hub", "c-quay/staging", "--api-url",
                                       f"quay.io={quay.url}", "--require-retention", "--format", "json")
    assert code == 1, stderr
    staging = by_hub(doc or {})["c-quay/staging"]
    assert staging["retention"]["state"] == "none" and detail in staging["retention"]["detail"]
    assert staging["result"] == "fail" and staging["reason"].startswith("image retention policy: none")


def test_hubs_sharing_a_quay_organization_read_its_policy_once(fleet: Fleet) -> None:
    """The auto-prune policy is the organization's: a fleet run asks Quay for it once, not once per hub."""
    from tests.servers.quay import FakeQuay

    with FakeQuay() as quay:
        quay.add_admin(QUAY_ADMIN)
        quay.add_org("hubs", admin="admin")
        quay.add_prune_policy("hubs", "number_of_tags", 10)
        code, stderr, doc = invoke_env(fleet, {"QUAY_TOKEN": QUAY_ADMIN}, "--cluster", "c-quay", "--api-url",
                                       f"quay.io={quay.url}", "--format", "json")  # fmt: skip
        asked = [r for r in quay.requests if "autoprunepolicy" in r.path]
    hubs = by_hub(doc or {})
    assert len(hubs) >= 3, stderr
    assert {h["retention"]["state"] for h in hubs.values()} == {"server-side"}
    assert len(asked) == 1, [r.path for r in asked]
