"""Pruning a hub's repositories on Quay through its API v1 (facts: ../shared/facts/retention.md §1-§2).

`GET /repository?namespace=<org>` pages by an opaque `next_page` token; the hub's repositories are those whose
name starts with the prefix's path (a shared organization holds other hubs' too). `GET /repository/<org>/<name>/tag/`
pages by `page` (100 at most) while `has_additional`; without `onlyActiveTags=true` it lists the deleted ("dead")
tags of the time machine as well, so the pruner asks for live tags only and still drops any entry that ended.
A tag gives `start_ts` (push time), `manifest_digest` and `size`; no pull time: Quay's pull statistics are one call
per tag, and only where FEATURE_IMAGE_PULL_STATS is on, so they are not used. `DELETE …/tag/<tag>` removes that one
tag, never the other tags of its manifest; `DELETE /repository/<org>/<name>` removes an emptied repository.

The robot that pushes cannot call the API: the OAuth token comes from QUAY_TOKEN (or `PruneAccess.api_token`) and
needs repo:admin (read, delete tags, delete repositories); org:admin too, to see the organization's auto-prune
policies, which a plan mentions but which do not stop a prune.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from provision import httpretry
from provision.errors import UsageError, add_secret
from provision.registries.pruning import TagInfo
from provision.registries.quay.autoprune import PrunePolicy
from provision.registries.quay.client import error_message
from provision.registries.v2prune import PruneError, PruneHttp, paged

if TYPE_CHECKING:
    import requests

    from provision.hubconfig import HubRegistry
    from provision.registries.pruning import PruneAccess

TOKEN_VARIABLE = "QUAY_TOKEN"
PAGE_SIZE = 100  # the most Quay's tag list gives a page
SCOPES_HINT = ("give QUAY_TOKEN an OAuth token of a user who administers the organization, with the scope "
               "repo:admin (it covers listing and deleting tags and deleting repositories)")  # fmt: skip
NOTES = (
    "Quay deletes a tag, not its image: other tags on the same manifest stay (unlike registry v2)",
    "a deleted tag stays restorable for the organization's time-machine window (2 weeks by default); space comes "
    "back after it",
    "Quay's tag list has no pull time (pull statistics are one call per tag, where enabled): not used",
)


def api_token(access: PruneAccess) -> str:
    """The API token: `access.api_token`, else QUAY_TOKEN. Raises UsageError (before any request) without one."""
    raw = access.api_token or os.environ.get(TOKEN_VARIABLE, "")
    add_secret(raw)
    token = raw.strip()
    if not token:
        raise UsageError(
            "provision prune on Quay needs an API token, and QUAY_TOKEN is not set: the hub's robot may push and "
            "pull but cannot call Quay's API, which lists and deletes tags. Nothing was read or deleted",
            hint=SCOPES_HINT,
        )
    if not httpretry.header_safe(token):
        raise UsageError(f"the token in {TOKEN_VARIABLE} is not one line of printable ASCII characters: check that "
                         "it was copied whole and alone")  # fmt: skip
    return token


class QuayPruner:
    """A hub's repositories `<org>/<name-prefix>*` on Quay."""

    title: str = "Quay"
    records_pulls: bool = False
    by_digest: bool = False
    deletes_repositories: bool = True

    def __init__(self, registry: HubRegistry, access: PruneAccess, *, token: str) -> None:
        self.host, _, path = registry.image_prefix.partition("/")
        self.namespace, _, self.prefix = path.partition("/")
        self.api = f"{(access.api_url or f'https://{self.host}').rstrip('/')}/api/v1"
        self.http = PruneHttp(access)
        self.http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.notes: tuple[str, ...] = NOTES

    def close(self) -> None:
        self.http.close()

    def repositories(self) -> list[str]:
        self.notes = (*self.policy_notes(), *NOTES)
        first = f"{self.api}/repository?namespace={quote(self.namespace, safe='')}"

        def fetch(url: str) -> tuple[list[Any], str | None]:
            body = self._get(url, "list the organization's repositories")
            token = body.get("next_page")
            following = f"{first}&next_page={quote(token, safe='')}" if isinstance(token, str) and token else None
            return [r for r in body.get("repositories") or [] if isinstance(r, dict)], following

        names = (r.get("name") for r in paged(first, fetch))
        return [f"{self.namespace}/{n}" for n in names if isinstance(n, str) and n.startswith(self.prefix)]

    def tags(self, repository: str) -> list[TagInfo]:
        base = f"{self._repo_url(repository)}/tag/?onlyActiveTags=true&limit={PAGE_SIZE}"

        def fetch(url: str) -> tuple[list[Any], str | None]:
            body = self._get(url, f"list the tags of {repository}")
            page = body.get("page")
            page = page if isinstance(page, int) and not isinstance(page, bool) else 1
            following = f"{base}&page={page + 1}" if body.get("has_additional") is True else None
            return [t for t in body.get("tags") or [] if isinstance(t, dict)], following

        now = time.time()
        found = paged(f"{base}&page=1", fetch)
        return [_tag(t) for t in found if isinstance(t.get("name"), str) and _alive(t, now)]

    def delete_tag(self, repository: str, tag: TagInfo) -> None:
        url = f"{self._repo_url(repository)}/tag/{quote(tag.name, safe='')}"
        self._delete(url, f"delete {repository}:{tag.name}")

    def delete_repository(self, repository: str) -> None:
        self._delete(self._repo_url(repository), f"delete the repository {repository}")

    def policy_notes(self) -> list[str]:
        """The organization's auto-prune policies, for the plan: they prune these repositories as well."""
        url = f"{self.api}/organization/{quote(self.namespace, safe='')}/autoprunepolicy/"
        response = self.http.send("GET", url)
        if response.status_code == 404:  # FEATURE_AUTO_PRUNE off, or Quay older than 3.10
            return []
        if response.status_code != 200:
            return [f"could not read {self.namespace}'s auto-prune policies (HTTP {response.status_code}; the "
                    "token needs org:admin): a server-side policy may prune these repositories too"]  # fmt: skip
        try:
            policies = [PrunePolicy.from_dict(p) for p in _json(response).get("policies") or [] if isinstance(p, dict)]
        except (KeyError, TypeError):
            return [f"{self.namespace}'s auto-prune policies could not be read (an unexpected answer)"]
        return [f"server-side policy present: {p.describe()} (organization {self.namespace}, run by Quay about "
                "hourly)" for p in policies]  # fmt: skip

    def _repo_url(self, repository: str) -> str:
        namespace, _, name = repository.partition("/")
        return f"{self.api}/repository/{quote(namespace, safe='')}/{quote(name, safe='/')}"

    def _get(self, url: str, what: str) -> dict[str, Any]:
        response = self.http.send("GET", url)
        if response.status_code != 200:
            raise _failed(response, what)
        return _json(response)

    def _delete(self, url: str, what: str) -> None:
        response = self.http.send("DELETE", url)
        if response.status_code not in (200, 204, 404):  # 404: already gone (an earlier, interrupted run)
            raise _failed(response, what)


def _alive(data: dict[str, Any], now: float) -> bool:
    """A live tag: no end, or an end still to come (an expiration set on it)."""
    end = data.get("end_ts")
    return not isinstance(end, int | float) or end > now


def _tag(data: dict[str, Any]) -> TagInfo:
    start, size, digest = data.get("start_ts"), data.get("size"), data.get("manifest_digest")
    return TagInfo(
        str(data["name"]),
        digest=digest if isinstance(digest, str) else None,
        pushed=float(start) if isinstance(start, int | float) and not isinstance(start, bool) else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise PruneError(f"Quay answered {response.request.method} {response.url.split('?')[0]} with something "
                         "that is not JSON", hint="check --api-url") from None  # fmt: skip
    return body if isinstance(body, dict) else {}


def _failed(response: requests.Response, what: str) -> PruneError:
    status = response.status_code
    text, _ = error_message(response)
    hint = None
    if status == 401 or (status == 403 and "CSRF" in text):  # an unknown token: GETs run anonymously, writes 403
        text, hint = "Quay did not accept QUAY_TOKEN (unknown or expired)", SCOPES_HINT
    elif status == 403:
        hint = SCOPES_HINT
    return PruneError(f"Quay: could not {what}: HTTP {status}: {text}", status=status, hint=hint)
