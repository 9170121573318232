"""Pruning on any registry v2 server (the default Pruner), and the HTTP seam every Pruner sends through.

A registry v2 server lists repositories (`/v2/_catalog`) and tags (`/tags/list`) without any date: a tag's push
time is its image config's `created` (what repo2docker set at build time), and nothing records pulls. Deletion is
by digest (`DELETE /v2/<name>/manifests/<digest>`), which untags every tag on that digest; a repository cannot be
deleted, and space comes back only after the registry's garbage-collect (../shared/facts/retention.md §5).

`PruneHttp` holds one of the host's request slots (HostLimiter) per request, waits out 429s with the slot released
(Retry-After, bounded), cuts every wait to the command's deadline, and answers registry challenges (Basic, or a
Bearer token per scope from the realm).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from provision import __version__, httpretry
from provision.errors import ProvisionError
from provision.hostlimit import MAX_429_ATTEMPTS, SlotTimeout, host_key, retry_after_seconds
from provision.registries.pruning import TagInfo

if TYPE_CHECKING:
    from provision.hubconfig import HubRegistry
    from provision.registries.pruning import PruneAccess

log = logging.getLogger(__name__)
ACCEPT = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))  # fmt: skip
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_FRACTION = re.compile(r"(\.\d{1,6})\d*")
PAGE = 1000
CONNECTION_ATTEMPTS = 3  # for a call that got no answer, or a 5xx
SERVER_ERRORS = frozenset({500, 502, 503, 504})


class PruneError(ProvisionError):
    """A registry call of a prune failed; `status` is the HTTP status (None: no answer, or the deadline)."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def parse_time(value: object) -> float | None:
    """An RFC 3339 time (`2026-01-02T03:04:05.123456789Z`) in epoch seconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


class PruneHttp:
    """Requests to one registry or API under the run's limiter and deadline (see the module's docstring)."""

    def __init__(
        self, access: PruneAccess, *, basic: tuple[str, str] | None = None, timeout: tuple[float, float] = (5.0, 30.0)
    ) -> None:
        self._limiter = access.limiter
        self._deadline = access.deadline
        self._basic = basic
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"provision/{__version__}"
        self._tokens: dict[str, str] = {}  # scope -> bearer token from the registry's realm
        self.headers: dict[str, str] = {}  # added to every request (an API's bearer)

    def close(self) -> None:
        self._session.close()

    def send(self, method: str, url: str, *, scope: str | None = None, **kwargs: Any) -> requests.Response:
        """One call; a registry's 401 challenge is answered once (Basic, or a Bearer token for `scope`)."""
        response = self._attempts(method, url, scope, **kwargs)
        if response.status_code == 401 and self._answer_challenge(response, scope):
            response = self._attempts(method, url, scope, **kwargs)
        return response

    def _headers(self, scope: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {**self.headers, **(extra or {})}
        if scope is not None and scope in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        return headers

    def _attempts(self, method: str, url: str, scope: str | None, **kwargs: Any) -> requests.Response:
        where = f"{method} {url.split('?')[0]}"
        extra = kwargs.pop("headers", None)
        failures = 0
        attempt = 0
        while attempt < MAX_429_ATTEMPTS:
            try:
                response = self._once(method, url, where, headers=self._headers(scope, extra), **kwargs)
            except requests.RequestException as exc:
                failures += 1
                if failures >= CONNECTION_ATTEMPTS:
                    raise PruneError(f"{where}: {httpretry.describe(exc)} ({failures} attempts)",
                                     hint="check that the registry is up and reachable") from None  # fmt: skip
                self._wait(where, 0.5 * 2**failures, "no answer")
                continue
            if response.status_code in SERVER_ERRORS and failures + 1 < CONNECTION_ATTEMPTS:
                failures += 1  # every call here may be sent again: reads, and deletions that accept a 404
                self._wait(where, 0.5 * 2**failures, f"HTTP {response.status_code}")
                continue
            if response.status_code != 429 or attempt == MAX_429_ATTEMPTS - 1:
                return response
            self._limiter.note_429(url)
            wait = retry_after_seconds(response.headers.get("Retry-After"), attempt=attempt)
            self._wait(where, wait, "HTTP 429 (rate limited)")
            attempt += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, url: str, where: str, **kwargs: Any) -> requests.Response:
        left = self._left(where)
        try:
            with self._limiter.request(url, timeout=left):
                response = self._session.request(method, url, timeout=self._deadline.cut(self._timeout),
                                                 allow_redirects=True, stream=True, **kwargs)  # fmt: skip
                httpretry.read_body(response, where=where, deadline=self._deadline)
        except SlotTimeout:
            raise self._passed(f"{where} waited for a free request slot to {host_key(url)}") from None
        except requests.Timeout:
            if self._deadline.remaining() <= 0.05:
                raise self._passed(f"{where} was pending") from None
            raise
        log.debug("%s -> %s", where, response.status_code)
        return response

    def _wait(self, where: str, seconds: float, why: str) -> None:
        if seconds >= self._left(where):
            raise self._passed(f"{where} got {why} and asked for a wait of {seconds:.0f} s")
        log.info("%s: %s; next try in %.1f s", where, why, seconds)
        time.sleep(seconds)

    def _left(self, where: str) -> float:
        left = self._deadline.remaining()
        if left <= 0:
            raise self._passed(f"{where} was about to be sent")
        return left

    def _passed(self, pending: str) -> PruneError:
        return PruneError(f"the deadline of {self._deadline.seconds:g} s passed: {pending}",
                          hint="allow more time with --deadline")  # fmt: skip

    def _answer_challenge(self, response: requests.Response, scope: str | None) -> bool:
        """Basic: send the credentials from now on. Bearer: get a token for `scope` at the realm. False when
        there is nothing new to try."""
        scheme, _, rest = response.headers.get("WWW-Authenticate", "").partition(" ")
        if scheme.lower() == "basic" and self._basic is not None and self._session.auth is None:
            self._session.auth = self._basic
            return True
        if scheme.lower() != "bearer" or scope is None or scope in self._tokens:
            return False
        params = dict(_CHALLENGE_PARAM.findall(rest))
        realm = params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        query = {"service": params.get("service", ""), "scope": scope}
        answer = self._attempts("GET", realm, None, params=query, auth=self._basic)
        if answer.status_code != 200:
            return False
        body = answer.json() if answer.content else {}
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not httpretry.header_safe(token):
            return False
        self._tokens[scope] = token
        return True


def paged(first: str, fetch: Callable[[str], tuple[list[Any], str | None]]) -> Iterator[Any]:
    """The items of every page, following each page's next URL (`fetch` → items, next URL or None)."""
    url: str | None = first
    seen: set[str] = set()
    while url and url not in seen:
        seen.add(url)
        items, url = fetch(url)
        yield from items


class V2Pruner:
    """A hub's repositories on a registry v2 server (distribution, Harbor, Zot ...)."""

    title: str = "registry v2"
    records_pulls: bool = False
    by_digest: bool = True
    deletes_repositories: bool = False
    notes: tuple[str, ...] = (
        "registry v2 deletes by digest: every tag on a deleted digest goes with it, so a digest a kept tag points "
        "to is kept",
        "registry v2 cannot delete a repository: emptied repositories stay in the catalog",
        "space comes back only after the registry's garbage-collect (registry garbage-collect <config.yml>)",
    )

    def __init__(self, registry: HubRegistry, path: str, access: PruneAccess, *, url: str) -> None:
        self.url = url.rstrip("/")
        self.host = registry.image_prefix.split("/")[0]  # as the hub's values name images
        self.prefix = path
        basic = (registry.username, registry.password) if registry.username and registry.password else None
        self.http = PruneHttp(access, basic=basic)
        self._created: dict[str, float | None] = {}  # config digest -> created

    def close(self) -> None:
        self.http.close()

    def _json(self, url: str, *, scope: str, what: str, missing_ok: bool = False) -> tuple[Any, requests.Response]:
        response = self.http.send("GET", url, scope=scope, headers={"Accept": ACCEPT})
        if missing_ok and response.status_code == 404:
            return None, response
        _check(response, what)
        try:
            return response.json(), response
        except ValueError:
            raise PruneError(f"{what}: the registry's answer is not JSON") from None

    def _page(self, url: str, *, scope: str, key: str, what: str) -> tuple[list[Any], str | None]:
        body, response = self._json(url, scope=scope, what=what, missing_ok=key == "tags")
        items = body.get(key) if isinstance(body, dict) else None
        match = _LINK_NEXT.search(response.headers.get("Link", ""))
        following = match.group(1) if match else None
        if following and not following.startswith("http"):
            following = self.url + following
        return [i for i in items or [] if isinstance(i, str)], following

    def repositories(self) -> list[str]:
        def fetch(url: str) -> tuple[list[Any], str | None]:
            return self._page(url, scope="registry:catalog:*", key="repositories", what="list the catalog")

        return [name for name in paged(f"{self.url}/v2/_catalog?n={PAGE}", fetch) if name.startswith(self.prefix)]

    def tags(self, repository: str) -> list[TagInfo]:
        scope = f"repository:{repository}:pull,delete"

        def fetch(url: str) -> tuple[list[Any], str | None]:
            return self._page(url, scope=scope, key="tags", what=f"list the tags of {repository}")

        names = list(paged(f"{self.url}/v2/{repository}/tags/list?n={PAGE}", fetch))
        return [self._tag(repository, name, scope) for name in names]

    def _tag(self, repository: str, name: str, scope: str) -> TagInfo:
        what = f"read {repository}:{name}"
        body, response = self._json(f"{self.url}/v2/{repository}/manifests/{name}", scope=scope, what=what,
                                    missing_ok=True)  # fmt: skip
        if body is None:
            return TagInfo(name)  # deleted meanwhile: no digest, so never deleted here
        digest = response.headers.get("Docker-Content-Digest")
        config = body.get("config") if isinstance(body, dict) else None
        config_digest = config.get("digest") if isinstance(config, dict) else None
        pushed = self._created_of(repository, config_digest, scope) if isinstance(config_digest, str) else None
        return TagInfo(name, digest=digest, pushed=pushed)

    def _created_of(self, repository: str, digest: str, scope: str) -> float | None:
        if digest not in self._created:
            url = f"{self.url}/v2/{repository}/blobs/{digest}"
            body, _ = self._json(url, scope=scope, what=f"read the image config of {repository}", missing_ok=True)
            self._created[digest] = parse_time(body.get("created")) if isinstance(body, dict) else None
        return self._created[digest]

    def delete_tag(self, repository: str, tag: TagInfo) -> None:
        assert tag.digest is not None  # the rules never delete a tag whose digest is unknown
        url = f"{self.url}/v2/{repository}/manifests/{tag.digest}"
        response = self.http.send("DELETE", url, scope=f"repository:{repository}:pull,delete")
        if response.status_code in (200, 202, 404):
            return  # 404: already gone (an earlier run, or another tag on the same digest)
        if response.status_code == 405:
            raise PruneError(
                f"the registry refused DELETE {url.split('/v2/')[1]} (HTTP 405): deletion is not enabled on it",
                status=405, hint="enable it in the registry's config (storage.delete.enabled: true, or "
                "REGISTRY_STORAGE_DELETE_ENABLED=true) and restart the registry",
            )  # fmt: skip
        _check(response, f"delete {repository}@{tag.digest}")

    def delete_repository(self, repository: str) -> None:
        raise PruneError("a registry v2 server cannot delete a repository")


def _check(response: requests.Response, what: str) -> None:
    if 200 <= response.status_code < 300:
        return
    status = response.status_code
    hint = None
    if status in (401, 403):
        hint = "the hub's registry credential may not do this: prune needs pull and delete rights under the prefix"
    raise PruneError(f"could not {what}: HTTP {status} {response.reason or ''}".rstrip(), status=status, hint=hint)
