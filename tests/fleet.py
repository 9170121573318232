"""A fixture fleet in the 2i2c layout for `provision verify PATH`: clusters, hubs on quay-, Artifact Registry-, Docker
Hub- and self-hosted-shaped registries, daskhub `basehub:` wrapping, a secret file shared by several hubs, and every
secret file encrypted with the real sops for age recipients (tests/realsops.py).

``write_fleet(root, hubs, recipients)`` writes ``root/config/clusters/<cluster>/…`` and returns the folder
``config/clusters``. The files follow ../shared/facts/hub-config.md §6–7: public values in ``<hub>.values.yaml``
(url, username, image_prefix, pull-secret registry), passwords in ``enc-<hub>.secret.values.yaml`` or in a shared
``enc-binderhub-service-common.secret.values.yaml``, files listed in ``cluster.yaml`` with encrypted files last.
Used by tests/flows/test_fleet.py and scripts/bench-verify.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from tests.realsops import encrypt_file
from tests.servers.registry import TokenIssuer

Kind = Literal["quay", "artifact-registry", "dockerhub", "registry"]
AR_HOST = "us-central1-docker.pkg.dev"
QUAY_HOST = "quay.io"
SHARED_SECRET = "enc-binderhub-service-common.secret.values.yaml"
SHARED_PUBLIC = "binderhub-service-common.values.yaml"


@dataclass(frozen=True)
class Hub:
    cluster: str
    name: str
    kind: Kind
    username: str
    password: str | None  # None: no password in any file (the hub 2i2c#8458 fixed)
    chart: str = "basehub"  # or "daskhub": every key under basehub:
    binder: bool = True
    shared_secret: bool = False  # password in the cluster's shared encrypted file instead of the hub's own
    recipients: tuple[str, ...] | None = None  # encrypt the hub's own file for these instead (undecryptable)
    server: str | None = None  # for kind "registry": the self-hosted server (host[:port])
    project: str = "proj"  # Artifact Registry project
    org: str = "hubs"  # quay organization / Docker Hub namespace
    lookup_password: str | None = "="  # BinderHub's config.DockerRegistry.password: "=" the same, None: not set

    @property
    def prefix(self) -> str:
        if self.kind == "quay":
            return f"{QUAY_HOST}/{self.org}/{self.cluster}-{self.name}-"
        if self.kind == "artifact-registry":
            return f"{AR_HOST}/{self.project}/{self.cluster}-{self.name}-registry/"
        if self.kind == "dockerhub":
            return f"{self.org}/{self.cluster}-{self.name}-"
        return f"{self.server}/{self.org}/{self.cluster}-{self.name}-"

    @property
    def push_server(self) -> str:
        return {"quay": f"https://{QUAY_HOST}", "artifact-registry": f"https://{AR_HOST}",
                "dockerhub": "https://index.docker.io/v1/"}.get(self.kind) or f"http://{self.server}"  # fmt: skip

    @property
    def api_url(self) -> str:
        return "https://registry-1.docker.io" if self.kind == "dockerhub" else self.push_server

    @property
    def pull_registry(self) -> str | None:
        return {"quay": QUAY_HOST, "dockerhub": "https://index.docker.io/v1/"}.get(self.kind)


def _wrap(hub: Hub, doc: dict[str, Any]) -> dict[str, Any]:
    return {"basehub": doc} if hub.chart == "daskhub" else doc


def public_doc(hub: Hub) -> dict[str, Any]:
    binder: dict[str, Any] = {
        "enabled": hub.binder,
        "config": {
            "BinderHub": {"image_prefix": hub.prefix},
            "DockerRegistry": {"url": hub.api_url, "username": hub.username},
        },
        "buildPodsRegistryCredentials": {"server": hub.push_server, "username": hub.username},
    }
    doc: dict[str, Any] = {"jupyterhub": {"custom": {"homepage": {"templateVars": {"org": {"name": hub.name}}}}},
                           "binderhub-service": binder}  # fmt: skip
    if hub.chart == "daskhub":
        doc["dask-gateway"] = {"gateway": {"backend": {"imagePullSecrets": [{"name": "image-pull-secret"}]}}}
    return _wrap(hub, doc)


def secret_doc(hub: Hub) -> dict[str, Any]:
    doc: dict[str, Any] = {"jupyterhub": {"hub": {"config": {"GitHubOAuthenticator": {
        "client_id": f"id-{hub.name}", "client_secret": secrets.token_hex(12)}}}}}  # fmt: skip
    if hub.password is not None:
        lookup = hub.password if hub.lookup_password == "=" else hub.lookup_password
        doc["binderhub-service"] = {"buildPodsRegistryCredentials": {"password": hub.password}}
        if lookup is not None:
            doc["binderhub-service"]["config"] = {"DockerRegistry": {"password": lookup}}
        if hub.pull_registry:
            doc["jupyterhub"]["imagePullSecret"] = {
                "create": True, "registry": hub.pull_registry, "username": hub.username, "password": hub.password,
            }  # fmt: skip
    return _wrap(hub, doc)


def write_fleet(root: Path, hubs: Sequence[Hub], recipients: Sequence[str]) -> Path:
    """Write the fleet under root/config/clusters; returns that folder. Files are encrypted with the real sops."""
    clusters_dir = root / "config" / "clusters"
    by_cluster: dict[str, list[Hub]] = {}
    for hub in hubs:
        by_cluster.setdefault(hub.cluster, []).append(hub)
    for cluster, members in by_cluster.items():
        folder = clusters_dir / cluster
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        shared = [h for h in members if h.shared_secret]
        for hub in members:
            listed = [f"{hub.name}.values.yaml"]
            own = hub
            if hub.shared_secret:
                own = replace(hub, password=None)  # the hub's own file holds no password
                listed = [SHARED_PUBLIC, *listed, f"enc-{hub.name}.secret.values.yaml", SHARED_SECRET]
            else:
                listed.append(f"enc-{hub.name}.secret.values.yaml")
            (folder / f"{hub.name}.values.yaml").write_text(yaml.safe_dump(public_doc(hub), sort_keys=False))
            encrypt_file(folder / f"enc-{hub.name}.secret.values.yaml",
                         yaml.safe_dump(secret_doc(own), sort_keys=False), hub.recipients or recipients)  # fmt: skip
            entries.append({"name": hub.name, "display_name": hub.name.title(), "domain": f"{hub.name}.{cluster}.org",
                            "helm_chart": hub.chart, "helm_chart_values_files": listed})  # fmt: skip
        if shared:
            first = shared[0]
            (folder / SHARED_PUBLIC).write_text(yaml.safe_dump(_wrap(first, {"binderhub-service": {"enabled": True}})))
            encrypt_file(folder / SHARED_SECRET, yaml.safe_dump(_shared_only(secret_doc(first))), recipients)
        config = {"name": cluster, "provider": "gcp", "gcp": {"project": f"{cluster}-project"}, "hubs": entries}
        (folder / "cluster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return clusters_dir


def _shared_only(doc: dict[str, Any]) -> dict[str, Any]:
    """The registry passwords of a secret doc, without the hub's own OAuth secret."""
    inner = doc.get("basehub", doc)
    kept: dict[str, Any] = {"binderhub-service": inner["binderhub-service"]}
    if "imagePullSecret" in inner["jupyterhub"]:
        kept["jupyterhub"] = {"imagePullSecret": inner["jupyterhub"]["imagePullSecret"]}
    return {"basehub": kept} if "basehub" in doc else kept


class MultiKeyIssuer(TokenIssuer):
    """A TokenIssuer where one user name may have several passwords: every Artifact Registry hub logs in as
    `_json_key`, each with its own service-account key."""

    def __init__(self, users: dict[str, Iterable[str]], grants: dict[str, list[tuple[str, set[str]]]]) -> None:
        super().__init__({}, grants)
        self.passwords = {user: set(pw) for user, pw in users.items()}

    def password_ok(self, user: str, password: str) -> bool:
        return password in self.passwords.get(user, ())
