"""Pure validators for names, applied before the first network call; each raises UsageError."""

from __future__ import annotations

import re

from provision.errors import UsageError

# Quay's own rule for namespaces, robot short names, team names and user names (util/validation.py).
QUAY_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
QUAY_NAME_RULE = "2-255 lower-case letters and digits, with '.', '_' or '-' only between them"
# Cluster and hub names end up in image names and Helm release names: a DNS label.
HUB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
HUB_NAME_RULE = "1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"


def _check(kind: str, value: str, pattern: re.Pattern[str], rule: str, *, min_len: int, max_len: int) -> str:
    # fullmatch: re.match(...$) would accept a trailing newline.
    if not (min_len <= len(value) <= max_len) or pattern.fullmatch(value) is None:
        raise UsageError(f"invalid {kind} {value!r}: must be {rule}")
    return value


def quay_name(kind: str, value: str) -> str:
    """Validate a Quay organization, robot, team or user name; returns it unchanged."""
    return _check(kind, value, QUAY_NAME, QUAY_NAME_RULE, min_len=2, max_len=255)


def quay_robot(org: str, short: str) -> str:
    """Validate a robot short name and the full `org+short` length; returns the full name."""
    quay_name("robot name", short)
    full = f"{org}+{short}"
    if len(full) > 255:
        raise UsageError(f"robot name {full!r} is {len(full)} characters long; Quay stores at most 255")
    return full


def hub_name(kind: str, value: str) -> str:
    """Validate a cluster or hub name (a DNS label); returns it unchanged."""
    return _check(kind, value, HUB_NAME, HUB_NAME_RULE, min_len=1, max_len=63)


# The 2i2c module names the service account `<name>-registry-sa`: GCP allows 30 characters, so 18 for the name.
AR_REPO = re.compile(r"[a-z][a-z0-9-]*")
AR_REPO_RULE = "1-18 characters: a lower-case letter, then lower-case letters, digits and '-'"


def ar_repo(value: str) -> str:
    """Validate a container_repos entry (Artifact Registry repository `<name>-registry`); returns it unchanged."""
    return _check("repository name", value, AR_REPO, AR_REPO_RULE, min_len=1, max_len=18)


# BinderHub takes an image name for a Docker Hub one only when it fully matches this (binderhub/builder.py);
# otherwise it reads the first path part as a registry host, looks for the image in the wrong place, finds nothing
# and rebuilds it on every launch. Docker Hub itself allows more (organizations with '-', for instance).
BINDERHUB_DOCKER_HUB_NAME = re.compile(r"[a-z0-9]{4,40}/[a-z0-9._-]{2,255}")
DOCKER_HUB_NAMESPACE = re.compile(r"[a-z0-9]{4,40}")
DOCKER_HUB_NAMESPACE_RULE = (
    "4-40 lower-case letters and digits only: BinderHub takes an image name for a Docker Hub one only when its "
    "namespace is that, and otherwise looks for built images in the wrong place and rebuilds them on every launch; "
    "use a Docker ID or organization without '-', '.' or '_'"
)


def dockerhub_namespace(kind: str, value: str) -> str:
    """Validate a Docker Hub namespace (Docker ID or organization) that BinderHub reads correctly; returns it."""
    return _check(kind, value, DOCKER_HUB_NAMESPACE, DOCKER_HUB_NAMESPACE_RULE, min_len=4, max_len=40)


def binderhub_reads_as_docker_hub(image_name: str) -> bool:
    """Whether BinderHub takes `image_name` (its tag split off at the last `:`) for a Docker Hub name
    (`_get_image_basename_and_tag` in binderhub/builder.py)."""
    return BINDERHUB_DOCKER_HUB_NAME.fullmatch(image_name) is not None


# BinderHub builds an image name as `image_prefix + slug + ":" + ref`, lower-cased and with every `_` replaced by
# `-` (binderhub/builder.py; facts hub-config §image_prefix): under `quay.io/my_hubs/…` it pushes to and looks up
# `quay.io/my-hubs/…`, another organization (someone else's, or none).
def binderhub_rewrites(image_prefix: str) -> str | None:
    """The name BinderHub would use instead of `image_prefix`, or None when it keeps it as written."""
    rewritten = image_prefix.replace("_", "-").lower()
    return rewritten if rewritten != image_prefix else None


def kept_by_binderhub(kind: str, value: str) -> str:
    """Refuse a name that BinderHub would rewrite inside image names (`_` → `-`, upper → lower); returns it."""
    rewritten = binderhub_rewrites(value)
    if rewritten is not None:
        raise UsageError(
            f"invalid {kind} {value!r}: BinderHub replaces '_' by '-' (and lower-cases) in image names, so it would "
            f"push to and look up {rewritten!r} instead, another namespace; use {rewritten!r} or a name without '_'"
        )
    return value
