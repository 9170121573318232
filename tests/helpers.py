"""Test helpers: chart-schema validation of generated values and Helm-style merging."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.conftest import SHARED


@cache
def chart_schema(name: str) -> dict[str, Any]:
    """A chart's values schema with its top-level `required` dropped: the chart's own defaults supply those keys.

    Everything nested (e.g. buildPodsRegistryCredentials needs server, username and password) stays enforced.
    """
    schema = yaml.safe_load((SHARED / "schemas" / f"{name}.values.schema.yaml").read_text())
    schema.pop("required", None)
    return schema


def helm_merge(*docs: dict[str, Any]) -> dict[str, Any]:
    """Merge values files as Helm does: maps merge key by key, later files win, lists are replaced."""
    out: dict[str, Any] = {}
    for doc in docs:
        _merge_into(out, copy.deepcopy(doc))
    return out


def _merge_into(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value


# The charts' own defaults for the keys we write. binderhub-service values.yaml: three empty strings and a
# ClusterIP service on port 80; z2jh values.yaml: imagePullSecret with create false and null fields, hub.baseUrl /.
# Helm validates defaults + user values merged.
CHART_DEFAULTS: dict[str, dict[str, Any]] = {
    "binderhub-service": {
        "buildPodsRegistryCredentials": {"server": "", "username": "", "password": ""},
        "service": {"type": "ClusterIP", "port": 80},
    },
    "jupyterhub": {
        "hub": {"baseUrl": "/"},
        "imagePullSecret": {
            "create": False,
            "automaticReferenceInjection": True,
            "registry": None,
            "username": None,
            "password": None,
            "email": None,
        },
    },
}


def validate_hub_values(doc: dict[str, Any]) -> None:
    """Validate a basehub-style values document, over the chart defaults, against the real chart schemas."""
    if "binderhub-service" in doc:
        values = helm_merge(CHART_DEFAULTS["binderhub-service"], doc["binderhub-service"])
        jsonschema.validate(values, chart_schema("binderhub-service"))
    if "jupyterhub" in doc:
        values = helm_merge(CHART_DEFAULTS["jupyterhub"], doc["jupyterhub"])
        jsonschema.validate(values, chart_schema("z2jh"))
