"""The sops runner against a stand-in sops program at the subprocess boundary: argv table, round trip, failures.

The stand-in (tests/servers/sops_standin.py) is started by the product exactly as the real binary would be,
through a `bin/sops` launcher; nothing is monkeypatched. Every test also guards rule 7: plaintext stays off
disk, off argv and out of error messages.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.sops import Sops, SopsError, _stderr_tail, build_args, find_binary

STANDIN = Path(__file__).resolve().parent / "servers" / "sops_standin.py"
MARKER = "s3cr3t-MARKER-4b1d"
PRIVATE_KEY = json.dumps(
    {
        "type": "service_account",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{MARKER}-key\n-----END PRIVATE KEY-----\n",
        "client_email": "hub@project.iam.gserviceaccount.com",
    },
    indent=2,
)
DOC: dict[str, Any] = {
    "jupyterhub": {"hub": {"config": {"GenericOAuthenticator": {"client_secret": MARKER}}}},
    "binderhub-service": {
        "config": {"BinderHub": {"use_registry": True}},
        "buildPodsRegistryCredentials": {
            "server": "https://us-central1-docker.pkg.dev",
            "username": "_json_key",
            "password": PRIVATE_KEY,  # multi-line
        },
    },
    "replicas": 3,
    "ratio": 0.5,
    "nothing": None,
    "disabled": False,
    "items": [f"{MARKER}-item", 7],
    "note_unencrypted": "stays readable",
}
PLAINTEXT = yaml.safe_dump(DOC, sort_keys=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """`<tmp>/repo` with a `.sops.yaml` like 2i2c's (one `.*secret.*` rule) and a cluster directory."""
    root = tmp_path / "repo"
    (root / "config" / "clusters" / "c1").mkdir(parents=True)
    (root / ".sops.yaml").write_text("creation_rules:\n  - path_regex: '.*secret.*'\n    age: 'age1test'\n")
    return root


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "sops-calls.jsonl"


def secret_path(repo: Path) -> Path:
    return repo / "config" / "clusters" / "c1" / "enc-hub.secret.values.yaml"


def logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leaf_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() if not str(k).endswith("_unencrypted") for s in leaf_strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in leaf_strings(item)]
    return [node] if isinstance(node, str) else []


def enc(value: Any) -> str:
    """A value as the stand-in encodes it (to tamper with a file without breaking its format)."""
    kind = {str: "str", int: "int", bool: "bool", float: "float", type(None): "null"}[type(value)]
    return f"ENC[STANDIN,data:{base64.b64encode(json.dumps(value).encode()).decode()},type:{kind}]"


@pytest.mark.parametrize(
    ("command", "kwargs", "expected"),
    [
        ("decrypt", {"path": Path("/r/enc-a.secret.yaml")}, ["decrypt", "/r/enc-a.secret.yaml"]),
        # stdin mode: no file argument, the override names the target (sops >= 3.10)
        (
            "encrypt",
            {"filename_override": Path("/r/enc-a.secret.yaml")},
            ["encrypt", "--filename-override", "/r/enc-a.secret.yaml"],
        ),
    ],
)
def test_build_args(command: str, kwargs: dict[str, Path], expected: list[str]) -> None:
    args = build_args(command, **kwargs)
    assert args == expected
    assert not {"--in-place", "-i", "--output"} & set(args)


@pytest.mark.parametrize(
    ("command", "kwargs"),
    [("decrypt", {}), ("encrypt", {}), ("encrypt", {"path": Path("/x")}), ("edit", {"path": Path("/x")})],
)
def test_build_args_rejects_incomplete_or_unknown(command: str, kwargs: dict[str, Path]) -> None:
    with pytest.raises(ValueError):
        build_args(command, **kwargs)


def test_round_trip_from_outside_the_repository(sops_bin: str, repo: Path, log: Path) -> None:
    # The process runs elsewhere (pytest's cwd): .sops.yaml is found only because sops runs in the target's dir.
    assert not Path.cwd().resolve().is_relative_to(repo.resolve())
    target = secret_path(repo)
    sops = Sops(sops_bin, env={**os.environ, "SOPS_STANDIN_LOG": str(log)})

    ciphertext = sops.encrypt(PLAINTEXT, filename=target)

    for value in leaf_strings(DOC):
        assert value not in ciphertext
    assert MARKER not in ciphertext and "private_key" not in ciphertext
    encrypted = yaml.safe_load(ciphertext)
    assert encrypted["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]["client_secret"].startswith("ENC[")
    assert list(encrypted["binderhub-service"]["buildPodsRegistryCredentials"]) == ["server", "username", "password"]
    assert encrypted["note_unencrypted"] == "stays readable"
    assert "mac" in encrypted["sops"]
    assert logged(log)[0]["cwd"] == str(target.parent.resolve())

    target.write_text(ciphertext)
    plaintext = Sops(sops_bin).decrypt(target)  # default env: a copy of os.environ
    assert yaml.safe_load(plaintext) == DOC
    assert yaml.safe_load(plaintext)["binderhub-service"]["buildPodsRegistryCredentials"]["password"] == PRIVATE_KEY


def test_relative_binary_and_new_directory(sops_bin: str, repo: Path) -> None:
    # A relative binary path still works although sops runs in another directory, and a target in a
    # directory that does not exist yet still gets the repository's rules (lookup from its nearest ancestor).
    sops = Sops(os.path.relpath(sops_bin))
    target = repo / "config" / "clusters" / "c2" / "new" / "enc-hub.secret.values.yaml"
    ciphertext = sops.encrypt(PLAINTEXT, filename=target)
    assert "sops" in yaml.safe_load(ciphertext)
    assert not target.parent.exists()


def test_no_matching_creation_rule(sops_bin: str, repo: Path) -> None:
    target = repo / "config" / "clusters" / "c1" / "hub.values.yaml"  # not *secret*
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).encrypt(PLAINTEXT, filename=target)
    err = info.value
    assert err.returncode == 1
    assert f"sops found no creation rule for {target.resolve()}" in str(err)
    assert ".sops.yaml" in str(err) and str(target.parent.resolve()) in str(err)
    assert err.cmd[1:] == ["encrypt", "--filename-override", str(target.resolve())]


def test_no_sops_yaml_at_all(sops_bin: str, tmp_path: Path) -> None:
    ancestors = [tmp_path, *tmp_path.parents]
    assert not any((d / ".sops.yaml").exists() for d in ancestors), "a .sops.yaml above the tmp dir spoils this test"
    target = tmp_path / "elsewhere" / "enc-hub.secret.values.yaml"
    target.parent.mkdir()
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).encrypt(PLAINTEXT, filename=target)
    assert "no creation rule" in str(info.value) and ".sops.yaml" in str(info.value)
    assert "config file not found" in info.value.stderr_tail


def test_first_matching_rule_wins_and_unusable_key(sops_bin: str, repo: Path) -> None:
    (repo / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: '^config/clusters/c1/.*secret.*'\n    gcp_kms: projects/p/keys/k\n    standin_fail: true\n"
        "  - path_regex: '.*secret.*'\n    age: 'age1test'\n"
    )
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).encrypt(PLAINTEXT, filename=secret_path(repo))
    assert "sops could not encrypt" in str(info.value) and "key unusable?" in str(info.value)
    assert "Could not generate data key" in info.value.stderr_tail
    # The anchored rule only matches paths relative to the .sops.yaml directory; c2 falls through to rule 2.
    Sops(sops_bin).encrypt(PLAINTEXT, filename=repo / "config" / "clusters" / "c2" / "enc-x.secret.yaml")


def test_decrypt_with_the_wrong_key(sops_bin: str, repo: Path) -> None:
    target = secret_path(repo)
    target.write_text(Sops(sops_bin).encrypt(PLAINTEXT, filename=target))
    with pytest.raises(SopsError) as info:
        Sops(sops_bin, env={**os.environ, "SOPS_STANDIN_KEY": "someone-else"}).decrypt(target)
    err = info.value
    assert err.returncode == 128
    assert "no usable key" in str(err) and "Failed to get the data key" in str(err)
    assert "gcloud auth application-default login" in (err.hint or "")


def test_tampered_ciphertext_fails_the_mac(sops_bin: str, repo: Path) -> None:
    target = secret_path(repo)
    encrypted = yaml.safe_load(Sops(sops_bin).encrypt(PLAINTEXT, filename=target))
    encrypted["replicas"] = enc(4)  # well-formed, but not what the MAC covers
    target.write_text(yaml.safe_dump(encrypted, sort_keys=False))
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).decrypt(target)
    assert info.value.returncode == 51
    assert "MAC mismatch" in str(info.value) and "edited without sops" in str(info.value)


@pytest.mark.parametrize(
    ("content", "code", "expected"),
    [
        (None, 100, "does not exist"),
        (PLAINTEXT, 1, "no sops metadata"),  # a plaintext secrets file: fail closed
        ("a: [unclosed\n", 2, "not valid YAML"),
    ],
    ids=["missing", "plaintext", "invalid"],
)
def test_decrypt_other_failures(sops_bin: str, repo: Path, content: str | None, code: int, expected: str) -> None:
    target = secret_path(repo)
    if content is not None:
        target.write_text(content)
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).decrypt(target)
    assert info.value.returncode == code
    assert expected in str(info.value)


def test_missing_binary(tmp_path: Path, sops_bin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SopsError, match="sops not found") as info:
        find_binary(str(tmp_path / "nope" / "sops"))
    assert "install sops >= 3.10" in str(info.value) and "SOPS_BIN" in str(info.value)

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SopsError, match=r"sops not found \(sops on PATH\)"):
        find_binary(None)
    monkeypatch.setenv("PATH", str(Path(sops_bin).parent))
    assert find_binary(None) == sops_bin
    assert find_binary(sops_bin) == sops_bin

    not_executable = tmp_path / "sops-no-x"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(stat.S_IRUSR | stat.S_IWUSR)
    for binary in (str(tmp_path / "nope" / "sops"), str(not_executable)):
        with pytest.raises(SopsError) as info:
            Sops(binary).encrypt(PLAINTEXT, filename=tmp_path / "enc-x.secret.yaml")
        assert info.value.hint and "install sops" in info.value.hint
        assert MARKER not in str(info.value)


def test_no_plaintext_on_disk_and_only_supported_argv(sops_bin: str, repo: Path, tmp_path: Path, log: Path) -> None:
    before = snapshot(tmp_path)
    environ = dict(os.environ)
    target = secret_path(repo)
    sops = Sops(sops_bin, env={**os.environ, "SOPS_STANDIN_LOG": str(log)})

    ciphertext = sops.encrypt(PLAINTEXT, filename=target)
    target.write_text(ciphertext)  # the test's own write: the product writes nothing
    assert yaml.safe_load(sops.decrypt(target)) == DOC

    after = snapshot(tmp_path)
    assert set(after) - set(before) == {str(target.relative_to(tmp_path)), str(log.relative_to(tmp_path))}
    assert {name: after[name] for name in before} == before
    assert not [name for name, content in after.items() if MARKER.encode() in content]
    assert dict(os.environ) == environ  # the env override went to the child only

    calls = logged(log)
    assert [c["argv"] for c in calls] == [
        ["encrypt", "--filename-override", str(target.resolve())],
        ["decrypt", str(target.resolve())],
    ]
    assert [c["stdin_bytes"] for c in calls] == [len(PLAINTEXT.encode()), 0]
    assert all(c["cwd"] == str(target.parent.resolve()) for c in calls)


@pytest.mark.parametrize(
    ("plaintext", "rules", "code"),
    [
        (PLAINTEXT, None, 1),  # no creation rule: wrong file name below
        (PLAINTEXT, "  - standin_fail: true\n", 1),  # key unusable
        (f"token: {MARKER}\n  broken: [\n", None, 2),  # parse error: the stand-in quotes the line, like go-yaml can
        (PLAINTEXT + f"sops:\n  note: {MARKER}\n", None, 203),  # already encrypted
        ("# nothing\n", None, 92),
    ],
    ids=["no-rule", "key-unusable", "parse-error", "already-encrypted", "empty"],
)
def test_errors_never_contain_plaintext(
    sops_bin: str, repo: Path, plaintext: str, rules: str | None, code: int
) -> None:
    if rules:
        (repo / ".sops.yaml").write_text("creation_rules:\n" + rules)
    name = "hub.values.yaml" if code == 1 and not rules else "enc-hub.secret.values.yaml"
    with pytest.raises(SopsError) as info:
        Sops(sops_bin).encrypt(plaintext, filename=repo / "config" / "clusters" / "c1" / name)
    err = info.value
    assert err.returncode == code
    for text in (str(err), err.stderr_tail, " ".join(err.cmd), repr(err.args)):
        assert MARKER not in text
    assert err.__cause__ is None and err.__context__ is None


def test_stderr_tail_withholds_lines_quoting_values() -> None:
    stderr = "\nfirst\nsecond\n  line 2: cannot unmarshal !!str `hunter2-pass` into int\nlast words\n\n"
    assert _stderr_tail(stderr) == "second line 2: cannot unmarshal !!str `hunter2-pass` into int last words"
    tail = _stderr_tail(stderr, plaintext="db:\n  password: 'hunter2-pass'\n")
    assert "hunter2" not in tail
    assert tail == "first second last words (1 stderr line(s) withheld: they quote the input)"


def test_standin_refuses_other_forms(repo: Path) -> None:
    # The stand-in implements only the product's two forms; anything else fails like a sops usage error.
    for argv in (["-d", "x.yaml"], ["encrypt", "--in-place", "x.yaml"], ["encrypt", "x.yaml"]):
        proc = subprocess.run(
            [sys.executable, str(STANDIN), *argv], cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert proc.returncode == 8 and proc.stderr.startswith("Error:")
