"""Planning a hub-file removal, without servers: which keys leave the values file, and which comments stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.flows.hubfiles_remove import RemovalTarget, plan_removal
from provision.hubconfig import HubRegistry

REGISTRY = HubRegistry(
    kind="quay", server="https://quay.io", username="org+bot", image_prefix="quay.io/org/c1-hub-",
    pull_secret_registry="quay.io",
)  # fmt: skip
TARGET = RemovalTarget(REGISTRY, "basehub", pull_hosts=("quay.io",))
HAND_WRITTEN = """\
# top comment
jupyterhub:
  singleuser:
    profileList:
      - slug: small
        display_name: Small
      - slug: build-your-own-image
        display_name: Ours
binderhub-service:
  enabled: true # ours
  # networkPolicy comment
  networkPolicy:
    enabled: false
  config:
    BinderHub:
      image_prefix: quay.io/org/c1-hub-
      use_registry: false
    # the registry
    DockerRegistry:
      url: https://quay.io
      username: org+bot
  buildPodsRegistryCredentials:
    server: https://quay.io
    username: org+bot
# trailing comment for z
z: 1
"""
EXPECTED = """\
# top comment
jupyterhub:
  singleuser:
    profileList:
      - slug: small
        display_name: Small
binderhub-service:
  # networkPolicy comment
  networkPolicy:
    enabled: false
  config:
    BinderHub:
      use_registry: false
    # the registry
# trailing comment for z
z: 1
"""  # a comment is never dropped, even one about a key that went


def plan(path: Path, target: RemovalTarget = TARGET):  # type: ignore[no-untyped-def]
    return plan_removal(target, values_file=path, secret_file=None, cluster_config=None, hub="hub", sops_client=None)


def test_keys_leave_and_the_comments_of_the_lines_after_them_stay(tmp_path: Path) -> None:
    values = tmp_path / "hub.values.yaml"
    values.write_text(HAND_WRITTEN)
    removal = plan(values)
    assert removal.values_edit is not None and removal.values_edit.updated == EXPECTED
    assert "binderhub-service.config.BinderHub.use_registry" not in removal.values_removed  # false: not ours
    assert "jupyterhub.singleuser.profileList[slug=build-your-own-image]" in removal.values_removed
    assert any("kept binderhub-service.config.BinderHub.use_registry" in n for n in removal.notes)
    assert values.read_text() == HAND_WRITTEN  # planning writes nothing


def test_values_of_another_registry_are_refused(tmp_path: Path) -> None:
    values = tmp_path / "hub.values.yaml"
    values.write_text(HAND_WRITTEN.replace("org+bot", "other+bot"))
    with pytest.raises(UsageError, match="DockerRegistry.username is 'other\\+bot', not 'org\\+bot'"):
        plan(values)


def test_a_hand_written_build_profile_is_named(tmp_path: Path) -> None:
    values = tmp_path / "hub.values.yaml"
    values.write_text(
        HAND_WRITTEN.replace(
            "        display_name: Small\n",
            "        display_name: Small\n        profile_options:\n          image:\n"
            "            dynamic_image_building:\n              enabled: true\n",
        )
    )
    assert any("profile 'small'" in n and "edit it by hand" in n for n in plan(values).notes)


def test_nothing_to_remove(tmp_path: Path) -> None:
    values = tmp_path / "hub.values.yaml"
    values.write_text(EXPECTED)
    removal = plan(values)
    assert removal.values_edit is None and removal.changes() == []
