"""Doctor's rules on a hub's registry settings (facts §2, §3, §7): BinderHub's DockerRegistry, the build pods'
credentials, image_prefix against the push registry (quay.io, Docker Hub, Artifact Registry and the shut-down GCR),
and the pull secrets user and dask pods need for a private registry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from provision import names
from provision.doctor.values import enc_type, string_problem, text
from provision.hubconfig import get_path
from provision.terraform.runner import key_policy_note

if TYPE_CHECKING:
    from provision.doctor.hub import Hub

# These charts' defaults set binderhub-service.config.BinderHub.use_registry: true (facts §2.1), so hubs may omit it.
BASEHUB_CHARTS = ("basehub", "daskhub")
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
ARTIFACT_REGISTRY_HOST = re.compile(r"[a-z0-9-]+-docker\.pkg\.dev")
GCR_HOST = re.compile(r"([a-z]+\.)?gcr\.io")
RegistryKind = Literal["artifact-registry", "quay", "dockerhub", "gcr", "other"]
PREFIX_KEY = ("binderhub-service", "config", "BinderHub", "image_prefix")


def check_registry(hub: Hub, prefix: Any) -> None:
    bh = ("binderhub-service",)
    config = (*bh, "config")
    registry = hub.get(*config, "DockerRegistry")
    creds_key = (*bh, "buildPodsRegistryCredentials")
    creds = hub.get(*creds_key)
    server, url = text(get_path(creds, "server")), text(get_path(registry, "url"))
    push = server or url
    kind = _kind(_host(push)) if push else None

    use_registry = hub.get(*config, "BinderHub", "use_registry")
    if use_registry is not True and (use_registry is not None or hub.chart not in BASEHUB_CHARTS):
        hub.add(
            "error",
            "use-registry-not-true",
            (*config, "BinderHub", "use_registry"),
            "use_registry is not true: build pods get no push credentials and BinderHub never checks the "
            "registry; set it to true",
        )

    if not isinstance(registry, Mapping) or not registry:
        hub.add(
            "error",
            "missing-docker-registry",
            (*config, "DockerRegistry"),
            "binderhub-service is enabled without config.DockerRegistry, so BinderHub cannot see images already "
            "pushed and rebuilds on every launch; set url and username here and password in an encrypted file",
        )
    else:
        for field_name in ("url", "username", "password"):
            problem = string_problem(registry.get(field_name))
            if problem is None or (field_name == "url" and kind == "dockerhub" and registry.get("url") is None):
                continue  # BinderHub's default url is Docker Hub's
            hub.add(
                "error",
                "incomplete-docker-registry",
                (*config, "DockerRegistry", field_name),
                f"config.DockerRegistry.{field_name} {problem}: BinderHub's image-exists check fails and it "
                "rebuilds images; set it" + (" in an encrypted file" if field_name == "password" else ""),
                secret=field_name == "password",
            )
    if url and server and not _same_registry(url, server):
        hub.add(
            "warning",
            "registry-url-mismatch",
            (*config, "DockerRegistry", "url"),
            f"config.DockerRegistry.url points at {_host(url)} but build pods push to {_host(server)}: "
            "BinderHub looks for images where they are not and rebuilds them",
        )

    no_key = _no_key_note(kind, registry, creds)
    if not isinstance(creds, Mapping) or not creds:
        hub.add(
            "error",
            "incomplete-build-credentials",
            creds_key,
            "buildPodsRegistryCredentials is not set: build pods cannot push; set server and username here "
            "and password in an encrypted file (the chart schema needs all three strings)" + no_key,
        )
    else:
        for field_name in ("server", "username", "password"):
            problem = string_problem(creds.get(field_name))
            if problem is not None:
                hub.add(
                    "error",
                    "incomplete-build-credentials",
                    (*creds_key, field_name),
                    f"buildPodsRegistryCredentials.{field_name} {problem}; the chart schema requires server, "
                    "username and password as strings and build pods cannot push without them"
                    + (no_key if field_name == "password" else ""),
                    secret=field_name == "password",
                )

    if string_problem(prefix) == "is missing":
        hub.add(
            "error",
            "missing-image-prefix",
            PREFIX_KEY,
            "binderhub-service is enabled without config.BinderHub.image_prefix, so built images have no "
            "registry to go to; set it to this hub's prefix in its own values file",
            file=hub.own(),  # per hub, even when shared files set the rest (facts §6.2)
        )
    if push is None or kind is None:
        return  # the server is encrypted or unset: the registry cannot be identified
    prefix_text = text(prefix)
    username = text(get_path(creds, "username")) or text(get_path(registry, "username"))
    project = check_prefix(hub, prefix_text, push, kind, username=username) if prefix_text else None
    if kind != "gcr":
        check_pull_secrets(hub, push, kind, project=project)


def check_prefix(hub: Hub, prefix: str, push: str, kind: RegistryKind, *, username: str | None) -> str | None:
    """Check the prefix against the push server; returns the Artifact Registry project it names, if any."""
    host = _host(push)
    parts = prefix.split("/")
    if kind == "gcr":
        hub.add(
            "error",
            "registry-shut-down",
            ("binderhub-service", "buildPodsRegistryCredentials", "server"),
            f"{host} is Google Container Registry, which no longer accepts pushes (shut down in 2025); "
            "move to Artifact Registry",
        )
        return None
    if kind == "artifact-registry":
        # <region>-docker.pkg.dev/<project>/<repository>/ ; Artifact Registry also allows a name prefix after it.
        fits = len(parts) >= 4 and parts[0].lower() == host and bool(parts[1]) and bool(parts[2])
        expected = f"{host}/<project>/<repository>/"
    elif kind == "dockerhub":
        fits = len(parts) >= 2 and bool(parts[0]) and not _looks_like_host(parts[0])
        expected = "<namespace>/<name-prefix>- with no registry host"
    else:
        fits = len(parts) >= 3 and parts[0].lower() == host and bool(parts[1])
        expected = f"{host}/<org>/<name-prefix>-"
    rewritten = names.binderhub_rewrites(prefix)
    if rewritten is not None:
        hub.add(
            "error",
            "rewritten-image-name",
            PREFIX_KEY,
            f"BinderHub replaces '_' by '-' and lower-cases image names: under image_prefix {prefix!r} it pushes to "
            f"and looks up {rewritten!r}, another namespace (someone else's, or none); use a name without '_'",
        )
    if not fits:
        hub.add(
            "error",
            "image-prefix-mismatch",
            PREFIX_KEY,
            f"image_prefix {prefix!r} does not fit the registry the build pods push to ({host}); expected {expected}",
        )
    elif kind == "dockerhub" and not names.binderhub_reads_as_docker_hub(f"{prefix}image"):
        hub.add(
            "error",
            "dockerhub-prefix-misread",
            PREFIX_KEY,
            f"BinderHub does not read image names under {prefix!r} as Docker Hub ones (it needs "
            f"<namespace>/<name>, the namespace being {names.DOCKER_HUB_NAMESPACE_RULE.split(':')[0]}): it looks "
            "for built images elsewhere and rebuilds them on every launch; use such a namespace",
        )
    elif kind in ("quay", "other") and username and "+" in username and username.split("+", 1)[0] != parts[1]:
        hub.add(
            "error",
            "robot-org-mismatch",
            PREFIX_KEY,
            f"image_prefix is in the organization {parts[1]!r} but the robot account belongs to "
            f"{username.split('+', 1)[0]!r}, which cannot push there; use one organization for both",
        )
    return parts[1] if kind == "artifact-registry" and fits else None


def check_pull_secrets(hub: Hub, push: str, kind: RegistryKind, *, project: str | None) -> None:
    if kind == "artifact-registry":
        # The GKE node service account reads Artifact Registry in its own project only (facts §3).
        private = hub.cluster.provider != "gcp" or (
            hub.cluster.gcp_project is not None and project is not None and project != hub.cluster.gcp_project
        )
    else:
        private = True
    secret_key = ("jupyterhub", "imagePullSecret")
    pull = hub.get(*secret_key)
    create = get_path(pull, "create")
    active = create is True or enc_type(create) is not None  # an encrypted `create` cannot be read; trust it
    if private and not active:
        quay = kind == "quay"
        hub.add(
            "error" if quay else "warning",
            "missing-image-pull-secret",
            secret_key,
            (
                "quay.io makes pushed repositories private, so user pods cannot pull built images without "
                "jupyterhub.imagePullSecret (create: true, registry, username, password)"
                if quay
                else "built images live in a registry this cluster cannot read by default; set "
                "jupyterhub.imagePullSecret (create: true, registry, username, password) unless the "
                "repositories are public"
            ),
            secret=True,
        )
    if active:
        for field_name in ("registry", "username", "password"):
            problem = string_problem(get_path(pull, field_name))
            if problem is not None:
                hub.add(
                    "error",
                    "incomplete-image-pull-secret",
                    (*secret_key, field_name),
                    f"imagePullSecret.create is true but {field_name} {problem}; the jupyterhub chart schema "
                    "requires registry, username and password",
                    secret=field_name == "password",
                )
    pull_registry = text(get_path(pull, "registry"))
    if pull_registry is not None and not _same_registry(pull_registry, push):
        hub.add(
            "warning",
            "pull-secret-registry-mismatch",
            (*secret_key, "registry"),
            f"imagePullSecret.registry is {_host(pull_registry)} but images are pushed to {_host(push)}: "
            "the pull secret does not apply to them",
        )
    dask = hub.get("dask-gateway", "enabled")
    dask_on = dask is not False if hub.daskhub else dask is True  # daskhub turns dask-gateway on by default
    pull_secrets = hub.get("dask-gateway", "gateway", "backend", "imagePullSecrets")
    if private and dask_on and not (isinstance(pull_secrets, list) and pull_secrets):
        hub.add(
            "warning",
            "missing-dask-pull-secret",
            ("dask-gateway", "gateway", "backend", "imagePullSecrets"),
            "dask-gateway runs here but its schedulers and workers get no pull secret for the private registry; "
            "set dask-gateway.gateway.backend.imagePullSecrets: [{name: image-pull-secret}]",
        )


def _no_key_note(kind: RegistryKind | None, registry: Any, creds: Any) -> str:
    """For an Artifact Registry hub with no password at all (neither BinderHub's nor the build pods'), the likely
    cause: the Google organization forbids the service account key that is the password (terraform.py's text)."""
    unset = ("is missing", "is still a placeholder")
    passwords = (get_path(registry, "password"), get_path(creds, "password"))
    if kind != "artifact-registry" or any(string_problem(password) not in unset for password in passwords):
        return ""
    return (
        ". Neither password of this hub holds a service account's JSON key, which Artifact Registry takes as "
        "password. "
        + key_policy_note()
    )


def _host(url: str) -> str:
    rest = url.strip().split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


def _same_registry(a: str, b: str) -> bool:
    def norm(host: str) -> str:
        return "docker.io" if host in DOCKER_HUB_HOSTS else host

    return norm(_host(a)) == norm(_host(b))


def _kind(host: str) -> RegistryKind:
    if ARTIFACT_REGISTRY_HOST.fullmatch(host):
        return "artifact-registry"
    if GCR_HOST.fullmatch(host):
        return "gcr"
    if host == "quay.io":
        return "quay"
    if host in DOCKER_HUB_HOSTS:
        return "dockerhub"
    return "other"


def _looks_like_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"
