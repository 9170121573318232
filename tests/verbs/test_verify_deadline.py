"""provision verify under its --deadline: a hung registry ends the run near the deadline with one paragraph naming
what was pending (one hub), or with the hubs not reached reported as "could not check" (a folder of hubs); 429
waits are shown at normal verbosity."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli import app
from tests.servers.base import Delay, Status
from tests.servers.proxy import RegistryProxy
from tests.servers.registry import DistributionRegistry

USERS = {"builder": "build-pw-9f3k"}


@pytest.fixture(scope="module")
def registry() -> Iterator[DistributionRegistry]:
    with DistributionRegistry(htpasswd=USERS) as served:
        yield served


@pytest.fixture
def proxy(registry: DistributionRegistry) -> Iterator[RegistryProxy]:
    with RegistryProxy(registry.url) as served:
        yield served


def flags(server: str, tmp_path: Path) -> list[str]:
    password = tmp_path / "pw"
    password.write_text(USERS["builder"] + "\n")
    host = server.split("://")[1]
    return ["verify", "--server", server, "--username", "builder", "--password-file", str(password),
            "--image-prefix", f"{host}/hubs/x-"]  # fmt: skip


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_hung_registry_ends_near_the_deadline_naming_what_was_pending(proxy: RegistryProxy, tmp_path: Path) -> None:
    proxy.inject("GET", "/v2/", Delay(4), times=10)
    start = time.monotonic()
    result = CliRunner().invoke(app, [*flags(proxy.url, tmp_path), "--deadline", "2"])
    elapsed = time.monotonic() - start
    assert result.exit_code == 1, result.stderr
    assert 1.5 < elapsed < 5, elapsed
    [line] = errors(result.stderr)
    assert "2 s deadline passed" in line and f"GET {proxy.url}/v2/ was pending" in line
    assert "Not checked: push credentials accepted" in line and "--deadline" in line
    assert "Traceback" not in result.stderr and USERS["builder"] not in result.stderr


def test_a_hung_token_answer_is_named_after_the_checks_already_made(proxy: RegistryProxy, tmp_path: Path) -> None:
    # The anonymous /v2/ answers; the authenticated one hangs: the message says what passed and what was left.
    proxy.inject("GET", "/v2/", Delay(4), times=10, after=1)
    result = CliRunner().invoke(app, [*flags(proxy.url, tmp_path), "--deadline", "2"])
    assert result.exit_code == 1, result.stderr
    [line] = errors(result.stderr)
    assert "Checked before: image_prefix matches the registry: pass; registry answers the v2 API: pass" in line
    assert "was pending: no answer in time" in line
    assert "Not checked: push credentials accepted, may push and pull under image_prefix" in line


def test_rate_limit_waits_are_visible_without_verbose(proxy: RegistryProxy, tmp_path: Path) -> None:
    proxy.inject("GET", "/v2/", Status(429, retry_after="1"))
    result = CliRunner().invoke(app, flags(proxy.url, tmp_path))
    assert result.exit_code == 0, result.stderr
    assert f"GET {proxy.url}/v2/: HTTP 429 (rate limited), attempt 1 of 5, next try in 1.0 s" in result.stderr
    assert "debug:" not in result.stderr


def test_a_rate_limit_wait_beyond_the_deadline_is_not_waited(proxy: RegistryProxy, tmp_path: Path) -> None:
    proxy.inject("GET", "/v2/", Status(429, retry_after="30"))
    start = time.monotonic()
    result = CliRunner().invoke(app, [*flags(proxy.url, tmp_path), "--deadline", "5"])
    assert result.exit_code == 1 and time.monotonic() - start < 4
    [line] = errors(result.stderr)
    assert "rate limited (HTTP 429) and asked for a wait of 30 s" in line


def _hub_values(server: str, host: str) -> dict[str, object]:
    creds = {"server": server, "username": "builder", "password": USERS["builder"]}
    return {"binderhub-service": {
        "enabled": True, "buildPodsRegistryCredentials": creds,
        "config": {"BinderHub": {"image_prefix": f"{host}/hubs/x-"},
                   "DockerRegistry": {"url": server, "username": "builder", "password": USERS["builder"]}},
    }, "jupyterhub": {"imagePullSecret": {"create": True, "registry": host, "username": "builder",
                                          "password": USERS["builder"]}}}  # fmt: skip


def test_fleet_reports_hubs_not_reached_by_the_deadline(
    proxy: RegistryProxy, registry: DistributionRegistry, tmp_path: Path
) -> None:
    """Two hubs, one at a time: the first hangs on its registry, the second's turn comes after the deadline."""
    folder = tmp_path / "c1"
    folder.mkdir()
    hubs = [("hung", "hung.example:5000"), ("late", registry.host)]
    entries = [{"name": name, "helm_chart": "basehub", "helm_chart_values_files": [f"{name}.values.yaml"]}
               for name, _ in hubs]  # fmt: skip
    (folder / "cluster.yaml").write_text(yaml.safe_dump({"name": "c1", "hubs": entries}))
    for name, host in hubs:
        server = f"http://{host}"
        (folder / f"{name}.values.yaml").write_text(yaml.safe_dump(_hub_values(server, host)))
    proxy.inject("GET", "/v2/", Delay(4), times=10)
    start = time.monotonic()
    result = CliRunner().invoke(app, ["verify", str(tmp_path), "--jobs", "1", "--deadline", "2", "--format", "json",
                                      "--registry-url", f"hung.example:5000={proxy.url}"])  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert time.monotonic() - start < 6
    report = json.loads(result.stdout)
    by_hub = {h["hub"]: h for h in report["hubs"]}
    assert by_hub["hung"]["result"] == "could-not-check"
    assert by_hub["hung"]["reason"].startswith("deadline passed: GET ") and "was pending" in by_hub["hung"]["reason"]
    assert by_hub["late"] == {**by_hub["late"], "result": "could-not-check",
                              "reason": "deadline passed: before this hub's turn came"}  # fmt: skip
    assert report["deadline_passed"] is True
    assert "the 2 s deadline passed with 2 hub(s) not (fully) checked" in result.stderr
    assert USERS["builder"] not in result.stderr + result.stdout


def test_the_rotation_proof_ends_at_its_deadline_naming_the_live_credential(proxy: RegistryProxy) -> None:
    """A hung registry after a rotation: the proof ends after --verify-timeout plus its last attempt's time, and the
    message still says which credential is live and where it was written."""
    import io

    from provision.console import Reporter
    from provision.errors import ProvisionError
    from provision.hubconfig import HubRegistry
    from provision.registries.base import Rotated
    from provision.verbs import rotate as rotation

    host = proxy.url.split("://")[1]
    reg = HubRegistry(kind="registry", server=proxy.url, username="builder", image_prefix=f"{host}/hubs/x-",
                      password=USERS["builder"])  # fmt: skip
    rotated = Rotated("the new token of robot x", "the registry's console", None)
    proxy.inject("GET", "/v2/", Delay(4), times=20)
    start = time.monotonic()
    with pytest.raises(ProvisionError) as info:
        rotation.prove(reg, rotated=rotated, delivered_to="the encrypted file enc-x.secret.values.yaml",
                       options=rotation.ProveOptions(settle=0.5, last_attempt=1.5),
                       reporter=Reporter(stream=io.StringIO()))  # fmt: skip
    assert 1.5 < time.monotonic() - start < 4.5
    text = str(info.value)
    assert "no answer in time" in text and "2 s deadline passed" in text and "was pending" in text
    assert "The new token of robot x is live" in text and "enc-x.secret.values.yaml" in text


SLOW_SOPS = '''#!{python}
"""The real sops, except that decrypting a file whose name holds "slow" first hangs (a key service not answering)."""
import os, sys, time
with open({pids!r}, "a") as log:
    log.write(f"{{os.getpid()}}\\n")
if any("slow" in arg for arg in sys.argv[1:]):
    time.sleep(15)
os.execv({binary!r}, [{binary!r}, *sys.argv[1:]])
'''


def test_fleet_stops_a_hung_sops_at_the_deadline(
    registry: DistributionRegistry, tmp_path: Path, age_keys: Any
) -> None:
    """A sops that hangs decrypting one hub's file is killed when the deadline passes: the run ends near it, that hub
    is "could not check" naming the file, the other hub (its file decrypted in time) is checked."""
    import os
    import sys

    from tests.realsops import encrypt_file, sops_binary, sops_env

    alice = age_keys[0]
    folder = tmp_path / "clusters" / "c1"
    folder.mkdir(parents=True)
    names = ["fast", "slow"]
    entries = [{"name": name, "helm_chart": "basehub",
                "helm_chart_values_files": [f"{name}.values.yaml", f"enc-{name}.secret.values.yaml"]}
               for name in names]  # fmt: skip
    (folder / "cluster.yaml").write_text(yaml.safe_dump({"name": "c1", "hubs": entries}))
    server = f"http://{registry.host}"
    for name in names:
        values: Any = _hub_values(server, registry.host)
        secret = {"binderhub-service": {"config": {"DockerRegistry": {"password": USERS["builder"]}},
                                        "buildPodsRegistryCredentials": {"password": USERS["builder"]}},
                  "jupyterhub": {"imagePullSecret": {"password": USERS["builder"]}}}  # fmt: skip
        del values["binderhub-service"]["config"]["DockerRegistry"]["password"]
        del values["binderhub-service"]["buildPodsRegistryCredentials"]["password"]
        del values["jupyterhub"]["imagePullSecret"]["password"]
        (folder / f"{name}.values.yaml").write_text(yaml.safe_dump(values))
        encrypt_file(folder / f"enc-{name}.secret.values.yaml", yaml.safe_dump(secret), [alice.recipient])
    wrapper, pids = tmp_path / "bin" / "sops", tmp_path / "bin" / "pids"
    wrapper.parent.mkdir()
    wrapper.write_text(SLOW_SOPS.format(python=sys.executable, binary=sops_binary(), pids=str(pids)))
    wrapper.chmod(0o755)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SOPS_")}
    env.update({k: v for k, v in sops_env(alice).items() if k.startswith(("SOPS_", "XDG_"))})
    env["SOPS_BIN"] = str(wrapper)

    start = time.monotonic()
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "clusters"), "--deadline", "3", "--format", "json"],
                                env=env)  # fmt: skip
    elapsed = time.monotonic() - start
    assert elapsed < 7, (elapsed, result.stderr)
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    by_hub = {h["hub"]: h for h in report["hubs"]}
    assert by_hub["fast"]["result"] == "pass", by_hub["fast"]
    assert by_hub["slow"]["result"] == "could-not-check"
    assert by_hub["slow"]["reason"] == "deadline passed while sops decrypted enc-slow.secret.values.yaml"
    assert report["deadline_passed"] is True
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the hung sops was stopped, not left behind
    assert USERS["builder"] not in result.stderr + result.stdout
