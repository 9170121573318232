"""The rendered profile list in the real KubeSpawner (with jupyterhub-fancy-profiles' form), fed the form values
fancy-profiles submits (../shared/facts/charts.md §4): which image the user server gets, or the refusal.

No cluster: KubeSpawner is built in its test mode (`_mock=True`) with a kubeconfig pointing at a closed port; only
its option handling (options_from_form → load_user_options) runs, which never calls the Kubernetes API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.charts.kit import Render, render

SLUG = "build-your-own-image"
FIELD = f"profile-option-{SLUG}--image"
UNLISTED = f"{FIELD}--unlisted-choice"
REF = "0123456789abcdef0123456789abcdef01234567"
# One combination per registry kind, covering every chart.
HUBS = [("quay", "basehub"), ("artifact-registry", "daskhub"), ("dockerhub", "z2jh")]
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: staging}}]
current-context: none
"""


@pytest.fixture(params=HUBS, ids=[f"{k}-{c}" for k, c in HUBS])
def hub(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Render:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))
    return render(*request.param, True)


def spawn(hub: Render, form: dict[str, list[str]]) -> tuple[str, str]:
    """The image KubeSpawner ends up with for this form submission, and the options form it showed."""
    from jupyterhub_fancy_profiles import setup_ui
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    config = Config()
    setup_ui(config)  # fancy-profiles' form template, as basehub's extraConfig (and ours for z2jh) runs it
    config.KubeSpawner.profile_list = hub.hub_values()["singleuser"]["profileList"]  # as z2jh's config does

    async def run() -> tuple[str, str]:
        spawner = KubeSpawner(_mock=True, config=config)
        form_html = spawner.options_form(spawner) if callable(spawner.options_form) else spawner.options_form
        spawner.user_options = spawner.options_from_form(form)
        await spawner.load_user_options()
        return str(spawner.image), str(form_html)

    return _LOOP.run_until_complete(run())


# One event loop for the module: KubeSpawner caches its Kubernetes API clients per loop (kubespawner/clients.py).
_LOOP = asyncio.new_event_loop()


def test_predefined_choice(hub: Render) -> None:
    image, form_html = spawn(hub, {"profile": [SLUG], FIELD: ["pangeo"]})
    assert image == "pangeo/pangeo-notebook:2024.04.08"
    assert SLUG in form_html and "fancy-profiles" in form_html  # fancy-profiles' form, with our profile


@pytest.mark.parametrize("form", [{"profile": [SLUG]}, {}], ids=["profile-only", "nothing"])
def test_nothing_chosen_gives_the_one_default(hub: Render, form: dict[str, list[str]]) -> None:
    assert spawn(hub, form)[0] == "rocker/binder:4.3"


@pytest.mark.parametrize(
    "custom", ["quay.io/jupyter/scipy-notebook:2024-04-08", "localhost:5000/team/image:v1", "python:3.12"]
)
def test_valid_custom_image(hub: Render, custom: str) -> None:
    assert spawn(hub, {"profile": [SLUG], FIELD: ["unlisted_choice"], UNLISTED: [custom]})[0] == custom


@pytest.mark.parametrize(
    "custom", ["registry.example.org:5000/team/image", "pangeo/pangeo-notebook", "pangeo notebook:1", "img:tag\n"]
)
def test_invalid_custom_image_is_refused(hub: Render, custom: str) -> None:
    with pytest.raises(ValueError, match="failed validation regex"):
        spawn(hub, {"profile": [SLUG], FIELD: ["unlisted_choice"], UNLISTED: [custom]})


def test_the_built_image(hub: Render) -> None:
    """fancy-profiles' "Build your own image" submits --extra-selectable-item and the name BinderHub built:
    `<image_prefix><escaped repository slug>:<ref>`."""
    built = f"{hub.expected.image_prefix}binder-2dexamples-2drequirements-55ab5c:{REF}"
    form: dict[str, Any] = {"profile": [SLUG], FIELD: ["--extra-selectable-item"], UNLISTED: [built]}
    assert spawn(hub, form)[0] == built
