"""The hub-config model: one registry description that renders a hub's public and secret Helm values.

Every registry path (quay, Artifact Registry, Docker Hub) builds a HubRegistry; no command assembles Helm YAML
itself. Pure: no I/O. Keys follow ../shared/facts/hub-config.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from provision.errors import UsageError

Chart = Literal["basehub", "daskhub", "z2jh"]
CHARTS: tuple[Chart, ...] = ("basehub", "daskhub", "z2jh")
# The z2jh chart's pull secret, with its default empty fullnameOverride; dask pods reference it by name.
PULL_SECRET_NAME = "image-pull-secret"
# The unlisted-choice rule, applied by fancy-profiles in the browser (JavaScript `new RegExp(rule, "g").test`, and
# as the field's HTML `pattern`, which browsers compile as `new RegExp("^(?:" + rule + ")$", "v")`) and by
# KubeSpawner on the hub (Python `re.match`) to a typed image and to the image BinderHub built. It requires a tag
# (`:` then Docker's tag grammar, after the last `/`), lower-case repository names (an image reference's path is
# lower-case: `Pangeo/Notebook:1` cannot be pulled) and no whitespace; a `:port` is allowed on the host only, so an
# untagged `host:5000/team/image` is refused. Every name BinderHub builds (`<image_prefix><slug>:<ref>`, which it
# lower-cases, on quay.io, Artifact Registry, Docker Hub or a `host:port` registry) fits. Under the `v` flag `/` and
# `-` inside a class must be escaped (`\/`, `\-`), which Python reads the same. `$(?!\n)`: Python's `$` also
# matches before a trailing newline; JavaScript has no `\Z`.
IMAGE_RULE = re.compile(
    r"^[a-z0-9._\-]+(?::[0-9]+\/[a-z0-9._\-]+)?(?:\/[a-z0-9._\-]+)*:[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$(?!\n)"
)
IMAGE_RULE_MESSAGE = "Must be an image name with a tag, e.g. quay.io/org/image:tag, and no spaces"
SLUG_RULE = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?")


@dataclass(frozen=True)
class HubRegistry:
    """Where a hub's images are pushed and with which credentials.

    `server` is the docker-config auth key the build pods push with; `registry_url` is the v2 API URL BinderHub
    queries to find existing images (they differ only for Docker Hub). `pull_secret_registry` is set when user
    pods need an imagePullSecret (quay pushes private repositories).
    """

    kind: str  # a registry kind's name (provision.registries): quay, artifact-registry, dockerhub, registry (other)
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
    default: bool = False  # marked `default: true` in an --images-file

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
        if IMAGE_RULE.match(image) is None:
            raise UsageError(f"invalid image {image!r} for {slug!r}: expected IMAGE:TAG (a tag, no spaces)")
        return cls(slug, image, display_name, description)


def _yaml_kind(value: Any) -> str:
    """What a YAML value is, for messages (never the value itself)."""
    if value is None:
        return "empty"
    kinds = ((dict, "a mapping"), (list, "a list"), (str, "a string"), (bool, "true/false"), (int | float, "a number"))
    return next((name for t, name in kinds if isinstance(value, t)), "a date")


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
        if not isinstance(entry, dict):
            raise UsageError(f"{source}: image {index} is not a mapping of slug, image, display_name, description")
        unknown = set(entry) - {"slug", "image", "display_name", "description", "default"}
        if unknown:
            raise UsageError(f"{source}: image {index} has unknown keys {sorted(unknown)}")
        slug = entry.get("slug")
        name = f"image {index}" + (f" ({slug})" if isinstance(slug, str) else "")
        for key in ("slug", "image"):
            if key not in entry:
                raise UsageError(f"{source}: {name} needs `slug` and `image` strings")
        # Written into the profile as they are: a list or a number would reach fancy-profiles and KubeSpawner.
        for key in ("slug", "image", "display_name", "description"):
            if key in entry and not isinstance(entry[key], str):
                raise UsageError(
                    f"{source}: {name}: `{key}` must be a string, not {_yaml_kind(entry[key])} (quote it)"
                )
        if not isinstance(entry.get("default", False), bool):
            raise UsageError(f"{source}: {name}: `default` must be true or false, not {_yaml_kind(entry['default'])}")
        choice = ImageChoice.checked(entry["slug"], entry["image"], entry.get("display_name"), entry.get("description"))
        choices.append(replace(choice, default=entry.get("default", False)))
    slugs = [c.slug for c in choices]
    if len(set(slugs)) != len(slugs):
        raise UsageError(f"{source}: image slugs must be unique")
    if sum(c.default for c in choices) > 1:
        raise UsageError(f"{source}: only one image may be marked `default: true`")
    return tuple(choices)


@dataclass(frozen=True)
class Profile:
    """The fancy-profiles profile that offers "build your own image" plus predefined images."""

    images: tuple[ImageChoice, ...] = ()
    default: str | None = None  # the slug of the choice the user named as the default (--default-image)
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


def public_values(
    registry: HubRegistry, options: HubOptions | None = None, *, existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The plain values for `<hub>.values.yaml`: everything except passwords. `existing`: the values file the
    profile will be merged into (see profile_values). For z2jh, the top-level keys are the releases."""
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
        doc["jupyterhub"] = _profile_jupyterhub(options.profile, chart=options.chart, existing=existing)
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


def profile_values(
    profile: Profile, *, chart: Chart = "basehub", existing: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `jupyterhub.singleuser.profileList` entry that turns on image building in fancy-profiles (for z2jh, with
    what basehub would provide). See `_profile_jupyterhub` for `existing` and the UsageErrors."""
    jupyterhub = _profile_jupyterhub(profile, chart=chart, existing=existing)
    if chart == "z2jh":
        _deep_update(jupyterhub, z2jh_hub_values())
    return _wrap({"jupyterhub": jupyterhub}, chart)


def _profile_jupyterhub(profile: Profile, *, chart: Chart, existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The jupyterhub chart's values holding the image-building profile.

    `existing` is the values document the entry will be deep-merged into (the hub's values file), so that the
    merged image option ends with exactly one default choice: the one the user named (`profile.default`), else the
    one already marked, else the first. Other choices marked default are set to `default: false`; this profile is
    the default profile only in a list that has no other. Raises UsageError when the option would have no choice
    (fancy-profiles cannot render it, KubeSpawner cannot pick a default) or the named default is not a choice.
    """
    old_entry, others_default = _existing_profile(existing, chart=chart, slug=profile.slug)
    old_choices = get_path(old_entry, "profile_options", "image", "choices")
    old_choices = old_choices if isinstance(old_choices, Mapping) else {}
    new_slugs = [image.slug for image in profile.images]
    slugs = [*[str(k) for k in old_choices if str(k) not in new_slugs], *new_slugs]
    if not slugs:
        raise UsageError(
            "the image-building profile needs at least one image choice: with none, fancy-profiles cannot draw "
            "the form and KubeSpawner cannot pick a default image; pass --image SLUG=IMAGE:TAG or --images-file"
        )
    if profile.default is not None and profile.default not in slugs:
        raise UsageError(f"--default-image {profile.default!r} is not one of the image choices ({', '.join(slugs)})")
    marked = [str(k) for k, v in old_choices.items() if isinstance(v, Mapping) and v.get("default")]
    # KubeSpawner takes the first choice marked default: keep that one unless the user names another.
    default = profile.default or (marked[0] if marked else new_slugs[0] if new_slugs else slugs[0])

    choices: dict[str, Any] = {}
    for image in profile.images:
        choice: dict[str, Any] = {"display_name": image.display_name or image.image}
        if image.description:
            choice["description"] = image.description
        if image.slug == default:
            choice["default"] = True
        elif image.slug in marked:
            choice["default"] = False
        choice["kubespawner_override"] = {"image": image.image}
        choices[image.slug] = choice
    for slug in marked:  # existing choices that must give up their mark, or keep it
        if slug not in choices and slug != default:
            choices[slug] = {"default": False}
    if default not in choices and default not in marked:
        choices[default] = {"default": True}  # an existing choice the user named
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
            "validation_message": IMAGE_RULE_MESSAGE,
            "kubespawner_override": {"image": "{value}"},
        },
        "choices": choices,
    }
    entry: dict[str, Any] = {
        "display_name": profile.display_name,
        "slug": profile.slug,
        "description": profile.description,
    }
    if isinstance(old_entry, Mapping) and old_entry.get("slug") != profile.slug:
        # An existing build profile under its own slug: update it in place, keeping its name and description.
        entry = {"slug": old_entry["slug"]}
    # Never a second default profile: KubeSpawner would take the first, fancy-profiles would mark another.
    if others_default:
        if isinstance(old_entry, Mapping) and old_entry.get("default"):
            entry["default"] = False
    elif old_entry is None and not others_default and not _has_profiles(existing, chart=chart):
        entry["default"] = True
    entry["profile_options"] = {"image": option}
    return {"singleuser": {"profileList": [entry]}}


def _profile_list(existing: Mapping[str, Any] | None, *, chart: Chart) -> list[Any]:
    # The values file of a z2jh hub holds the jupyterhub chart's values themselves (one file per release).
    keys = {"daskhub": ("basehub", "jupyterhub"), "basehub": ("jupyterhub",), "z2jh": ()}[chart]
    profiles = get_path(existing, *keys, "singleuser", "profileList")
    return list(profiles) if isinstance(profiles, list) else []


def _has_profiles(existing: Mapping[str, Any] | None, *, chart: Chart) -> bool:
    return bool(_profile_list(existing, chart=chart))


def _existing_profile(
    existing: Mapping[str, Any] | None, *, chart: Chart, slug: str
) -> tuple[Mapping[str, Any] | None, bool]:
    """This profile's entry in the existing values (or None), and whether another profile is the default."""
    profiles = [p for p in _profile_list(existing, chart=chart) if isinstance(p, Mapping)]
    mine = next((p for p in profiles if p.get("slug") == slug), None)
    # A build profile the hub already has under another slug (written by hand, or 2i2c's `build`) is this one:
    # a second would offer two build forms.
    mine = mine or next((p for p in profiles if _builds_images(p) and isinstance(p.get("slug"), str)), None)
    return mine, any(p.get("default") for p in profiles if p is not mine)


def _builds_images(profile: Mapping[str, Any]) -> bool:
    """Whether a profile offers image building: an option with dynamic_image_building enabled (fancy-profiles)."""
    options = profile.get("profile_options")
    return isinstance(options, Mapping) and any(
        get_path(option, "dynamic_image_building", "enabled") is True for option in options.values()
    )


def get_path(doc: Any, *keys: str) -> Any:
    """The value at `keys` in nested mappings, or None when a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _wrap(doc: dict[str, Any], chart: Chart) -> dict[str, Any]:
    # The legacy daskhub chart wraps basehub: every basehub key sits under `basehub:` or is silently ignored.
    return {"basehub": doc} if chart == "daskhub" else doc


# A plain Zero to JupyterHub user installs one Helm release per chart, each from its own values file: each chart's
# schema refuses the other's top-level key, so z2jh values are one document per release, in this order.
Z2JH_RELEASES = ("jupyterhub", "binderhub-service", "dask-gateway")


def releases(doc: dict[str, Any], chart: Chart) -> list[tuple[str | None, dict[str, Any]]]:
    """The values documents to hand to Helm: for z2jh, (release chart, its values) for each release that has
    something to set, in Z2JH_RELEASES order; else [(None, doc)]."""
    if chart != "z2jh":
        return [(None, doc)]
    return [(name, doc[name]) for name in Z2JH_RELEASES if doc.get(name)]


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
