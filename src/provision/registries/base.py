"""What every registry kind provides: the one small interface the kind-independent verbs drive.

A kind answers questions about a hub's registry values (is this server mine, does the image prefix fit, which v2
URL to ask, how to tell whether the credential may push) and, for kinds provision can set up, names the modules
that create, rotate and remove a hub's credential. The defaults are those of a plain registry v2 server (any
registry provision does not set up itself: `registry`), so a kind overrides only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from provision.errors import ProvisionError
from provision.registries.pruning import PruneAccess, Pruner, TagInfo

__all__ = ["PruneAccess", "Pruner", "TagInfo"]  # a prune's types, for the verbs (registries/pruning.py)

if TYPE_CHECKING:
    from provision.hostlimit import HostLimiter
    from provision.httpretry import Deadline
    from provision.hubconfig import HubRegistry
    from provision.registry import RegistryClient

Status = Literal["pass", "fail", "could-not-check"]
DOCKER_HUB_HOSTS = frozenset({"index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"})
PROBE = "provision-verify-probe"  # a repository name that is only ever asked about, never written


def host_of(server: str) -> str:
    """`https://quay.io` → `quay.io`; `quay.io` → `quay.io`; Docker Hub's aliases → `docker.io`."""
    host = urlsplit(server).netloc if "://" in server else server.split("/")[0]
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


class DeadlineWhileAsking(ProvisionError):
    """The command's deadline passed while a kind asked its registry's own API (`pending` says what was)."""

    def __init__(self, pending: str, *, seconds: float) -> None:
        super().__init__(pending)
        self.pending = pending
        self.seconds = seconds


@dataclass(frozen=True)
class Verdict:
    """A kind's answer to one verify check."""

    status: Status
    detail: str


@dataclass(frozen=True)
class PermissionProbe:
    """What the permission check may use: the client already logged in with the push credential, and the run's
    limits (a fleet run shares one limiter); `ar_endpoint` is the Artifact Registry API endpoint (tests)."""

    client: RegistryClient
    limiter: HostLimiter | None = None
    deadline: Deadline | None = None
    ar_endpoint: str | None = None


@dataclass(frozen=True)
class Rotated:
    """A credential a rotation made live. `where`: where it can be read again besides this run's output;
    `rewrite`: the command that writes it again without another rotation (None: nothing can)."""

    credential: str
    where: str
    rewrite: str | None


class RegistryKind:
    """A registry kind. Subclasses set `name` and override what differs from a plain registry v2 server."""

    name: str = "registry"
    title: str = "registry"
    # Whether user pods need an imagePullSecret: "required" (Quay pushes private repositories), "maybe" (Docker Hub
    # repositories may be private), None (the nodes pull with their own identity, or nothing is known).
    pull_secret: Literal["required", "maybe"] | None = None
    probe_actions: tuple[str, ...] = ("pull", "push")

    def recognises(self, host: str, username: str) -> bool:
        """Whether a hub's push server (host) and user name are this kind's. The generic kind recognises nothing:
        it is what is left."""
        return False

    def prefix_problem(self, registry: HubRegistry) -> str | None:
        """Why the image prefix does not fit the registry (None when it does)."""
        if registry.image_prefix.split("/")[0] == host_of(registry.server):
            return None
        return f"the prefix's host must be the registry's ({host_of(registry.server)})"

    def v2_url(self, registry: HubRegistry) -> str:
        """The v2 API URL to ask: the values' DockerRegistry.url, else the push server."""
        url = registry.registry_url
        # The chart also takes a bare `quay.io` as the server (docker config keys need no scheme): registries speak
        # HTTPS.
        return url if "://" in url else f"https://{url}"

    def lookup_host(self, registry: HubRegistry) -> str:
        """The host BinderHub must ask whether an image exists (its DockerRegistry.url's host)."""
        return host_of(registry.registry_url)

    def repository_path(self, registry: HubRegistry) -> str:
        """The image prefix without its host: the start of the repository names BinderHub pushes."""
        return registry.image_prefix.partition("/")[2]

    def probe_repository(self, registry: HubRegistry) -> str:
        """The repository name BinderHub would use for a new image under the prefix (host removed)."""
        path = self.repository_path(registry)
        return f"{path}{PROBE}" if path.endswith(("-", "/")) or not path else f"{path}-{PROBE}"

    def probe_scopes(self, registry: HubRegistry) -> tuple[str, ...]:
        """The token scope the permission check asks for, asked already with the credential check (one token
        request fewer per hub)."""
        return (f"repository:{self.probe_repository(registry)}:{','.join(self.probe_actions)}",)

    def permission(self, registry: HubRegistry, probe: PermissionProbe) -> Verdict:
        """Whether the push credential may push and pull under the image prefix, without writing anything."""
        repository = self.probe_repository(registry)
        granted = probe.client.granted_actions(repository, list(self.probe_actions))
        if granted is None:
            return Verdict("could-not-check", "Basic auth (or an opaque token) tells nothing without pushing")
        if {"pull", "push"} <= granted:
            return Verdict("pass", f"token for {repository} grants {', '.join(sorted(granted))}")
        return Verdict("fail", f"token for {repository} grants only {', '.join(sorted(granted)) or 'nothing'}")

    # --- doctor ---
    # What `provision doctor` asks a kind about a hub's files. The defaults are doctor's rules for any registry v2
    # server with `<host>/<org>/<name-prefix>-` prefixes (a self-hosted Quay among them, see recognises_host).

    # Whether BinderHub's DockerRegistry.url defaults to this registry, so the values may leave it out.
    binderhub_default_url: bool = False

    def recognises_host(self, host: str) -> bool:
        """Whether doctor takes a push host (lower-case, no scheme) for this kind. By the host alone and stricter
        than `recognises`: doctor has always checked a self-hosted `quay.*` host, or an `org+robot` user on another
        host, as a plain registry (warnings where Quay gets errors), and its findings must stay as they are."""
        return False

    def prefix_fits(self, facts: HubFacts) -> bool:
        """Doctor's shape rule for image_prefix (facts.prefix set); looser than prefix_problem, which verify uses."""
        parts = (facts.prefix or "").split("/")
        return len(parts) >= 3 and parts[0].lower() == facts.host and bool(parts[1])

    def prefix_expected(self, facts: HubFacts) -> str:
        """The shape prefix_fits wants, as doctor's finding words it."""
        return f"{facts.host}/<org>/<name-prefix>-"

    def prefix_problems(self, facts: HubFacts) -> list[Problem]:
        """Further problems of a prefix that fits. A Quay robot (`org+name`, also on a self-hosted Quay) pushes
        only into its own organization."""
        parts = (facts.prefix or "").split("/")
        robot_org = facts.username.split("+", 1)[0] if facts.username and "+" in facts.username else None
        if robot_org is None or robot_org == parts[1]:
            return []
        return [Problem("error", "robot-org-mismatch", f"image_prefix is in the organization {parts[1]!r} but the "
                        f"robot account belongs to {robot_org!r}, which cannot push there; use one organization for "
                        "both")]  # fmt: skip

    def nodes_can_pull(self, facts: HubFacts) -> bool:
        """Whether the cluster's nodes pull the built images with their own identity, so user pods need no
        imagePullSecret."""
        return False

    def missing_pull_secret(self) -> Problem:
        """What doctor says when user pods need an imagePullSecret that is not set."""
        return Problem("warning", "missing-image-pull-secret", "built images live in a registry this cluster cannot "
                       "read by default; set jupyterhub.imagePullSecret (create: true, registry, username, password) "
                       "unless the repositories are public")  # fmt: skip

    def missing_password_note(self) -> str:
        """Appended to doctor's finding when the hub has no registry password at all: its likely cause."""
        return ""

    # --- prune ---
    # What `provision prune` asks a kind: a Pruner over the hub's repositories (None: the kind cannot prune yet).
    # The default is any registry v2 server (deletion by digest, no dates but the image config's `created`).

    def pruner(self, registry: HubRegistry, access: PruneAccess) -> Pruner | None:
        """The hub's repositories at its registry, as `provision prune` lists and deletes them. A named kind gets
        None until it overrides this: its registry's own API may answer v2 deletions differently (Quay's tags,
        Artifact Registry's versions)."""
        if self.name != RegistryKind.name:
            return None
        from provision.registries.v2prune import V2Pruner

        url = access.registry_url or self.v2_url(registry)
        return V2Pruner(registry, self.repository_path(registry), access, url=url)

    # --- retention ---
    # What fleet verify and doctor ask a kind about a hub's image retention. The default is a registry with no
    # server-side policy a user can set (Docker Hub, registry v2): "none", pruned client-side by provision prune.

    def retention_token(self, environ: Mapping[str, str]) -> str | None:
        """The credential that may read the kind's retention policy, from the environment (None: none needed or
        none given); the caller redacts it."""
        return None

    def retention_in_files(self, query: RetentionQuery) -> Retention | None:
        """The hub's retention as the infrastructure repository's files say it, offline (None: they do not say)."""
        return None

    def retention(self, query: RetentionQuery) -> Retention:
        """The hub's retention policy: read from files, or asked of the registry with query.token."""
        return Retention("none", CLIENT_SIDE)

    def retention_scope(self, registry: HubRegistry) -> str | None:
        """What the hub's retention policy belongs to when other hubs share it (a run asks for it once); None: the
        hub's own."""
        return None


# --- doctor --- (what doctor tells a kind, and a kind's answer)


@dataclass(frozen=True)
class HubFacts:
    """What `provision doctor` knows of a hub's registry from its files alone (offline, nothing decrypted): the push
    host (lower-case, no scheme), the readable image_prefix and user name (None when encrypted or unset), and the
    cluster's provider and GCP project from cluster.yaml."""

    host: str
    prefix: str | None
    username: str | None
    provider: str
    gcp_project: str | None


@dataclass(frozen=True)
class Problem:
    """One of doctor's findings, as a kind words it (doctor adds where it is)."""

    severity: Literal["error", "warning"]
    code: str
    message: str



# --- retention --- (a hub's image retention, as fleet verify and doctor report it)

RetentionState = Literal["server-side", "none", "unknown"]
CLIENT_SIDE = "client-side: provision prune"


@dataclass(frozen=True)
class RetentionQuery:
    """What a kind may use to find a hub's retention: the hub's registry values, its names in the layout, the
    infrastructure repository (None: not found), an API token and URL, and the run's limits."""

    registry: HubRegistry | None  # None: not readable (doctor, offline: the password is encrypted)
    cluster: str
    hub: str
    repository: Path | None = None
    token: str | None = None
    api_url: str | None = None  # the kind's API (tests, a mirror)
    limiter: HostLimiter | None = None
    deadline: Deadline | None = None


@dataclass(frozen=True)
class Retention:
    """A hub's retention: `server-side` (a policy the registry enforces, `detail` says which), `none` (nothing
    deletes old images; `detail` says what can), or `unknown` (`detail` says why it could not be read)."""

    state: RetentionState
    detail: str = ""
    source: str = field(default="", compare=False)  # where it was read (a file, an API), for messages

    def label(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


def infrastructure_root(cluster_folder: Path) -> Path | None:
    """The repository holding `config/clusters/<cluster>/` (2i2c-org/infrastructure's layout), or None."""
    clusters = cluster_folder.resolve().parent
    if clusters.name == "clusters" and clusters.parent.name == "config":
        return clusters.parent.parent
    return None
