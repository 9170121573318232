"""Round-trip edits of values files and cluster.yaml: every other byte, comment and key stays."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.clusterrepo import (
    ClusterRepoError,
    ValuesConflict,
    deep_merge,
    hub_chart,
    plan_registration,
    plan_values_edit,
)
from provision.hubconfig import HubOptions, HubRegistry, ImageChoice, Profile, profile_values, public_values

# Shaped like config/clusters/<cluster>/<hub>.values.yaml in 2i2c-org/infrastructure.
VALUES = """\
# Values for the staging hub
nfs:
  pv:
    # from terraform
    serverIP: 10.0.0.2
jupyterhub:
  ingress:
    hosts: [staging.c1.2i2c.cloud]
    tls:
      - hosts: [staging.c1.2i2c.cloud]
        secretName: https-auto-tls
  custom:
    homepage:
      templateVars:
        org:
          name: "Example Org" # shown on the home page
  singleuser:
    profileList:
      - display_name: "Small"
        slug: small
        default: true
        kubespawner_override:
          mem_limit: 2G
  hub:
    config:
      JupyterHub:
        authenticator_class: github
binderhub-service:
  config:
    BinderHub:
      image_prefix: quay.io/old/c1-staging-   # to be replaced
    DockerRegistry:
      url: &url https://quay.io
      username: &username org+image_builder
  buildPodsRegistryCredentials:
    server: *url
    username: *username
"""

CLUSTER = """\
name: c1
provider: gcp # https://console.cloud.google.com
gcp:
  key: enc-deployer-credentials.secret.json
  project: c1-project
  cluster: c1-cluster
  zone: us-central1
hubs:
  - name: staging
    display_name: "C1 staging"
    domain: staging.c1.2i2c.cloud
    helm_chart: basehub
    helm_chart_values_files:
      # The order in which these files are listed matters
      - common.values.yaml
      - staging.values.yaml
      - enc-staging.secret.values.yaml
  - name: prod
    display_name: "C1 prod"
    domain: c1.2i2c.cloud
    helm_chart: daskhub
    helm_chart_values_files: [common.values.yaml, prod.values.yaml, enc-prod.secret.values.yaml]
  - name: research
    domain: research.c1.2i2c.cloud
    helm_chart: basehub
"""

REGISTRY = HubRegistry(
    "quay", "https://quay.io", "org+image_builder", "quay.io/org/c1-staging-", "tok", pull_secret_registry="quay.io"
)


def test_values_merge_keeps_comments_order_and_unrelated_keys(tmp_path: Path) -> None:
    path = tmp_path / "staging.values.yaml"
    path.write_text(VALUES)
    edit, report = plan_values_edit(path, public_values(REGISTRY))
    assert path.read_text() == VALUES  # planning writes nothing
    text = edit.updated
    for line in VALUES.splitlines():
        if "image_prefix" not in line:
            assert line in text, f"lost: {line!r}"
    merged = yaml.safe_load(text)
    assert merged["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == "quay.io/org/c1-staging-"
    assert merged["binderhub-service"]["buildPodsRegistryCredentials"]["server"] == "https://quay.io"
    assert merged["jupyterhub"]["hub"]["config"]["JupyterHub"]["authenticator_class"] == "github"
    assert report.replaced == ["binderhub-service.config.BinderHub.image_prefix"]
    assert report.added == ["binderhub-service.enabled", "binderhub-service.config.BinderHub.use_registry"]
    assert "&url" in text and "*username" in text  # equal values leave the anchors alone
    edit.apply()
    again, report = plan_values_edit(path, public_values(REGISTRY))
    assert not again.changed and not report.changed


def test_replacing_an_anchored_value_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "common.values.yaml"
    path.write_text(VALUES)
    other = HubRegistry("quay", "https://quay.example.org", "org+image_builder", "quay.example.org/org/")
    edit, report = plan_values_edit(path, public_values(other))
    assert report.anchored == [
        "binderhub-service.config.DockerRegistry.url",
        "binderhub-service.buildPodsRegistryCredentials.server",
    ]
    merged = yaml.safe_load(edit.updated)["binderhub-service"]
    assert merged["config"]["DockerRegistry"]["url"] == "https://quay.example.org"
    assert merged["buildPodsRegistryCredentials"]["server"] == "https://quay.example.org"


def test_profile_list_is_merged_by_slug(tmp_path: Path) -> None:
    path = tmp_path / "staging.values.yaml"
    path.write_text(VALUES)
    profile = Profile(images=(ImageChoice("r", "rocker/binder:4.3"),))
    edit, _ = plan_values_edit(path, profile_values(profile))
    profiles = yaml.safe_load(edit.updated)["jupyterhub"]["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles] == ["small", "build-your-own-image"]
    edit.apply()
    again, _ = plan_values_edit(path, profile_values(profile))
    assert not again.changed


def test_new_values_file_uses_the_2i2c_style(tmp_path: Path) -> None:
    edit, _ = plan_values_edit(tmp_path / "new.values.yaml", {"a": {"b": [{"name": "x"}]}})
    assert edit.original is None
    assert edit.updated == "a:\n  b:\n    - name: x\n"


def test_refuses_to_reformat(tmp_path: Path) -> None:
    path = tmp_path / "odd.values.yaml"
    odd = "a:    1\nb:\n   c: 2\n"
    path.write_text(odd)
    with pytest.raises(ClusterRepoError, match="without reformatting"):
        plan_values_edit(path, {"d": 1})
    assert path.read_text() == odd


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.values.yaml"
    path.write_text("a: 1\nb: [unclosed\nc: 2\n")
    with pytest.raises(ClusterRepoError) as err:
        plan_values_edit(path, {"d": 1})
    assert str(path) in str(err.value) and err.value.line is not None


def test_registration_keeps_encrypted_files_last(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    files = [tmp_path / "staging.binder.values.yaml", tmp_path / "enc-staging.binder.secret.values.yaml"]
    edit = plan_registration(cluster, "staging", files)
    assert edit.updated == CLUSTER.replace(
        "      - staging.values.yaml\n      - enc-staging.secret.values.yaml\n",
        "      - staging.values.yaml\n      - staging.binder.values.yaml\n      - enc-staging.secret.values.yaml\n"
        "      - enc-staging.binder.secret.values.yaml\n",
    )
    edit.apply()
    assert not plan_registration(cluster, "staging", files).changed


def test_registration_flow_list_and_missing_list(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    prod = plan_registration(cluster, "prod", [tmp_path / "binder.values.yaml"])
    assert "[common.values.yaml, prod.values.yaml, binder.values.yaml, enc-prod.secret.values.yaml]" in prod.updated
    research = plan_registration(cluster, "research", [tmp_path / "research.values.yaml"])
    assert yaml.safe_load(research.updated)["hubs"][2]["helm_chart_values_files"] == ["research.values.yaml"]
    assert research.updated.startswith(CLUSTER.rstrip("\n"))


def test_unknown_hub_and_chart_detection(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    with pytest.raises(ClusterRepoError, match="no hub named 'nope'.*staging, prod, research"):
        plan_registration(cluster, "nope", [tmp_path / "x.values.yaml"])
    assert hub_chart(cluster, "prod") == "daskhub"
    assert hub_chart(cluster, "staging") == "basehub"


def leaves(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            out.update(leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def kind_conflict(old: Any, new: Any, prefix: str = "") -> str | None:
    """The first key (in `new`'s order, depth first) holding a mapping on one side and a scalar on the other."""
    for key, value in new.items():
        path = f"{prefix}.{key}" if prefix else key
        if key in old and isinstance(old[key], dict) != isinstance(value, dict):
            return path
        if key in old and isinstance(value, dict):
            found = kind_conflict(old[key], value, path)
            if found:
                return found
    return None


keys = st.sampled_from(["a", "b", "c", "password", "config"])
trees = st.recursive(
    st.one_of(st.integers(0, 3), st.text("xyz", max_size=2)),
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=3),
    max_leaves=12,
).filter(lambda t: isinstance(t, dict))


@settings(max_examples=300, deadline=None)
@given(old=trees, new=trees)
def test_deep_merge_loses_nothing_unrelated_and_adds_everything_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    merged = copy.deepcopy(old)
    conflict = kind_conflict(old, new)
    if conflict is not None:  # a scalar where a mapping goes, or the reverse: refused, naming the key
        with pytest.raises(ValuesConflict, match=f": {conflict}: is a "):
            deep_merge(merged, new)
        return
    report = deep_merge(merged, new)
    merged_leaves, new_leaves = leaves(merged), leaves(new)
    for path, value in new_leaves.items():  # every new key is present with its new value
        assert merged_leaves.get(path) == value
    for path, value in leaves(old).items():
        overridden = any(path[: len(p)] == p or p[: len(path)] == path for p in new_leaves)
        if not overridden:  # no unrelated key is lost
            assert merged_leaves.get(path) == value
    dotted = {".".join(p) for p in leaves(old)} | {".".join(p[:i]) for p in leaves(old) for i in range(1, len(p))}
    assert all(p in dotted for p in report.replaced)  # only existing keys are reported as replaced


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("binderhub-service: x\n", "binderhub-service: is a scalar where provision writes a mapping"),
        ("jupyterhub:\n  singleuser:\n    profileList: 3\n",
         "jupyterhub.singleuser.profileList: is a scalar where provision writes a list"),
        ("jupyterhub:\n  singleuser:\n    profileList:\n      - slug: small\n      - 3\n",
         "jupyterhub.singleuser.profileList[1]: is a scalar in a list of mappings"),
        ("binderhub-service:\n  config: [1, 2]\n", "binderhub-service.config: is a list where"),
        ("binderhub-service:\n  enabled:\n    x: 1\n", "binderhub-service.enabled: is a mapping where"),
        # Through an alias the change would reach another key: refused (see clusterrepo._refuse_shared).
        ("base: &x\n  singleuser: {}\njupyterhub: *x\n", "jupyterhub: is shared through the YAML anchor &x"),
        ("jupyterhub: &x\n  singleuser: {}\nother: *x\n", "jupyterhub: is shared through the YAML anchor &x"),
        ("defaults: &d\n  singleuser:\n    cpu_limit: 1\njupyterhub:\n  <<: *d\n",
         "jupyterhub.singleuser: comes from the YAML merge key `<<: *d`"),
    ],
)  # fmt: skip
def test_wrong_kinds_and_aliased_targets_are_refused_not_replaced(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "staging.values.yaml"
    path.write_text(text)
    profile = Profile(images=(ImageChoice("r", "rocker/binder:4.3"),))
    with pytest.raises(ValuesConflict) as err:
        plan_values_edit(path, public_values(REGISTRY, HubOptions(profile=profile)))
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"{path}: {message}")
    assert path.read_text() == text


def test_null_sections_and_profiles_without_slug_are_filled_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "staging.values.yaml"
    path.write_text("binderhub-service:\njupyterhub:\n  singleuser:\n    profileList:\n      - display_name: Small\n")
    profile = Profile(images=(ImageChoice("r", "rocker/binder:4.3"),))
    edit, _ = plan_values_edit(path, public_values(REGISTRY, HubOptions(profile=profile)))
    merged = yaml.safe_load(edit.updated)
    assert merged["binderhub-service"]["enabled"] is True
    profiles = merged["jupyterhub"]["singleuser"]["profileList"]
    assert [p.get("slug") for p in profiles] == [None, "build-your-own-image"]  # the user's profile stays


@pytest.mark.parametrize("text", ["# values for the staging hub\n# (Zero to JupyterHub)\n", "---\n# comments\n", ""])
def test_comment_only_or_empty_values_file_keeps_its_comments(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    edit, report = plan_values_edit(path, public_values(REGISTRY))
    assert report.added and edit.updated.startswith(text)
    assert yaml.safe_load(edit.updated) == public_values(REGISTRY)
    edit.apply()
    again, _ = plan_values_edit(path, public_values(REGISTRY))
    assert not again.changed


@pytest.mark.parametrize(("bom", "newline"), [("\ufeff", "\n"), ("", "\r\n"), ("\ufeff", "\r\n")])
def test_bom_and_crlf_files_are_edited_byte_for_byte(tmp_path: Path, bom: str, newline: str) -> None:
    path = tmp_path / "staging.values.yaml"
    original = (bom + VALUES.replace("\n", newline)).encode()
    path.write_bytes(original)
    plain = tmp_path / "plain.values.yaml"
    plain.write_text(VALUES)
    expected = bom + plan_values_edit(plain, public_values(REGISTRY))[0].updated.replace("\n", newline)
    edit, _ = plan_values_edit(path, public_values(REGISTRY))
    edit.apply()
    assert path.read_bytes() == expected.encode()  # the same edit, every line ending and the BOM kept
    assert not plan_values_edit(path, public_values(REGISTRY))[0].changed


def test_mixed_line_endings_are_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "staging.values.yaml"
    path.write_bytes(b"a: 1\r\nb: 2\n")
    with pytest.raises(ClusterRepoError) as err:
        plan_values_edit(path, {"c": 3})
    assert "mixes Windows (CRLF) and Unix (LF) line endings" in str(err.value)
    assert "dos2unix" in str(err.value)
    assert path.read_bytes() == b"a: 1\r\nb: 2\n"
