"""Docker Hub: a personal or organization access token; image prefixes carry no host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.registries.base import RegistryKind, host_of

if TYPE_CHECKING:
    from provision.hubconfig import HubRegistry

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


KIND = DockerHub()
