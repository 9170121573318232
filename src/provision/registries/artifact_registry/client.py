"""Artifact Registry checks through Google's own libraries (imported inside the function: ~0.45 s); GcpError.

`provision verify` must prove, without side effects, that an Artifact Registry service-account JSON key (the
registry password; the username is `_json_key`) may upload to and download from the hub's repository:

1. google-auth signs a JWT with the key and trades it for an access token at the key's own `token_uri`. A
   deleted or disabled key is refused there (`invalid_grant`), before any API call.
2. `testIamPermissions` on the repository, with that token, answers which of the asked permissions the key's
   service account holds. It never answers 403 for a missing permission: it leaves it out of the answer.

Facts in ../shared/facts/terraform.md §5: `google.cloud.artifactregistry_v1` costs ~0.45 s to import, so Google's
libraries are imported only inside `test_permissions`. Nothing here logs the key, the signed assertion or the
access token, or puts them into an error message.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from provision.errors import ProvisionError
from provision.hostlimit import MAX_429_ATTEMPTS, HostLimiter, SlotTimeout, retry_after_seconds

if TYPE_CHECKING:
    from google.oauth2.service_account import Credentials

    from provision.httpretry import Deadline  # (httpretry imports requests: the import stays light)

log = logging.getLogger(__name__)

UPLOAD = "artifactregistry.repositories.uploadArtifacts"
DOWNLOAD = "artifactregistry.repositories.downloadArtifacts"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_ENDPOINT = "https://artifactregistry.googleapis.com"
TOKEN_EXCHANGE = "token exchange"
TEST_IAM_PERMISSIONS = "testIamPermissions"
# The JSON key fields this module reads; all other fields are ignored.
KEY_FIELDS = ("client_email", "private_key", "token_uri")
NEW_KEY_HINT = (
    "the key may have been deleted or disabled (Google Cloud console: IAM > Service accounts > Keys); "
    "re-run `provision gcp` for this hub to issue a new key and write it to the hub's secret values"
)
PREFIX_SHAPE = "<location>-docker.pkg.dev/<project>/<repository>/"
_HOST_SUFFIX = "-docker.pkg.dev"
_LOCATION_RE = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")
_PROJECT_RE = re.compile(r"[a-z][a-z0-9-]{0,28}[a-z0-9]")
_DOMAIN_RE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")
_REPOSITORY_RE = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
_MAX_DETAIL = 300  # characters of Google's own error text kept in a message


class GcpError(ProvisionError):
    """A check against Google failed: which call (`method`), its HTTP `status` and Google's error `code`.

    `code` is the OAuth2 error of the token endpoint (`invalid_grant`) or the API status (`NOT_FOUND`). The
    message never holds the key, the signed assertion or an access token.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        code: str | None = None,
        done: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, done=done, hint=hint)
        self.method = method
        self.status = status
        self.code = code


@dataclass(frozen=True)
class RepositoryRef:
    """An Artifact Registry repository: project, location (region or multi-region) and repository id."""

    project: str
    location: str
    repository: str

    @classmethod
    def from_image_prefix(cls, prefix: str) -> RepositoryRef:
        """The repository a BinderHub `image_prefix` pushes to, e.g. `us-central1-docker.pkg.dev/proj/hub-registry/`.

        Whatever follows the repository (an image name prefix such as `binder-`) is allowed: permissions are held
        per repository. A domain-scoped project `example.com:proj` is written `example.com/proj` in image paths.
        Returns the reference; raises GcpError on any other shape, naming the expected one.
        """

        def bad(why: str) -> GcpError:
            message = f"image prefix {prefix!r} is not an Artifact Registry path: {why}"
            return GcpError(message, hint=f"expected {PREFIX_SHAPE}")

        if "://" in prefix:
            raise bad("an image prefix has no scheme")
        host, _, path = prefix.strip().partition("/")
        if not host.endswith(_HOST_SUFFIX):
            raise bad(f"the host must end with {_HOST_SUFFIX}")
        location = host.removesuffix(_HOST_SUFFIX)
        if not _LOCATION_RE.fullmatch(location):
            raise bad(f"{location!r} is not a location (region or multi-region)")
        parts = path.split("/")
        if len(parts) >= 2 and _DOMAIN_RE.fullmatch(parts[0]):
            project, parts = f"{parts[0]}:{parts[1]}", parts[2:]
            project_id = project.partition(":")[2]
        else:
            project, parts = parts[0], parts[1:]
            project_id = project
        if not _PROJECT_RE.fullmatch(project_id):
            raise bad(f"{project or '(empty)'!r} is not a project id")
        if not parts or not _REPOSITORY_RE.fullmatch(parts[0]):
            repository = parts[0] if parts else ""
            raise bad(f"{repository or '(empty)'!r} is not a repository id")
        return cls(project=project, location=location, repository=parts[0])

    @property
    def name(self) -> str:
        """The resource name: projects/{project}/locations/{location}/repositories/{repository}."""
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"


class GcpDeadline(GcpError):
    """The command's deadline passed while a call to Google was pending (`pending` says which)."""

    def __init__(self, pending: str, *, seconds: float) -> None:
        super().__init__(f"the {seconds:g} s deadline passed while {pending}",
                         hint="check the network and any proxy (HTTPS_PROXY), or allow more time with --deadline")
        self.pending = pending
        self.seconds = seconds


def test_permissions(
    key_json: str,
    repo: RepositoryRef,
    permissions: Sequence[str] = (UPLOAD, DOWNLOAD),
    *,
    api_endpoint: str | None = None,
    timeout: float = 30.0,
    limiter: HostLimiter | None = None,
    deadline: Deadline | None = None,
) -> frozenset[str]:
    """The subset of `permissions` that the key's service account holds on `repo`; no side effects.

    `key_json` is the service-account JSON key. `api_endpoint` is the Artifact Registry base URL (default
    https://artifactregistry.googleapis.com); the token endpoint is always the key's own `token_uri`. `timeout`
    (seconds) applies to each of the two HTTP requests. Only a 429 of testIamPermissions is retried (1 s doubling,
    up to hostlimit.MAX_429_ATTEMPTS); any other failure is reported.
    `limiter` bounds the requests in flight per host across concurrent checks (a fleet run shares one).
    `deadline` (the command's) cuts each request, each wait for a slot and each 429 wait to the time it leaves;
    GcpDeadline when it passes first.

    Raises GcpError when the key cannot be read, the token endpoint refuses it or cannot be reached, the
    repository does not exist, or Artifact Registry answers with an error. Raises ValueError when `permissions`
    is empty or a single string, or `api_endpoint` is not an http(s) URL with a host only (programming errors:
    the CLI validates). All checks that need no network run before the first request.
    """
    if isinstance(permissions, str):
        raise ValueError("permissions must be a sequence of permission names, not one string")
    wanted = list(dict.fromkeys(permissions))
    if not wanted:
        raise ValueError("permissions must not be empty")
    host, scheme = _split_endpoint(api_endpoint or DEFAULT_ENDPOINT)
    credentials, token_uri = _credentials(key_json)
    clock, limiter = _Clock(deadline, timeout), limiter or HostLimiter()
    token = _exchange(credentials, token_uri, limiter=limiter, clock=clock)
    return _ask(token, repo, wanted, f"{scheme}://{host}", limiter=limiter, clock=clock)


@dataclass(frozen=True)
class _Clock:
    """The command's deadline as the two calls need it: what is left, each call's timeout cut to it, and the
    GcpDeadline that names the pending call."""

    deadline: Deadline | None
    timeout: float

    def left(self) -> float | None:
        return None if self.deadline is None else max(self.deadline.remaining(), 0.0)

    def cut(self) -> float:
        remaining = self.left()
        return self.timeout if remaining is None else max(min(self.timeout, remaining), 0.001)

    def nearly_over(self) -> bool:  # a call cut to the time left fails a moment before the deadline itself
        return self.deadline is not None and self.deadline.remaining() < 0.25

    def passed(self, pending: str) -> GcpDeadline:
        assert self.deadline is not None
        return GcpDeadline(pending, seconds=self.deadline.seconds)


def _exchange(credentials: Credentials, token_uri: str, *, limiter: HostLimiter, clock: _Clock) -> str:
    exchange = f"the token exchange at {token_uri} was pending"
    try:
        with limiter.request(token_uri, timeout=clock.left()):
            return _fetch_token(credentials, token_uri=token_uri, timeout=clock.cut())
    except SlotTimeout:
        raise clock.passed(f"{exchange} (waiting for a free request slot)") from None
    except GcpError as exc:
        if exc.status is None and exc.code is None and clock.nearly_over():
            raise clock.passed(exchange) from None
        raise


def _ask(
    token: str, repo: RepositoryRef, wanted: list[str], api: str, *, limiter: HostLimiter, clock: _Clock
) -> frozenset[str]:
    """testIamPermissions, a quota answer (429 RESOURCE_EXHAUSTED) waited out with the host's slot released."""
    scheme, _, host = api.partition("://")
    call = f"testIamPermissions on {repo.name} at {api} was pending"
    for attempt in range(MAX_429_ATTEMPTS):
        try:
            with limiter.request(api, timeout=clock.left()):
                return _test_iam_permissions(token, repo, wanted, host=host, scheme=scheme, timeout=clock.cut())
        except SlotTimeout:
            raise clock.passed(f"{call} (waiting for a free request slot)") from None
        except GcpError as exc:
            if exc.status is None and clock.nearly_over():
                raise clock.passed(call) from None
            if exc.status != 429 or attempt == MAX_429_ATTEMPTS - 1:
                raise
            limiter.note_429(api)
            wait = retry_after_seconds(None, attempt=attempt)
            remaining = clock.left()
            if remaining is not None and wait >= remaining:
                raise clock.passed(f"{call} (rate limited, HTTP 429, next try after the deadline)") from None
            log.info("%s: HTTP 429 (rate limited), attempt %d of %d, next try in %.1f s",
                     f"testIamPermissions {api}", attempt + 1, MAX_429_ATTEMPTS, wait)  # fmt: skip
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


# Pytest would collect `test_permissions` from a test module that imports it by name.
test_permissions.__test__ = False  # type: ignore[attr-defined]


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    """(host[:port], scheme) of an API base URL. Pure; raises ValueError on anything but scheme://host[:port]."""
    split = urlsplit(endpoint)
    if split.scheme not in ("http", "https") or not split.netloc or split.path not in ("", "/"):
        raise ValueError(f"api_endpoint must look like https://host[:port], got {endpoint!r}")
    if split.query or split.fragment or "@" in split.netloc:
        raise ValueError(f"api_endpoint must look like https://host[:port], got {endpoint!r}")
    return split.netloc, split.scheme


def _credentials(key_json: str) -> tuple[Credentials, str]:
    """(credentials, token_uri) for the key; no network yet. Raises GcpError without echoing the key."""
    try:
        info = json.loads(key_json)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        # `from None`: a JSONDecodeError keeps the whole input in `.doc`, which a debugger or a traceback
        # renderer with locals would show.
        raise GcpError(
            f"the Artifact Registry password is not a JSON key: invalid JSON{where}",
            hint="the password of username `_json_key` must be the service account's whole JSON key file",
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else None
        # Only a short identifier is shown: a wrong secret could have been pasted here.
        shown = (
            f"its type is {kind!r}"
            if isinstance(kind, str) and re.fullmatch(r"[a-z_]{1,40}", kind)
            else ("it has no usable type" if isinstance(info, dict) else "it is not a JSON object")
        )
        raise GcpError(
            f"the Artifact Registry password is not a service-account JSON key ({shown})",
            hint="use a key created for the hub's service account (type service_account), e.g. by `provision gcp`",
        )
    missing = [name for name in KEY_FIELDS if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise GcpError(f"the service-account JSON key lacks {', '.join(missing)}", hint=NEW_KEY_HINT)

    from google.oauth2 import service_account

    try:
        # google-auth's public API carries no annotations, hence the ignores.
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES)
        )
    except (ValueError, TypeError) as exc:  # google.auth.exceptions.MalformedError is a ValueError
        # Neither google-auth nor cryptography quotes key material; the message still names nothing from it.
        raise GcpError(
            f"the private key of the JSON key for {info['client_email']} could not be loaded", hint=NEW_KEY_HINT
        ) from exc
    return credentials, info["token_uri"]


def _fetch_token(credentials: Credentials, *, token_uri: str, timeout: float) -> str:
    """Trade the signed assertion for an access token at the key's token_uri; returns the token.

    Raises GcpError when the endpoint refuses the key or cannot be reached.
    """
    import requests
    from google.auth import exceptions as auth_exceptions
    from google.auth.transport.requests import Request

    with requests.Session() as session:
        try:
            credentials.refresh(partial(Request(session), timeout=timeout))  # type: ignore[no-untyped-call]
        except auth_exceptions.RefreshError as exc:
            code, description = _oauth_error(exc)
            if getattr(exc, "retryable", False):  # 5xx or a rate limit, still failing after google-auth's own retries
                raise GcpError(
                    f"Google's token endpoint ({token_uri}) failed: {code}: {description}",
                    method=TOKEN_EXCHANGE,
                    code=code,
                    hint="re-run later",
                ) from exc
            raise GcpError(
                f"the key was refused by Google's token endpoint ({token_uri}): {code}: {description}",
                method=TOKEN_EXCHANGE,
                code=code,
                hint=NEW_KEY_HINT,
            ) from exc
        except auth_exceptions.TransportError as exc:
            raise GcpError(
                f"Google's token endpoint ({token_uri}) could not be reached: {_cause_name(exc)}",
                method=TOKEN_EXCHANGE,
                hint="check the network and any proxy (HTTPS_PROXY), then re-run",
            ) from exc
    token = credentials.token
    if not isinstance(token, str) or not token:
        raise GcpError(f"Google's token endpoint ({token_uri}) returned no access token", method=TOKEN_EXCHANGE)
    return token


def _test_iam_permissions(
    token: str, repo: RepositoryRef, wanted: list[str], *, host: str, scheme: str, timeout: float
) -> frozenset[str]:
    """Call testIamPermissions over REST with the access token. Returns the held subset of `wanted`; raises GcpError."""
    import requests
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import artifactregistry_v1
    from google.cloud.artifactregistry_v1.services.artifact_registry.transports import ArtifactRegistryRestTransport
    from google.oauth2.credentials import Credentials as TokenCredentials

    # The API call carries the token alone, not the service-account credentials, and the transport is built
    # here for the default endpoint too, so that exactly two requests are made, the same in production and tests:
    # - service-account credentials start a background "Regional Access Boundary" lookup at
    #   iamcredentials.googleapis.com from the first API request (google-auth >= 2.55, no public switch:
    #   googleapis/google-cloud-python#17653), and google-auth's DEBUG request log prints that lookup's
    #   Authorization header in clear;
    # - ArtifactRegistryClient(credentials=...) switches them to self-signed JWTs (always_use_jwt_access=True),
    #   which would skip the token endpoint's verdict on the key.
    # With a token-only credential a 401 cannot trigger a silent re-refresh either: it surfaces as an error.
    credentials = TokenCredentials(token=token)  # type: ignore[no-untyped-call]
    transport = ArtifactRegistryRestTransport(credentials=credentials, host=host, url_scheme=scheme)
    where = f"Artifact Registry ({scheme}://{host})"
    with artifactregistry_v1.ArtifactRegistryClient(transport=transport) as client:
        try:
            response = client.test_iam_permissions(
                request={"resource": repo.name, "permissions": wanted}, timeout=timeout
            )
        except api_exceptions.NotFound as exc:
            raise GcpError(
                f"repository {repo.name} not found in {where}",
                method=TEST_IAM_PERMISSIONS,
                status=404,
                code=_api_status(exc) or "NOT_FOUND",
                hint="check the project, location and repository in image_prefix, or create the repository "
                "with `provision gcp`",
            ) from exc
        except api_exceptions.Forbidden as exc:  # over REST a 403 is Forbidden; PermissionDenied is its gRPC child
            # testIamPermissions leaves missing permissions out of its answer; a 403 means the caller may not
            # even test: no role at all on the repository (not even artifactregistry.repositories.get), or the
            # Artifact Registry API is disabled in the project.
            raise GcpError(
                f"{where} refused to test permissions on {repo.name} (403 {_api_status(exc) or 'PERMISSION_DENIED'}:"
                f" {_api_message(exc)})",
                method=TEST_IAM_PERMISSIONS,
                status=403,
                code=_api_status(exc) or "PERMISSION_DENIED",
                hint="the key's service account may lack any role on the repository (it needs "
                "roles/artifactregistry.writer, which includes artifactregistry.repositories.get), or the Artifact "
                f"Registry API is disabled in project {repo.project}; re-run `provision gcp` to restore the binding",
            ) from exc
        except api_exceptions.GoogleAPICallError as exc:
            status = exc.code if isinstance(exc.code, int) else None
            label = " ".join(str(part) for part in (status, _api_status(exc) or type(exc).__name__) if part)
            raise GcpError(
                f"{where} testIamPermissions on {repo.name} failed: {label}: {_api_message(exc)}",
                method=TEST_IAM_PERMISSIONS,
                status=status,
                code=_api_status(exc),
            ) from exc
        except auth_exceptions.GoogleAuthError as exc:  # a 401: the session tried to refresh a token-only credential
            raise GcpError(
                f"{where} did not accept the access token just issued for the key ({_cause_name(exc)})",
                method=TEST_IAM_PERMISSIONS,
                status=401,
                hint="the key's token_uri and the Artifact Registry endpoint must belong to the same Google "
                "universe; re-run, and if it persists re-run `provision gcp` to issue a new key",
            ) from exc
        except requests.RequestException as exc:
            raise GcpError(
                f"{where} could not be reached: {_cause_name(exc)}",
                method=TEST_IAM_PERMISSIONS,
                hint="check the network and any proxy (HTTPS_PROXY), then re-run",
            ) from exc
    return frozenset(response.permissions) & frozenset(wanted)


def _oauth_error(exc: Exception) -> tuple[str, str]:
    """(error, error_description) of a token endpoint refusal; only these two fields are ever shown."""
    data = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(data, Mapping) and isinstance(data.get("error"), str):
        description = data.get("error_description")
        return _clip(data["error"]), _clip(description) if isinstance(description, str) else "no description"
    return "refused", "no OAuth2 error in the answer"


def _api_body(exc: Any) -> Mapping[str, Any]:
    """The `error` object of a Google API error response, or {} (the exception's text includes the full URL)."""
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _api_status(exc: Any) -> str | None:
    status = _api_body(exc).get("status")
    return status if isinstance(status, str) else None


def _api_message(exc: Any) -> str:
    message = _api_body(exc).get("message")
    return _clip(message) if isinstance(message, str) else "no message"


def _cause_name(exc: BaseException) -> str:
    """The class names down the cause chain (ConnectTimeout, ConnectionError...): never a body or a header."""
    names: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(names) < 4:
        names.append(type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return " < ".join(dict.fromkeys(names))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
