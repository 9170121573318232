"""sops runner: encrypt/decrypt YAML through pipes to the sops binary, plaintext kept in memory; SopsError.

Facts in ../shared/facts/sops.md. Encryption reads stdin (`sops encrypt --filename-override PATH`, sops >= 3.10),
so plaintext never touches disk: no temporary files, no `--in-place`, no `--output`. sops looks `.sops.yaml` up
from its *working directory* upwards (not from the file's location), so every call runs in the target file's
directory: the repository's creation rules apply wherever provision itself was started.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from provision.errors import ProvisionError

log = logging.getLogger(__name__)

INSTALL_HINT = "install sops >= 3.10 (https://github.com/getsops/sops/releases) or set SOPS_BIN"
KEY_HINT = (
    "make sure you have credentials for one of the keys the file was encrypted with: for GCP KMS run "
    "`gcloud auth application-default login` with an account allowed to use the key; for age set "
    "SOPS_AGE_KEY_FILE to a file holding the private key"
)
# Shortest plaintext value whose appearance in a stderr line withholds that line (see _stderr_tail).
MIN_QUOTED_VALUE = 4


class SopsError(ProvisionError):
    """A sops command failed: carries its argv (paths only, never plaintext), exit code and the tail of stderr."""

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str] = (),
        returncode: int | None = None,
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        if stderr_tail:
            message = f"{message.rstrip('.')}: {stderr_tail}"
        super().__init__(message, hint=hint)
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


def find_binary(explicit: str | None) -> str:
    """The sops binary to run: `explicit` (the CLI resolves SOPS_BIN into it), else `sops` on PATH.

    Returns an absolute path when the binary was given as a relative path: calls run in another directory.
    Raises SopsError with an install hint when it is not found or not executable.
    """
    found = shutil.which(explicit or "sops")
    if not found:
        wanted = explicit or "sops on PATH"
        raise SopsError(f"sops not found ({wanted})", hint=INSTALL_HINT)
    return os.path.abspath(found) if os.sep in found else found


def build_args(command: str, *, path: Path | None = None, filename_override: Path | None = None) -> list[str]:
    """Arguments after the binary for one command. Pure; raises ValueError for an unknown or incomplete command.

    `decrypt` takes the encrypted file; `encrypt` reads the plaintext from stdin and needs the path the
    ciphertext will be written to, for the creation rule lookup and the format (sops >= 3.10).
    """
    # Callers pass absolute paths, so a path can never be taken for a flag.
    if command == "decrypt":
        if path is None:
            raise ValueError("decrypt needs path")
        return ["decrypt", str(path)]
    if command == "encrypt":
        if filename_override is None:
            raise ValueError("encrypt needs filename_override")
        return ["encrypt", "--filename-override", str(filename_override)]
    raise ValueError(f"unknown sops command {command!r}")


def _existing_dir(path: Path) -> Path:
    """The directory of `path`, or its nearest existing ancestor (a new file may go into a new directory).

    Starting the `.sops.yaml` lookup there is equivalent: a directory that does not exist holds no config.
    """
    directory = path.parent
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    return directory


def _quoted_values(plaintext: str) -> set[str]:
    """Value-like fragments of a YAML text (what follows `key:` or `- `, or a whole line), for _stderr_tail."""
    fragments: set[str] = set()
    for line in plaintext.splitlines():
        text = line.strip()
        if ": " in text:
            text = text.split(": ", 1)[1]
        text = text.removeprefix("- ").strip().strip("'\"")
        if len(text) >= MIN_QUOTED_VALUE:
            fragments.add(text)
    return fragments


def _stderr_tail(stderr: str, *, plaintext: str | None = None) -> str:
    """The last 3 non-empty lines of stderr, joined; lines quoting a plaintext value are withheld (fail closed).

    sops normally names no values, but YAML parse errors can quote the input they choke on.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    withheld = 0
    if plaintext:
        values = _quoted_values(plaintext)
        kept = [line for line in lines if not any(value in line for value in values)]
        withheld, lines = len(lines) - len(kept), kept
    tail = " ".join(lines[-3:])
    if withheld:
        tail = f"{tail} ({withheld} stderr line(s) withheld: they quote the input)".strip()
    return tail


def _failure(command: str, code: int, stderr: str, *, target: Path, cwd: Path) -> tuple[str, str | None]:
    """(message, hint) for a non-zero exit of `sops <command>` on `target`, from facts §3."""
    if command == "encrypt":
        if code == 1 and ("no matching creation rules" in stderr or "config file not found" in stderr):
            return (
                f"sops found no creation rule for {target}",
                f"add a creation rule matching this path to .sops.yaml (sops looks it up from {cwd} upwards)",
            )
        if code == 1:
            return (
                f"sops could not encrypt {target} (key unusable? the key of the matching .sops.yaml creation rule "
                "could not be used)",
                "check that you can use that key: for GCP KMS run `gcloud auth application-default login` with an "
                "account allowed to encrypt with it",
            )
        if code == 203:
            return (
                f"sops refused to encrypt {target}: the input is already encrypted (it has sops metadata)",
                "pass decrypted values to encrypt",
            )
        if code == 100:
            # sops 3.9 has the `encrypt` subcommand but no stdin mode: it asks for a file instead.
            return f"sops encrypt found no input for {target} (it cannot read stdin before 3.10)", INSTALL_HINT
        if code == 8:
            return f"sops rejected the encrypt arguments for {target} (older than 3.10?)", INSTALL_HINT
        if code == 2:
            return f"sops could not parse the YAML to encrypt into {target}", None
        if code == 92:
            return f"sops refused to encrypt an empty document into {target}", None
    else:
        if code == 128:
            return f"cannot decrypt {target}: no usable key (Failed to get the data key)", KEY_HINT
        if code == 51:
            return (
                f"cannot decrypt {target}: MAC mismatch, the file is corrupted or was edited without sops",
                f"restore it from git (git checkout -- {target}) or re-create its secrets",
            )
        if code == 100:
            return f"cannot decrypt {target}: the file does not exist", None
        if code == 2:
            return f"cannot decrypt {target}: it is not valid YAML", None
        if code == 1 and "metadata not found" in stderr:
            # Fail closed, like 2i2c's get_decrypted_file: a secrets file in plaintext may have been committed.
            return (
                f"cannot decrypt {target}: it has no sops metadata (not encrypted)",
                "if this file was committed in plaintext, rotate the secrets it contains, then encrypt it with sops",
            )
    return f"sops {command} failed with exit code {code}", None


class Sops:
    """Runs one sops binary; every call runs in the target file's directory so `.sops.yaml` is found from there."""

    def __init__(self, binary: str, *, env: Mapping[str, str] | None = None) -> None:
        # A relative binary path would be resolved against the child's (changed) working directory.
        self.binary = os.path.abspath(binary) if os.sep in binary else binary
        # A copy: the process environment is never modified.
        self.env = dict(os.environ if env is None else env)

    def display(self, args: Sequence[str]) -> str:
        return shlex.join(["sops", *args])

    def _run(self, command: str, args: list[str], *, target: Path, plaintext: str | None = None) -> str:
        """Run sops in the target's directory; returns its stdout. Raises SopsError on any failure."""
        argv = [self.binary, *args]
        cwd = _existing_dir(target)
        # Go's os.Getwd trusts $PWD when it names the working directory: keep it consistent with cwd.
        env = {**self.env, "PWD": str(cwd)}
        log.debug("run %s (in %s)", self.display(args), cwd)
        try:
            proc = subprocess.run(
                argv, input=plaintext, stdin=subprocess.DEVNULL if plaintext is None else None,
                capture_output=True, text=True, encoding="utf-8", cwd=cwd, env=env, check=False,
            )  # fmt: skip
        except UnicodeError:
            # `from None`: the exception object holds the undecodable bytes, which may be plaintext.
            raise SopsError(f"`{self.display(args[:1])}` exchanged text that is not UTF-8", cmd=argv) from None
        except OSError as exc:
            raise SopsError(f"cannot run {self.binary} ({exc.strerror or exc})", cmd=argv, hint=INSTALL_HINT) from None
        if proc.returncode != 0:
            message, hint = _failure(command, proc.returncode, proc.stderr, target=target, cwd=cwd)
            # A parse error on encrypt is the one place sops quotes its input: no tail at all then.
            quotes_input = command == "encrypt" and proc.returncode == 2
            tail = "" if quotes_input else _stderr_tail(proc.stderr, plaintext=plaintext)
            raise SopsError(message, cmd=argv, returncode=proc.returncode, stderr_tail=tail, hint=hint)
        return proc.stdout

    def decrypt(self, path: Path) -> str:
        """The plaintext YAML of the sops-encrypted file `path`, in memory only. Raises SopsError."""
        target = path.resolve()
        return self._run("decrypt", build_args("decrypt", path=target), target=target)

    def encrypt(self, plaintext: str, *, filename: Path) -> str:
        """The ciphertext sops prints for `plaintext` as the future content of `filename`. Raises SopsError.

        `filename` picks the `.sops.yaml` creation rule (and the format); nothing is written to it here.
        """
        # Resolved, like the working directory sops sees, so that sops's "path relative to the .sops.yaml
        # directory" prefix stripping also works through symlinked directories (/tmp on macOS).
        target = filename.resolve()
        return self._run("encrypt", build_args("encrypt", filename_override=target), target=target, plaintext=plaintext)


# --- removing keys (provision remove): additive to the runner above -------------------------------------------


def build_unset_args(path: Path, keys: Sequence[str]) -> list[str]:
    """Arguments after the binary for `sops unset --idempotent FILE INDEX`. Pure.

    `keys` is the path of the value to remove, e.g. ("jupyterhub", "imagePullSecret"); sops takes it as a JSON-ish
    index `["jupyterhub"]["imagePullSecret"]`. --idempotent: a key already gone is not an error (resumed runs).
    """
    import json

    if not keys:
        raise ValueError("unset needs at least one key")
    index = "".join(f"[{json.dumps(str(key))}]" for key in keys)
    return ["unset", "--idempotent", str(path), index]


def unset_keys(client: Sops, path: Path, key_paths: Sequence[Sequence[str]]) -> None:
    """Remove values (whole branches) from the sops-encrypted file `path`, keeping its recipients and metadata.

    `sops unset` re-encrypts with the file's own data key and `sops:` metadata (unlike `encrypt`, which takes the
    recipients from the creation rule), so every recipient keeps access. It rewrites its file in place and not
    atomically, so it runs on a copy beside the file (same directory, same `.yaml` type, same mode) that replaces
    the file in one rename at the end: an interrupted call leaves the file as it was. Nothing is decrypted to disk.
    Raises SopsError (the file unchanged); OSError when the copy cannot be written.
    """
    import shutil as _shutil
    import tempfile

    target = path.resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".yaml", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        original = target.read_bytes()
        tmp.write_bytes(original)
        _shutil.copymode(target, tmp)
        for keys in key_paths:
            client._run("unset", build_unset_args(tmp, keys), target=target)
        if target.read_bytes() != original:
            # Another run wrote the file meanwhile: replacing it would lose that run's work.
            raise SopsError(
                f"{target} changed while its keys were being removed; it was left as the other writer made it",
                hint="re-run the same command",
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
