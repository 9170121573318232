"""Planning a hub-file removal, without servers: which keys leave the values file, and which comments stay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.hubconfig import HubRegistry
from provision.hubfiles.removal_target import RemovalTarget
from provision.hubfiles.remove import plan_removal

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


def test_z2jh_release_files_are_found_beside_the_hub_file_and_deleted_when_emptied(tmp_path: Path) -> None:
    """Files as `provision quay --chart z2jh --dask-gateway` writes them into an empty folder: each release's file
    is emptied by the removal and deleted (no cluster.yaml to unlist it from); another registry's sibling is
    refused, a sibling given as the hub's file too."""
    from provision import clusterrepo
    from provision.hubconfig import HubOptions, ImageChoice, Profile, public_values, releases
    from provision.hubfiles.remove import HubFiles, plan_hub_removal
    from provision.hubfiles.write import release_file

    options = HubOptions("z2jh", dask_gateway=True, profile=Profile(images=(ImageChoice("r", "rocker/binder:4.3"),)))
    hub_file = tmp_path / "staging.values.yaml"
    written = []
    for release, doc in releases(public_values(REGISTRY, options), "z2jh"):
        path = release_file(hub_file, release)
        clusterrepo.plan_values_edit(path, doc)[0].apply()  # as provision writes it
        written.append(path)
    assert [p.name for p in written] == [
        "staging.values.yaml", "staging.binderhub-service.values.yaml", "staging.dask-gateway.values.yaml",
    ]  # fmt: skip
    target = RemovalTarget(REGISTRY, "z2jh", pull_hosts=("quay.io",))
    removal = plan_hub_removal(target, HubFiles(hub_file, hub="staging"), sops_client=None)
    assert [(c.kind, c.subject) for c in removal.changes()] == [("delete_file", str(p)) for p in written]
    deleted = removal.changes()[1].detail
    assert "config.BinderHub.image_prefix" in deleted and "binderhub-service." not in deleted  # keys as in the file

    # A file edited after the plan is not deleted; the others are.
    from provision.errors import ProvisionError
    from provision.hubfiles.remove import apply_step

    written[1].write_text(written[1].read_text() + "nodeSelector: {pool: build}\n")
    with pytest.raises(ProvisionError, match="changed while this removal ran"):
        apply_step(removal, removal.changes()[1], sops_client=None)
    apply_step(removal, removal.changes()[2], sops_client=None)
    assert written[1].is_file() and not written[2].exists()
    written[1].write_text(written[1].read_text().replace("nodeSelector: {pool: build}\n", ""))

    other = RemovalTarget(replace(REGISTRY, image_prefix="quay.io/org/c1-other-"), "z2jh")
    with pytest.raises(UsageError, match="staging.binderhub-service.values.yaml describes another registry"):
        plan_hub_removal(other, HubFiles(hub_file), sops_client=None)
    with pytest.raises(UsageError, match="is the binderhub-service release's file"):
        plan_hub_removal(target, HubFiles(written[1]), sops_client=None)
