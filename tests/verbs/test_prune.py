"""provision prune on a registry v2 server (the default Pruner, registries/v2prune.py, through verbs/prune.py),
against a real docker-registry with deletion enabled; Docker Hub's side is tests/registries/dockerhub/test_prune.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.verbs.prune import split_reference
from provision.verbs.prune_rules import Rules
from tests.pruning import push_image, run, tags_of, write_values
from tests.servers.registry import DistributionRegistry

AUTH = ("builder", "builder-password")


@pytest.fixture
def registry() -> Iterator[DistributionRegistry]:
    with DistributionRegistry(htpasswd=dict([AUTH])) as server:
        yield server


def values(registry: DistributionRegistry, folder: Path, **kwargs: object) -> Path:
    return write_values(folder, server=registry.host, username=AUTH[0], password=AUTH[1],
                        prefix=f"{registry.host}/hubs/hub1-", **kwargs)  # type: ignore[arg-type]  # fmt: skip


def seed(registry: DistributionRegistry) -> dict[str, str]:
    url, push = registry.url, push_image
    return {
        "new": push(url, "hubs/hub1-a", ("new",), created_days_ago=1, content="new", auth=AUTH),
        "old": push(url, "hubs/hub1-a", ("old",), created_days_ago=60, content="old", auth=AUTH),
        "pinned": push(url, "hubs/hub1-a", ("pinned",), created_days_ago=90, content="pinned", auth=AUTH),
        # one image under a recent and an old tag: deleting the old tag's digest would take the recent one
        "shared": push(url, "hubs/hub1-b", ("v1",), created_days_ago=2, content="s", auth=AUTH),
        "v0": push(url, "hubs/hub1-b", ("v0",), created_days_ago=70, content="v0", auth=AUTH),
        "gone": push(url, "hubs/hub1-c", ("x", "y"), created_days_ago=99, content="c", auth=AUTH),
        "other": push(url, "hubs/hub2-a", ("old",), created_days_ago=99, content="o", auth=AUTH),
    }


def test_older_than_deletes_by_digest_and_keeps_what_must_stay(registry: DistributionRegistry, tmp_path: Path) -> None:
    seed(registry)
    push_image(registry.url, "hubs/hub1-b", ("latest",), created_days_ago=2, content="s", auth=AUTH)  # = v1's digest
    push_image(registry.url, "hubs/hub1-b", ("older-alias",), created_days_ago=2, content="s", auth=AUTH)
    path = values(registry, tmp_path, choices=(f"{registry.host}/hubs/hub1-a:pinned",))
    result = run(path, Rules(older_than=30), registry_url=registry.url)
    plans = {p.name: p for p in result.plans}
    assert set(plans) == {"hubs/hub1-a", "hubs/hub1-b", "hubs/hub1-c"}  # the other hub's repository is not read
    assert {d.tag.name for d in plans["hubs/hub1-c"].delete} == {"x", "y"}
    assert not plans["hubs/hub1-c"].delete_repository  # registry v2 cannot delete a repository
    assert any("cannot delete a repository" in note for note in result.notes)
    assert any("every tag on a deleted digest" in note for note in result.notes)
    assert tags_of(registry.url, "hubs/hub1-a", auth=AUTH) == ["new", "pinned"]
    assert tags_of(registry.url, "hubs/hub1-b", auth=AUTH) == ["latest", "older-alias", "v1"]
    assert tags_of(registry.url, "hubs/hub1-c", auth=AUTH) == []
    assert tags_of(registry.url, "hubs/hub2-a", auth=AUTH) == ["old"]
    # a second run finds nothing more to delete
    assert run(path, Rules(older_than=30), registry_url=registry.url).to_delete == 0


def test_a_kept_tag_keeps_its_digest_and_the_plan_says_why(registry: DistributionRegistry, tmp_path: Path) -> None:
    push_image(registry.url, "hubs/hub1-b", ("v1", "v2", "v3"), created_days_ago=40, content="s", auth=AUTH)
    result = run(values(registry, tmp_path), Rules(keep=1), registry_url=registry.url, dry_run=True)
    reasons = sorted(d.reason for d in result.plans[0].decisions)
    assert result.to_delete == 0
    assert reasons == ["among the newest 1", "shares its digest with v1", "shares its digest with v1"]


def test_dry_run_changes_nothing(registry: DistributionRegistry, tmp_path: Path) -> None:
    seed(registry)
    result = run(values(registry, tmp_path), Rules(older_than=30), registry_url=registry.url, dry_run=True)
    assert result.to_delete == 5 and result.deleted_tags == 0
    assert tags_of(registry.url, "hubs/hub1-c", auth=AUTH) == ["x", "y"]
    assert tags_of(registry.url, "hubs/hub1-a", auth=AUTH) == ["new", "old", "pinned"]


def test_unused_for_needs_pull_times_that_v2_does_not_record(registry: DistributionRegistry, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="records none"):
        run(values(registry, tmp_path), Rules(unused_for=30), registry_url=registry.url)


def test_wrong_password_fails_without_deleting(registry: DistributionRegistry, tmp_path: Path) -> None:
    seed(registry)
    path = write_values(tmp_path, server=registry.host, username="builder", password="wrong",
                        prefix=f"{registry.host}/hubs/hub1-")  # fmt: skip
    with pytest.raises(Exception, match="HTTP 401") as caught:
        run(path, Rules(older_than=30), registry_url=registry.url)
    assert "same command" not in str(caught.value)
    assert tags_of(registry.url, "hubs/hub1-c", auth=AUTH) == ["x", "y"]


def test_a_registry_without_deletion_says_how_to_enable_it(tmp_path: Path) -> None:
    with DistributionRegistry(htpasswd=dict([AUTH]), delete_enabled=False) as registry:
        push_image(registry.url, "hubs/hub1-a", ("old",), created_days_ago=60, content="old", auth=AUTH)
        with pytest.raises(Exception, match="deletion is not enabled") as caught:
            run(values(registry, tmp_path), Rules(older_than=30), registry_url=registry.url)
        assert "storage.delete.enabled" in str(caught.value) and "same command" not in str(caught.value)
        assert tags_of(registry.url, "hubs/hub1-a", auth=AUTH) == ["old"]


@pytest.mark.parametrize(("image", "expected"), [
    ("quay.io/org/x:1", ("quay.io", "org/x", "1", None)),
    ("myorg/hub-x:abc", ("docker.io", "myorg/hub-x", "abc", None)),
    ("index.docker.io/myorg/x:abc", ("docker.io", "myorg/x", "abc", None)),
    ("python", ("docker.io", "library/python", None, None)),
    ("127.0.0.1:5000/hubs/x@sha256:ab", ("127.0.0.1:5000", "hubs/x", None, "sha256:ab")),
])  # fmt: skip
def test_split_reference(image: str, expected: tuple[str, str, str | None, str | None]) -> None:
    assert split_reference(image) == expected


def test_the_registrys_garbage_collection_then_frees_the_deleted_images_bytes(
    registry: DistributionRegistry, tmp_path: Path
) -> None:
    """Issue 20: a deletion by digest frees nothing by itself; docker-registry's garbage-collect then deletes the
    blobs no manifest references, and the storage shrinks by what the deleted images held."""
    seed(registry)
    registry.garbage_collect()  # nothing to free yet: every blob is referenced
    before = registry.storage_bytes()
    result = run(values(registry, tmp_path), Rules(older_than=30), registry_url=registry.url)
    assert result.to_delete > 0
    registry.garbage_collect()
    after = registry.storage_bytes()
    assert after < before, (before, after)
    assert tags_of(registry.url, "hubs/hub2-a", auth=AUTH) == ["old"]  # another hub's image survives the collection
