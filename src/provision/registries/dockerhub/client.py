"""Docker Hub API client: log in, list, create and delete personal and organization access tokens; DockerHubError.

Facts: ../shared/facts/docker-hub.md (API "2-beta"). A token's secret is shown once, in the creation answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import requests
from urllib3.util.retry import Retry

from provision import __version__, answers, httpretry
from provision.errors import ProvisionError

log = logging.getLogger(__name__)
T = TypeVar("T")
TokenKind = Literal["pat", "oat"]
CREDENTIALS_HINT = (
    "set DOCKERHUB_USERNAME (your Docker ID, or the organization for an organization token) and DOCKERHUB_TOKEN "
    "(a personal access token, or the password) or --token-file"
)


class DockerHubError(ProvisionError):
    """A Docker Hub API call failed; carries the HTTP status, method and path."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.path = path


@dataclass(frozen=True)
class AccessToken:
    kind: TokenKind
    id: str  # `uuid` for personal tokens, `id` for organization tokens
    label: str
    is_active: bool
    secret: str | None = field(default=None, repr=False)  # only in the answer that created it
    created_at: str | None = None
    last_used: str | None = None  # None: never used

    @classmethod
    def from_dict(cls, kind: TokenKind, data: dict[str, Any]) -> AccessToken:
        secret = data.get("token")
        created, used = data.get("created_at"), data.get("last_used") or data.get("last_used_at")
        return cls(
            kind=kind,
            id=str(data.get("uuid") or data.get("id") or ""),
            label=str(data.get("token_label") or data.get("label") or ""),
            is_active=bool(data.get("is_active", True)),
            secret=secret if isinstance(secret, str) and secret and secret != "***" else None,
            created_at=created if isinstance(created, str) else None,
            last_used=used if isinstance(used, str) else None,
        )


    @classmethod
    def created(cls, kind: TokenKind, data: dict[str, Any]) -> AccessToken:
        """A token just created: its secret must be there, as text without control characters."""
        answers.secret_text(data.get("token"), field="token")
        return cls.from_dict(kind, data)


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    return response.reason or f"HTTP {response.status_code}"


class DockerHubClient:
    """One session to the Docker Hub API as one identity (a Docker ID or, for organization tokens, an org).

    Retries follow httpretry (429 honours Retry-After). Creating a token is re-sent only after listing shows it
    did not land; a token that landed without its answer has an unknown secret and is replaced by the caller.
    """

    def __init__(
        self,
        api_url: str,
        *,
        identifier: str,
        secret: str,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: Retry | None = None,
        deadline: httpretry.Deadline | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._deadline = deadline
        self.identifier = identifier
        self._secret = secret
        self._timeout = timeout
        self._retry = retry if retry is not None else httpretry.default_retry()
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": f"provision/{__version__}", "Accept": "application/json"})

    def close(self) -> None:
        self._session.close()

    def allow(self, seconds: float) -> None:
        """Give the calls from now on a deadline of their own: clean-up after a failure must not be cut short by the
        deadline that may have caused it."""
        self._deadline = httpretry.Deadline(seconds)

    def _send(
        self, method: str, path: str, *, body: Any = None, recover: Callable[[], T | None] | None = None
    ) -> requests.Response | T:
        url = path if path.startswith("http") else self.api_url + path
        try:
            return httpretry.send(
                self._session, method, url, retry=self._retry, timeout=self._timeout, recover=recover,
                deadline=self._deadline, data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
            )  # fmt: skip
        except httpretry.Unreachable as exc:
            hint = (
                "check that the server is up (and --api-url), or allow more time with --deadline"
                if exc.deadline is not None
                else "check --api-url and the network"
            )
            raise DockerHubError(
                f"cannot reach {self.api_url}: {method} {path.split('?')[0]}: {exc}",
                method=method,
                path=path,
                hint=hint,
            ) from exc.error

    def _check(self, response: requests.Response, method: str, path: str) -> Any:
        if 200 <= response.status_code < 300:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                # Not JSON: said as the server's fault where the body is read (answers.parse).
                return response.content.decode("utf-8", errors="replace")
        status, message = response.status_code, _message(response)
        hint = None
        if status == 401:
            message, hint = "Docker Hub refused the credentials", CREDENTIALS_HINT
        elif status == 429:
            wait = response.headers.get("Retry-After")
            message = "Docker Hub's rate limit was hit" + (f" (retry after {wait} s)" if wait else "")
            hint = "wait, then re-run the same command"
        raise DockerHubError(
            f"Docker Hub {method} {path.split('?')[0]} failed with HTTP {status}: {message}",
            status=status, method=method, path=path, hint=hint,
        )  # fmt: skip

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        assert isinstance(response, requests.Response)
        return self._check(response, method, path)

    def login(self) -> None:
        """Exchange the identity's password or token for a short-lived bearer. Raises DockerHubError (401: refused)."""
        data = self._call("POST", "/v2/auth/token", body={"identifier": self.identifier, "secret": self._secret})
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not httpretry.header_safe(token):
            raise DockerHubError("Docker Hub's login answer has no usable access_token", method="POST",
                                 path="/v2/auth/token")  # fmt: skip
        self._session.headers["Authorization"] = f"Bearer {token}"

    def _paged(self, path: str, kind: TokenKind) -> list[AccessToken]:
        tokens: list[AccessToken] = []
        next_url: str | None = f"{path}?page=1&page_size=100"
        while next_url:
            data = answers.parse(dict, self._call("GET", next_url), server=f"Docker Hub at {self.api_url}",
                                 call=f"GET {next_url.split('?')[0]}")  # fmt: skip
            tokens += [AccessToken.from_dict(kind, t) for t in data.get("results") or [] if isinstance(t, dict)]
            next_url = data.get("next") if isinstance(data.get("next"), str) else None
        return tokens

    def list_tokens(self, *, org: str | None) -> list[AccessToken]:
        """Personal access tokens of the logged-in user, or an organization's access tokens."""
        return self._paged(f"/v2/orgs/{org}/access-tokens", "oat") if org else self._paged("/v2/access-tokens", "pat")

    def create_token(
        self, *, org: str | None, label: str, scopes: list[str], resources: list[dict[str, Any]]
    ) -> AccessToken:
        """Create a personal token (`scopes`) or an organization token (`resources`); returns it with its secret.

        If the creation landed but its answer was lost, the secret is unknowable: that token is deleted and
        created again. Raises DockerHubError.
        """
        path = f"/v2/orgs/{org}/access-tokens" if org else "/v2/access-tokens"
        kind: TokenKind = "oat" if org else "pat"
        body: dict[str, Any] = (
            {"label": label, "resources": resources} if org else {"token_label": label, "scopes": scopes}
        )
        before = {t.id for t in self.list_tokens(org=org) if t.label == label}

        def landed() -> AccessToken | None:
            return next((t for t in self.list_tokens(org=org) if t.label == label and t.id not in before), None)

        for _ in range(2):
            result = self._send("POST", path, body=body, recover=landed)
            if isinstance(result, AccessToken):
                log.debug("token %s landed without its answer; replacing it", result.id)
                self.delete_token(result, org=org)
                continue
            created = answers.parse(lambda body: AccessToken.created(kind, body), self._check(result, "POST", path),
                                    server=f"Docker Hub at {self.api_url}", call=f"POST {path}")  # fmt: skip
            if created.secret is None:
                raise DockerHubError("Docker Hub's answer holds no token secret", method="POST", path=path)
            return created
        raise DockerHubError(f"could not create token {label!r}: its answer was lost twice", method="POST", path=path)

    def rename_token(self, token: AccessToken, label: str, *, org: str | None = None) -> None:
        """Give a token another label (PATCH; an idempotent write). Raises DockerHubError."""
        if token.kind == "oat":
            path, body = f"/v2/orgs/{org}/access-tokens/{token.id}", {"label": label}
        else:
            path, body = f"/v2/access-tokens/{token.id}", {"token_label": label}
        self._call("PATCH", path, body=body)

    def delete_token(self, token: AccessToken, *, org: str | None = None) -> None:
        """Delete a token (idempotent: one already gone is fine)."""
        path = f"/v2/orgs/{org}/access-tokens/{token.id}" if token.kind == "oat" else f"/v2/access-tokens/{token.id}"
        response = self._send("DELETE", path)
        assert isinstance(response, requests.Response)
        if response.status_code != 404:
            self._check(response, "DELETE", path)
