from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

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


# --- issue 11: profiles that always render, the unlisted-choice rule ----------------------------------------------

import re  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TWO = Profile(
    images=(ImageChoice("pangeo", "pangeo/pangeo-notebook:2024.04.08"), ImageChoice("r", "rocker/binder:4.3"))
)


def _option(doc: dict[str, object], chart: str = "basehub") -> dict[str, object]:
    jupyterhub = doc if chart == "z2jh" else unwrap(doc, chart)["jupyterhub"]  # type: ignore[index]
    [entry] = jupyterhub["singleuser"]["profileList"]  # type: ignore[index]
    return entry["profile_options"]["image"]  # type: ignore[no-any-return]


def _defaults(merged: dict[str, object]) -> list[str]:
    [entry] = [p for p in merged["jupyterhub"]["singleuser"]["profileList"] if p["slug"] == "build-your-own-image"]  # type: ignore[index]
    return [slug for slug, c in entry["profile_options"]["image"]["choices"].items() if c.get("default")]


def _existing(choices: dict[str, object], *, others: list[dict[str, object]] | None = None) -> dict[str, object]:
    entry = {"slug": "build-your-own-image", "default": True, "profile_options": {"image": {"choices": choices}}}
    return {"jupyterhub": {"singleuser": {"profileList": [*(others or []), entry]}}}


def _merge_into(existing: dict[str, object], new: dict[str, object]) -> dict[str, object]:
    import copy

    from provision.clusterrepo import deep_merge  # the merge --values-file applies

    out = copy.deepcopy(existing)
    deep_merge(out, new)  # type: ignore[arg-type]
    return out


def test_a_profile_without_any_choice_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="at least one image choice"):
        profile_values(Profile())
    with pytest.raises(UsageError, match="at least one image choice"):
        public_values(QUAY, HubOptions(profile=Profile()))
    # Choices already in the values file are enough: --profile alone then only refreshes the option.
    existing = _existing({"py": {"display_name": "Py", "default": True, "kubespawner_override": {"image": "p:1"}}})
    merged = _merge_into(existing, profile_values(Profile(), existing=existing))
    assert _defaults(merged) == ["py"]


def test_exactly_one_default_choice() -> None:
    assert [s for s, c in _option(profile_values(TWO))["choices"].items() if c.get("default")] == ["pangeo"]  # type: ignore[attr-defined]
    named = Profile(images=TWO.images, default="r")
    assert [s for s, c in _option(profile_values(named))["choices"].items() if c.get("default")] == ["r"]  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="not one of the image choices"):
        profile_values(Profile(images=TWO.images, default="julia"))


def test_an_existing_default_is_kept_and_piled_up_defaults_are_repaired() -> None:
    existing = _existing(
        {
            "old": {"default": True, "kubespawner_override": {"image": "old:1"}},
            "older": {"default": True, "kubespawner_override": {"image": "older:1"}},  # a second default, piled up
        }
    )
    merged = _merge_into(existing, profile_values(TWO, existing=existing))
    assert _defaults(merged) == ["old"]  # KubeSpawner's pick (the first) stays the default
    renamed = _merge_into(existing, profile_values(Profile(images=TWO.images, default="r"), existing=existing))
    assert _defaults(renamed) == ["r"]
    to_existing = _merge_into(existing, profile_values(Profile(images=TWO.images, default="older"), existing=existing))
    assert _defaults(to_existing) == ["older"]


def test_repeated_runs_never_pile_up_defaults() -> None:
    doc: dict[str, object] = {}
    for image in ("a=a/a:1", "b=b/b:1", "c=c/c:1"):
        doc = _merge_into(doc, profile_values(Profile(images=(ImageChoice.parse(image),)), existing=doc))
    assert _defaults(doc) == ["a"]
    [entry] = doc["jupyterhub"]["singleuser"]["profileList"]  # type: ignore[index]
    assert entry["default"] is True


def test_build_your_own_image_is_never_a_second_default_profile() -> None:
    small = {"slug": "small", "display_name": "Small", "default": True}
    fresh = {"jupyterhub": {"singleuser": {"profileList": [small]}}}
    merged = _merge_into(fresh, profile_values(TWO, existing=fresh))
    assert [p["slug"] for p in merged["jupyterhub"]["singleuser"]["profileList"] if p.get("default")] == ["small"]  # type: ignore[index]
    # An entry written as default by an older run, beside another default profile, gives its mark up.
    old = _existing({"r": {"default": True, "kubespawner_override": {"image": "rocker/binder:4.3"}}}, others=[small])
    merged = _merge_into(old, profile_values(TWO, existing=old))
    assert [p["slug"] for p in merged["jupyterhub"]["singleuser"]["profileList"] if p.get("default")] == ["small"]  # type: ignore[index]
    # The same for daskhub (under basehub:) and z2jh (the jupyterhub chart's own values).
    wrapped = {"basehub": fresh}
    dask = _merge_into(wrapped, profile_values(TWO, chart="daskhub", existing=wrapped))
    assert [p.get("default") for p in dask["basehub"]["jupyterhub"]["singleuser"]["profileList"]] == [True, None]  # type: ignore[index]
    z2jh_file = fresh["jupyterhub"]
    z2jh = profile_values(TWO, chart="z2jh", existing=z2jh_file)["jupyterhub"]["singleuser"]["profileList"]
    assert "default" not in z2jh[0]


def test_images_file_default() -> None:
    text = "- {slug: a, image: 'a/a:1'}\n- {slug: b, image: 'b/b:1', default: true}\n"
    assert [c.default for c in images_from_yaml(text, source="f")] == [False, True]
    with pytest.raises(UsageError, match="only one image"):
        images_from_yaml(text.replace("a:1'}", "a:1', default: true}"), source="f")


# Every image name BinderHub builds: <image_prefix><escaped repository slug>:<ref>, lower-cased (binderhub/builder.py),
# for each registry kind's prefix shape (facts hub-config.md §7).
SLUG = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,60}[a-z0-9])?", fullmatch=True)
REF = st.from_regex(r"[0-9a-f]{7,40}|[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True)
NAME = st.from_regex(r"[a-z0-9]{1,20}(?:-[a-z0-9]{1,20}){0,2}", fullmatch=True)
PREFIXES = {
    "quay": st.builds(lambda org, p: f"quay.io/{org}/{p}-", NAME, NAME),
    "artifact-registry": st.builds(lambda r, p, n: f"{r}-docker.pkg.dev/{p}/{n}-registry/", NAME, NAME, NAME),
    "dockerhub": st.builds(lambda ns, p: f"{ns}/{p}-", st.from_regex(r"[a-z0-9]{4,40}", fullmatch=True), NAME),
    "host:port": st.builds(lambda h, port, p: f"{h}.example.org:{port}/team/{p}-", NAME, st.integers(1, 65535), NAME),
    "localhost": st.builds(lambda port, p: f"localhost:{port}/{p}-", st.integers(1, 65535), NAME),
}


@pytest.mark.parametrize("kind", PREFIXES)
@given(data=st.data())
def test_the_unlisted_rule_accepts_every_image_binderhub_builds(kind: str, data: st.DataObject) -> None:
    name = f"{data.draw(PREFIXES[kind])}{data.draw(SLUG)}:{data.draw(REF)}"
    assert re.match(IMAGE_RULE.pattern, name), name  # KubeSpawner: re.match(validation_regex, value)


@pytest.mark.parametrize(
    "value",
    [
        "registry.example.org:5000/team/image",  # untagged, with a port
        "localhost:5000/image",
        "pangeo/pangeo-notebook",
        "image:",
        ":tag",
        "pangeo notebook:1",
        " pangeo/pangeo-notebook:1",
        "pangeo/pangeo-notebook:1 ",
        "pangeo/pangeo-notebook:1\n",
        "pangeo/pangeo-notebook:tag with space",
        "host:5000:tag",
        "",
        "Pangeo/Notebook:1",  # repository names are lower-case references
        "quay.io/Org/image:1",
    ],
)
def test_the_unlisted_rule_refuses_untagged_and_spaced_values(value: str) -> None:
    assert re.match(IMAGE_RULE.pattern, value) is None


@given(st.text(min_size=1).filter(lambda t: any(c.isspace() for c in t)))
def test_no_value_with_whitespace_passes(value: str) -> None:
    assert re.match(IMAGE_RULE.pattern, value) is None


def test_the_rule_means_the_same_in_the_browser() -> None:
    """fancy-profiles checks the field with JavaScript's `new RegExp(rule, "g").test(value)` and the field's HTML
    `pattern` (node, from scripts/install-nodejs): the same verdicts as KubeSpawner's re.match, for names that pass
    and names that do not."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node is not None, "node is needed to check the rule in JavaScript"
    values = [
        "quay.io/org/c1-hub-binder-2dexamples-55ab5c:0123abc",
        "us-central1-docker.pkg.dev/proj/hub-registry/binder-x:0123abc",
        "myorg/c1-hub-x:0123abc",
        "localhost:5000/team/image:v1",
        "registry.example.org:5000/team/image",
        "pangeo notebook:1",
        "img:tag\n",
        "host:5000:tag",
        "Pangeo/Notebook:1",
        "pangeo/notebook:Tag_1",
        "a/b/c:1.2-x",
    ]
    # The HTML `pattern` attribute: browsers compile it with the v flag, which is stricter (an unescaped `/` or `-`
    # in a class is a SyntaxError, and an invalid pattern is ignored: the form would accept anything).
    script = "const [rule, values] = JSON.parse(process.argv[1]);" \
        "const html = new RegExp('^(?:' + rule + ')$', 'v');" \
        "const js = values.map(v => new RegExp(rule, 'g').test(v));" \
        "console.log(JSON.stringify([js, values.map(v => html.test(v))]));"  # fmt: skip
    out = subprocess.run([node, "-e", script, json.dumps([IMAGE_RULE.pattern, values])], capture_output=True, text=True,
                         check=False, timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    python = [re.match(IMAGE_RULE.pattern, v) is not None for v in values]
    assert json.loads(out.stdout) == [python, python]
    assert python == [True, True, True, True, False, False, False, False, False, True, True]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{slug: a, image: 'a/a:1', display_name: [1]}", "f: image 2 (a): `display_name` must be a string, not a list"),
        ("{slug: a, image: 'a/a:1', description: {x: 1}}", "f: image 2 (a): `description` must be a string, not a map"),
        ("{slug: a, image: 'a/a:1', display_name: 2024}", "f: image 2 (a): `display_name` must be a string, not a num"),
        ("{slug: a, image: 'a/a:1', display_name: }", "f: image 2 (a): `display_name` must be a string, not empty"),
        ("{slug: 7, image: 'a/a:1'}", "f: image 2: `slug` must be a string, not a number"),
        ("{slug: a, image: [x]}", "f: image 2 (a): `image` must be a string, not a list"),
        ("{slug: a, image: 'a/a:1', default: 'yes'}", "f: image 2 (a): `default` must be true or false, not a string"),
        ("{slug: a}", "f: image 2 (a) needs `slug` and `image` strings"),
        ("[a]", "f: image 2 is not a mapping"),
    ],
)
def test_images_file_fields_must_have_their_type(entry: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        images_from_yaml(f"- {{slug: ok, image: 'o/o:1'}}\n- {entry}\n", source="f")
    assert str(err.value).startswith(message)


def test_profile_updates_a_build_profile_the_hub_has_under_another_slug(tmp_path: Path) -> None:
    """A hand-written build profile (slug `build`): `provision profile` updates it instead of adding a second."""
    from typer.testing import CliRunner

    from provision.cli import app

    values = tmp_path / "staging.values.yaml"
    values.write_text(
        "jupyterhub:\n  singleuser:\n    profileList:\n"
        "      - display_name: Bring your own image  # ours\n        slug: build\n        default: true\n"
        "        profile_options:\n          image:\n            display_name: Image\n"
        "            dynamic_image_building:\n              enabled: true\n"
        "            unlisted_choice:\n              enabled: true\n"
        "            choices:\n              pangeo:\n                display_name: Pangeo\n"
        "                kubespawner_override: {image: 'pangeo/pangeo-notebook:2024.04.08'}\n"
    )
    result = CliRunner().invoke(app, ["profile", "--values-file", str(values), "--image", "r=rocker/binder:4.4"])
    assert result.exit_code == 0, result.stderr
    profiles = yaml.safe_load(values.read_text())["jupyterhub"]["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles] == ["build"]
    assert profiles[0]["display_name"] == "Bring your own image" and profiles[0]["default"] is True
    assert set(profiles[0]["profile_options"]["image"]["choices"]) == {"pangeo", "r"}
    assert "# ours" in values.read_text()
