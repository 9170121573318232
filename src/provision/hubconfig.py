"""The hub-config model: one registry description that renders a hub's public and secret Helm values.

Every registry path (quay, Artifact Registry, Docker Hub) builds a HubRegistry; no command assembles Helm YAML
itself. Pure: no I/O. Keys follow ../shared/facts/hub-config.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RegistryKind = Literal["quay", "artifact-registry", "dockerhub"]


@dataclass(frozen=True)
class HubRegistry:
    """Where a hub's images are pushed and with which credentials.

    `server` is the docker-config auth key the build pods push with; `registry_url` is the v2 API URL BinderHub
    queries to find existing images (they differ only for Docker Hub). `pull_secret_registry` is set when user
    pods need an imagePullSecret (quay pushes private repositories).
    """

    kind: RegistryKind
    server: str
    username: str
    image_prefix: str
    password: str = field(default="", repr=False)
    api_url: str | None = None
    pull_secret_registry: str | None = None

    @property
    def registry_url(self) -> str:
        return self.api_url or self.server


def public_values(registry: HubRegistry) -> dict[str, Any]:
    """The plain values for `<hub>.values.yaml`: everything except passwords."""
    return {
        "binderhub-service": {
            "enabled": True,
            "config": {
                # use_registry: without it the chart gives build pods no push credentials.
                "BinderHub": {"use_registry": True, "image_prefix": registry.image_prefix},
                # DockerRegistry: without it BinderHub looks on Docker Hub and rebuilds every image.
                "DockerRegistry": {"url": registry.registry_url, "username": registry.username},
            },
            "buildPodsRegistryCredentials": {"server": registry.server, "username": registry.username},
        }
    }


def secret_values(registry: HubRegistry) -> dict[str, Any]:
    """The values for `enc-<hub>.secret.values.yaml`: the passwords, plus the whole pull secret when needed."""
    doc: dict[str, Any] = {
        "binderhub-service": {
            "config": {"DockerRegistry": {"password": registry.password}},
            "buildPodsRegistryCredentials": {"password": registry.password},
        }
    }
    if registry.pull_secret_registry is not None:
        doc["jupyterhub"] = {
            "imagePullSecret": {
                "create": True,
                "registry": registry.pull_secret_registry,
                "username": registry.username,
                "password": registry.password,
            }
        }
    return doc


def secret_key_paths(registry: HubRegistry) -> list[str]:
    """Dotted paths of the secret values (for messages that must name keys, never values)."""
    return [".".join(path) for path, _ in _leaves(secret_values(registry), ())]


def _leaves(doc: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.extend(_leaves(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out
