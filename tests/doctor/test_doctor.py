"""provision doctor on fixture trees shaped like 2i2c-org/infrastructure config/clusters: every finding, the clean
hubs, and the command line (streams, exit codes, no secret in any output)."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from provision.cli.doctor import doctor
from provision.doctor import DoctorResult, Finding, run
from provision.errors import UsageError

# The fixture tree's encrypted files are made per test session by the real sops (conftest `doctor_tree`) from
# the `*.plain` sources beside them.
SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "doctor"
PREFIX = "binderhub-service.config.BinderHub.image_prefix"

# Everything doctor must find in the fixture tree, and nothing else: severity, code, cluster, hub, file (relative to
# the cluster folder), key ("-": the whole file). Each broken hub is named after what is wrong with it.
EXPECTED_TABLE = f"""
# quay.io, settings shared through common.values.yaml + enc-common.secret.values.yaml
error   use-registry-not-true          quay-broken use-registry-off  use-registry-off.values.yaml
        binderhub-service.config.BinderHub.use_registry
error   image-prefix-mismatch          quay-broken bad-prefix        bad-prefix.values.yaml         {PREFIX}
error   robot-org-mismatch             quay-broken wrong-org         wrong-org.values.yaml          {PREFIX}
error   rewritten-image-name           quay-broken underscore-org    underscore-org.values.yaml     {PREFIX}
error   robot-org-mismatch             quay-broken underscore-org    underscore-org.values.yaml     {PREFIX}
error   missing-image-prefix           quay-broken no-prefix         no-prefix.values.yaml          {PREFIX}
warning missing-dask-pull-secret       quay-broken dask-no-pull      dask-no-pull.values.yaml
        dask-gateway.gateway.backend.imagePullSecrets
info    shared-image-prefix            quay-broken shared-a          shared-a.values.yaml           {PREFIX}
info    shared-image-prefix            quay-broken shared-b          shared-b.values.yaml           {PREFIX}
error   build-without-unlisted-choice  quay-broken fancy-no-unlisted fancy-no-unlisted.values.yaml
        jupyterhub.singleuser.profileList[slug=build].profile_options.image.unlisted_choice.enabled
warning build-option-not-image         quay-broken fancy-not-image   fancy-not-image.values.yaml
        jupyterhub.singleuser.profileList[slug=build].profile_options.img
warning pull-secret-registry-mismatch  quay-broken pull-host         pull-host.values.yaml
        jupyterhub.imagePullSecret.registry
warning registry-url-mismatch          quay-broken url-mismatch      url-mismatch.values.yaml
        binderhub-service.config.DockerRegistry.url
error   plaintext-secret               quay-broken plaintext         plaintext.values.yaml
        binderhub-service.buildPodsRegistryCredentials.password
error   plaintext-secret               quay-broken plaintext         plaintext.values.yaml
        jupyterhub.hub.config.GitHubOAuthenticator.client_secret
error   incomplete-build-credentials   quay-broken creds-not-string  enc-creds-not-string.secret.values.yaml
        binderhub-service.buildPodsRegistryCredentials.password
# quay.io, each hub with its own two files
error   missing-docker-registry        quay-broken no-registry       no-registry.values.yaml
        binderhub-service.config.DockerRegistry
error   incomplete-docker-registry     quay-broken no-password       enc-no-password.secret.values.yaml
        binderhub-service.config.DockerRegistry.password
error   incomplete-build-credentials   quay-broken creds-incomplete  creds-incomplete.values.yaml
        binderhub-service.buildPodsRegistryCredentials.username
error   missing-image-pull-secret      quay-broken no-pull           enc-no-pull.secret.values.yaml
        jupyterhub.imagePullSecret
error   incomplete-image-pull-secret   quay-broken pull-partial      pull-partial.values.yaml
        jupyterhub.imagePullSecret.username
error   unencrypted-secret-file        quay-broken unencrypted       enc-unencrypted.secret.values.yaml  -
error   plaintext-secret               quay-broken unencrypted       enc-unencrypted.secret.values.yaml
        jupyterhub.imagePullSecret.password
error   plaintext-secret               quay-broken unencrypted       enc-unencrypted.secret.values.yaml
        binderhub-service.config.DockerRegistry.password
error   plaintext-secret               quay-broken unencrypted       enc-unencrypted.secret.values.yaml
        binderhub-service.buildPodsRegistryCredentials.password
# Docker Hub, the daskhub wrapper, fancy-profiles without BinderHub, listing problems
error   image-prefix-mismatch          other-broken dockerhub-host   dockerhub-host.values.yaml     {PREFIX}
error   dockerhub-prefix-misread       other-broken dockerhub-dash   dockerhub-dash.values.yaml     {PREFIX}
error   option-without-choices         other-broken no-choices       no-choices.values.yaml
        jupyterhub.singleuser.profileList[slug=images].profile_options.image.choices
warning several-default-profiles       other-broken two-defaults     two-defaults.values.yaml
        jupyterhub.singleuser.profileList
warning several-default-choices        other-broken two-defaults     two-defaults.values.yaml
        jupyterhub.singleuser.profileList[slug=images].profile_options.image.choices
error   not-under-basehub              other-broken dask-wrong       dask-wrong.values.yaml         binderhub-service
error   not-under-basehub              other-broken dask-wrong       enc-dask-wrong.secret.values.yaml  jupyterhub
warning build-without-binderhub        other-broken fancy-no-binder  fancy-no-binder.values.yaml
        binderhub-service.enabled
info    image-prefix-without-binderhub other-broken prefix-only      prefix-only.values.yaml        {PREFIX}
warning unlisted-values-file           other-broken forgot           forgot.values.yaml             -
warning unlisted-values-file           other-broken -                orphan.values.yaml             -
error   invalid-yaml                   other-broken broken-yaml      broken-yaml.values.yaml        -
# Artifact Registry, gcr.io, jsonnet, a missing file
error   image-prefix-mismatch          gcp-broken ar-bad-prefix      ar-bad-prefix.values.yaml      {PREFIX}
warning missing-image-pull-secret      gcp-broken ar-cross-project   enc-ar-cross-project.secret.values.yaml
        jupyterhub.imagePullSecret
error   incomplete-docker-registry     gcp-broken ar-no-key          enc-ar-no-key.secret.values.yaml
        binderhub-service.config.DockerRegistry.password
error   incomplete-build-credentials   gcp-broken ar-no-key          enc-ar-no-key.secret.values.yaml
        binderhub-service.buildPodsRegistryCredentials.password
error   registry-shut-down             gcp-broken gcr                gcr.values.yaml
        binderhub-service.buildPodsRegistryCredentials.server
info    jsonnet-not-evaluated          gcp-broken with-jsonnet       with-jsonnet.jsonnet           -
# terraform/gcp/projects/gcp-broken.tfvars gives ar-no-key no registry_retention entry
info    no-image-retention             gcp-broken ar-no-key          ../../../terraform/gcp/projects/gcp-broken.tfvars -
error   missing-values-file            gcp-broken missing-file       cluster.yaml
        hubs[name=missing-file].helm_chart_values_files
# config/clusters/templates holds Jinja, not YAML
info    template-skipped               gcp        -                  ../templates/gcp/cluster.yaml  -
"""


def _expected(table: str) -> set[tuple[str, ...]]:
    rows = set()
    for record in re.split(r"\n(?=\S)", table.strip()):
        if record.startswith("#"):
            continue
        severity, code, cluster, hub, file, key = record.split()
        path = os.path.normpath(f"config/clusters/{cluster}/{file}")  # the template's "cluster" is its folder name
        rows.add((severity, code, cluster, hub, path, "" if key == "-" else key))
    return rows


EXPECTED = _expected(EXPECTED_TABLE)
CLEAN = {("clean-quay", "staging"), ("clean-quay", "prod"), ("clean-quay", "dask"), ("clean-ar", "prod")}


def _row(f: Finding) -> tuple[str, ...]:
    return (f.severity, f.code, f.cluster, f.hub, f.file, f.key)


@pytest.fixture(scope="module")
def tree(doctor_tree: Path) -> DoctorResult:
    return run(doctor_tree)


@pytest.fixture(scope="module")
def clusters(doctor_tree: Path) -> Path:
    return doctor_tree / "config" / "clusters"


def _secret_values(fixtures: Path) -> set[str]:
    """Every value under a credential-named key in the fixtures (plaintext or ENC), plus the sops data keys."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and (
            re.search(r"password|secret|token|enc$|mac", key, re.I) or node.startswith("ENC[")
        ):
            found.add(node)

    for path in [*fixtures.rglob("*.y*ml"), *fixtures.rglob("*.json"), *SOURCE.rglob("*.plain")]:
        text = path.read_text()
        found.update(re.findall(r"\S*PLAINTEXT\S*", text))
        try:
            walk(json.loads(text) if path.name.endswith((".json", ".json.plain")) else yaml.safe_load(text))
        except (yaml.YAMLError, json.JSONDecodeError):
            pass  # broken-yaml and the template: their values are caught by the PLAINTEXT marker
    return {v for v in found if len(v) > 6 and not v.startswith("<")}


@pytest.fixture(scope="module")
def secrets(doctor_tree: Path) -> set[str]:
    return _secret_values(doctor_tree)


def test_fixture_secrets_are_collected(secrets: set[str]) -> None:
    assert any("PLAINTEXT" in s for s in secrets) and any(s.startswith("ENC[") for s in secrets)
    assert {"dup-pass-PLAINTEXT-6", "dup-pass-PLAINTEXT-7", "client-secret-PLAINTEXT-2"} <= secrets


def test_the_tree_holds_real_sops_files(doctor_tree: Path, age_keys: Any) -> None:
    """The encrypted fixtures are real sops files (comments, sops: block, ENC values) that decrypt to the sources."""
    from tests.realsops import decrypt_file

    encrypted = sorted(doctor_tree.rglob("enc-*"))
    assert len(encrypted) == len(list(SOURCE.rglob("*.plain"))) + 1  # + enc-unencrypted, plaintext on purpose
    common = doctor_tree / "config" / "clusters" / "clean-quay" / "enc-common.secret.values.yaml"
    text = common.read_text()
    assert "#ENC[AES256_GCM," in text and "type:comment]" in text and "\nsops:\n" in text
    assert "password: ENC[AES256_GCM," in text and "PLAINTEXT" not in text
    plain = decrypt_file(common, age_keys[0])
    assert plain.returncode == 0, plain.stderr
    assert yaml.safe_load(plain.stdout) == yaml.safe_load((SOURCE / common.relative_to(doctor_tree)).with_name(
        common.name + ".plain").read_text())


# -- the flow ---------------------------------------------------------------------------------------------------


def test_every_finding_in_the_tree_and_nothing_else(tree: DoctorResult) -> None:
    assert {_row(f) for f in tree.findings} == EXPECTED
    assert len(tree.findings) == len(EXPECTED)  # no duplicates


@pytest.mark.parametrize("row", sorted(EXPECTED), ids=lambda r: f"{r[3]}:{r[1]}")
def test_each_finding(tree: DoctorResult, row: tuple[str, ...], secrets: set[str]) -> None:
    matches = [f for f in tree.findings if _row(f) == row]
    assert len(matches) == 1
    message = matches[0].message
    assert message and "\n" not in message
    assert not any(secret in message for secret in secrets)


def test_an_artifact_registry_hub_without_any_key_is_told_about_googles_key_policy(tree: DoctorResult) -> None:
    """Organizations created since May 2024 forbid service account keys: the likely reason an Artifact Registry hub
    has no password at all. The build pods' finding says so (once per hub); a hub with a key, or on quay.io, not."""
    [build] = [f for f in tree.findings if f.hub == "ar-no-key" and f.code == "incomplete-build-credentials"]
    message = " ".join(build.message.split())
    assert "iam.disableServiceAccountKeyCreation and iam.managed.disableServiceAccountKeyCreation" in message
    assert "created since May 2024" in message and "Organization Policy Administrator" in message
    assert "gcloud resource-manager org-policies disable-enforce iam.disableServiceAccountKeyCreation" in message
    assert "projects/PROJECT/policies/iam.managed.disableServiceAccountKeyCreation" in message
    others = [f for f in tree.findings if "disableServiceAccountKeyCreation" in f.message]
    assert others == [build]  # not on quay-broken/no-password, nor on DockerRegistry.password of the same hub


def test_clean_hubs_have_no_findings(tree: DoctorResult) -> None:
    examined = {(h.cluster, h.hub) for h in tree.hubs}
    assert CLEAN <= examined
    assert not [f for f in tree.findings if (f.cluster, f.hub) in CLEAN]
    assert not [f for f in tree.findings if f.cluster in ("clean-quay", "clean-ar")]  # nor file-level ones


@pytest.mark.parametrize("cluster", ["clean-quay", "clean-ar"])
def test_clean_cluster_alone(cluster: str, clusters: Path) -> None:
    result = run(clusters / cluster)
    assert result.findings == ()
    assert not result.has_errors
    hubs = {"clean-quay": "3 hubs", "clean-ar": "1 hub"}[cluster]
    assert result.summary() == f"0 errors, 0 warnings, 0 info in {hubs}"
    assert all(h.cluster_file == "cluster.yaml" for h in result.hubs)


def test_paths_are_relative_to_the_path_given(clusters: Path) -> None:
    result = run(clusters / "quay-broken")
    no_registry = next(f for f in result.findings if f.hub == "no-registry")
    assert no_registry.file == "no-registry.values.yaml"
    assert {h.hub for h in result.hubs} >= {"no-registry", "plaintext", "shared-a"}


def test_a_cluster_yaml_can_be_given_directly(clusters: Path) -> None:
    result = run(clusters / "clean-quay" / "cluster.yaml")
    assert [h.hub for h in result.hubs] == ["staging", "prod", "dask"]
    assert result.findings == ()


def test_hubs_in_cluster_yaml_order_and_findings_grouped(tree: DoctorResult) -> None:
    quay = [h.hub for h in tree.hubs if h.cluster == "quay-broken"]
    assert quay[:3] == ["use-registry-off", "bad-prefix", "wrong-org"]
    charts = {(h.cluster, h.hub): h.chart for h in tree.hubs}
    assert charts[("clean-quay", "dask")] == "daskhub" and charts[("clean-quay", "prod")] == "basehub"
    unencrypted = [f.severity for f in tree.findings if f.hub == "unencrypted"]
    assert unencrypted == ["error"] * 4


def test_shared_prefix_names_the_other_hub(tree: DoctorResult) -> None:
    a = next(f for f in tree.findings if f.hub == "shared-a" and f.code == "shared-image-prefix")
    assert "quay-broken/shared-b" in a.message and "quay.io/brokenorg/shared-" in a.message


def test_no_password_is_found_through_the_placeholder_not_reported_as_plaintext(tree: DoctorResult) -> None:
    # no-password.values.yaml holds `<set-in-encrypted-values>`: a placeholder, not a leaked secret
    finding = next(f for f in tree.findings if f.hub == "no-password")
    assert "placeholder" in finding.message
    assert not [f for f in tree.findings if f.code == "plaintext-secret" and "no-password" in f.file]


def test_no_cluster_yaml_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no cluster.yaml"):
        run(tmp_path)
    (tmp_path / "x.values.yaml").write_text("a: 1\n")
    with pytest.raises(UsageError, match="not a cluster.yaml"):
        run(tmp_path / "x.values.yaml")


def _cluster(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "clusters" / "c1"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


CLUSTER_TWO_HUBS = """\
    name: c1
    provider: gcp
    gcp:
      project: p1
    hubs:
      - name: a
        helm_chart: basehub
        helm_chart_values_files: [common.values.yaml, a.values.yaml]
      - name: b
        helm_chart: basehub
        helm_chart_values_files: [common.values.yaml, b.values.yaml]
    """


def test_a_shared_file_is_reported_once_for_all_its_hubs(tmp_path: Path) -> None:
    folder = _cluster(
        tmp_path,
        {
            "cluster.yaml": CLUSTER_TWO_HUBS,
            "common.values.yaml": "jupyterhub:\n  hub:\n    config:\n      DummyAuthenticator:\n"
            "        password: shared-PLAINTEXT\n",
            "a.values.yaml": "{}\n",
            "b.values.yaml": "{}\n",
        },
    )
    result = run(folder)
    key = "jupyterhub.hub.config.DummyAuthenticator.password"
    assert [_row(f) for f in result.findings] == [("error", "plaintext-secret", "c1", "-", "common.values.yaml", key)]
    assert "used by hubs a, b" in result.findings[0].message and "shared-PLAINTEXT" not in result.findings[0].message


def test_values_merge_in_listed_order_with_anchors_and_lists_replaced(tmp_path: Path) -> None:
    """Later files win, maps merge key by key, lists are replaced, `<<:` merge keys and aliases resolve."""
    ar = "us-central1-docker.pkg.dev"
    folder = _cluster(
        tmp_path,
        {
            "cluster.yaml": CLUSTER_TWO_HUBS,
            "common.values.yaml": f"""\
                registry: &registry
                  url: https://{ar}
                  username: _json_key
                binderhub-service:
                  enabled: true
                  config:
                    BinderHub:
                      image_prefix: {ar}/p1/common-registry/
                      use_registry: false
                    DockerRegistry:
                      <<: *registry
                      password: ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]
                  buildPodsRegistryCredentials:
                    server: https://{ar}
                    username: _json_key
                    password: ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]
                jupyterhub:
                  singleuser:
                    profileList:
                      - slug: broken
                        profile_options:
                          image:
                            dynamic_image_building: {{enabled: true}}
                """,
            # a: overrides use_registry and the prefix, replaces the profile list with a correct one
            "a.values.yaml": f"""\
                binderhub-service:
                  config:
                    BinderHub:
                      use_registry: true
                      image_prefix: {ar}/p1/a-registry/
                jupyterhub:
                  singleuser:
                    profileList:
                      - slug: fine
                        profile_options:
                          image:
                            dynamic_image_building: {{enabled: true}}
                            unlisted_choice: {{enabled: true}}
                            choices: {{py: {{kubespawner_override: {{image: "python:3.12"}}}}}}
                """,
            "b.values.yaml": "{}\n",
        },
    )
    result = run(folder)
    by_hub = {hub: sorted(f.code for f in result.findings if f.hub == hub) for hub in ("a", "b")}
    # a's own list replaced the shared one: none of the shared profile's problems, but the replacement is reported
    assert by_hub == {
        "a": ["profile-list-replaced"],
        "b": ["build-without-unlisted-choice", "option-without-choices", "use-registry-not-true"],
    }
    # the key b inherits is attributed to the shared file that sets it
    assert {f.file for f in result.findings if f.hub == "b"} == {"common.values.yaml"}
    [replaced] = [f for f in result.findings if f.hub == "a"]
    assert (replaced.severity, replaced.file) == ("warning", "a.values.yaml")
    assert "common.values.yaml" in replaced.message and "(broken)" in replaced.message


def test_daskhub_reads_keys_under_basehub_and_needs_dask_pull_secret(tmp_path: Path) -> None:
    folder = _cluster(
        tmp_path,
        {
            "cluster.yaml": """\
                name: c1
                provider: aws
                hubs:
                  - name: d
                    helm_chart: daskhub
                    helm_chart_values_files: [d.values.yaml]
                """,
            "d.values.yaml": """\
                basehub:
                  jupyterhub:
                    imagePullSecret:
                      create: true
                      registry: quay.io
                      username: &robot o+r
                      password: &enc ENC[AES256_GCM,data:A,iv:B,tag:C,type:str]
                  binderhub-service:
                    enabled: true
                    config:
                      BinderHub: {image_prefix: quay.io/o/c1-d-}
                      DockerRegistry: {url: quay.io, username: *robot, password: *enc}
                    buildPodsRegistryCredentials: {server: quay.io, username: *robot, password: *enc}
                """,
        },
    )
    # The daskhub chart runs dask-gateway by default: its pods need the pull secret too.
    key = "basehub.dask-gateway.gateway.backend.imagePullSecrets"
    assert [_row(f) for f in run(folder).findings] == [
        ("warning", "missing-dask-pull-secret", "c1", "d", "d.values.yaml", key)
    ]


# -- the command line -------------------------------------------------------------------------------------------

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()  # the command is registered in provision.cli by hand; a one-command app runs it directly
    app.command()(doctor)
    return app


def _no_secret_in(secrets: set[str], *outputs: str) -> None:
    for output in outputs:
        leaked = sorted(s for s in secrets if s in output)
        assert not leaked, leaked[:3]
        assert "PLAINTEXT" not in output and "ENC[" not in output


def test_cli_clean_cluster_exits_0_with_a_table_on_stderr(clusters: Path) -> None:
    result = runner.invoke(_app(), [str(clusters / "clean-quay")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "clean-quay/staging (basehub): no findings" in result.stderr
    assert "clean-quay/dask (daskhub): no findings" in result.stderr
    assert result.stderr.rstrip().endswith("0 errors, 0 warnings, 0 info in 3 hubs")


def test_cli_clean_cluster_json(clusters: Path) -> None:
    result = runner.invoke(_app(), [str(clusters / "clean-ar"), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["findings"] == [] and doc["summary"] == {"errors": 0, "warnings": 0, "info": 0, "hubs": 1}
    assert doc["hubs"] == [{"cluster": "clean-ar", "hub": "prod", "chart": "basehub", "cluster_file": "cluster.yaml"}]


def test_cli_tree_exits_1_and_prints_every_finding_without_secrets(
    tree: DoctorResult, doctor_tree: Path, secrets: set[str]
) -> None:
    result = runner.invoke(_app(), [str(doctor_tree)])
    assert result.exit_code == 1
    assert result.stdout == ""  # stdout carries machine output only
    lines = result.stderr.splitlines()
    assert "quay-broken/no-registry (basehub): 1 error" in lines
    assert "other-broken (files no single hub uses): 1 warning" in lines
    assert any(line.split()[:2] == ["error", "missing-docker-registry"] for line in lines)
    assert lines[-1] == tree.summary()
    assert re.fullmatch(r"\d+ errors, \d+ warnings, \d+ info in 39 hubs", lines[-1])
    _no_secret_in(secrets, result.stdout, result.stderr)

    json_run = runner.invoke(_app(), [str(doctor_tree), "--format", "json"])
    assert json_run.exit_code == 1
    doc = json.loads(json_run.stdout)
    assert {tuple(f[k] for k in ("severity", "code", "cluster", "hub", "file", "key")) for f in doc["findings"]} == (
        EXPECTED
    )
    assert doc["summary"]["errors"] == tree.count("error") > 0
    assert json_run.stderr.strip() == tree.summary()
    _no_secret_in(secrets, json_run.stdout, json_run.stderr)


def test_cli_warnings_only_exit_0(tmp_path: Path) -> None:
    folder = _cluster(
        tmp_path,
        {
            "cluster.yaml": "name: c1\nprovider: aws\nhubs:\n  - name: a\n    helm_chart: basehub\n"
            "    helm_chart_values_files: [a.values.yaml]\n",
            "a.values.yaml": "{}\n",
            "stray.values.yaml": "{}\n",
        },
    )
    result = runner.invoke(_app(), [str(folder), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert [f["code"] for f in json.loads(result.stdout)["findings"]] == ["unlisted-values-file"]


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(_app(), [str(tmp_path)])
    assert result.exit_code == 2 and "no cluster.yaml" in result.stderr and result.stdout == ""
    missing = runner.invoke(_app(), [str(tmp_path / "nope")])
    assert missing.exit_code == 2 and missing.stdout == ""


@pytest.mark.parametrize(
    ("cluster", "key"),
    [
        ("name: c1\nhubs:\n  - name: a\n    helm_chart_values_files: a.values.yaml\n",
         "hubs[name=a].helm_chart_values_files"),
        ("name: c1\nhubs: [a]\n", "hubs[0]"),
        ("name: c1\nhubs: a\n", "hubs"),
        ("name: c1\nhubs:\n  - domain: a.example.org\n", "hubs[0].name"),
        ("name: c1\nsupport:\n  helm_chart_values_files: support.values.yaml\nhubs: []\n",
         "support.helm_chart_values_files"),
        ("name: c1\nhubs:\n  - name: a\n    helm_chart_values_files: [[a.values.yaml]]\n",
         "hubs[name=a].helm_chart_values_files[0]"),
    ],
)  # fmt: skip
def test_a_cluster_yaml_the_deployer_cannot_use_is_an_error(tmp_path: Path, cluster: str, key: str) -> None:
    folder = _cluster(tmp_path, {"cluster.yaml": cluster, "a.values.yaml": "{}\n"})
    result = run(folder)
    layout = [f for f in result.findings if f.code == "bad-cluster-layout"]
    assert [(f.severity, f.file, f.key) for f in layout] == [("error", "cluster.yaml", key)]
    assert result.has_errors and layout[0].message.startswith(f"cluster.yaml: {key} is ")


def test_real_2i2c_shapes_that_are_not_problems(tmp_path: Path) -> None:
    """Two shapes from the real 2i2c tree: an API key read from the environment (`{env:NAME}`, jupyter-ai and
    opencode settings) is no plaintext secret, and `choices: {}` beside an enabled unlisted_choice is a free-text
    option fancy-profiles draws."""
    folder = _cluster(
        tmp_path,
        {
            "cluster.yaml": CLUSTER_TWO_HUBS,
            "common.values.yaml": """\
                jupyterhub:
                  singleuser:
                    extraFiles:
                      opencode:
                        data:
                          provider:
                            openai:
                              options:
                                apiKey: "{env:OPENAI_API_KEY}"
                                api_key: "${OPENAI_API_KEY}"
                    profileList:
                      - display_name: Any image
                        slug: any
                        default: true
                        profile_options:
                          image:
                            display_name: Image
                            choices: {}
                            unlisted_choice:
                              enabled: true
                              display_name: Image
                              kubespawner_override:
                                image: "{value}"
                """,
            "a.values.yaml": "{}\n",
            "b.values.yaml": "{}\n",
        },
    )
    assert [_row(f) for f in run(folder).findings] == []
