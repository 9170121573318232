"""provision verify on a plain Zero to JupyterHub hub: the values as `provision quay --chart z2jh` writes them (one
file, or one stdout document, per Helm release), verified against Debian's docker-registry with the robot's token.

The z2jh files come from the real command against the Quay test server, encrypted by the real sops for alice; the
registry's token issuer knows the robot's token only after Quay made it, as a real quay.io would.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from provision.errors import UsageError
from provision.verbs.verify import release_of, release_sibling
from tests.realsops import AgeKey, sops_env, write_sops_config
from tests.servers.quay import FakeQuay
from tests.servers.registry import DistributionRegistry, TokenIssuer

TOKEN = "T" * 40
ROBOT = "hubs+image_builder"
VALUES, SECRET = "staging.values.yaml", "enc-staging.secret.values.yaml"
BINDER_VALUES = "staging.binderhub-service.values.yaml"
BINDER_SECRET = "enc-staging.binderhub-service.secret.values.yaml"


@dataclass(frozen=True)
class Z2jhHub:
    files: Path  # written with --values-file and --secret-file: four files, one public and one secret per release
    piped: Path  # written with --values-file only: the public files; the secrets went to stdout
    stdout: str  # that run's stdout: one secret document per release
    robot_token: str
    registry: DistributionRegistry
    issuer: TokenIssuer
    alice: AgeKey
    sops: str


@pytest.fixture(scope="module")
def z2jh(tmp_path_factory: pytest.TempPathFactory, real_sops: str, age_keys: tuple[AgeKey, ...]) -> Iterator[Z2jhHub]:
    alice = age_keys[0]
    files, piped = tmp_path_factory.mktemp("files"), tmp_path_factory.mktemp("piped")
    write_sops_config(files, [alice.recipient])
    env = {**sops_env(alice), "SOPS_BIN": real_sops, "QUAY_TOKEN": TOKEN}
    users: dict[str, str] = {"reader": "read-pw"}
    grants = {ROBOT: [("hubs/*", {"pull", "push"})], "reader": [("hubs/*", {"pull"})]}
    with FakeQuay() as quay, TokenIssuer(users, grants) as issuer, DistributionRegistry(token=issuer) as registry:
        quay.add_user("admin", email="admin@example.org")
        quay.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
        base = ["quay", "--org", "hubs", "--cluster", "c1", "--hub", "staging", "--api-url", quay.url,
                "--chart", "z2jh", "--image", "r=rocker/binder:4.3"]  # fmt: skip
        written = CliRunner().invoke(
            app, [*base, "--values-file", str(files / VALUES), "--secret-file", str(files / SECRET)], env=env
        )
        assert written.exit_code == 0, written.stderr
        printed = CliRunner().invoke(app, [*base, "--values-file", str(piped / VALUES)], env=env)
        assert printed.exit_code == 0, printed.stderr
        token = quay.robot_token("hubs", "image_builder")
        assert token and token in printed.stdout  # the second run kept the robot and printed its token
        users[ROBOT] = token  # the registry accepts the token Quay made (the issuer reads this dict per request)
        yield Z2jhHub(files, piped, printed.stdout, token, registry, issuer, alice, real_sops)


def verify(hub: Z2jhHub, *args: str, stdin: str | None = None, registry: str | None = None):  # type: ignore[no-untyped-def]
    command = ["verify", *args, "--registry-url", registry or hub.registry.url, "--format", "json"]
    env = {**sops_env(hub.alice), "SOPS_BIN": hub.sops}
    result = CliRunner().invoke(app, command, input=stdin, env=env)
    assert hub.robot_token not in result.stdout + result.stderr
    return result


def statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c["check"]: c["status"] for c in json.loads(result.stdout)}


def copy_without(hub: Z2jhHub, tmp_path: Path, *left_out: str) -> Path:
    for path in hub.files.iterdir():
        if path.is_file() and path.name not in left_out:
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


# -- the files as written: the other release's file is found beside the given one --------------------------------


def test_the_hub_files_pass_with_the_siblings_found(z2jh: Z2jhHub) -> None:
    result = verify(z2jh, "--values-file", str(z2jh.files / VALUES), "--secret-file", str(z2jh.files / SECRET))
    assert result.exit_code == 0, result.stderr
    checks = statuses(result)
    assert checks["push credentials accepted"] == "pass"
    assert checks["may push and pull under image_prefix"] == "pass"  # the robot's org-wide pull (owners team)
    assert checks["pull secret is for the push registry"] == "pass"  # imagePullSecret from the jupyterhub release
    assert checks["BinderHub image lookup login set"] == "pass"
    assert "fail" not in checks.values()
    assert f"{z2jh.files / BINDER_VALUES} (found beside {VALUES})" in result.stderr
    assert f"{z2jh.files / BINDER_SECRET} (found beside {SECRET})" in result.stderr


def test_the_binderhub_service_files_find_the_jupyterhub_release_beside_them(z2jh: Z2jhHub) -> None:
    args = ["--values-file", str(z2jh.files / BINDER_VALUES), "--secret-file", str(z2jh.files / BINDER_SECRET)]
    result = verify(z2jh, *args)
    assert result.exit_code == 0, result.stderr
    assert statuses(result)["pull secret is for the push registry"] == "pass"
    assert f"{z2jh.files / SECRET} (found beside {BINDER_SECRET})" in result.stderr


def test_every_release_file_given_in_any_order(z2jh: Z2jhHub, tmp_path: Path) -> None:
    """Told apart by their keys, not their names: files renamed at will are read as what they hold."""
    names = {BINDER_VALUES: "b.yaml", VALUES: "a.yaml", BINDER_SECRET: "enc-y.yaml", SECRET: "enc-x.yaml"}
    for old, new in names.items():
        shutil.copy(z2jh.files / old, tmp_path / new)
    shutil.copy(z2jh.files / ".sops.yaml", tmp_path / ".sops.yaml")
    args = [f"--{'secret' if new.startswith('enc-') else 'values'}-file={tmp_path / new}" for new in names.values()]
    result = verify(z2jh, *args)
    assert result.exit_code == 0, result.stderr
    assert "beside" not in result.stderr
    assert statuses(result)["pull secret is for the push registry"] == "pass"


def test_a_rotated_token_fails(z2jh: Z2jhHub) -> None:
    """The registry no longer takes the token in the files (rotated on Quay): the push credentials fail, exit 1."""
    with DistributionRegistry(htpasswd={ROBOT: "ROTATED-TOKEN"}) as other:
        result = verify(
            z2jh, "--values-file", str(z2jh.files / VALUES), "--secret-file", str(z2jh.files / SECRET),
            registry=other.url,
        )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert statuses(result)["push credentials accepted"] == "fail"


@pytest.mark.parametrize(("left_out", "words"), [
    (BINDER_VALUES, f"no values for the binderhub-service release: {VALUES} holds the jupyterhub chart's values; "
                    f"there is no {BINDER_VALUES} beside"),
    (BINDER_SECRET, f"no secrets for the binderhub-service release: {SECRET} holds the jupyterhub chart's values; "
                    f"there is no {BINDER_SECRET} beside"),
])  # fmt: skip
def test_a_missing_release_file_is_a_clear_message(z2jh: Z2jhHub, tmp_path: Path, left_out: str, words: str) -> None:
    folder = copy_without(z2jh, tmp_path, left_out)
    result = verify(z2jh, "--values-file", str(folder / VALUES), "--secret-file", str(folder / SECRET))
    assert result.exit_code == 2, result.stderr
    assert words in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert "another --" in result.stderr  # says how to give it


# -- the stdout stream: `provision quay --chart z2jh … | provision verify … --secret-stdin` -------------------------


def test_the_stdout_stream_passes_on_stdin(z2jh: Z2jhHub) -> None:
    result = verify(z2jh, "--values-file", str(z2jh.piped / VALUES), "--secret-stdin", stdin=z2jh.stdout)
    assert result.exit_code == 0, result.stderr
    checks = statuses(result)
    assert checks["push credentials accepted"] == checks["pull secret is for the push registry"] == "pass"


def test_the_pull_secret_is_the_jupyterhub_releases(z2jh: Z2jhHub) -> None:
    """A wrong imagePullSecret password in the jupyterhub document fails the pull secret check, and only it."""
    hub_doc, binder_doc = yaml.safe_load_all(z2jh.stdout)
    hub_doc["imagePullSecret"]["username"], hub_doc["imagePullSecret"]["password"] = "reader", "not-the-password"
    stream = yaml.safe_dump_all([hub_doc, binder_doc])
    result = verify(z2jh, "--values-file", str(z2jh.piped / VALUES), "--secret-stdin", stdin=stream)
    assert result.exit_code == 1, result.stderr
    checks = statuses(result)
    assert checks["pull secret credentials accepted"] == "fail"
    assert checks["push credentials accepted"] == "pass"
    hub_doc["imagePullSecret"]["password"] = "read-pw"
    right = verify(z2jh, "--values-file", str(z2jh.piped / VALUES), "--secret-stdin",
                   stdin=yaml.safe_dump_all([hub_doc, binder_doc]))  # fmt: skip
    assert right.exit_code == 0 and statuses(right)["pull secret credentials accepted"] == "pass"


def test_stdin_without_the_binderhub_service_secrets_is_a_clear_message(z2jh: Z2jhHub) -> None:
    first = z2jh.stdout.split("---\n")[0]
    result = verify(z2jh, "--values-file", str(z2jh.piped / VALUES), "--secret-stdin", stdin=first)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "no secrets for the binderhub-service release: stdin (--secret-stdin) holds the jupyterhub" in message
    assert "one YAML stream" in message


def test_encrypted_text_on_stdin_or_as_values_is_refused(z2jh: Z2jhHub) -> None:
    ciphertext = (z2jh.files / BINDER_SECRET).read_text()
    result = verify(z2jh, "--values-file", str(z2jh.files / VALUES), "--secret-stdin", stdin=ciphertext)
    assert result.exit_code == 2 and "sops-encrypted" in result.stderr and "sops decrypt" in result.stderr
    as_values = verify(z2jh, "--values-file", str(z2jh.files / BINDER_SECRET))
    assert as_values.exit_code == 2 and "is sops-encrypted" in as_values.stderr and "--secret-file" in as_values.stderr


# -- telling documents apart -------------------------------------------------------------------------------------


def test_documents_are_told_apart_by_their_keys(z2jh: Z2jhHub) -> None:
    hub_secret, binder_secret = yaml.safe_load_all(z2jh.stdout)
    assert release_of(hub_secret, where="x") == "jupyterhub"  # imagePullSecret alone
    assert release_of(binder_secret, where="x") == "binderhub-service"
    assert release_of(yaml.safe_load((z2jh.files / VALUES).read_text()), where="x") == "jupyterhub"
    assert release_of(yaml.safe_load((z2jh.files / BINDER_VALUES).read_text()), where="x") == "binderhub-service"
    assert release_of({"binderhub-service": {}, "nfs": {}}, where="x") == "hub"  # 2i2c's basehub layout
    assert release_of({"basehub": {"jupyterhub": {}}}, where="x") == "hub"  # daskhub
    assert release_of({"enabled": True, "global": {}}, where="x") is None  # keys every chart has
    with pytest.raises(UsageError, match=r"mixes top-level keys of the jupyterhub chart's \(hub\) and the "
                                         r"binderhub-service chart's \(config\)"):  # fmt: skip
        release_of({"hub": {}, "config": {}}, where="x")


@pytest.mark.parametrize(("given", "release", "sibling"), [
    (VALUES, "binderhub-service", BINDER_VALUES),
    (SECRET, "binderhub-service", BINDER_SECRET),
    (BINDER_VALUES, "jupyterhub", VALUES),
    (BINDER_SECRET, "jupyterhub", SECRET),
    ("hub.yaml", "binderhub-service", "hub.binderhub-service.yaml"),
    (VALUES, "jupyterhub", None),
])  # fmt: skip
def test_release_siblings_are_named_as_provision_writes_them(given: str, release: str, sibling: str | None) -> None:
    found = release_sibling(Path("/c") / given, release)
    assert found == (Path("/c") / sibling if sibling else None)


def test_a_given_file_that_does_not_exist_names_the_release_file_that_does(z2jh: Z2jhHub, tmp_path: Path) -> None:
    """As on Artifact Registry, where the jupyterhub chart gets no secret file: the hint names the one there is."""
    folder = copy_without(z2jh, tmp_path, SECRET)
    result = verify(z2jh, "--values-file", str(folder / VALUES), "--secret-file", str(folder / SECRET))
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert f"--secret-file '{folder / SECRET}' does not exist" in message
    assert f"{folder / BINDER_SECRET} exists: give it instead" in message
    alone = verify(z2jh, "--values-file", str(folder / VALUES), "--secret-file", str(folder / BINDER_SECRET))
    assert alone.exit_code == 1  # read and checked: quay needs the pull secret that is gone with the file
    assert statuses(alone)["pull secret present"] == "fail" and statuses(alone)["push credentials accepted"] == "pass"


# -- messages name the keys as a z2jh release's file spells them (top-level, no `jupyterhub.` prefix) -------------


def details(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c["check"]: c.get("detail", "") for c in json.loads(result.stdout)}


def test_a_missing_pull_secret_names_the_key_in_the_jupyterhub_release_file(z2jh: Z2jhHub, tmp_path: Path) -> None:
    folder = copy_without(z2jh, tmp_path, SECRET)  # the jupyterhub release's secrets hold imagePullSecret
    result = verify(z2jh, "--values-file", str(folder / VALUES), "--secret-file", str(folder / BINDER_SECRET))
    assert result.exit_code == 1, result.stderr
    detail = details(result)["pull secret present"]
    assert f"imagePullSecret (in the jupyterhub release's file {VALUES})" in detail, detail
    assert "jupyterhub.imagePullSecret" not in detail


def test_a_missing_lookup_login_names_the_key_in_the_binderhub_service_release_file(
    z2jh: Z2jhHub, tmp_path: Path
) -> None:
    folder = copy_without(z2jh, tmp_path)
    values = yaml.safe_load((folder / BINDER_VALUES).read_text())
    del values["config"]["DockerRegistry"]["url"]
    (folder / BINDER_VALUES).write_text(yaml.safe_dump(values))
    result = verify(z2jh, "--values-file", str(folder / VALUES), "--secret-file", str(folder / SECRET))
    assert result.exit_code == 1, result.stderr
    detail = details(result)["BinderHub image lookup login set"]
    assert detail.startswith(f"config.DockerRegistry.url (in the binderhub-service release's files {BINDER_VALUES} "
                             f"or {BINDER_SECRET}) is not set"), detail  # fmt: skip
    assert "binderhub-service.config" not in detail
