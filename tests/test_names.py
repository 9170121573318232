from __future__ import annotations

import pytest

from provision import names
from provision.errors import UsageError


@pytest.mark.parametrize("value", ["ab", "my-org", "org.name", "a_b", "2i2c", "x" * 255])
def test_quay_names_accepted(value: str) -> None:
    assert names.quay_name("organization name", value) == value


@pytest.mark.parametrize("value", ["a", "Org", "-org", "org-", "a..b", "a+b", "a b", "org\n", "", "x" * 256, "ö-org"])
def test_quay_names_rejected_with_value_and_rule(value: str) -> None:
    with pytest.raises(UsageError) as err:
        names.quay_name("organization name", value)
    assert repr(value) in str(err.value)
    assert "lower-case" in str(err.value)


def test_robot_full_name_length() -> None:
    assert names.quay_robot("org", "image_builder") == "org+image_builder"
    with pytest.raises(UsageError, match="at most 255"):
        names.quay_robot("o" * 200, "r" * 60)


@pytest.mark.parametrize("value", ["staging", "nasa-veda", "a", "hub1"])
def test_hub_names_accepted(value: str) -> None:
    assert names.hub_name("hub name", value) == value


@pytest.mark.parametrize("value", ["Staging", "-hub", "hub-", "hub_1", "h" * 64, "hub\n"])
def test_hub_names_rejected(value: str) -> None:
    with pytest.raises(UsageError, match="hub name"):
        names.hub_name("hub name", value)


@pytest.mark.parametrize("value", ["leap", "imagebuilding", "a" * 18, "hub-2"])
def test_ar_repo_accepted(value: str) -> None:
    assert names.ar_repo(value) == value


@pytest.mark.parametrize("value", ["a" * 19, "2hub", "Hub", "hub_1", "hub.1", ""])
def test_ar_repo_rejected(value: str) -> None:
    with pytest.raises(UsageError, match="repository name"):
        names.ar_repo(value)


@pytest.mark.parametrize("value", ["myorg", "2i2c", "abcd", "x" * 40, "org123"])
def test_dockerhub_namespaces_binderhub_reads(value: str) -> None:
    assert names.dockerhub_namespace("--namespace", value) == value
    assert names.binderhub_reads_as_docker_hub(f"{value}/c1-staging-binder-2dx")  # the name, tag split off


@pytest.mark.parametrize("value", ["my-org", "my.org", "my_org", "ab", "abc", "x" * 41, "MyOrg", "", "org\n"])
def test_dockerhub_namespaces_binderhub_misreads(value: str) -> None:
    """BinderHub takes a name for a Docker Hub one only when it matches [a-z0-9]{4,40}/…: otherwise it looks up
    another registry, finds nothing and rebuilds on every launch (facts charts.md §3)."""
    with pytest.raises(UsageError) as err:
        names.dockerhub_namespace("--namespace", value)
    assert repr(value) in str(err.value) and "BinderHub" in str(err.value)
    assert not names.binderhub_reads_as_docker_hub(f"{value}/c1-staging-binder-2dx")


@pytest.mark.parametrize(
    ("value", "rewritten"),
    [("quay.io/my_hubs/c1-staging-", "quay.io/my-hubs/c1-staging-"), ("Pangeo/x-", "pangeo/x-"),
     ("quay.io/ok/a-", None)],
)
def test_binderhub_rewrites_underscores_and_upper_case(value: str, rewritten: str | None) -> None:
    assert names.binderhub_rewrites(value) == rewritten


def test_names_binderhub_would_rewrite_are_refused_with_the_reason() -> None:
    assert names.kept_by_binderhub("organization name", "my-hubs") == "my-hubs"
    with pytest.raises(UsageError, match="BinderHub replaces '_' by '-'.*'my-hubs'"):
        names.kept_by_binderhub("organization name", "my_hubs")
