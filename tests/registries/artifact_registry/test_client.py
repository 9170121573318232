"""registries/artifact_registry/client.py against FakeGoogle: the real google-auth and
google-cloud-artifact-registry, real HTTP on 127.0.0.1.

Nothing is monkeypatched: the key's own `token_uri` points google-auth at the fake token endpoint, and
`api_endpoint` points the REST transport at the fake Artifact Registry.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from provision.registries.artifact_registry import client as gcp
from provision.registries.artifact_registry.client import DOWNLOAD, UPLOAD, GcpError, RepositoryRef
from tests.servers.artifact_registry import READER, WRITER, FakeGoogle, make_service_account_key

EMAIL = "hub-registry-sa@proj.iam.gserviceaccount.com"
REPO = RepositoryRef(project="proj", location="us-central1", repository="hub-registry")
TEST_IAM_PATH = f"/v1/{REPO.name}:testIamPermissions"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        server.add_repository(REPO.project, REPO.location, REPO.repository)
        yield server


@pytest.fixture
def key(google: FakeGoogle) -> str:
    return make_service_account_key(google, email=EMAIL)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _secrets(key_json: str, google: FakeGoogle) -> list[str]:
    """Strings that must never show: the whole key, lines of its private key, and every token issued."""
    pem = json.loads(key_json)["private_key"]
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [key_json, pem, *body_lines, *google.issued_tokens]


def _error_texts(exc: BaseException) -> str:
    """str() and args of an error and of everything chained to it, as a traceback would show them."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


# --- test_permissions ----------------------------------------------------------------------------------------


def test_writer_key_holds_upload_and_download(google: FakeGoogle, key: str) -> None:
    google.grant(EMAIL, REPO.name, WRITER)

    assert gcp.test_permissions(key, REPO, api_endpoint=google.url) == {UPLOAD, DOWNLOAD}

    # One token exchange, then one testIamPermissions: the resource in the path, the permissions in a JSON body.
    assert google.paths() == [("POST", "/token", 200), ("POST", TEST_IAM_PATH, 200)]
    call = google.requests[1]
    assert call.caller == EMAIL
    assert call.content_type == "application/json"
    assert call.body == {"permissions": [UPLOAD, DOWNLOAD]}


def test_reader_key_holds_download_only(google: FakeGoogle, key: str) -> None:
    google.grant(EMAIL, REPO.name, READER)

    assert gcp.test_permissions(key, REPO, api_endpoint=google.url) == {DOWNLOAD}


def test_no_role_gives_the_empty_set(google: FakeGoogle, key: str) -> None:
    # Google leaves `permissions` out of the answer when none is held; the library reads that as [].
    assert gcp.test_permissions(key, REPO, api_endpoint=google.url) == frozenset()


def test_answer_is_limited_to_the_permissions_asked(google: FakeGoogle, key: str) -> None:
    google.grant(EMAIL, REPO.name, WRITER)

    assert gcp.test_permissions(key, REPO, [DOWNLOAD, DOWNLOAD], api_endpoint=google.url) == {DOWNLOAD}
    assert google.requests[-1].body == {"permissions": [DOWNLOAD]}


def test_disabled_key_is_refused_at_the_token_endpoint(google: FakeGoogle, key: str) -> None:
    google.grant(EMAIL, REPO.name, WRITER)
    assert gcp.test_permissions(key, REPO, api_endpoint=google.url)  # works, and a token was issued
    google.disable_key(EMAIL)
    google.requests.clear()

    with pytest.raises(GcpError) as caught:
        gcp.test_permissions(key, REPO, api_endpoint=google.url)

    err = caught.value
    assert "the key was refused by Google's token endpoint" in str(err)
    assert "invalid_grant: Invalid JWT Signature" in str(err)
    assert "provision gcp" in str(err) and "deleted or disabled" in str(err)
    assert (err.method, err.code) == (gcp.TOKEN_EXCHANGE, "invalid_grant")
    assert google.issued_tokens  # there is a token to leak, and it does not
    texts = _error_texts(err)
    for secret in _secrets(key, google):
        assert secret not in texts
    assert google.paths() == [("POST", "/token", 400)]  # the API was never called


def test_key_unknown_to_google_is_refused(google: FakeGoogle) -> None:
    with FakeGoogle() as elsewhere:
        stranger = make_service_account_key(elsewhere, email=EMAIL)  # its public key is not registered in `google`
        stranger = stranger.replace(elsewhere.token_uri, google.token_uri)

    with pytest.raises(GcpError, match="refused by Google's token endpoint"):
        gcp.test_permissions(stranger, REPO, api_endpoint=google.url)


def test_unknown_repository_is_not_found(google: FakeGoogle, key: str) -> None:
    other = RepositoryRef(project="proj", location="us-central1", repository="nope")

    with pytest.raises(GcpError, match=r"repository projects/proj/locations/us-central1/repositories/nope not found"):
        gcp.test_permissions(key, other, api_endpoint=google.url)
    assert (caught_status := google.requests[-1].status) == 404, caught_status


def test_unknown_repository_error_fields(google: FakeGoogle, key: str) -> None:
    other = RepositoryRef(project="proj", location="europe-west1", repository="hub-registry")

    with pytest.raises(GcpError) as caught:
        gcp.test_permissions(key, other, api_endpoint=google.url)
    assert (caught.value.status, caught.value.code, caught.value.method) == (404, "NOT_FOUND", "testIamPermissions")
    assert "image_prefix" in (caught.value.hint or "")


def test_permission_denied_means_the_caller_cannot_even_test(google: FakeGoogle, key: str) -> None:
    google.fail_next(403, "PERMISSION_DENIED", "Artifact Registry API has not been used in project proj before")

    with pytest.raises(GcpError) as caught:
        gcp.test_permissions(key, REPO, api_endpoint=google.url)

    err = caught.value
    assert (err.status, err.code) == (403, "PERMISSION_DENIED")
    assert "Artifact Registry API has not been used" in str(err)
    assert "roles/artifactregistry.writer" in str(err) and "disabled in project proj" in str(err)


def test_other_api_errors_carry_the_status(google: FakeGoogle, key: str) -> None:
    google.fail_next(503, "UNAVAILABLE", "The service is currently unavailable.")

    with pytest.raises(GcpError, match=r"failed: 503 UNAVAILABLE: The service is currently unavailable") as caught:
        gcp.test_permissions(key, REPO, api_endpoint=google.url)
    assert caught.value.status == 503
    assert len(google.paths()) == 2  # not retried


def test_rejected_token_is_not_retried_with_a_new_one(google: FakeGoogle, key: str) -> None:
    google.fail_next(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")

    with pytest.raises(GcpError, match="did not accept the access token") as caught:
        gcp.test_permissions(key, REPO, api_endpoint=google.url)
    assert caught.value.status == 401
    assert [path for _, path, _ in google.paths()] == ["/token", TEST_IAM_PATH]


def test_unreachable_token_endpoint(google: FakeGoogle, key: str) -> None:
    dead = key.replace(google.token_uri, f"http://127.0.0.1:{_closed_port()}/token")

    with pytest.raises(GcpError, match=r"token endpoint \(http://127\.0\.0\.1:\d+/token\) could not be reached"):
        gcp.test_permissions(dead, REPO, api_endpoint=google.url, timeout=5)


def test_unreachable_api(google: FakeGoogle, key: str) -> None:
    with pytest.raises(GcpError, match=r"Artifact Registry \(http://127\.0\.0\.1:\d+\) could not be reached"):
        gcp.test_permissions(key, REPO, api_endpoint=f"http://127.0.0.1:{_closed_port()}", timeout=5)


def test_only_the_two_requests_are_made(google: FakeGoogle, key: str, caplog: pytest.LogCaptureFixture) -> None:
    """No other connection: no Regional Access Boundary lookup at iamcredentials.googleapis.com, no metadata server."""
    google.grant(EMAIL, REPO.name, WRITER)
    caplog.set_level(logging.DEBUG, logger="urllib3")

    gcp.test_permissions(key, REPO, api_endpoint=google.url)

    opened = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Starting new")]
    assert opened and all("127.0.0.1" in message for message in opened), opened
    assert [thread.name for thread in threading.enumerate() if type(thread).__module__.startswith("google")] == []
    assert len(google.requests) == 2


def test_nothing_secret_is_logged(google: FakeGoogle, key: str, caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG (as `-v -v` might set it), neither the key nor a token reaches the logs."""
    google.grant(EMAIL, REPO.name, WRITER)
    caplog.set_level(logging.DEBUG)

    gcp.test_permissions(key, REPO, api_endpoint=google.url)
    google.disable_key(EMAIL)
    with pytest.raises(GcpError):
        gcp.test_permissions(key, REPO, api_endpoint=google.url)

    logged = caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)
    for secret in _secrets(key, google):
        assert secret not in logged


# --- bad keys: rejected before any request, never echoed -----------------------------------------------------


def _key_with(key: str, **changes: object) -> str:
    info = json.loads(key)
    info.update(changes)
    return json.dumps({k: v for k, v in info.items() if v is not None})


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda k: k[: len(k) // 2], r"not a JSON key: invalid JSON \(line \d+, column \d+\)"),
        (lambda k: "", r"not a JSON key: invalid JSON \(line 1, column 1\)"),
        (lambda k: k.replace("{", "[", 1), r"not a JSON key: invalid JSON"),
        (lambda k: json.dumps([json.loads(k)]), r"not a service-account JSON key \(it is not a JSON object\)"),
        (lambda k: _key_with(k, type="authorized_user"), r"\(its type is 'authorized_user'\)"),
        (lambda k: _key_with(k, type=k[100:200]), r"\(it has no usable type\)"),
        (lambda k: _key_with(k, client_email=None, token_uri=""), r"key lacks client_email, token_uri"),
        (lambda k: _key_with(k, private_key=json.loads(k)["private_key"][:300]), r"private key .* could not be loaded"),
    ],
    ids=["truncated", "empty", "not-json", "list", "other-type", "garbage-type", "missing-fields", "bad-pem"],
)
def test_bad_key_is_rejected_without_echo(google: FakeGoogle, key: str, mangle: object, message: str) -> None:
    bad = mangle(key)  # type: ignore[operator]

    with pytest.raises(GcpError, match=message) as caught:
        gcp.test_permissions(bad, REPO, api_endpoint=google.url)

    texts = _error_texts(caught.value)
    for secret in [*_secrets(key, google), bad[:60], bad[-60:]]:
        if secret.strip():
            assert secret not in texts
    assert google.requests == []


def test_json_error_does_not_chain_the_input(google: FakeGoogle, key: str) -> None:
    # A JSONDecodeError keeps the whole input in `.doc`: it must not hang off the raised error.
    with pytest.raises(GcpError) as caught:
        gcp.test_permissions(key[:-5], REPO, api_endpoint=google.url)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:8080", "ftp://127.0.0.1", "http://127.0.0.1/v1", "https://", "http://u:p@host"]
)
def test_bad_api_endpoint_is_a_programming_error(google: FakeGoogle, key: str, endpoint: str) -> None:
    with pytest.raises(ValueError, match="api_endpoint"):
        gcp.test_permissions(key, REPO, api_endpoint=endpoint)
    assert google.requests == []


@pytest.mark.parametrize("permissions", [[], UPLOAD])
def test_permissions_must_be_a_non_empty_list(google: FakeGoogle, key: str, permissions: list[str] | str) -> None:
    with pytest.raises(ValueError, match="permissions"):
        gcp.test_permissions(key, REPO, permissions, api_endpoint=google.url)
    assert google.requests == []


# --- RepositoryRef -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("us-central1-docker.pkg.dev/proj/hub-registry/", ("proj", "us-central1", "hub-registry")),
        ("us-central1-docker.pkg.dev/proj/hub-registry", ("proj", "us-central1", "hub-registry")),
        ("europe-west4-docker.pkg.dev/two-eye-two-see/x/", ("two-eye-two-see", "europe-west4", "x")),
        ("us-docker.pkg.dev/proj/hub-registry/", ("proj", "us", "hub-registry")),  # multi-region
        ("us-central1-docker.pkg.dev/proj/hub-registry/binder-", ("proj", "us-central1", "hub-registry")),
        ("us-central1-docker.pkg.dev/proj/hub-registry/a/b/", ("proj", "us-central1", "hub-registry")),
        ("us-docker.pkg.dev/example.com/proj/repo/", ("example.com:proj", "us", "repo")),  # domain-scoped
    ],
)
def test_repository_from_image_prefix(prefix: str, expected: tuple[str, str, str]) -> None:
    ref = RepositoryRef.from_image_prefix(prefix)
    assert (ref.project, ref.location, ref.repository) == expected
    assert ref.name == "projects/{}/locations/{}/repositories/{}".format(*expected)


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("https://us-central1-docker.pkg.dev/proj/hub-registry/", "no scheme"),
        ("quay.io/org/", "must end with -docker.pkg.dev"),
        ("gcr.io/proj/hub-registry/", "must end with -docker.pkg.dev"),
        ("docker.pkg.dev/proj/hub-registry/", "must end with -docker.pkg.dev"),
        ("-docker.pkg.dev/proj/hub-registry/", "not a location"),
        ("US-docker.pkg.dev/proj/hub-registry/", "not a location"),
        ("us-central1-docker.pkg.dev", "'(empty)' is not a project id"),
        ("us-central1-docker.pkg.dev/", "'(empty)' is not a project id"),
        ("us-central1-docker.pkg.dev/Proj/hub-registry/", "'Proj' is not a project id"),
        ("us-central1-docker.pkg.dev/proj", "'(empty)' is not a repository id"),
        ("us-central1-docker.pkg.dev/proj/", "'(empty)' is not a repository id"),
        ("us-central1-docker.pkg.dev/proj//hub-registry/", "'(empty)' is not a repository id"),
        ("us-central1-docker.pkg.dev/proj/Hub_Registry/", "'Hub_Registry' is not a repository id"),
        ("us-central1-docker.pkg.dev/proj/1hub/", "'1hub' is not a repository id"),
        ("", "must end with -docker.pkg.dev"),
    ],
)
def test_repository_from_bad_image_prefix(prefix: str, why: str) -> None:
    with pytest.raises(GcpError, match="is not an Artifact Registry path") as caught:
        RepositoryRef.from_image_prefix(prefix)
    assert why in str(caught.value)
    assert gcp.PREFIX_SHAPE in str(caught.value)


# --- start-up cost -------------------------------------------------------------------------------------------


def test_import_loads_no_google_library() -> None:
    module = "provision.registries.artifact_registry.client"
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'google', 'requests'}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung server."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.parametrize("hung", ["api", "token endpoint"])
def test_a_hung_google_ends_at_the_deadline(google: FakeGoogle, key: str, silent_port: int, hung: str) -> None:
    import time

    from provision.httpretry import Deadline

    google.grant(EMAIL, REPO.name, WRITER)
    silent = f"http://127.0.0.1:{silent_port}"
    api, used_key = (silent, key) if hung == "api" else (google.url, key.replace(google.token_uri, f"{silent}/token"))
    start = time.monotonic()
    with pytest.raises(gcp.GcpDeadline) as caught:
        gcp.test_permissions(used_key, REPO, api_endpoint=api, deadline=Deadline(2))
    assert time.monotonic() - start < 4
    pending = "testIamPermissions on" if hung == "api" else "the token exchange at"
    assert "2 s deadline passed" in str(caught.value) and pending in str(caught.value)
    assert "--deadline" in (caught.value.hint or "")
