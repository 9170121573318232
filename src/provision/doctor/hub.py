"""Doctor's driver for one hub: the rule families run on its merged values (view.py), in report order; the
image_prefix it uses is handed back so the cluster walk can find prefixes shared between hubs."""

from __future__ import annotations

from dataclasses import dataclass

from provision.doctor import profile_rules, registry_rules
from provision.doctor.values import text
from provision.doctor.view import HubView

# basehub's own subcharts: on a daskhub hub the parent chart ignores them unless they sit under `basehub:`.
BASEHUB_KEYS = ("jupyterhub", "binderhub-service", "dask-gateway")
PREFIX_KEY = registry_rules.PREFIX_KEY


@dataclass(frozen=True)
class Prefix:
    """An image_prefix in use, to find prefixes shared between hubs."""

    cluster: str
    hub: str
    prefix: str
    file: str
    key: str


def check(hub: HubView) -> Prefix | None:
    """Every rule on one hub; returns the image_prefix it uses (None when it has no readable one)."""
    if hub.daskhub:
        check_basehub_wrapper(hub)
    binder = hub.get("binderhub-service", "enabled") is True
    profile_rules.check_profiles(hub, binder=binder)
    prefix = hub.get(*PREFIX_KEY)
    used = None
    if text(prefix) is not None:
        used = Prefix(hub.cluster.name, hub.name, str(prefix).strip(), hub.locate(PREFIX_KEY), hub.key(*PREFIX_KEY))
        if not binder:
            hub.add(
                "info",
                "image-prefix-without-binderhub",
                PREFIX_KEY,
                "image_prefix is set but binderhub-service is not enabled, so nothing builds images here",
            )
    if binder:
        registry_rules.check_registry(hub, prefix)
    return used


def check_basehub_wrapper(hub: HubView) -> None:
    for file in hub.files:
        assert file.doc is not None
        for top in BASEHUB_KEYS:
            if top in file.doc:
                hub.add(
                    "error",
                    "not-under-basehub",
                    (),
                    f"this hub uses the daskhub chart, which ignores a top-level {top}: key; "
                    f"move it under basehub: ({hub.base[0]}.{top})",
                    key=top,
                    file=file.rel,
                )
