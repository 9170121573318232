"""What `provision dockerhub` is asked for: a hub's Docker Hub token request (namespace, label, the pending and
delivered label suffixes that mark a token's state), its validation before any request, and the values it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from provision import endpoints, names
from provision.errors import UsageError
from provision.hubconfig import HubRegistry
from provision.registries.base import Rotated

SERVER = "https://index.docker.io/v1/"  # the docker client's auth key for Docker Hub (and z2jh's default)


API_URL = "https://registry-1.docker.io"  # the v2 API BinderHub asks whether an image exists


# A new token carries this suffix until its secret is stored: a token found with it was never confirmed stored.
PENDING_SUFFIX = ".pending"


# A rotation's new token carries this one from the moment its secret is delivered until the old token is gone
# (an organization's token labels are unique: it cannot take the label while the old token has it). A token found
# with it was delivered: a run finishes that rotation (deletes the old token, gives the new one its label).
DELIVERED_SUFFIX = ".new"


PAT_SCOPES = ["repo:write"]  # Read & Write: push, pull, and create repositories where the account may


@dataclass(frozen=True)
class DockerHubRequest:
    namespace: str
    hub: str
    cluster: str | None = None
    org: bool = False
    label: str | None = None
    rotate: bool = False
    private: bool = False
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    api_url: str = "https://hub.docker.com"
    allow_http: bool = False

    @property
    def token_label(self) -> str:
        # One token per hub: its secret is shown once and delivered to this hub only, so rotating it cannot break
        # another hub (no `--rotate-shared` as for a Quay robot), unless someone copied the secret by hand.
        return self.label or "-".join(["binderhub", *([self.cluster] if self.cluster else []), self.hub])

    @property
    def pending_label(self) -> str:
        """The label of a new token until its secret is stored (then it is renamed to token_label)."""
        return self.token_label + PENDING_SUFFIX

    @property
    def delivered_label(self) -> str:
        """A rotation's new token's label from the delivery of its secret until the old token is deleted."""
        return self.token_label + DELIVERED_SUFFIX

    @property
    def token_kind(self) -> str:
        return "organization access token" if self.org else "personal access token"

    @property
    def image_prefix(self) -> str:
        return f"{self.namespace}/{'-'.join([*([self.cluster] if self.cluster else []), self.hub])}-"

    @property
    def oat_resources(self) -> list[dict[str, Any]]:
        # Repository scopes cannot create repositories: BinderHub pushes each image to a new one, which needs the
        # organization-level Repository Create scope. The TYPE_ORG path being the org name is inferred.
        return [
            {"type": "TYPE_REPO", "path": f"{self.namespace}/*", "scopes": ["scope-image-pull", "scope-image-push"]},
            {"type": "TYPE_ORG", "path": self.namespace, "scopes": ["scope-repository-create"]},
        ]


def validate(req: DockerHubRequest) -> None:
    """Names and credentials' presence, before any request. Raises UsageError."""
    url = urlsplit(req.api_url)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        raise UsageError(f"invalid --api-url {req.api_url!r}: expected https://HOST[:PORT] of the Docker Hub API")
    endpoints.check_cleartext(req.api_url, option="--api-url", allow_http=req.allow_http)
    names.dockerhub_namespace("--namespace", req.namespace)  # before Docker Hub's own rule: BinderHub's is narrower
    names.hub_name("hub name", req.hub)
    if req.cluster is not None:
        names.hub_name("cluster name", req.cluster)
    longest = 100 - max(len(PENDING_SUFFIX), len(DELIVERED_SUFFIX))  # Docker Hub's 100, minus a new token's suffix
    if not (1 <= len(req.token_label) <= longest):
        raise UsageError(f"invalid --token-label: 1-{longest} characters, got {len(req.token_label)}")
    if req.org and req.username == req.namespace:
        raise UsageError(
            "an organization access token is managed as an organization owner: set DOCKERHUB_USERNAME to your "
            f"Docker ID (an owner of {req.namespace!r}); the token's own login name will be {req.namespace!r}"
        )


def registry_for(req: DockerHubRequest, *, password: str) -> HubRegistry:
    """Docker Hub: the login name is the Docker ID for a personal token, the organization for an org token."""
    return HubRegistry(
        kind="dockerhub",
        server=SERVER,
        api_url=API_URL,
        username=req.namespace if req.org else (req.username or req.namespace),
        image_prefix=req.image_prefix,
        password=password,
        pull_secret_registry=SERVER if req.private else None,
    )


def rotated_credential(req: DockerHubRequest) -> Rotated:
    kind = "organization access token" if req.org else "personal access token"
    """What a rotation made live, and where it can be read again (for messages after the rotation)."""
    return Rotated(
        f"the new Docker Hub {kind} {req.token_label!r}",
        "nowhere else: Docker Hub shows a token's secret only when it is created",
        None,
    )
