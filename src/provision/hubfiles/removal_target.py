"""What a removal takes out of a hub's files: the registry whose keys leave them (RemovalTarget), every public key
provision may have written for it, and the check that a file describes that registry and not another one (a wrong
--org or --hub must change nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from provision.errors import UsageError
from provision.hubconfig import (
    Chart,
    HubOptions,
    HubRegistry,
    ImageChoice,
    Profile,
    get_path,
    public_values,
)

KeyPath = tuple[str, ...]


# Leaves that say which registry the values belong to: a different value means the files are another registry's.
IDENTITY_LEAVES: tuple[KeyPath, ...] = (
    ("binderhub-service", "config", "BinderHub", "image_prefix"),
    ("binderhub-service", "config", "DockerRegistry", "url"),
    ("binderhub-service", "config", "DockerRegistry", "username"),
    ("binderhub-service", "buildPodsRegistryCredentials", "server"),
    ("binderhub-service", "buildPodsRegistryCredentials", "username"),
)


PULL_SECRET: KeyPath = ("jupyterhub", "imagePullSecret")


@dataclass(frozen=True)
class RemovalTarget:
    """The registry whose keys leave the files. `username` empty: not known (any user name matches)."""

    registry: HubRegistry
    chart: Chart = "basehub"
    pull_hosts: tuple[str, ...] = ()  # imagePullSecret.registry values that are this registry's

    def wrap(self, path: KeyPath) -> KeyPath:
        return ("basehub", *path) if self.chart == "daskhub" else path


def release_view(doc: Any, release: str | None) -> Any:
    """A release file's document seen in the hub layout (its values under the release's key), for reading."""
    return {release: doc} if release is not None else doc


def owned_public(target: RemovalTarget) -> dict[str, Any]:
    """Every public key provision may have written for this registry (profile and dask pull secret included)."""
    # profileList entries are removed whole, by slug: the one image only makes the profile renderable.
    profile = Profile(images=(ImageChoice("image", "image:tag"),))
    options = HubOptions(chart=target.chart, dask_gateway=True, profile=profile)
    registry = target.registry
    if registry.pull_secret_registry is None and target.pull_hosts:
        registry = replace(registry, pull_secret_registry=target.pull_hosts[0])
    return public_values(registry, options)


def in_file(names: list[str], release: str | None) -> list[str]:
    """Dotted key paths as the file has them: a z2jh release's file holds its values without the release's key."""
    start = f"{release}."
    return [name[len(start) :] if release is not None and name.startswith(start) else name for name in names]


def check_identity(doc: Any, target: RemovalTarget, path: Path) -> None:
    """Refuse files that name another registry than the one being removed (a wrong --org, --hub, --namespace...)."""
    expected = public_values(target.registry, HubOptions(chart=target.chart))
    conflicts = []
    for leaf in IDENTITY_LEAVES:
        keys = target.wrap(leaf)
        found, want = get(doc, keys), get(expected, keys)
        if found is None or want is None or (leaf[-1] == "username" and not target.registry.username):
            continue
        if str(found) != str(want):
            conflicts.append(f"{'.'.join(keys)} is {str(found)!r}, not {str(want)!r}")
    if conflicts:
        raise UsageError(
            f"{path} describes another registry than the one to remove: " + "; ".join(conflicts) + ". Nothing "
            "was changed",
            hint="check the options (organization, robot, cluster, hub, namespace), or pass the hub's own files",
        )


def get(doc: Any, keys: Sequence[str]) -> Any:
    return get_path(doc, *keys)
