"""Issue 19: a registry kind needs only its own package. The toy kind (tests/toykind: its RegistryKind, its Setup,
its removal side) is registered, then a hub gets a credential through the generic create verb, is verified by the
generic verify verb against a real registry v2 server whose logins follow the toy's vault, and is removed by the
generic remove verb: the hub's files written and cleaned with the real sops, the credential created and deleted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provision import registries
from provision.console import Reporter
from provision.hubfiles.edits import FilesRequest
from provision.verbs import create, remove, verify
from provision.verbs.deliver import Delivery
from provision.verbs.remove import HubFilesRequest
from tests.realsops import AgeKey, decrypt_file, make_age_key, sops_env, write_sops_config
from tests.servers.live_issuer import LiveIssuer
from tests.servers.registry import DistributionRegistry
from tests.toykind import ToyKind
from tests.toykind.remove import ToyRemoval
from tests.toykind.setup import ToyRequest, ToySetup
from tests.toykind.vault import ToyVault

VALUES = "# hub1's own values\njupyterhub:\n  hub:\n    config: {}\n"


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgeKey:
    alice = make_age_key(tmp_path / "keys", "alice")
    for name, value in sops_env(alice).items():
        monkeypatch.setenv(name, value)
    return alice


@pytest.fixture
def toy() -> Iterator[tuple[ToyVault, DistributionRegistry, ToyKind]]:
    with ToyVault() as vault:
        issuer = LiveIssuer(vault.accepts)
        with issuer, DistributionRegistry(token=issuer) as registry:
            kind = ToyKind(registry.url.split("://", 1)[1])
            registries.register(kind)
            try:
                yield vault, registry, kind
            finally:
                registries.unregister(kind)


def test_a_toy_kind_runs_create_verify_remove_through_the_generic_verbs(
    tmp_path: Path, key: AgeKey, toy: tuple[ToyVault, DistributionRegistry, ToyKind]
) -> None:
    vault, registry, kind = toy
    folder = tmp_path / "hub"
    write_sops_config(folder, [key.recipient])
    values, secret = folder / "hub1.values.yaml", folder / "enc-hub1.secret.values.yaml"
    values.write_text(VALUES)
    request = ToyRequest(hub="hub1", vault=vault.url, registry=registry.url)
    stderr, stdout = io.StringIO(), []

    # create: the generic pipeline delivers what the toy's Setup made into the hub's files
    delivery = Delivery(files=FilesRequest(values, secret, None, "hub1"), chart="basehub")
    create.run(ToySetup(request), delivery, reporter=Reporter(stream=stderr), emit=stdout.append)
    password = vault.credentials["toy-hub1"]
    public = yaml.safe_load(values.read_text())
    creds = public["binderhub-service"]["buildPodsRegistryCredentials"]
    assert creds == {"server": registry.url, "username": "toy-hub1"}
    assert public["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == f"{kind.host}/toy/hub1-"
    assert values.read_text().startswith("# hub1's own values\n")
    decrypted = yaml.safe_load(decrypt_file(secret, key).stdout)
    assert decrypted["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == password
    assert password not in secret.read_text() and password not in stderr.getvalue() and stdout == []

    # verify: the generic checks recognise the toy kind and prove the credential against the real registry
    req = verify.request_from_files([values], secret_files=[secret])
    assert req.registry.kind == "toyreg" and registries.named("toyreg") is kind
    checks = {c.name: c for c in verify.run(req, reporter=Reporter(stream=io.StringIO()))}
    assert {c.status for c in checks.values()} == {"pass"}, checks
    assert "push credentials accepted" in checks and "may push and pull under image_prefix" in checks
    assert ("toy-hub1", True) in [(user, ok) for user, ok in vault_logins(registry)]

    # remove: the generic removal deletes the toy's credential, then takes the toy's keys out of the hub's files
    result = remove.run(ToyRemoval(request), HubFilesRequest(values, secret), yes=True,
                        reporter=Reporter(stream=io.StringIO()), confirm=lambda _q, _w: True)  # fmt: skip
    assert "delete toy credential toy-hub1" in result.applied[0]
    assert vault.credentials == {}
    assert "binderhub-service" not in (yaml.safe_load(values.read_text()) or {})
    assert values.read_text().startswith("# hub1's own values\n")
    # without a cluster.yaml to unlist it from, the emptied secret file stays, with no key left
    assert yaml.safe_load(decrypt_file(secret, key).stdout) == {}
    assert "enc-hub1.secret.values.yaml has no key left" in " ".join(result.plan.notes)
    again = verify.run(req, reporter=Reporter(stream=io.StringIO()))
    assert next(c for c in again if c.name == "push credentials accepted").status == "fail"  # the vault forgot it


def vault_logins(registry: DistributionRegistry) -> list[tuple[str, bool]]:
    issuer = registry.token
    assert isinstance(issuer, LiveIssuer)
    return issuer.logins
