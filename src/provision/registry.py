"""Docker registry v2 checks without side effects: does the API answer, are the credentials accepted, and what
may they do on a repository (from the `access` claim of a token, never by pushing); RegistryError."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from provision import __version__, endpoints, httpretry
from provision.errors import ProvisionError
from provision.hostlimit import MAX_429_ATTEMPTS, HostLimiter, SlotTimeout, host_key, retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)
# auth-param = token "=" ( token / quoted-string ), comma separated (RFC 7235)
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


class RegistryError(ProvisionError):
    """The registry could not be asked (connection, unexpected answer); carries the URL and HTTP status."""

    def __init__(self, message: str, *, url: str, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url
        self.status = status


class RegistryDeadline(RegistryError):
    """The command's deadline passed while a request was pending (`pending` says which, and what it waited on)."""

    def __init__(self, pending: str, *, url: str, seconds: float) -> None:
        super().__init__(f"the {seconds:g} s deadline passed while {pending}", url=url,
                         hint="check that the registry is up, or allow more time with --deadline")  # fmt: skip
        self.pending = pending
        self.seconds = seconds


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(header: str | None) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header, or None. Pure."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        position = match.end()
    return Challenge(scheme.lower(), params)


def jwt_access(token: str) -> list[dict[str, Any]] | None:
    """The `access` claim of a registry JWT (read, not verified: only the registry needs to trust it), or None
    when the token is opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    access = payload.get("access") if isinstance(payload, dict) else None
    return access if isinstance(access, list) else None


@dataclass(frozen=True)
class CredentialResult:
    accepted: bool | None  # None: the registry needs no credentials
    scheme: str | None
    detail: str


class RegistryClient:
    """Read-only conversations with one registry's /v2/ API, authenticated as one user."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None,
        password: str | None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        limiter: HostLimiter | None = None,
        deadline: httpretry.Deadline | None = None,
    ) -> None:
        """`limiter` bounds the requests in flight per host across clients (a fleet run shares one); `deadline` is
        the command's: every request, every wait for a slot and every 429 wait is cut to the time it leaves."""
        self.url = url.rstrip("/")
        for what, value in (("user name", username), ("password", password)):
            try:
                (value or "").encode("latin-1")  # what requests' basic auth encodes with
            except UnicodeEncodeError:
                raise RegistryError(
                    f"the registry {what} contains a character HTTP basic auth cannot carry (not Latin-1)",
                    url=url,
                    hint="check that the value was copied whole and alone",
                ) from None
        self._limiter = limiter or HostLimiter()
        self._auth = (username, password) if username is not None and password is not None else None
        self._timeout = timeout
        self._deadline = deadline
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"provision/{__version__}"
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}  # scopes -> token already issued for them

    def close(self) -> None:
        self._session.close()

    def _get(self, url: str, **kwargs: Any) -> requests.Response:
        """One GET, holding a slot of the host's limit; a 429 is waited out (Retry-After, bounded) with the slot
        released, up to MAX_429_ATTEMPTS times, then returned as it is. Raises RegistryError when no answer came,
        RegistryDeadline when the deadline passed first."""
        where = f"GET {url.split('?')[0]}"
        for attempt in range(MAX_429_ATTEMPTS):
            timeout = self._timeout if self._deadline is None else self._deadline.cut(self._timeout)
            try:
                with self._limiter.request(url, timeout=self._left()):
                    response = self._session.get(url, timeout=timeout, allow_redirects=True, stream=True, **kwargs)
                    # A slow or endless body is bounded too (the deadline and a size cap), not only each read.
                    httpretry.read_body(response, where=where, deadline=self._deadline)
            except SlotTimeout:
                raise self._passed(f"{where} waited for a free request slot to {host_key(url)}", url) from None
            except requests.RequestException as exc:
                cut_short = isinstance(exc, requests.Timeout) and timeout != self._timeout
                if self._deadline is not None and (cut_short or self._deadline.remaining() <= 0):
                    raise self._passed(f"{where} was pending: {httpretry.describe(exc)}", url) from None
                raise RegistryError(f"cannot reach {url.split('?')[0]} ({type(exc).__name__})", url=url) from None
            log.debug("%s -> %s", where, response.status_code)
            if response.status_code != 429 or attempt == MAX_429_ATTEMPTS - 1:
                return response
            wait = retry_after_seconds(response.headers.get("Retry-After"), attempt=attempt)
            self._limiter.note_429(url)
            response.close()
            left = self._left()
            if left is not None and wait >= left:
                raise self._passed(f"{where} was rate limited (HTTP 429) and asked for a wait of {wait:.0f} s", url)
            # INFO: shown at normal verbosity, so a user waiting on a rate limit sees why.
            log.info("%s: HTTP 429 (rate limited), attempt %d of %d, next try in %.1f s",
                     where, attempt + 1, MAX_429_ATTEMPTS, wait)  # fmt: skip
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _left(self) -> float | None:
        return None if self._deadline is None else max(self._deadline.remaining(), 0.0)

    def _passed(self, pending: str, url: str) -> RegistryDeadline:
        assert self._deadline is not None
        return RegistryDeadline(pending, url=url.split("?")[0], seconds=self._deadline.seconds)

    def challenge(self) -> Challenge | None:
        """Ask /v2/ anonymously. Returns the auth challenge (None: open registry). Raises RegistryError when the
        answer is not a registry v2 API."""
        url = f"{self.url}/v2/"
        response = self._get(url)
        if response.status_code == 200:
            return None
        if response.status_code == 401:
            challenge = parse_www_authenticate(response.headers.get("WWW-Authenticate"))
            if challenge is not None:
                self._challenge = challenge
                return challenge
        raise RegistryError(
            f"{url} does not answer like a registry v2 API (HTTP {response.status_code})",
            url=url,
            status=response.status_code,
            hint="check the registry URL (DockerRegistry.url / buildPodsRegistryCredentials.server)",
        )

    def _token(self, scopes: Sequence[str]) -> tuple[int, str | None]:
        """Ask the challenge's token service for a token (basic auth); returns (status, token or None)."""
        assert self._challenge is not None and self._challenge.scheme == "bearer"
        realm = self._challenge.params.get("realm")
        if not realm:
            raise RegistryError("the registry's Bearer challenge has no realm", url=self.url)
        params: list[tuple[str, str]] = []
        if "service" in self._challenge.params:
            params.append(("service", self._challenge.params["service"]))
        params += [("scope", scope) for scope in scopes]
        self._check_realm(realm)
        response = self._get(realm, params=params, auth=self._auth)
        if response.status_code != 200:
            return response.status_code, None
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"the token service {realm} did not answer JSON", url=realm) from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        return 200, token if isinstance(token, str) else None

    def _check_realm(self, realm: str) -> None:
        """The token service gets the user name and password: never over plain HTTP from an https registry, nor
        over plain HTTP to another machine (a registry names any realm it likes)."""
        parts = urlsplit(realm)
        log.debug("token service of %s: %s://%s", self.url, parts.scheme, parts.netloc)
        registry_https = urlsplit(self.url).scheme == "https"
        if parts.scheme != "https" and (registry_https or not endpoints.is_loopback(parts.hostname or "")):
            raise RegistryError(
                f"the registry {self.url} sends its clients to the token service {parts.scheme}://{parts.netloc}, "
                "which is not HTTPS: the registry credentials would cross the network unencrypted, so they were "
                "not sent. Fix the registry's token realm (auth.token.realm) to use https",
                url=self.url,
            )

    def check_credentials(self, scopes: Sequence[str] = ()) -> CredentialResult:
        """Whether the registry accepts the credentials, following its challenge (Basic, or a Bearer token).

        With Bearer, the token is asked for `scopes` (none: a pure credential check) and kept, so that a later
        `granted_actions` for the same scope costs no second request.
        """
        challenge = self._challenge or self.challenge()
        if challenge is None:
            return CredentialResult(None, None, "the registry answers without credentials")
        if self._auth is None:
            return CredentialResult(False, challenge.scheme, "the registry wants credentials and none were given")
        if challenge.scheme == "basic":
            status = self._get(f"{self.url}/v2/", auth=self._auth).status_code
            return CredentialResult(status == 200, "basic", f"GET /v2/ with basic auth: HTTP {status}")
        if challenge.scheme == "bearer":
            status, token = self._token(scopes)
            if status != 200 or token is None:
                return CredentialResult(False, "bearer", f"token service refused the credentials: HTTP {status}")
            self._tokens[tuple(scopes)] = token
            answer = self._get(f"{self.url}/v2/", headers={"Authorization": f"Bearer {token}"}).status_code
            return CredentialResult(answer == 200, "bearer", f"token accepted by /v2/: HTTP {answer}")
        return CredentialResult(None, challenge.scheme, f"unknown auth scheme {challenge.scheme!r}")

    def granted_actions(self, repository: str, actions: Sequence[str]) -> frozenset[str] | None:
        """The actions a token for `repository:<actions>` grants, read from its `access` claim.

        Asking is not doing: no repository is created or changed. None when that cannot be learned without a
        side effect (Basic auth, an opaque token). Callers must not ask Quay for `push` on a repository that does
        not exist: Quay creates it.
        """
        challenge = self._challenge or self.challenge()
        if challenge is None or challenge.scheme != "bearer" or self._auth is None:
            return None
        scope = (f"repository:{repository}:{','.join(actions)}",)
        token = self._tokens.get(scope)
        if token is None:
            status, token = self._token(scope)
            if status != 200 or token is None:
                return frozenset()
        access = jwt_access(token)
        if access is None:
            return None
        granted: set[str] = set()
        for entry in access:
            if isinstance(entry, dict) and entry.get("type") == "repository" and entry.get("name") == repository:
                granted |= {str(a) for a in entry.get("actions") or ()}
        return frozenset(granted)
