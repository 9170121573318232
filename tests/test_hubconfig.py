from __future__ import annotations

import jsonschema
import pytest

from provision.hubconfig import HubRegistry, public_values, secret_key_paths, secret_values
from tests.helpers import chart_schema, helm_merge, validate_hub_values

QUAY = HubRegistry(
    kind="quay",
    server="https://quay.io",
    username="org+image_builder",
    password="ROBOTTOKEN",
    image_prefix="quay.io/org/cluster-hub-",
    pull_secret_registry="quay.io",
)


def test_public_values_hold_no_password() -> None:
    public = public_values(QUAY)
    assert "ROBOTTOKEN" not in repr(public)
    bhs = public["binderhub-service"]
    assert bhs["enabled"] is True
    assert bhs["config"]["BinderHub"] == {"use_registry": True, "image_prefix": "quay.io/org/cluster-hub-"}
    assert bhs["config"]["DockerRegistry"] == {"url": "https://quay.io", "username": "org+image_builder"}
    assert bhs["buildPodsRegistryCredentials"] == {
        "server": "https://quay.io",
        "username": "org+image_builder",
    }


def test_secret_values_carry_the_three_passwords() -> None:
    secret = secret_values(QUAY)
    assert secret["binderhub-service"]["config"]["DockerRegistry"]["password"] == "ROBOTTOKEN"
    assert secret["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == "ROBOTTOKEN"
    assert secret["jupyterhub"]["imagePullSecret"] == {
        "create": True,
        "registry": "quay.io",
        "username": "org+image_builder",
        "password": "ROBOTTOKEN",
    }
    assert secret_key_paths(secret)[0] == "binderhub-service.config.DockerRegistry.password"


def test_no_pull_secret_when_not_needed() -> None:
    registry = HubRegistry(kind="artifact-registry", server="https://r", username="_json_key", image_prefix="p/")
    assert "jupyterhub" not in secret_values(registry)


def test_password_not_in_repr() -> None:
    assert "ROBOTTOKEN" not in repr(QUAY)


@pytest.mark.parametrize("with_pull_secret", [True, False])
def test_merged_values_validate_against_chart_schemas(with_pull_secret: bool) -> None:
    registry = QUAY if with_pull_secret else HubRegistry("quay", "https://quay.io", "o+r", "quay.io/o/", "pw")
    merged = helm_merge(public_values(registry), secret_values(registry))
    validate_hub_values(merged)
    # Each document alone also validates (the chart's defaults fill the missing password strings).
    validate_hub_values(secret_values(registry))


def test_schema_check_can_fail() -> None:
    """The validation really bites: a null password or an unknown key is refused by the chart schemas."""
    merged = helm_merge(public_values(QUAY), secret_values(QUAY))
    merged["binderhub-service"]["buildPodsRegistryCredentials"]["password"] = None
    with pytest.raises(jsonschema.ValidationError):
        validate_hub_values(merged)
    pull = dict(secret_values(QUAY)["jupyterhub"]["imagePullSecret"], extra="x")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"imagePullSecret": pull}, chart_schema("z2jh"))
