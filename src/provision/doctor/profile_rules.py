"""Doctor's rules on a hub's fancy-profiles `profileList`: lists that replace a shared one, the image-building
option, choices and defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.doctor.view import HubView
from provision.hubconfig import get_path
from provision.hubfiles.shared_profiles import PROFILE_LIST, profile_names, sets


def check_profiles(hub: HubView, *, binder: bool) -> None:
    check_replaced_lists(hub)
    profiles = hub.get("jupyterhub", "singleuser", "profileList")
    where = ("jupyterhub", "singleuser", "profileList")
    building = False
    profiles = profiles if isinstance(profiles, list) else []
    defaults = [p for p in profiles if isinstance(p, Mapping) and p.get("default")]
    if len(defaults) > 1:
        hub.add(
            "warning",
            "several-default-profiles",
            where,
            f"{len(defaults)} profiles are marked default: KubeSpawner starts the first one when none is chosen, "
            "while fancy-profiles may preselect another; keep default: true on one profile",
        )
    for index, profile in enumerate(profiles):
        options = get_path(profile, "profile_options")
        if not isinstance(options, Mapping):
            continue
        slug = profile.get("slug")
        label = f"[slug={slug}]" if isinstance(slug, str) and slug else f"[{index}]"
        for option_key, option in options.items():
            check_choices(hub, option, key=f"{hub.key(*where)}{label}.profile_options.{option_key}")
            if get_path(option, "dynamic_image_building", "enabled") is not True:
                continue
            building = True
            path = f"{hub.key(*where)}{label}.profile_options.{option_key}"
            if get_path(option, "unlisted_choice", "enabled") is not True:
                hub.add(
                    "error",
                    "build-without-unlisted-choice",
                    where,
                    "dynamic_image_building is enabled without unlisted_choice.enabled: true, so fancy-profiles "
                    "never shows the build UI; enable unlisted_choice on this option",
                    key=f"{path}.unlisted_choice.enabled",
                )
            if option_key != "image":
                hub.add(
                    "warning",
                    "build-option-not-image",
                    where,
                    f"the option key is {option_key!r}, but fancy-profiles offers image building only on an "
                    "option named image; rename it",
                    key=path,
                )
    if building and not binder:
        hub.add(
            "warning",
            "build-without-binderhub",
            ("binderhub-service", "enabled"),
            "a profile enables dynamic_image_building but binderhub-service is not enabled, so builds fail; "
            "enable binderhub-service or drop dynamic_image_building",
        )


def check_choices(hub: HubView, option: Any, *, key: str) -> None:
    """A profile option must offer choices with one default (charts.md §4)."""
    where = ("jupyterhub", "singleuser", "profileList")
    choices = get_path(option, "choices")
    if isinstance(choices, Mapping) and not choices and get_path(option, "unlisted_choice", "enabled") is True:
        return  # `choices: {}` with a free-text field: fancy-profiles draws the field alone (2i2c hubs do this)
    if not isinstance(choices, Mapping) or not choices:
        hub.add(
            "error",
            "option-without-choices",
            where,
            "this profile option has no choices: fancy-profiles cannot draw the form (TypeError) and KubeSpawner "
            "refuses to start a server when no value is sent (no default choice); add choices with one default "
            "(provision profile --image SLUG=IMAGE:TAG)",
            key=f"{key}.choices",
        )
        return
    marked = [str(k) for k, v in choices.items() if isinstance(v, Mapping) and v.get("default")]
    if len(marked) > 1:
        hub.add(
            "warning",
            "several-default-choices",
            where,
            f"{len(marked)} choices are marked default ({', '.join(marked)}): KubeSpawner uses the first when no "
            "value is sent, the form may show another; keep default: true on one",
            key=f"{key}.choices",
        )


def check_replaced_lists(hub: HubView) -> None:
    """A profileList replaces the one of a file listed before it whole (Helm replaces lists): the earlier file's
    profiles that the later list lacks are not offered. A hub file with its own list under a shared
    common.values.yaml list is the usual case; a copy that has every shared profile (what provision's
    --copy-shared-profiles writes) and an empty list (profiles turned off on purpose) are fine."""
    keys = (*hub.base, *PROFILE_LIST)
    effective: tuple[str, list[Any]] | None = None  # the file whose list the hub gets so far, and that list
    for file in hub.files:
        if file.encrypted or file.secret_by_name or not sets(file.doc, keys):
            continue  # an encrypted list's entries are ciphertext: nothing to compare
        profiles = get_path(file.doc, *keys)
        profiles = profiles if isinstance(profiles, list) else []
        if effective is not None and profiles:
            kept = set(profile_names(profiles))
            lost = [name for name in profile_names(effective[1]) if name not in kept]
            if lost:
                hub.add(
                    "warning",
                    "profile-list-replaced",
                    PROFILE_LIST,
                    f"this profileList replaces the one in {effective[0]} whole (Helm replaces lists, it does not "
                    f"merge them), so {len(lost)} of its profiles ({', '.join(lost)}) are not offered on this hub; "
                    "copy the ones to keep into this list, or remove this list to get the shared one",
                    file=file.rel,
                )
        effective = (file.rel, profiles)
