"""verify's offline part: reading a hub's values and judging their consistency."""

from __future__ import annotations

import pytest

from provision.errors import UsageError
from provision.flows.verify import PullSecret, VerifyRequest, check_config, from_values, host_of, kind_of
from provision.hubconfig import HubOptions, HubRegistry, public_values, secret_values

QUAY = HubRegistry("quay", "https://quay.io", "org+image_builder", "quay.io/org/c1-hub-", "pw", None, "quay.io")
AR = HubRegistry("artifact-registry", "https://us-central1-docker.pkg.dev", "_json_key",
                 "us-central1-docker.pkg.dev/proj/hub-registry/", "{}")  # fmt: skip


@pytest.mark.parametrize("chart", ["basehub", "daskhub"])
def test_values_round_trip_through_the_model(chart: str) -> None:
    options = HubOptions(chart=chart)  # type: ignore[arg-type]
    registry, pull = from_values(public_values(QUAY, options), secret_values(QUAY, options))
    assert (registry.server, registry.username, registry.password, registry.image_prefix) == (
        "https://quay.io", "org+image_builder", "pw", "quay.io/org/c1-hub-")  # fmt: skip
    assert registry.kind == "quay"
    assert pull == PullSecret("quay.io", "org+image_builder", "pw")


def test_missing_values_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="buildPodsRegistryCredentials.password"):
        from_values(public_values(QUAY), {})


@pytest.mark.parametrize(
    ("server", "username", "kind"),
    [
        ("https://quay.io", "o+r", "quay"),
        ("https://quay.example.org", "o+r", "quay"),
        ("https://us-central1-docker.pkg.dev", "_json_key", "artifact-registry"),
        ("https://index.docker.io/v1/", "me", "dockerhub"),
        ("http://127.0.0.1:5000", "user", "registry"),
    ],
)
def test_kind_of(server: str, username: str, kind: str) -> None:
    assert kind_of(server, username) == kind


def test_host_of() -> None:
    assert host_of("https://quay.io") == host_of("quay.io") == "quay.io"
    assert host_of("https://index.docker.io/v1/") == host_of("https://registry-1.docker.io") == "docker.io"


def statuses(req: VerifyRequest) -> dict[str, str]:
    return {c.name: c.status for c in check_config(req)}


def test_consistent_values_pass() -> None:
    assert set(statuses(VerifyRequest(QUAY, PullSecret("quay.io", "o", "p"))).values()) == {"pass"}
    assert set(statuses(VerifyRequest(AR)).values()) == {"pass"}


@pytest.mark.parametrize(
    ("registry", "pull", "failing"),
    [
        (HubRegistry("quay", "https://quay.io", "o+r", "ghcr.io/o/x-", "p"), PullSecret("quay.io", "o", "p"),
         "image_prefix matches the registry"),
        (HubRegistry("artifact-registry", "https://us-central1-docker.pkg.dev", "_json_key",
                     "us-central1-docker.pkg.dev/proj/", "{}"), None, "image_prefix matches the registry"),
        (QUAY, PullSecret("ghcr.io", "o", "p"), "pull secret is for the push registry"),
        (QUAY, None, "pull secret present"),
    ],
)  # fmt: skip
def test_inconsistencies_fail(registry: HubRegistry, pull: PullSecret | None, failing: str) -> None:
    assert statuses(VerifyRequest(registry, pull))[failing] == "fail"


@pytest.mark.parametrize(
    ("lookup", "expected", "words"),
    [
        (PullSecret("https://quay.io", "org+image_builder", "pw"), "pass", "the build pods' credentials"),
        (PullSecret("https://quay.io", "org+other", "pw2"), "pass", "its own credentials"),
        (PullSecret("", "", ""), "fail", "DockerRegistry.url is not set"),
        (PullSecret("https://quay.io", "org+image_builder", ""), "fail", "DockerRegistry.password not set"),
        (PullSecret("https://registry-1.docker.io", "org+image_builder", "pw"), "fail", "is not the push registry"),
    ],
)
def test_binderhub_lookup_login(lookup: PullSecret, expected: str, words: str) -> None:
    """BinderHub's own DockerRegistry login: without it, image lookups get 401 and every launch rebuilds."""
    (check,) = [c for c in check_config(VerifyRequest(QUAY, None, lookup=lookup)) if c.name.startswith("BinderHub")]
    assert check.status == expected and words in check.detail
    assert "pw" not in check.detail.replace("pw2", "")


def test_lookup_login_read_from_values_wrapped_or_not() -> None:
    from provision.flows.verify import lookup_from_values

    for chart in ("basehub", "daskhub"):
        options = HubOptions(chart=chart)
        lookup = lookup_from_values(public_values(QUAY, options), secret_values(QUAY, options))
        assert lookup == PullSecret("https://quay.io", "org+image_builder", "pw")
    assert lookup_from_values({}, {}) == PullSecret("", "", "")


def test_target_url_of_a_bare_server_is_https() -> None:
    from provision.flows.verify import target_url

    bare = HubRegistry("quay", "quay.io", "o+r", "quay.io/o/x-", "pw")
    assert target_url(VerifyRequest(bare)) == "https://quay.io"
    assert target_url(VerifyRequest(bare, registry_url="http://127.0.0.1:5000")) == "http://127.0.0.1:5000"
