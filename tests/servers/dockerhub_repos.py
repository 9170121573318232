"""Repositories and tags of ``FakeDockerHub`` (tests/servers/dockerhub.py): listing (paginated with ``next``), with
``tag_last_pulled``, ``tag_last_pushed``/``last_updated`` and ``full_size`` per tag, tag deletion and repository
deletion, as ../shared/facts/retention.md §4 describes them.

Listing: ``GET /v2/namespaces/{namespace}/repositories`` and ``…/repositories/{repository}/tags`` (ListRepositoryTags).
Deletion: the legacy ``DELETE /v2/repositories/{namespace}/{repository}/tags/{tag}/`` and
``DELETE /v2/repositories/{namespace}/{repository}/`` [inferred from public code: the statuses (204 for a tag, 202
for a repository) and the rights checked are guesses]. Who may: the namespace's user or an owner of its org (with
a password, or a PAT; deleting needs ``repo:admin``, the API scope assumed behind "Read, Write, Delete"), or an OAT
of the org (deleting needs ``scope-image-delete`` on a resource). Standard library only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.servers.base import Reply, Response, json_response

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v2/namespaces/{namespace}/repositories", "list_repositories"),
    ("GET", "/v2/namespaces/{namespace}/repositories/{repository}/tags", "list_tags"),
    ("DELETE", "/v2/repositories/{namespace}/{repository}/tags/{tag}/", "delete_tag"),
    ("DELETE", "/v2/repositories/{namespace}/{repository}/", "delete_repository"),
)
DELETE_SCOPE_PAT = "repo:admin"  # inferred
DELETE_SCOPE_OAT = "scope-image-delete"


@dataclass
class Tag:
    name: str
    pushed: datetime
    pulled: datetime | None = None
    size: int = 1000
    digest: str = ""

    def view(self) -> dict[str, Any]:
        """A tag as the paginated_tags schema shows it."""
        stamp = _stamp(self.pushed)
        return {
            "name": self.name, "full_size": self.size, "last_updated": stamp, "last_updater_username": "builder",
            "tag_status": "active", "tag_last_pulled": _stamp(self.pulled) if self.pulled else None,
            "tag_last_pushed": stamp, "digest": self.digest,
            "media_type": "application/vnd.oci.image.manifest.v1+json",
            "images": [{"architecture": "amd64", "os": "linux", "digest": self.digest, "size": self.size,
                        "status": "active", "last_pulled": _stamp(self.pulled) if self.pulled else None,
                        "last_pushed": stamp}],
        }  # fmt: skip


@dataclass
class Repository:
    tags: dict[str, Tag] = field(default_factory=dict)


def _stamp(when: datetime | None) -> str | None:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None


class RepositoriesMixin:
    """State and routes for repositories; FakeDockerHub mixes it in (its lock, bearers, orgs and _page)."""

    _repos: dict[tuple[str, str], Repository]

    # --- seeding and reading state

    def add_tag(
        self, namespace: str, repository: str, tag: str, *, pushed_days_ago: float = 0.0,
        pulled_days_ago: float | None = None, size: int = 1000, digest: str | None = None,
    ) -> None:  # fmt: skip
        """Push (seed) a tag: its repository is created on first use, as a push creates it."""
        now = datetime.now(UTC)
        pulled = now - timedelta(days=pulled_days_ago) if pulled_days_ago is not None else None
        digest = digest or "sha256:" + hashlib.sha256(f"{namespace}/{repository}:{tag}".encode()).hexdigest()
        with self._lock:  # type: ignore[attr-defined]
            repo = self._repos.setdefault((namespace, repository), Repository())
            repo.tags[tag] = Tag(tag, now - timedelta(days=pushed_days_ago), pulled, size, digest)

    def add_repository(self, namespace: str, repository: str) -> None:
        """An empty repository (all its tags deleted earlier)."""
        with self._lock:  # type: ignore[attr-defined]
            self._repos.setdefault((namespace, repository), Repository())

    def repositories(self, namespace: str) -> dict[str, list[str]]:
        """Repository name -> its tag names, for a namespace."""
        with self._lock:  # type: ignore[attr-defined]
            return {name: sorted(repo.tags) for (ns, name), repo in self._repos.items() if ns == namespace}

    # --- access

    def _may(self, call: Any, namespace: str, *, delete: bool) -> None:
        bearer = call.bearer
        assert bearer is not None
        org = self._orgs.get(namespace)  # type: ignore[attr-defined]
        if bearer.via == "oat":
            if bearer.subject != namespace:
                raise Reply(json_response(403, {"message": "forbidden"}))
            if delete and DELETE_SCOPE_OAT not in bearer.scopes:
                raise Reply(json_response(403, {"message": "token has insufficient scopes"}))
            return
        owner = bearer.subject == namespace or (org is not None and bearer.subject in org.owners)
        if not owner:
            raise Reply(json_response(403, {"message": "forbidden"}))
        if delete and bearer.via == "pat" and DELETE_SCOPE_PAT not in bearer.scopes:
            raise Reply(json_response(403, {"message": "token has insufficient scopes"}))

    def _repo(self, call: Any) -> Repository:
        key = (call.params["namespace"], call.params["repository"])
        if key not in self._repos:
            raise Reply(json_response(404, {"message": "object not found"}))
        return self._repos[key]

    # --- routes

    def _route_list_repositories(self, call: Any) -> Response:
        namespace = call.params["namespace"]
        self._may(call, namespace, delete=False)
        names = sorted(name for ns, name in self._repos if ns == namespace)
        chunk, next_url, previous = self._page(call, names)  # type: ignore[attr-defined]
        results = [{"name": n, "namespace": namespace, "repository_type": "image", "is_private": True} for n in chunk]
        return json_response(200, {"count": len(names), "next": next_url, "previous": previous, "results": results})

    def _route_list_tags(self, call: Any) -> Response:
        self._may(call, call.params["namespace"], delete=False)
        tags = sorted(self._repo(call).tags.values(), key=lambda t: t.pushed, reverse=True)
        chunk, next_url, previous = self._page(call, tags)  # type: ignore[attr-defined]
        body = {"count": len(tags), "next": next_url, "previous": previous, "results": [t.view() for t in chunk]}
        return json_response(200, body)

    def _route_delete_tag(self, call: Any) -> Response:
        self._may(call, call.params["namespace"], delete=True)
        repo = self._repo(call)
        if repo.tags.pop(call.params["tag"], None) is None:
            raise Reply(json_response(404, {"message": "tag not found"}))
        return Response(204)

    def _route_delete_repository(self, call: Any) -> Response:
        self._may(call, call.params["namespace"], delete=True)
        self._repo(call)
        del self._repos[(call.params["namespace"], call.params["repository"])]
        return Response(202)
