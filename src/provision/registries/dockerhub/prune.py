"""Pruning a hub's repositories on Docker Hub through its Hub API: list repositories and tags (with
`tag_last_pulled`, `tag_last_pushed` and `full_size`), delete a tag, delete an emptied repository.

Facts: ../shared/facts/retention.md §4. The hub's push credential logs in (`POST /v2/auth/token`); deleting needs a
"Read, Write, Delete" personal token or an organization token with image delete scope. A bearer lives 10 minutes,
so a 401 in the middle of a long run logs in again once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision.registries.pruning import TagInfo
from provision.registries.v2prune import PruneError, PruneHttp, paged, parse_time

if TYPE_CHECKING:
    import requests

    from provision.hubconfig import HubRegistry
    from provision.registries.pruning import PruneAccess

API_URL = "https://hub.docker.com"
PAGE_SIZE = 100  # the documented maximum
DELETE_HINT = ("prune needs a token that may delete: a personal access token with Read, Write, Delete, or an "
               "organization access token with the image delete scope on the namespace's repositories")  # fmt: skip


class DockerHubPruner:
    """A hub's repositories `<namespace>/<name-prefix>*` on Docker Hub."""

    title: str = "Docker Hub"
    host: str = "docker.io"
    records_pulls: bool = True
    by_digest: bool = False
    deletes_repositories: bool = True
    notes: tuple[str, ...] = (
        "Docker Hub's tag_last_pulled can be refreshed by crawlers walking every tag: --unused-for then keeps more",
    )

    def __init__(self, registry: HubRegistry, access: PruneAccess) -> None:
        self.api = (access.api_url or API_URL).rstrip("/")
        self.namespace, _, self.prefix = registry.image_prefix.partition("/")
        self._identity = (registry.username, registry.password)
        self.http = PruneHttp(access)
        self._logged_in = False

    def close(self) -> None:
        self.http.close()

    def _login(self) -> None:
        identifier, secret = self._identity
        response = self.http.send("POST", f"{self.api}/v2/auth/token",
                                  json={"identifier": identifier, "secret": secret})  # fmt: skip
        if response.status_code != 200:
            raise PruneError(f"Docker Hub refused the hub's credential (HTTP {response.status_code})",
                             status=response.status_code,
                             hint="check the user name and token in the hub's values and secrets (provision "
                             "verify tells more)")  # fmt: skip
        token = _body(response).get("access_token")
        if not isinstance(token, str) or not token:
            raise PruneError("Docker Hub's login answer has no access_token")
        self.http.headers["Authorization"] = f"Bearer {token}"
        self._logged_in = True

    def _call(self, method: str, url: str) -> requests.Response:
        if not self._logged_in:
            self._login()
        response = self.http.send(method, url)
        if response.status_code == 401:  # the 10-minute bearer ran out
            self._login()
            response = self.http.send(method, url)
        return response

    def _page(self, url: str, what: str) -> tuple[list[Any], str | None]:
        response = self._call("GET", url)
        if response.status_code != 200:
            raise _failed(response, what)
        body = _body(response)
        following = body.get("next")
        results = body.get("results")
        return [r for r in results or [] if isinstance(r, dict)], following if isinstance(following, str) else None

    def repositories(self) -> list[str]:
        first = f"{self.api}/v2/namespaces/{self.namespace}/repositories?page=1&page_size={PAGE_SIZE}"
        names = (r.get("name") for r in paged(first, lambda url: self._page(url, "list the namespace's repositories")))
        return [f"{self.namespace}/{n}" for n in names if isinstance(n, str) and n.startswith(self.prefix)]

    def tags(self, repository: str) -> list[TagInfo]:
        namespace, _, name = repository.partition("/")
        first = f"{self.api}/v2/namespaces/{namespace}/repositories/{name}/tags?page=1&page_size={PAGE_SIZE}"
        found = paged(first, lambda url: self._page(url, f"list the tags of {repository}"))
        return [_tag(t) for t in found if isinstance(t.get("name"), str)]

    def delete_tag(self, repository: str, tag: TagInfo) -> None:
        self._delete(f"{self.api}/v2/repositories/{repository}/tags/{tag.name}/", f"delete {repository}:{tag.name}")

    def delete_repository(self, repository: str) -> None:
        self._delete(f"{self.api}/v2/repositories/{repository}/", f"delete the repository {repository}")

    def _delete(self, url: str, what: str) -> None:
        response = self._call("DELETE", url)
        if response.status_code not in (200, 202, 204, 404):  # 404: already gone (an earlier, interrupted run)
            raise _failed(response, what)


def _tag(data: dict[str, Any]) -> TagInfo:
    size = data.get("full_size")
    return TagInfo(
        str(data["name"]),
        digest=data.get("digest") if isinstance(data.get("digest"), str) else None,
        pushed=parse_time(data.get("tag_last_pushed")) or parse_time(data.get("last_updated")),
        pulled=parse_time(data.get("tag_last_pulled")),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise PruneError(f"Docker Hub answered {response.request.method} {response.url.split('?')[0]} with "
                         "something that is not JSON", hint="check --api-url") from None  # fmt: skip
    return body if isinstance(body, dict) else {}


def _failed(response: requests.Response, what: str) -> PruneError:
    status = response.status_code
    hint = DELETE_HINT if status == 403 else None
    return PruneError(f"Docker Hub: could not {what}: HTTP {status} {response.reason or ''}".rstrip(), status=status,
                      hint=hint)  # fmt: skip
