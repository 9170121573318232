"""provision verify against real registries: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with
htpasswd auth and with token auth from a test token issuer."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.console import Reporter
from provision.hubconfig import HubOptions, HubRegistry, public_values, secret_values
from provision.verbs.verify import Check, PullSecret, VerifyRequest, run
from tests.servers.registry import DistributionRegistry, TokenIssuer, docker_config_auth, push_and_pull

USERS = {"builder": "build-pw", "reader": "read-pw", "hubs+robot": "ROBOT-TOKEN-1234"}


@pytest.fixture(scope="module")
def basic_registry() -> Iterator[DistributionRegistry]:
    with DistributionRegistry(htpasswd=USERS) as registry:
        yield registry


@pytest.fixture(scope="module")
def token_registry() -> Iterator[tuple[DistributionRegistry, TokenIssuer]]:
    grants = {"builder": [("hubs/*", {"pull", "push"})], "reader": [("hubs/*", {"pull"})],
              "hubs+robot": [("hubs/*", {"pull", "push"})]}  # fmt: skip
    with TokenIssuer(USERS, grants) as issuer, DistributionRegistry(token=issuer) as registry:
        yield registry, issuer


def hub(registry: DistributionRegistry, user: str = "builder", password: str | None = None) -> HubRegistry:
    return HubRegistry(
        kind="registry",
        server=registry.url,
        username=user,
        image_prefix=f"{registry.host}/hubs/c1-staging-",
        password=password if password is not None else USERS[user],
        pull_secret_registry=registry.host,
    )


def verify(reg: HubRegistry, pull: PullSecret | None = None) -> tuple[dict[str, Check], str]:
    stream = io.StringIO()
    checks = run(VerifyRequest(reg, pull), reporter=Reporter(stream=stream))
    return {c.name: c for c in checks}, stream.getvalue()


def test_basic_auth_good_credentials(basic_registry: DistributionRegistry) -> None:
    checks, _ = verify(hub(basic_registry))
    assert checks["registry answers the v2 API"].status == "pass"
    assert checks["push credentials accepted"].status == "pass"
    # Basic auth says nothing about permissions without pushing: reported, not guessed.
    assert checks["may push and pull under image_prefix"].status == "could-not-check"


def test_basic_auth_bad_credentials(basic_registry: DistributionRegistry) -> None:
    checks, stderr = verify(hub(basic_registry, password="WRONG-PW"))
    assert checks["push credentials accepted"].status == "fail"
    assert "may push and pull under image_prefix" not in checks
    assert "WRONG-PW" not in stderr


def test_token_auth_writer(token_registry: tuple[DistributionRegistry, TokenIssuer]) -> None:
    registry, issuer = token_registry
    before = len(issuer.requests)
    checks, _ = verify(hub(registry))
    assert checks["push credentials accepted"].status == "pass"
    permission = checks["may push and pull under image_prefix"]
    assert permission.status == "pass" and "hubs/c1-staging-provision-verify-probe" in permission.detail
    scopes = [r.query for r in issuer.requests[before:]]
    # One token, asked for the probe scope, proves the credentials and tells the granted actions.
    assert len(scopes) == 1
    assert "scope=repository%3Ahubs%2Fc1-staging-provision-verify-probe%3Apull%2Cpush" in scopes[0]


def test_token_auth_read_only(token_registry: tuple[DistributionRegistry, TokenIssuer]) -> None:
    registry, _ = token_registry
    checks, _ = verify(hub(registry, "reader"))
    assert checks["push credentials accepted"].status == "pass"
    assert checks["may push and pull under image_prefix"].status == "fail"
    assert "grants only pull" in checks["may push and pull under image_prefix"].detail


def test_token_auth_bad_credentials(token_registry: tuple[DistributionRegistry, TokenIssuer]) -> None:
    registry, _ = token_registry
    checks, _ = verify(hub(registry, password="nope"))
    assert checks["push credentials accepted"].status == "fail"


def test_separate_pull_secret_credentials_are_checked(basic_registry: DistributionRegistry) -> None:
    checks, _ = verify(hub(basic_registry), PullSecret(basic_registry.host, "reader", "wrong"))
    assert checks["pull secret credentials accepted"].status == "fail"
    checks, _ = verify(hub(basic_registry), PullSecret(basic_registry.host, "reader", "read-pw"))
    assert checks["pull secret credentials accepted"].status == "pass"


def test_verify_never_writes(token_registry: tuple[DistributionRegistry, TokenIssuer]) -> None:
    """After verify, the probe repository still does not exist (asked about, never written)."""
    import requests

    registry, issuer = token_registry
    verify(hub(registry))
    probe = "hubs/c1-staging-provision-verify-probe"
    token = issuer.issue("builder", [f"repository:{probe}:pull"])
    answer = requests.get(
        f"{registry.url}/v2/{probe}/tags/list", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_build_pod_docker_config_from_our_values_pushes_and_pulls(
    auth: str, basic_registry: DistributionRegistry, token_registry: tuple[DistributionRegistry, TokenIssuer]
) -> None:
    """The chart renders {"auths": {server: {"auth": base64(user:password)}}} from our values: push with it."""
    registry = basic_registry if auth == "basic" else token_registry[0]
    reg = hub(registry)
    merged = {**public_values(reg, HubOptions()), "secret": secret_values(reg, HubOptions())}
    creds = {
        **merged["binderhub-service"]["buildPodsRegistryCredentials"],
        **merged["secret"]["binderhub-service"]["buildPodsRegistryCredentials"],
    }
    config = docker_config_auth(creds["server"], creds["username"], creds["password"])
    digest = push_and_pull(registry.url, f"hubs/c1-staging-{auth}-probe", config)
    assert digest.startswith("sha256:")
    bad = docker_config_auth(creds["server"], creds["username"], "wrong")
    with pytest.raises(AssertionError):
        push_and_pull(registry.url, f"hubs/c1-staging-{auth}-denied", bad)


def test_cli_verify_from_values_and_stdin_secrets(basic_registry: DistributionRegistry, tmp_path: Path) -> None:
    reg = hub(basic_registry)
    values = tmp_path / "staging.values.yaml"
    values.write_text(yaml.safe_dump(public_values(reg)))
    secrets = yaml.safe_dump(secret_values(reg))
    result = CliRunner().invoke(
        app, ["verify", "--values-file", str(values), "--secret-stdin", "--format", "json"], input=secrets
    )
    assert result.exit_code == 0, result.stderr
    statuses = {c["check"]: c["status"] for c in json.loads(result.stdout)}
    assert statuses["push credentials accepted"] == "pass"
    assert "build-pw" not in result.stderr + result.stdout
    assert "could-not-check" in result.stderr  # the table


def test_cli_verify_from_a_real_sops_secret_file(
    basic_registry: DistributionRegistry, tmp_path: Path, real_sops: str, age_keys: Any
) -> None:
    """verify --secret-file decrypts with the real sops into memory; a wrong identity stops it with sops's reason."""
    from tests.realsops import encrypt_file, sops_env

    alice, _, carol = age_keys
    reg = hub(basic_registry)
    values = tmp_path / "staging.values.yaml"
    values.write_text(yaml.safe_dump(public_values(reg)))
    secret = tmp_path / "enc-staging.secret.values.yaml"
    encrypt_file(secret, yaml.safe_dump(secret_values(reg)), [alice.recipient])
    args = ["verify", "--values-file", str(values), "--secret-file", str(secret), "--format", "json"]
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SOPS_")}

    def env(identity: Any) -> dict[str, str | None]:
        return {**cleared, "SOPS_BIN": real_sops, **{k: v for k, v in sops_env(identity).items()
                                                     if k.startswith(("SOPS_", "XDG_"))}}  # fmt: skip

    result = CliRunner().invoke(app, args, env=env(alice))
    assert result.exit_code == 0, result.stderr
    statuses = {c["check"]: c["status"] for c in json.loads(result.stdout)}
    assert statuses["push credentials accepted"] == "pass"
    assert "build-pw" not in result.stderr + result.stdout
    wrong = CliRunner().invoke(app, args, env=env(carol))
    assert wrong.exit_code == 1
    assert "none of your keys can unwrap its data key" in wrong.stderr and alice.recipient in wrong.stderr
    assert "build-pw" not in wrong.stderr + wrong.stdout


def test_cli_verify_fails_with_exit_1(basic_registry: DistributionRegistry, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("wrong\n")
    args = ["verify", "--server", basic_registry.url, "--username", "builder", "--password-file", str(password),
            "--image-prefix", f"{basic_registry.host}/hubs/x-"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "fail" in result.stderr and result.stdout == ""


def test_cli_verify_unreachable_registry_is_a_failed_check(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("x\n")
    args = ["verify", "--server", "http://127.0.0.1:9", "--username", "u", "--password-file", str(password),
            "--image-prefix", "127.0.0.1:9/hubs/x-"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr
    assert "done" not in result.stderr  # the request line tells the outcome, not "done" then "cannot reach"
    assert "no answer" in result.stderr


def test_cli_flag_mode_on_a_quay_robot_can_pass(
    token_registry: tuple[DistributionRegistry, TokenIssuer], tmp_path: Path
) -> None:
    """Flag mode reads no values: the pull secret it cannot see is "could not check", not a failure."""
    registry, _ = token_registry
    password = tmp_path / "pw"
    password.write_text("ROBOT-TOKEN-1234\n")
    args = ["verify", "--server", registry.url, "--username", "hubs+robot", "--password-file", str(password),
            "--image-prefix", f"{registry.host}/hubs/c1-staging-", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    statuses = {c["check"]: c["status"] for c in json.loads(result.stdout)}
    assert statuses["pull secret present"] == "could-not-check"
    assert statuses["may push and pull under image_prefix"] == "pass"  # org-wide pull, push never asked
    assert "ROBOT-TOKEN-1234" not in result.stderr + result.stdout


@pytest.mark.parametrize("secret_option", [["--secret-stdin"], ["--secret-file", "enc.yaml"]])
def test_cli_flag_mode_refuses_secret_options(secret_option: list[str], tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("x\n")
    args = ["verify", "--server", "https://quay.io", "--username", "o+r", "--password-file", str(password),
            "--image-prefix", "quay.io/o/x-", *secret_option]  # fmt: skip
    result = CliRunner().invoke(app, args, input="binderhub-service: {}\n")
    assert result.exit_code == 2 and secret_option[0] in result.stderr and "--password-file" in result.stderr


@pytest.mark.parametrize("where", ["stdin", "password-file"])
def test_cli_non_utf8_input_is_a_clear_message(where: str, tmp_path: Path) -> None:
    values = tmp_path / "staging.values.yaml"
    values.write_text("binderhub-service: {}\n")
    password = tmp_path / "pw"
    password.write_bytes(b"\xff\xfe binary \x00")
    if where == "stdin":
        args = ["verify", "--values-file", str(values), "--secret-stdin"]
    else:
        args = ["verify", "--server", "https://quay.io", "--username", "o+r", "--password-file", str(password),
                "--image-prefix", "quay.io/o/x-"]  # fmt: skip
    result = CliRunner().invoke(app, args, input=b"\xff\xfe\x00secret")
    assert result.exit_code == 2, result.stderr
    assert "not UTF-8" in result.stderr and "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("granted", "expected"), [({"upload", "download"}, "pass"), ({"download"}, "fail")])
def test_artifact_registry_key_through_google_auth_and_test_iam_permissions(granted: set[str], expected: str) -> None:
    """The real google-auth and google-cloud-artifact-registry libraries, pointed at local endpoints."""
    from provision.registries.artifact_registry import client as gcp
    from tests.servers.artifact_registry import FakeGoogle, make_service_account_key

    email = "hub1-registry-sa@proj.iam.gserviceaccount.com"
    with FakeGoogle() as google:
        key = make_service_account_key(google, email=email, project="proj")
        name = google.add_repository("proj", "us-central1", "hub1-registry")
        perms = {"upload": gcp.UPLOAD, "download": gcp.DOWNLOAD}
        google.grant(email, name, [perms[g] for g in granted])
        users = {"_json_key": key}
        with (
            TokenIssuer(users, {"_json_key": [("proj/*", {"pull", "push"})]}) as issuer,
            DistributionRegistry(token=issuer) as registry,
        ):
            reg = HubRegistry(
                kind="artifact-registry",
                server="https://us-central1-docker.pkg.dev",
                username="_json_key",
                image_prefix="us-central1-docker.pkg.dev/proj/hub1-registry/",
                password=key,
            )
            stream = io.StringIO()
            request = VerifyRequest(reg, None, registry_url=registry.url, ar_endpoint=google.url)
            checks = {c.name: c for c in run(request, reporter=Reporter(stream=stream))}
    assert checks["image_prefix matches the registry"].status == "pass"
    assert checks["push credentials accepted"].status == "pass"
    permission = checks["may push and pull under image_prefix"]
    assert permission.status == expected, permission.detail
    assert "PRIVATE KEY" not in stream.getvalue()
