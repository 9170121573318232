"""Doctor's rules on a hub's registry settings (facts §2, §3, §7): BinderHub's DockerRegistry, the build pods'
credentials, image_prefix against the push registry, and the pull secrets user and dask pods need for a private
registry. What differs between registry kinds (prefix shapes, who may pull) the kinds answer (RegistryKind's doctor
block); the shut-down GCR stays a rule here (retired_registry)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provision import names, registries
from provision.doctor.values import enc_type, string_problem, text
from provision.doctor.view import HubView
from provision.hubconfig import get_path
from provision.registries.base import HubFacts, RegistryKind, RetentionQuery, host_of, infrastructure_root

# These charts' defaults set binderhub-service.config.BinderHub.use_registry: true (facts §2.1), so hubs may omit it.
BASEHUB_CHARTS = ("basehub", "daskhub")
# Google Container Registry, shut down: a rule here, not a "retired" kind. provision has nothing to set up, verify,
# rotate or remove there, and a kind in registries.KINDS would be recognised by every verb, each then having to
# refuse it; doctor alone needs the host, to say so.
GCR_HOST = re.compile(r"([a-z]+\.)?gcr\.io")
CONFIG = ("binderhub-service", "config")
CREDS_KEY = ("binderhub-service", "buildPodsRegistryCredentials")
PREFIX_KEY = (*CONFIG, "BinderHub", "image_prefix")
PULL_SECRET_KEY = ("jupyterhub", "imagePullSecret")


def kind_of(host: str) -> RegistryKind:
    """The kind doctor checks a push host as: by host alone (recognises_host, not registries.recognise, which also
    takes `quay.*` hosts and robot user names for Quay), so doctor's findings stay those it has always given."""
    return next((kind for kind in registries.KINDS if kind.recognises_host(host)), registries.GENERIC)


def check_registry(hub: HubView, prefix: Any) -> None:
    """The rules on a hub with binderhub-service enabled; `prefix` is its image_prefix as the values hold it."""
    registry = hub.get(*CONFIG, "DockerRegistry")
    creds = hub.get(*CREDS_KEY)
    server, url = text(get_path(creds, "server")), text(get_path(registry, "url"))
    push = server or url
    kind = kind_of(_host(push)) if push else None
    check_use_registry(hub)
    check_docker_registry(hub, registry, kind)
    if url and server and not _same_registry(url, server):
        hub.add(
            "warning",
            "registry-url-mismatch",
            (*CONFIG, "DockerRegistry", "url"),
            f"config.DockerRegistry.url points at {_host(url)} but build pods push to {_host(server)}: "
            "BinderHub looks for images where they are not and rebuilds them",
        )
    check_build_credentials(hub, creds, no_key=_no_key_note(kind, registry, creds))
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
    username = text(get_path(creds, "username")) or text(get_path(registry, "username"))
    facts = HubFacts(_host(push), text(prefix), username, hub.cluster.provider, hub.cluster.gcp_project)
    if GCR_HOST.fullmatch(facts.host):
        retired_registry(hub, facts)
        return
    if facts.prefix is not None:
        check_prefix(hub, kind, facts, facts.prefix)
    check_pull_secrets(hub, push, kind, facts)
    check_retention(hub, kind)


def check_retention(hub: HubView, kind: RegistryKind) -> None:
    """A hub whose retention the repository's files show to be none (the kind reads them: Artifact Registry's
    tfvars): its images are never deleted. Info, as fleet verify's --require-retention is the place to insist."""
    query = RetentionQuery(None, hub.cluster.name, hub.name, infrastructure_root(hub.cluster.folder))
    found = kind.retention_in_files(query)
    if found is not None and found.state == "none":
        where = hub.rel(query.repository / found.source) if query.repository and found.source else hub.own()
        hub.add("info", "no-image-retention", (), f"no image retention: {found.detail}; nothing deletes this hub's "
                "old images", file=where, key="")  # fmt: skip


def check_use_registry(hub: HubView) -> None:
    use_registry = hub.get(*CONFIG, "BinderHub", "use_registry")
    if use_registry is not True and (use_registry is not None or hub.chart not in BASEHUB_CHARTS):
        hub.add(
            "error",
            "use-registry-not-true",
            (*CONFIG, "BinderHub", "use_registry"),
            "use_registry is not true: build pods get no push credentials and BinderHub never checks the "
            "registry; set it to true",
        )


def check_docker_registry(hub: HubView, registry: Any, kind: RegistryKind | None) -> None:
    """BinderHub's own login, with which it asks whether an image was built already."""
    if not isinstance(registry, Mapping) or not registry:
        hub.add(
            "error",
            "missing-docker-registry",
            (*CONFIG, "DockerRegistry"),
            "binderhub-service is enabled without config.DockerRegistry, so BinderHub cannot see images already "
            "pushed and rebuilds on every launch; set url and username here and password in an encrypted file",
        )
        return
    for field_name in ("url", "username", "password"):
        problem = string_problem(registry.get(field_name))
        defaulted = field_name == "url" and kind is not None and kind.binderhub_default_url
        if problem is None or (defaulted and registry.get("url") is None):
            continue  # BinderHub's default url is that registry's
        hub.add(
            "error",
            "incomplete-docker-registry",
            (*CONFIG, "DockerRegistry", field_name),
            f"config.DockerRegistry.{field_name} {problem}: BinderHub's image-exists check fails and it "
            "rebuilds images; set it" + (" in an encrypted file" if field_name == "password" else ""),
            secret=field_name == "password",
        )


def check_build_credentials(hub: HubView, creds: Any, *, no_key: str) -> None:
    """The build pods' push login; `no_key` is appended where a password is missing (_no_key_note)."""
    if not isinstance(creds, Mapping) or not creds:
        hub.add(
            "error",
            "incomplete-build-credentials",
            CREDS_KEY,
            "buildPodsRegistryCredentials is not set: build pods cannot push; set server and username here "
            "and password in an encrypted file (the chart schema needs all three strings)" + no_key,
        )
        return
    for field_name in ("server", "username", "password"):
        problem = string_problem(creds.get(field_name))
        if problem is not None:
            hub.add(
                "error",
                "incomplete-build-credentials",
                (*CREDS_KEY, field_name),
                f"buildPodsRegistryCredentials.{field_name} {problem}; the chart schema requires server, "
                "username and password as strings and build pods cannot push without them"
                + (no_key if field_name == "password" else ""),
                secret=field_name == "password",
            )


def retired_registry(hub: HubView, facts: HubFacts) -> None:
    """GCR takes no pushes: nothing else about the hub's registry is worth saying (said only with a prefix)."""
    if facts.prefix is None:
        return
    hub.add(
        "error",
        "registry-shut-down",
        (*CREDS_KEY, "server"),
        f"{facts.host} is Google Container Registry, which no longer accepts pushes (shut down in 2025); "
        "move to Artifact Registry",
    )


def check_prefix(hub: HubView, kind: RegistryKind, facts: HubFacts, prefix: str) -> None:
    """The prefix (facts.prefix) against the push registry: BinderHub's rewriting, the kind's shape and rules."""
    rewritten = names.binderhub_rewrites(prefix)
    if rewritten is not None:
        hub.add(
            "error",
            "rewritten-image-name",
            PREFIX_KEY,
            f"BinderHub replaces '_' by '-' and lower-cases image names: under image_prefix {prefix!r} it pushes to "
            f"and looks up {rewritten!r}, another namespace (someone else's, or none); use a name without '_'",
        )
    if not kind.prefix_fits(facts):
        hub.add(
            "error",
            "image-prefix-mismatch",
            PREFIX_KEY,
            f"image_prefix {prefix!r} does not fit the registry the build pods push to ({facts.host}); expected "
            f"{kind.prefix_expected(facts)}",
        )
        return
    for problem in kind.prefix_problems(facts):
        hub.add(problem.severity, problem.code, PREFIX_KEY, problem.message)


def check_pull_secrets(hub: HubView, push: str, kind: RegistryKind, facts: HubFacts) -> None:
    """User and dask pods pull the built images: with a pull secret unless the nodes can read the registry."""
    needed = not kind.nodes_can_pull(facts)
    pull = hub.get(*PULL_SECRET_KEY)
    create = get_path(pull, "create")
    active = create is True or enc_type(create) is not None  # an encrypted `create` cannot be read; trust it
    if needed and not active:
        missing = kind.missing_pull_secret()
        hub.add(missing.severity, missing.code, PULL_SECRET_KEY, missing.message, secret=True)
    if active:
        check_pull_secret_fields(hub, pull)
    pull_registry = text(get_path(pull, "registry"))
    if pull_registry is not None and not _same_registry(pull_registry, push):
        hub.add(
            "warning",
            "pull-secret-registry-mismatch",
            (*PULL_SECRET_KEY, "registry"),
            f"imagePullSecret.registry is {_host(pull_registry)} but images are pushed to {_host(push)}: "
            "the pull secret does not apply to them",
        )
    if needed:
        check_dask_pull_secret(hub)


def check_pull_secret_fields(hub: HubView, pull: Any) -> None:
    for field_name in ("registry", "username", "password"):
        problem = string_problem(get_path(pull, field_name))
        if problem is not None:
            hub.add(
                "error",
                "incomplete-image-pull-secret",
                (*PULL_SECRET_KEY, field_name),
                f"imagePullSecret.create is true but {field_name} {problem}; the jupyterhub chart schema "
                "requires registry, username and password",
                secret=field_name == "password",
            )


def check_dask_pull_secret(hub: HubView) -> None:
    dask = hub.get("dask-gateway", "enabled")
    dask_on = dask is not False if hub.daskhub else dask is True  # daskhub turns dask-gateway on by default
    pull_secrets = hub.get("dask-gateway", "gateway", "backend", "imagePullSecrets")
    if dask_on and not (isinstance(pull_secrets, list) and pull_secrets):
        hub.add(
            "warning",
            "missing-dask-pull-secret",
            ("dask-gateway", "gateway", "backend", "imagePullSecrets"),
            "dask-gateway runs here but its schedulers and workers get no pull secret for the private registry; "
            "set dask-gateway.gateway.backend.imagePullSecrets: [{name: image-pull-secret}]",
        )


def _no_key_note(kind: RegistryKind | None, registry: Any, creds: Any) -> str:
    """For a hub with no password at all (neither BinderHub's nor the build pods'), the kind's likely cause."""
    unset = ("is missing", "is still a placeholder")
    passwords = (get_path(registry, "password"), get_path(creds, "password"))
    if kind is None or any(string_problem(password) not in unset for password in passwords):
        return ""
    return kind.missing_password_note()


def _host(url: str) -> str:
    rest = url.strip().split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


def _same_registry(a: str, b: str) -> bool:
    return host_of(_host(a)) == host_of(_host(b))  # host_of: Docker Hub's aliases are one registry
