"""What provision writes, rendered by the real charts with Helm's engine: the objects the cluster would get.

Every registry kind (quay, Artifact Registry, Docker Hub) for every chart (basehub with its values.jsonnet,
daskhub, plain Zero to JupyterHub with binderhub-service as a second release), with dask-gateway and the
image-building profile. Facts: ../shared/facts/charts.md §2.
"""

from __future__ import annotations

import base64
import json

import pytest

from provision.hubconfig import IMAGE_RULE
from tests.charts.kit import CHARTS, DEFAULT_IMAGE, HUB_CHARTS, KINDS, Render, helm_render, render

PULL_SECRET = {"name": "image-pull-secret"}
COMBINATIONS = [(kind, chart) for kind in KINDS for chart in HUB_CHARTS]


@pytest.fixture(params=COMBINATIONS, ids=[f"{k}-{c}" for k, c in COMBINATIONS])
def hub(request: pytest.FixtureRequest) -> Render:
    kind, chart = request.param
    return render(kind, chart, True)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_build_pods_push_with_the_registry_credentials(hub: Render) -> None:
    config = json.loads(hub.secret_data("build-pods-docker-config", "config.json"))
    want = hub.expected
    assert config == {"auths": {want.server: {"auth": _b64(f"{want.username}:{want.password}")}}}
    user, _, password = base64.b64decode(config["auths"][want.server]["auth"]).decode().partition(":")
    assert (user, password) == (want.username, want.password)  # the whole JSON key, for Artifact Registry


def test_binderhub_finds_images_in_the_registry(hub: Render) -> None:
    import yaml

    config = yaml.safe_load(hub.secret_data("binderhub", "chart-config.yaml"))["config"]
    want = hub.expected
    assert config["BinderHub"]["use_registry"] is True
    assert config["BinderHub"]["image_prefix"] == want.image_prefix
    assert config["DockerRegistry"] == {"url": want.registry_url, "username": want.username, "password": want.password}


def test_pull_secret_is_a_hook_used_by_every_pod(hub: Render) -> None:
    want = hub.expected
    users = {where for where, spec in hub.pod_specs() if PULL_SECRET in (spec.get("imagePullSecrets") or [])}
    if want.pull_registry is None:  # Artifact Registry: nodes pull with their own service account
        assert "image-pull-secret" not in hub.named("Secret")
        assert users == set()
        return
    secret = hub.find("Secret", "image-pull-secret")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    assert list(auths) == [want.pull_registry]
    entry = auths[want.pull_registry]
    assert (entry["username"], entry["password"]) == (want.username, want.password)
    assert entry["auth"] == _b64(f"{want.username}:{want.password}")
    assert {"Deployment/hub", "Deployment/proxy", "StatefulSet/user-placeholder"} <= users
    pullers = {f"DaemonSet/{name}" for name in hub.named("DaemonSet") if "image-puller" in name}
    assert pullers <= users and (pullers or hub.chart != "z2jh")  # basehub turns the image puller off
    # User pods: z2jh's jupyterhub_config.py adds get_name("image-pull-secret") to KubeSpawner.image_pull_secrets
    # when imagePullSecret.create is true; the name comes from the hub ConfigMap.
    assert hub.find("ConfigMap", "hub")["data"]["image-pull-secret"] == "image-pull-secret"
    assert hub.hub_values()["imagePullSecret"]["create"] is True


def test_dask_pods_get_the_pull_secret(hub: Render) -> None:
    properties = hub.dask_gateway_properties() if hub.expected.pull_registry or hub.chart != "z2jh" else {}
    pull = properties.get("gateway", {}).get("backend", {}).get("imagePullSecrets")
    assert (pull or []) == ([PULL_SECRET] if hub.expected.pull_registry else [])


def test_the_hub_offers_the_image_building_profile(hub: Render) -> None:
    profiles = hub.hub_values()["singleuser"]["profileList"]
    [profile] = [p for p in profiles if p["slug"] == "build-your-own-image"]
    option = profile["profile_options"]["image"]
    assert option["dynamic_image_building"]["enabled"] and option["unlisted_choice"]["enabled"]
    assert option["unlisted_choice"]["validation_regex"] == IMAGE_RULE.pattern
    assert [slug for slug, c in option["choices"].items() if c.get("default")] == [DEFAULT_IMAGE]
    assert option["choices"]["pangeo"]["kubespawner_override"] == {"image": "pangeo/pangeo-notebook:2024.04.08"}


def test_z2jh_is_one_values_document_per_release() -> None:
    """Each z2jh document is handed whole to its own chart (the renders above), and the old combined document is
    refused by both charts: the oracle can fail."""
    import helm_python

    hub = render("quay", "z2jh", True)
    assert set(hub.values) == {"jupyterhub", "binderhub-service", "dask-gateway"}
    combined = {"jupyterhub": hub.values["jupyterhub"], "binderhub-service": hub.values["binderhub-service"]}
    for chart in ("jupyterhub", "binderhub-service"):
        with pytest.raises(helm_python.HelmValuesError, match="additional properties"):
            helm_render(CHARTS / chart, combined)
