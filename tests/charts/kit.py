"""Render what provision writes with the real charts (../shared/charts) through Helm's own engine.

For each combination of registry kind, chart and dask-gateway, provision runs once (quay and Docker Hub: the CLI
against the test servers; Artifact Registry: the gcp flow's registry and the hub-files flow, since terraform needs
providers that cannot be downloaded here). Its public values file(s) and its stdout secrets are merged per release
as Helm merges repeated `-f` files, over what 2i2c's deployer passes first (basehub's `values.jsonnet`, rendered
with the jsonnet library, and a minimal hub file the basehub schema requires), then rendered with helm-python-sdk
(Helm v4's Go SDK, the `helm template` path: schemas and dependencies checked). Each combination is rendered once
per test session (functools.cache).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from tests.conftest import SHARED
from tests.helpers import helm_merge

CHARTS = SHARED / "charts"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KINDS = ("quay", "artifact-registry", "dockerhub")
HUB_CHARTS = ("basehub", "daskhub", "z2jh")
RELEASE = "staging"
# The image choices every render offers; the second is named the default.
IMAGES = ("pangeo=pangeo/pangeo-notebook:2024.04.08;Pangeo", "r=rocker/binder:4.3;R")
DEFAULT_IMAGE = "r"
QUAY_TOKEN = "Q" * 40
DOCKERHUB_PASSWORD = "owner-password-123"
AR_KEY = json.dumps({"type": "service_account", "project_id": "proj", "private_key": "-----BEGIN KEY-----"}, indent=2)
# What 2i2c's deployer reads from cluster.yaml and passes to values.jsonnet (deployer `hub.py`).
JSONNET_VARS = {
    "VARS_2I2C_HUB_NAME": RELEASE,
    "VARS_2I2C_CLUSTER_NAME": "c1",
    "VARS_2I2C_PROVIDER": "aws",
    "VARS_2I2C_HUB_DOMAIN": "staging.c1.2i2c.cloud",
    "VARS_2I2C_ACCOUNT_ID": "123456789012",
}
# The least a 2i2c hub's own values file holds for the basehub schema (every real hub sets its home page).
HUB_BASE: dict[str, Any] = {
    "jupyterhub": {"custom": {"homepage": {"templateVars": {"redirect_to": "https://2i2c.org"}}}}
}


@dataclass(frozen=True)
class Expected:
    """What provision was asked to produce, for the assertions."""

    server: str
    username: str
    password: str
    image_prefix: str
    registry_url: str
    pull_registry: str | None  # imagePullSecret.registry, None when no pull secret is written


@dataclass
class Render:
    """The rendered Kubernetes objects of every release of one hub, and the values each release was given."""

    expected: Expected
    chart: str
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # release chart → merged values
    objects: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # "<chart>:<template path>" of each object, by kind/name
    _parsed: dict[str, Any] = field(default_factory=dict, repr=False)

    def find(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.objects if o.get("kind") == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def named(self, kind: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.objects if o.get("kind") == kind)

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(kind/name, pod spec) of every workload rendered."""
        for obj in self.objects:
            spec = obj.get("spec") or {}
            template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                yield f"{obj['kind']}/{obj['metadata']['name']}", template["spec"]

    def secret_data(self, name: str, key: str) -> str:
        secret = self.find("Secret", name)
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        return base64.b64decode(secret["data"][key]).decode()

    def hub_values(self) -> dict[str, Any]:
        """The jupyterhub chart's values as the hub reads them (z2jh's `hub` Secret, key values.yaml)."""
        if "hub" not in self._parsed:
            self._parsed["hub"] = yaml.load(self.secret_data("hub", "values.yaml"), Loader=_LOADER)
        return copy.deepcopy(self._parsed["hub"])  # type: ignore[no-any-return]

    def dask_gateway_properties(self) -> dict[str, Any]:
        """The values dask-gateway's config reads (`_PROPERTIES` in its rendered dask_gateway_config.py)."""
        configmaps = [
            o
            for o in self.objects
            if o.get("kind") == "ConfigMap"
            and self.sources[f"ConfigMap/{o['metadata']['name']}"].endswith(
                "dask-gateway/templates/gateway/configmap.yaml"
            )
        ]
        assert len(configmaps) == 1, len(configmaps)
        found = re.search(r"_PROPERTIES = json\.loads\((\".*\")\)", configmaps[0]["data"]["dask_gateway_config.py"])
        assert found is not None
        return json.loads(json.loads(found.group(1)))  # type: ignore[no-any-return]


def docs_by_chart(stream: str) -> dict[str | None, dict[str, Any]]:
    """provision's YAML output: one unnamed document, or a stream of documents headed `# values for the X chart`."""
    out: dict[str | None, dict[str, Any]] = {}
    for part in re.split(r"^---\n", stream, flags=re.M):
        header = re.match(r"# values for the (\S+) chart\n", part)
        out[header.group(1) if header else None] = yaml.safe_load(part) or {}
    return out


def _cli(args: list[str], env: dict[str, str]) -> str:
    from provision.cli import app

    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _chart_args(chart: str, dask: bool, values_file: Path) -> list[str]:
    images = [arg for image in IMAGES for arg in ("--image", image)]
    return [
        *("--values-file", str(values_file), "--chart", chart),
        *images,
        *("--default-image", DEFAULT_IMAGE),
        *(["--dask-gateway"] if dask else []),
    ]


def run_provision(kind: str, chart: str, dask: bool, folder: Path) -> tuple[Expected, str]:
    """Run provision for a registry kind; returns what it should have written and its stdout (the secrets)."""
    values_file = folder / f"{RELEASE}.values.yaml"
    if kind == "quay":
        from tests.servers.quay import FakeQuay

        with FakeQuay() as quay:
            quay.add_user("admin", email="admin@example.org")
            quay.add_token(QUAY_TOKEN, user="admin", scopes={"org:admin", "user:admin"})
            base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", RELEASE, "--api-url", quay.url]
            stdout = _cli([*base, "--email", "ops@example.org", *_chart_args(chart, dask, values_file)],
                          {"QUAY_TOKEN": QUAY_TOKEN})  # fmt: skip
            password = quay.robot_token("hubs", "image_builder")
        host = quay.url.split("://", 1)[1]  # the test server stands for quay.io: its host is in the values
        expected = Expected(quay.url, "hubs+image_builder", password, f"{host}/hubs/c1-{RELEASE}-", quay.url, host)
        return expected, stdout
    if kind == "dockerhub":
        from tests.servers.dockerhub import FakeDockerHub

        with FakeDockerHub() as hub:
            hub.add_user("alice", password=DOCKERHUB_PASSWORD)
            hub.add_org("myorg", owners=["alice"], plan="team")
            args = ["dockerhub", "--namespace", "myorg", "--org", "--cluster", "c1", "--hub", RELEASE, "--private",
                    "--api-url", hub.url, *_chart_args(chart, dask, values_file)]  # fmt: skip
            stdout = _cli(args, {"DOCKERHUB_USERNAME": "alice", "DOCKERHUB_TOKEN": DOCKERHUB_PASSWORD})
        server = "https://index.docker.io/v1/"
        secret = docs_by_chart(stdout)
        bhs = secret.get("binderhub-service") or (secret[None].get("basehub") or secret[None])["binderhub-service"]
        password = bhs["buildPodsRegistryCredentials"]["password"]
        return Expected(
            server, "myorg", password, f"myorg/c1-{RELEASE}-", "https://registry-1.docker.io", server
        ), stdout
    assert kind == "artifact-registry"
    from provision.console import Reporter
    from provision.hubconfig import HubOptions, ImageChoice, Profile
    from provision.hubfiles import edits
    from provision.hubfiles import write as hubfiles
    from provision.registries.artifact_registry import create as gcp

    registry = gcp.registry_for(RELEASE, project_id="proj", region="us-central1", key=AR_KEY)
    profile = Profile(images=tuple(ImageChoice.parse(spec) for spec in IMAGES), default=DEFAULT_IMAGE)
    options = HubOptions(chart=chart, dask_gateway=dask or chart == "daskhub", profile=profile)  # type: ignore[arg-type]
    request = edits.FilesRequest(values_file=values_file)
    hubfiles.check_profile(request, options)
    published = hubfiles.publish(
        registry, options, request, sops_binary=None, reporter=Reporter(stream=io.StringIO()), dry_run=False
    )
    server = "https://us-central1-docker.pkg.dev"
    expected = Expected(server, "_json_key", AR_KEY, registry.image_prefix, server, None)
    return expected, published.documents(published.secret)


def _jsonnet(chart: str) -> dict[str, Any]:
    import _jsonnet  # the PyPI `jsonnet` package, as 2i2c's deployer uses it

    # An absolute path: values.jsonnet wraps its output under `basehub:` when its own path is .../daskhub/...
    path = (CHARTS / chart / "values.jsonnet").resolve()
    return json.loads(_jsonnet.evaluate_file(str(path), ext_vars=JSONNET_VARS))  # type: ignore[no-any-return]


def helm_render(chart_dir: Path, values: dict[str, Any]) -> dict[str, str]:
    import helm_python

    chart = helm_python.Chart.load(str(chart_dir))
    return chart.render(values, name=RELEASE, namespace=RELEASE, is_install=True)  # type: ignore[no-any-return]


@cache
def render(kind: str, chart: str, dask: bool) -> Render:
    """provision's values for one combination, rendered by every chart they are meant for (cached per session)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected, stdout = run_provision(kind, chart, dask, folder)
        secrets = docs_by_chart(stdout)
        out = Render(expected, chart)
        if chart == "z2jh":
            release_files = {
                "jupyterhub": folder / f"{RELEASE}.values.yaml",
                "binderhub-service": folder / f"{RELEASE}.binderhub-service.values.yaml",
                "dask-gateway": folder / f"{RELEASE}.dask-gateway.values.yaml",
            }
            chart_dirs = {
                "jupyterhub": CHARTS / "jupyterhub",
                "binderhub-service": CHARTS / "binderhub-service",
                "dask-gateway": CHARTS / "basehub" / "charts" / "dask-gateway",
            }
            for release, path in release_files.items():
                if not path.exists():
                    # dask-gateway gets values only for its pull secret: none when pods pull without one.
                    assert release == "dask-gateway" and not (dask and expected.pull_registry), path.name
                    continue
                public = yaml.safe_load(path.read_text())
                out.values[release] = helm_merge(public, secrets.get(release, {}))
        else:
            base = HUB_BASE
            if dask:  # what a 2i2c hub running dask-gateway sets in its own files (2i2c docs, "dask-gateway")
                dask_on = {"enabled": True}
                base = helm_merge(base, {"dask-gateway": dask_on, "jupyterhub": {"custom": {"daskhubSetup": dask_on}}})
            base = base if chart == "basehub" else {"basehub": base}
            public = yaml.safe_load((folder / f"{RELEASE}.values.yaml").read_text())
            out.values[chart] = helm_merge(_jsonnet(chart), base, public, secrets[None])
            chart_dirs = {chart: CHARTS / chart}
    for release, values in out.values.items():
        for path, text in helm_render(chart_dirs[release], values).items():
            if not path.endswith((".yaml", ".yml")):
                continue  # NOTES.txt
            for obj in yaml.load_all(text, Loader=_LOADER):
                if isinstance(obj, dict) and obj.get("kind"):
                    out.objects.append(obj)
                    out.sources[f"{obj['kind']}/{obj['metadata']['name']}"] = f"{release}:{path}"
    return out
