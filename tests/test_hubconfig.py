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


# --- charts, profiles, dask-gateway (every shape validated against the real chart schemas) -------------------

from provision.errors import UsageError  # noqa: E402
from provision.hubconfig import (  # noqa: E402
    IMAGE_RULE,
    HubOptions,
    ImageChoice,
    Profile,
    images_from_yaml,
    profile_values,
)

AR = HubRegistry(
    kind="artifact-registry",
    server="https://us-central1-docker.pkg.dev",
    username="_json_key",
    image_prefix="us-central1-docker.pkg.dev/proj/hub-registry/",
    password='{\n  "type": "service_account",\n  "private_key": "k"\n}\n',
)
DOCKERHUB = HubRegistry(
    kind="dockerhub",
    server="https://index.docker.io/v1/",
    api_url="https://registry-1.docker.io",
    username="myorg",
    image_prefix="myorg/c1-hub-",
    password="dckr_oat_x",
    pull_secret_registry="https://index.docker.io/v1/",
)
PROFILE = Profile(images=(ImageChoice("pangeo", "pangeo/pangeo-notebook:2024.04.08", "Pangeo", "Pangeo stack"),))
SHAPES = {"quay": QUAY, "artifact-registry": AR, "dockerhub": DOCKERHUB}


def unwrap(doc: dict[str, object], chart: str) -> dict[str, object]:
    if chart == "daskhub":
        assert set(doc) == {"basehub"}
        return doc["basehub"]  # type: ignore[return-value]
    assert "basehub" not in doc
    return doc


@pytest.mark.parametrize("chart", ["basehub", "daskhub", "z2jh"])
@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("extras", [False, True], ids=["plain", "profile+dask"])
def test_every_shape_validates_for_every_chart(kind: str, chart: str, extras: bool) -> None:
    registry = SHAPES[kind]
    options = HubOptions(chart=chart, dask_gateway=extras, profile=PROFILE if extras else None)  # type: ignore[arg-type]
    public, secret = public_values(registry, options), secret_values(registry, options)
    validate_hub_values(unwrap(public, chart))
    validate_hub_values(unwrap(secret, chart))
    merged = unwrap(helm_merge(public, secret), chart)
    validate_hub_values(merged)
    bhs = merged["binderhub-service"]
    assert bhs["config"]["DockerRegistry"]["password"] == registry.password  # type: ignore[index]
    assert ("jupyterhub" in unwrap(secret, chart)) == (registry.pull_secret_registry is not None)
    dask = merged.get("dask-gateway")
    if extras and registry.pull_secret_registry is not None:
        assert dask == {"gateway": {"backend": {"imagePullSecrets": [{"name": "image-pull-secret"}]}}}
    else:
        assert dask is None  # no pull secret to hand to dask pods (Artifact Registry pulls with the node's account)


def test_dockerhub_urls_differ() -> None:
    public = public_values(DOCKERHUB)["binderhub-service"]
    assert public["config"]["DockerRegistry"]["url"] == "https://registry-1.docker.io"
    assert public["buildPodsRegistryCredentials"]["server"] == "https://index.docker.io/v1/"


def test_z2jh_adds_what_basehub_provides() -> None:
    public = public_values(QUAY, HubOptions(chart="z2jh"))
    hub = public["jupyterhub"]["hub"]
    assert "setup_ui(c)" in hub["extraConfig"]["07-enable-fancy-profiles"]
    assert hub["services"]["binder"]["url"] == "http://binderhub:8090"
    assert "access:services!service=binder" in hub["loadRoles"]["user"]["scopes"]
    bhs = public["binderhub-service"]
    assert bhs["config"]["BinderHub"] == {
        "use_registry": True,
        "image_prefix": "quay.io/org/cluster-hub-",
        "base_url": "/services/binder",
        "auth_enabled": True,
    }
    assert bhs["service"] == {"port": 8090}
    names = [e["name"] for e in bhs["extraEnv"]]
    assert names == ["JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_CLIENT_ID"]
    assert "binder" not in repr(public_values(QUAY, HubOptions(chart="basehub")).get("jupyterhub"))


def test_profile_shape_turns_on_image_building() -> None:
    entry = profile_values(PROFILE)["jupyterhub"]["singleuser"]["profileList"][0]
    option = entry["profile_options"]["image"]  # the option key must be `image`
    assert option["dynamic_image_building"] == {"enabled": True}
    unlisted = option["unlisted_choice"]
    assert unlisted["enabled"] is True
    assert unlisted["validation_regex"] == IMAGE_RULE.pattern
    assert unlisted["kubespawner_override"] == {"image": "{value}"}
    assert option["choices"]["pangeo"] == {
        "display_name": "Pangeo",
        "description": "Pangeo stack",
        "default": True,
        "kubespawner_override": {"image": "pangeo/pangeo-notebook:2024.04.08"},
    }
    validate_hub_values(profile_values(PROFILE))
    assert entry["default"] is True  # a new profile list: this profile is its default


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pangeo=pangeo/pangeo-notebook:2024.04.08", ImageChoice("pangeo", "pangeo/pangeo-notebook:2024.04.08")),
        ("r=rocker/binder:4.3;R;The R stack", ImageChoice("r", "rocker/binder:4.3", "R", "The R stack")),
        ("x=quay.io/a/b:1;;only description", ImageChoice("x", "quay.io/a/b:1", None, "only description")),
    ],
)
def test_image_option_parsing(spec: str, expected: ImageChoice) -> None:
    assert ImageChoice.parse(spec) == expected


@pytest.mark.parametrize("spec", ["noequals", "Bad=img:1", "x=notag", "x=a b:1", "=img:1"])
def test_image_option_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        ImageChoice.parse(spec)


def test_images_file() -> None:
    text = "images:\n  - slug: pangeo\n    image: pangeo/pangeo-notebook:2024.04.08\n    display_name: Pangeo\n"
    assert images_from_yaml(text, source="f") == (ImageChoice("pangeo", "pangeo/pangeo-notebook:2024.04.08", "Pangeo"),)
    with pytest.raises(UsageError, match="unknown keys"):
        images_from_yaml("- slug: a\n  image: a:1\n  tag: x\n", source="f")
    with pytest.raises(UsageError, match="unique"):
        images_from_yaml("- {slug: a, image: 'a:1'}\n- {slug: a, image: 'b:1'}\n", source="f")
