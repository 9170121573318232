"""verify's offline part: reading a hub's values and judging their consistency."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.errors import UsageError
from provision.hubconfig import HubOptions, HubRegistry, public_values, secret_values
from provision.registries.base import host_of
from provision.verbs.verify import PullSecret, VerifyRequest, check_config, from_values, kind_of
from tests.conftest import REPO

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
    from provision.verbs.verify import lookup_from_values

    for chart in ("basehub", "daskhub"):
        options = HubOptions(chart=chart)
        lookup = lookup_from_values(public_values(QUAY, options), secret_values(QUAY, options))
        assert lookup == PullSecret("https://quay.io", "org+image_builder", "pw")
    assert lookup_from_values({}, {}) == PullSecret("", "", "")


def test_target_url_of_a_bare_server_is_https() -> None:
    from provision.verbs.verify import target_url

    bare = HubRegistry("quay", "quay.io", "o+r", "quay.io/o/x-", "pw")
    assert target_url(VerifyRequest(bare)) == "https://quay.io"
    assert target_url(VerifyRequest(bare, registry_url="http://127.0.0.1:5000")) == "http://127.0.0.1:5000"


VALUES = (
    "binderhub-service:\n  enabled: true\n  config:\n    BinderHub:\n      image_prefix: quay.io/org/c-h-\n"
    "    DockerRegistry:\n      url: https://quay.io\n      username: org+robot\n"
    "  buildPodsRegistryCredentials: quay.io\n"
)
STDIN_SECRET = "binderhub-service:\n  config:\n    DockerRegistry:\n      password: pw\n"


def _verify(values: Path, secret: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "verify", "--values-file", str(values), "--secret-stdin"],
        input=secret, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=values.parent,
    )  # fmt: skip


def test_verify_values_with_a_wrongly_typed_key_is_a_message_not_a_bug(tmp_path: Path) -> None:
    """QA: a values file where `buildPodsRegistryCredentials` is a string (a typo a user makes) made verify say
    "unexpected TypeError ... This is a bug in provision". Expected: a usage error naming the file and the key."""
    values = tmp_path / "staging.values.yaml"
    values.write_text(VALUES)
    result = _verify(values, STDIN_SECRET)
    assert result.returncode == 2, result.stderr
    assert "bug in provision" not in result.stderr and "buildPodsRegistryCredentials" in result.stderr
    assert "staging.values.yaml: binderhub-service.buildPodsRegistryCredentials is a string" in result.stderr


WRONG = {"a string": "oops", "a list": "[a, b]", "a number": "42", "a boolean (true)": "true"}
MAPPINGS = ["binderhub-service", "binderhub-service.buildPodsRegistryCredentials", "binderhub-service.config",
            "binderhub-service.config.BinderHub", "binderhub-service.config.DockerRegistry", "jupyterhub",
            "jupyterhub.imagePullSecret"]  # fmt: skip
STRINGS = ["binderhub-service.buildPodsRegistryCredentials.username", "binderhub-service.config.BinderHub.image_prefix",
           "binderhub-service.config.DockerRegistry.url", "jupyterhub.imagePullSecret.password"]  # fmt: skip
GOOD = {
    "binderhub-service": {
        "enabled": True,
        "config": {"BinderHub": {"image_prefix": "quay.io/org/c-h-"},
                   "DockerRegistry": {"url": "https://quay.io", "username": "org+r", "password": "pw"}},
        "buildPodsRegistryCredentials": {"server": "https://quay.io", "username": "org+r", "password": "pw"},
    },
    "jupyterhub": {"imagePullSecret": {"create": True, "registry": "quay.io", "username": "org+r", "password": "pw"}},
}  # fmt: skip


def _with(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


CASES = [
    (key, kind) for key in [*MAPPINGS, *STRINGS] for kind in [*WRONG, "null"] if kind != "a string" or key in MAPPINGS
]


@pytest.mark.parametrize("where", ["values", "secret", "basehub"])
@pytest.mark.parametrize(("key", "kind"), CASES)
def test_every_key_verify_reads_is_type_checked(tmp_path: Path, where: str, key: str, kind: str) -> None:
    """At each level verify reads, a value of another type is a usage error naming the file (or stdin) and the key
    path; a null is as if the key were not there (Helm drops it): never a traceback."""
    expected = "a mapping" if key in MAPPINGS else "a string"
    value = None if kind == "null" else yaml.safe_load(WRONG[kind])
    public, secret = (_with(GOOD, key, value), {}) if where != "secret" else (GOOD, _with(GOOD, key, value))
    if where == "basehub":
        public = {"basehub": public}
    values = tmp_path / "staging.values.yaml"
    values.write_text(yaml.safe_dump(public))
    result = _in_process(values, yaml.safe_dump(secret))
    assert "Traceback" not in result.stderr and "bug in provision" not in result.stderr, result.stderr
    if kind == "null":
        assert result.exit_code in (0, 1, 2), result.stderr
        return
    shown = ("basehub." if where == "basehub" else "") + key
    source = "stdin (--secret-stdin)" if where == "secret" else "staging.values.yaml"
    assert result.exit_code == 2, result.stderr
    assert f"{source}: {shown} is {kind}, where {expected} is expected" in " ".join(result.stderr.split())


def _in_process(values: Path, secret: str) -> Any:
    from typer.testing import CliRunner

    from provision.cli import app

    # --registry-url: a port nobody listens on, so a run that gets past the values fails fast and offline
    args = ["verify", "--values-file", str(values), "--secret-stdin", "--registry-url", "http://127.0.0.1:9"]
    return CliRunner().invoke(app, args, input=secret)
