"""Docker Hub: a personal or organization access token; image prefixes carry no host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision import names
from provision.registries.base import HubFacts, Problem, RegistryKind, host_of

if TYPE_CHECKING:
    from provision.hubconfig import HubRegistry
    from provision.registries.base import PruneAccess, Pruner

V2_URL = "https://registry-1.docker.io"  # the push server's key (index.docker.io/v1/) is no v2 API


class DockerHub(RegistryKind):
    name = "dockerhub"
    title = "Docker Hub"
    pull_secret = "maybe"

    def recognises(self, host: str, username: str) -> bool:
        return host == "docker.io"

    def prefix_problem(self, registry: HubRegistry) -> str | None:
        host = registry.image_prefix.split("/")[0]
        if "." not in host and ":" not in host and host != "localhost":
            return None
        return "Docker Hub prefixes carry no host: <namespace>/<name>-"

    def v2_url(self, registry: HubRegistry) -> str:
        return V2_URL

    def lookup_host(self, registry: HubRegistry) -> str:
        return host_of(registry.server)  # docker.io, whichever of its names the values use

    def repository_path(self, registry: HubRegistry) -> str:
        return registry.image_prefix  # no host to take off

    # --- doctor ---

    binderhub_default_url = True

    def recognises_host(self, host: str) -> bool:
        return host_of(host) == "docker.io"

    def prefix_fits(self, facts: HubFacts) -> bool:
        parts = (facts.prefix or "").split("/")
        return len(parts) >= 2 and bool(parts[0]) and not _names_a_host(parts[0])

    def prefix_expected(self, facts: HubFacts) -> str:
        return "<namespace>/<name-prefix>- with no registry host"

    def prefix_problems(self, facts: HubFacts) -> list[Problem]:
        """BinderHub takes an image name for a Docker Hub one only when its namespace has Docker Hub's shape."""
        if names.binderhub_reads_as_docker_hub(f"{facts.prefix}image"):
            return []
        namespace = names.DOCKER_HUB_NAMESPACE_RULE.split(":")[0]
        return [Problem("error", "dockerhub-prefix-misread", f"BinderHub does not read image names under "
                        f"{facts.prefix!r} as Docker Hub ones (it needs <namespace>/<name>, the namespace being "
                        f"{namespace}): it looks for built images elsewhere and rebuilds them on every launch; use "
                        "such a namespace")]  # fmt: skip

    # --- prune ---

    def pruner(self, registry: HubRegistry, access: PruneAccess) -> Pruner | None:
        from provision.registries.dockerhub.prune import DockerHubPruner

        return DockerHubPruner(registry, access)


KIND = DockerHub()


def _names_a_host(part: str) -> bool:
    """Whether an image name's first part is a registry host (Docker's own rule), not a Docker Hub namespace."""
    return "." in part or ":" in part or part == "localhost"
