"""Tests of the registry test servers themselves: the real docker-registry process and the token issuer, over HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from tests.servers.registry import (
    DistributionRegistry,
    TokenIssuer,
    TokenRequest,
    docker_config_auth,
    push_and_pull,
)

USERS = {"builder": "push-secret", "viewer": "pull-secret"}
GRANTS = {
    "builder": [("hubs/*", {"pull", "push"})],
    "viewer": [("hubs/*", {"pull"})],
}
DIGEST_PREFIX = "sha256:"


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer(USERS, GRANTS) as server:
        yield server


@pytest.fixture
def open_registry() -> Iterator[DistributionRegistry]:
    with DistributionRegistry() as registry:
        yield registry


@pytest.fixture
def basic_registry() -> Iterator[DistributionRegistry]:
    with DistributionRegistry(htpasswd={"robot": "robot-secret"}) as registry:
        yield registry


@pytest.fixture
def token_registry(issuer: TokenIssuer) -> Iterator[DistributionRegistry]:
    with DistributionRegistry(token=issuer) as registry:
        yield registry


def claims(token: str) -> dict[str, Any]:
    """The JWT payload, decoded without verifying the signature (the registry does that)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def get_token(issuer: TokenIssuer, auth: tuple[str, str] | None, **params: str | list[str]) -> requests.Response:
    return requests.get(f"{issuer.url}/token", params=params, auth=auth, timeout=5)


# --- the registry process ---------------------------------------------------------------------------------


def test_open_registry_answers_v2_and_takes_a_push_without_credentials(open_registry: DistributionRegistry) -> None:
    assert open_registry.url == f"http://{open_registry.host}"
    assert open_registry.host.startswith("127.0.0.1:")
    response = requests.get(f"{open_registry.url}/v2/", timeout=5)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert push_and_pull(open_registry.url, "hubs/open", {"auths": {}}).startswith(DIGEST_PREFIX)


def test_registry_is_stopped_on_exit() -> None:
    with DistributionRegistry() as registry:
        url = f"{registry.url}/v2/"
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_missing_binary_fails_the_test_with_the_install_hint(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="run scripts/install-docker-registry"):
        DistributionRegistry(binary=str(tmp_path / "docker-registry")).start()


def test_a_registry_that_dies_at_start_reports_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "docker-registry"
    broken.write_text("#!/bin/sh\necho 'configuration error: boom' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*configuration error: boom"):
        DistributionRegistry(binary=str(broken)).start()


# --- htpasswd ---------------------------------------------------------------------------------------------


def test_htpasswd_registry_challenges_and_checks_basic_credentials(basic_registry: DistributionRegistry) -> None:
    url = f"{basic_registry.url}/v2/"
    anonymous = requests.get(url, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="test-registry"'
    assert requests.get(url, auth=("robot", "robot-secret"), timeout=5).status_code == 200
    assert requests.get(url, auth=("robot", "wrong"), timeout=5).status_code == 401
    assert requests.get(url, auth=("nobody", "robot-secret"), timeout=5).status_code == 401


@pytest.mark.parametrize("key", ["url", "host", "url-with-path"])
def test_push_and_pull_finds_credentials_as_the_docker_client_does(
    basic_registry: DistributionRegistry, key: str
) -> None:
    server = {
        "url": basic_registry.url,
        "host": basic_registry.host,
        "url-with-path": f"{basic_registry.url}/v1/",
    }[key]
    config = docker_config_auth(server, "robot", "robot-secret")
    assert push_and_pull(basic_registry.url, "hubs/basic", config).startswith(DIGEST_PREFIX)


def test_push_and_pull_fails_with_a_wrong_password(basic_registry: DistributionRegistry) -> None:
    config = docker_config_auth(basic_registry.url, "robot", "wrong")
    with pytest.raises(AssertionError, match=r"GET /v2/ with Basic credentials.*answered 401"):
        push_and_pull(basic_registry.url, "hubs/basic", config)


def test_push_and_pull_without_an_entry_for_a_basic_registry_fails(basic_registry: DistributionRegistry) -> None:
    config = docker_config_auth("https://quay.io", "robot", "robot-secret")
    with pytest.raises(AssertionError, match="no entry"):
        push_and_pull(basic_registry.url, "hubs/basic", config)


def test_docker_config_auth_is_the_chart_rendering() -> None:
    config = docker_config_auth("https://quay.io", "org+robot", "s3cr:et")
    assert config == {"auths": {"https://quay.io": {"auth": base64.b64encode(b"org+robot:s3cr:et").decode()}}}


# --- token auth -------------------------------------------------------------------------------------------


def test_token_registry_challenges_with_the_issuer_realm(
    token_registry: DistributionRegistry, issuer: TokenIssuer
) -> None:
    response = requests.get(f"{token_registry.url}/v2/", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{issuer.url}/token",service="test-registry"'


def test_builder_pushes_and_pulls_through_the_issuer(token_registry: DistributionRegistry, issuer: TokenIssuer) -> None:
    config = docker_config_auth(token_registry.url, "builder", "push-secret")
    digest = push_and_pull(token_registry.url, "hubs/binder-image", config)
    assert digest.startswith(DIGEST_PREFIX)
    [entry] = issuer.requests
    assert (entry.path, entry.user, entry.status) == ("/token", "builder", 200)
    assert parse_qs(entry.query) == {"service": ["test-registry"], "scope": ["repository:hubs/binder-image:pull,push"]}


def test_read_only_user_is_refused_on_upload(token_registry: DistributionRegistry) -> None:
    config = docker_config_auth(token_registry.url, "viewer", "pull-secret")
    with pytest.raises(AssertionError, match=r"start blob upload.*answered 40[13].*insufficient_scope"):
        push_and_pull(token_registry.url, "hubs/binder-image", config)


def test_builder_cannot_push_outside_its_grant(token_registry: DistributionRegistry) -> None:
    config = docker_config_auth(token_registry.url, "builder", "push-secret")
    with pytest.raises(AssertionError, match=r"start blob upload.*answered 401"):
        push_and_pull(token_registry.url, "other/image", config)


def test_wrong_password_fails_at_the_issuer(token_registry: DistributionRegistry, issuer: TokenIssuer) -> None:
    config = docker_config_auth(token_registry.url, "builder", "wrong")
    with pytest.raises(AssertionError, match=r"get a token.*answered 401"):
        push_and_pull(token_registry.url, "hubs/binder-image", config)
    assert [(r.user, r.status) for r in issuer.requests] == [(None, 401)]


def test_registry_verifies_the_token_signature(token_registry: DistributionRegistry) -> None:
    with TokenIssuer(USERS, GRANTS) as impostor:  # same name and service, another key
        token = impostor.issue("builder", ["repository:hubs/x:pull,push"])
    response = requests.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_registry_accepts_a_pure_credential_check_token_on_v2(
    token_registry: DistributionRegistry, issuer: TokenIssuer
) -> None:
    token = get_token(issuer, ("viewer", "pull-secret"), service="test-registry").json()["token"]
    response = requests.get(f"{token_registry.url}/v2/", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 200


# --- the issuer on its own --------------------------------------------------------------------------------


def test_issuer_down_scopes_instead_of_refusing(issuer: TokenIssuer) -> None:
    before = int(time.time())
    response = get_token(
        issuer,
        ("viewer", "pull-secret"),
        service="test-registry",
        scope=["repository:hubs/a:pull,push", "repository:private/b:pull"],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    payload = claims(body["token"])
    assert payload["access"] == [
        {"type": "repository", "name": "hubs/a", "actions": ["pull"]},
        {"type": "repository", "name": "private/b", "actions": []},
    ]
    assert (payload["iss"], payload["sub"], payload["aud"]) == ("test-issuer", "viewer", "test-registry")
    assert payload["exp"] - payload["iat"] == 300
    assert payload["nbf"] < payload["iat"] and before <= payload["iat"] <= time.time()
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and len(header["x5c"]) == 1


def test_issuer_without_scope_only_checks_credentials(issuer: TokenIssuer) -> None:
    response = get_token(issuer, ("builder", "push-secret"), service="test-registry")
    assert response.status_code == 200
    assert claims(response.json()["token"])["access"] == []
    assert issuer.requests == [TokenRequest("/token", "service=test-registry", "builder", 200)]


@pytest.mark.parametrize("auth", [None, ("builder", "wrong"), ("stranger", "push-secret")])
def test_issuer_rejects_missing_or_bad_credentials(issuer: TokenIssuer, auth: tuple[str, str] | None) -> None:
    response = get_token(issuer, auth, service="test-registry", scope="repository:hubs/a:pull")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="token"'
    [error] = response.json()["errors"]
    assert error["code"] == "UNAUTHORIZED" and error["message"]
    assert [(r.user, r.status) for r in issuer.requests] == [(None, 401)]


def test_issuer_rejects_another_service(issuer: TokenIssuer) -> None:
    response = get_token(issuer, ("builder", "push-secret"), service="quay.io")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"


def test_issuer_keeps_connections_alive(issuer: TokenIssuer) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.get(
                f"{issuer.url}/token", params={"service": "test-registry"}, auth=("builder", "push-secret"), timeout=5
            )
            assert response.status_code == 200
        unknown = session.get(f"{issuer.url}/nope", timeout=5)
        assert unknown.status_code == 404
        assert session.get(f"{issuer.url}/token", params={"service": "test-registry"}, timeout=5).status_code == 401
    assert [r.status for r in issuer.requests] == [200, 200, 200, 404, 401]
