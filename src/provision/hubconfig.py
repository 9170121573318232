"""The hub-config model: one registry description that renders a hub's public and secret Helm values.

Every registry path (quay, Artifact Registry, Docker Hub) builds a HubRegistry; no command assembles Helm YAML
itself. Pure: no I/O. Keys follow ../shared/facts/hub-config.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.errors import UsageError

RegistryKind = Literal["quay", "artifact-registry", "dockerhub", "registry"]  # registry: any other v2 registry
Chart = Literal["basehub", "daskhub", "z2jh"]
CHARTS: tuple[Chart, ...] = ("basehub", "daskhub", "z2jh")
# The z2jh chart's pull secret, with its default empty fullnameOverride; dask pods reference it by name.
PULL_SECRET_NAME = "image-pull-secret"
IMAGE_RULE = re.compile(r"^.+:.+$")  # the same rule fancy-profiles applies to the "other image" field
SLUG_RULE = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?")


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


@dataclass(frozen=True)
class ImageChoice:
    """A predefined image in the fancy-profiles image picker."""

    slug: str
    image: str
    display_name: str | None = None
    description: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ImageChoice:
        """`SLUG=IMAGE:TAG[;DISPLAY NAME[;DESCRIPTION]]` (the --image option). Raises UsageError."""
        slug, sep, rest = spec.partition("=")
        if not sep:
            raise UsageError(f"invalid --image {spec!r}: expected SLUG=IMAGE:TAG[;DISPLAY NAME[;DESCRIPTION]]")
        parts = rest.split(";", 2)
        return cls.checked(slug.strip(), parts[0].strip(), *[p.strip() or None for p in parts[1:]])

    @classmethod
    def checked(
        cls, slug: str, image: str, display_name: str | None = None, description: str | None = None
    ) -> ImageChoice:
        if SLUG_RULE.fullmatch(slug) is None:
            raise UsageError(f"invalid image slug {slug!r}: lower-case letters, digits, '-' and '_'")
        if IMAGE_RULE.fullmatch(image) is None or any(c.isspace() for c in image):
            raise UsageError(f"invalid image {image!r} for {slug!r}: expected IMAGE:TAG")
        return cls(slug, image, display_name, description)


def images_from_yaml(text: str, *, source: str) -> tuple[ImageChoice, ...]:
    """Image choices from a small YAML file: a list (or `images:` list) of {slug, image, display_name?,
    description?}. Raises UsageError naming the file and the entry."""
    from ruamel.yaml import YAML  # lazy: keeps start-up fast
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML ({exc})") from None
    entries = data.get("images") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{source}: expected a list of images (or an `images:` list)")
    choices = []
    for index, entry in enumerate(entries, start=1):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("slug"), str)
            or not isinstance(entry.get("image"), str)
        ):
            raise UsageError(f"{source}: image {index} needs `slug` and `image` strings")
        unknown = set(entry) - {"slug", "image", "display_name", "description"}
        if unknown:
            raise UsageError(f"{source}: image {index} has unknown keys {sorted(unknown)}")
        choices.append(
            ImageChoice.checked(entry["slug"], entry["image"], entry.get("display_name"), entry.get("description"))
        )
    slugs = [c.slug for c in choices]
    if len(set(slugs)) != len(slugs):
        raise UsageError(f"{source}: image slugs must be unique")
    return tuple(choices)


@dataclass(frozen=True)
class Profile:
    """The fancy-profiles profile that offers "build your own image" plus predefined images."""

    images: tuple[ImageChoice, ...] = ()
    slug: str = "build-your-own-image"
    display_name: str = "Build your own image"
    description: str = "Choose an image, or build one from a GitHub repository"


@dataclass(frozen=True)
class HubOptions:
    """How the values are shaped: the hub's chart, whether it runs dask-gateway, and its profile (if any)."""

    chart: Chart = "basehub"
    dask_gateway: bool = False
    profile: Profile | None = None


# What basehub provides and a plain Zero to JupyterHub + binderhub-service deployment must set itself
# (2i2c-org/infrastructure helm-charts/basehub values.yaml and values.jsonnet; binderhub-service chart defaults).
BINDER_SERVICE_PORT = 8090
Z2JH_NOTES = (
    "z2jh: the hub image must contain jupyterhub-fancy-profiles (>= 0.6.0, JupyterHub >= 5); the stock k8s-hub "
    "image does not",
    "z2jh: keep hub.baseUrl at / (fancy-profiles calls /services/binder/build/) and the binderhub-service "
    "fullnameOverride empty (the hub reaches it as http://binderhub:8090), both releases in one namespace",
)


def z2jh_hub_values() -> dict[str, Any]:
    """The JupyterHub side: fancy-profiles' UI, the `binder` service its build page calls, users' access to it."""
    return {
        "hub": {
            "extraConfig": {
                "07-enable-fancy-profiles": "from jupyterhub_fancy_profiles import setup_ui\n\nsetup_ui(c)\n"
            },
            # The service must be named binder: fancy-profiles calls the hard-coded /services/binder/build/.
            # Its API token is generated by z2jh into the `hub` Secret, never written here.
            "services": {
                "binder": {
                    "url": f"http://binderhub:{BINDER_SERVICE_PORT}",
                    "oauth_client_id": "service-binder",
                    "oauth_no_confirm": True,
                    "display": False,
                }
            },
            "loadRoles": {"user": {"scopes": ["self", "access:services!service=binder"]}},
        }
    }


def z2jh_binderhub_values() -> dict[str, Any]:
    """The BinderHub side: served under /services/binder, behind the hub's auth, able to reach the hub API."""
    return {
        "service": {"port": BINDER_SERVICE_PORT},
        "config": {"BinderHub": {"base_url": "/services/binder", "auth_enabled": True}},
        "extraEnv": [
            {"name": "JUPYTERHUB_API_URL", "value": "http://hub:8081/hub/api"},
            {
                "name": "JUPYTERHUB_API_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "hub", "key": "hub.services.binder.apiToken"}},
            },
            {"name": "JUPYTERHUB_CLIENT_ID", "value": "service-binder"},
        ],
    }


def _deep_update(target: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value
    return target


def public_values(registry: HubRegistry, options: HubOptions | None = None) -> dict[str, Any]:
    """The plain values for `<hub>.values.yaml`: everything except passwords."""
    options = options or HubOptions()
    doc: dict[str, Any] = {
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
    if options.dask_gateway and registry.pull_secret_registry is not None:
        # Dask schedulers and workers do not get the z2jh pull secret by themselves.
        doc["dask-gateway"] = {"gateway": {"backend": {"imagePullSecrets": [{"name": PULL_SECRET_NAME}]}}}
    if options.profile is not None:
        doc["jupyterhub"] = profile_values(options.profile)["jupyterhub"]
    if options.chart == "z2jh":
        _deep_update(doc["binderhub-service"], z2jh_binderhub_values())
        doc["jupyterhub"] = _deep_update(doc.get("jupyterhub", {}), z2jh_hub_values())
    return _wrap(doc, options.chart)


def secret_values(registry: HubRegistry, options: HubOptions | None = None) -> dict[str, Any]:
    """The values for `enc-<hub>.secret.values.yaml`: the passwords, plus the whole pull secret when needed."""
    options = options or HubOptions()
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
    return _wrap(doc, options.chart)


def profile_values(profile: Profile, *, chart: Chart = "basehub") -> dict[str, Any]:
    """The `jupyterhub.singleuser.profileList` entry that turns on image building in fancy-profiles."""
    choices: dict[str, Any] = {}
    for index, image in enumerate(profile.images):
        choice: dict[str, Any] = {"display_name": image.display_name or image.image}
        if image.description:
            choice["description"] = image.description
        if index == 0:
            choice["default"] = True
        choice["kubespawner_override"] = {"image": image.image}
        choices[image.slug] = choice
    option: dict[str, Any] = {
        "display_name": "Image",
        # fancy-profiles shows "build" only when the option key is `image` and both flags below are true.
        "dynamic_image_building": {"enabled": True},
        "unlisted_choice": {
            "enabled": True,
            "display_name": "Image",
            "display_name_in_choices": "Build your own image",
            "description_in_choices": "Build a new image from a GitHub repository, or use an existing image",
            "validation_regex": IMAGE_RULE.pattern,
            "validation_message": "Must be an image of the form <image>:<tag>",
            "kubespawner_override": {"image": "{value}"},
        },
    }
    if choices:
        option["choices"] = choices
    entry: dict[str, Any] = {
        "display_name": profile.display_name,
        "slug": profile.slug,
        "description": profile.description,
        "default": True,
        "profile_options": {"image": option},
    }
    jupyterhub: dict[str, Any] = {"singleuser": {"profileList": [entry]}}
    if chart == "z2jh":
        _deep_update(jupyterhub, z2jh_hub_values())
    return _wrap({"jupyterhub": jupyterhub}, chart)


def _wrap(doc: dict[str, Any], chart: Chart) -> dict[str, Any]:
    # The legacy daskhub chart wraps basehub: every basehub key sits under `basehub:` or is silently ignored.
    return {"basehub": doc} if chart == "daskhub" else doc


def secret_key_paths(doc: dict[str, Any]) -> list[str]:
    """Dotted paths of a document's leaves (for messages that must name keys, never values)."""
    return [".".join(path) for path, _ in leaves(doc)]


def leaves(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (path, value) of a nested mapping, lists counted as leaves."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.extend(leaves(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out
