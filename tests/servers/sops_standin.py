"""A stand-in `sops` program (sops 3.10+ behaviour) for tests: ``python sops_standin.py ARGS``.

No real sops binary can be installed here, so tests put this program at the subprocess boundary (through a
``bin/sops`` launcher) and the product runs it exactly as it runs sops: same argv, pipes, working directory and
environment. Nothing in the product is mocked. It reproduces what ``provision.sops`` relies on
(../../shared/facts/sops.md):

- only ``decrypt FILE`` and ``encrypt --filename-override PATH`` (plaintext on stdin); any other argv is
  refused with exit 8, which proves the product uses no other form;
- ``.sops.yaml`` looked up from the *working directory* upwards (at most 100 levels), creation rules tried in
  order, first match wins, ``path_regex`` searched (unanchored) in the override's absolute path with the config
  directory prefix removed; the error messages and exit codes of facts §3 (1, 2, 51, 92, 100, 128, 203);
- key names stay readable and only scalar values are "encrypted" (keys ending in ``_unencrypted`` stay plain),
  with a ``sops:`` metadata mapping holding a MAC.

The "encryption" is a reversible encoding, not cryptography: ``ENC[STANDIN,data:<base64 of JSON>,type:...]``.
``sops.standin_key`` must equal ``$SOPS_STANDIN_KEY`` (default ``test-key``) to decrypt. A creation rule with
``standin_fail: true`` simulates an unusable key. If ``$SOPS_STANDIN_LOG`` is set, every invocation appends
one JSON line ``{"argv", "cwd", "stdin_bytes"}`` to it (never the stdin content).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

VERSION = "3.10.2-standin"
DEFAULT_KEY = "test-key"
MAX_DEPTH = 100
ENC = re.compile(r"^ENC\[STANDIN,data:([A-Za-z0-9+/=]*),type:(str|int|float|bool|null)\]$")
TYPES: dict[type, str] = {str: "str", int: "int", float: "float", bool: "bool", type(None): "null"}


class Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def getwd() -> str:
    """Like Go's os.Getwd: $PWD when it names the working directory, else the physical path."""
    pwd = os.environ.get("PWD")
    if pwd and os.path.isabs(pwd):
        try:
            if os.path.samefile(pwd, "."):
                return pwd
        except OSError:
            pass
    return os.getcwd()


def canonical_mac(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def encrypt_value(value: Any) -> str:
    if isinstance(value, datetime.date):  # sops keeps YAML timestamps as strings
        value = value.isoformat()
    kind = TYPES.get(type(value))
    if kind is None:
        raise Fail(2, f"Error unmarshalling input yaml: unsupported value type {type(value).__name__}")
    data = base64.b64encode(json.dumps(value, ensure_ascii=False).encode()).decode()
    return f"ENC[STANDIN,data:{data},type:{kind}]"


def decrypt_value(value: Any) -> Any:
    match = ENC.match(value) if isinstance(value, str) else None
    if not match:
        raise Fail(25, "Error decrypting tree: value is not an ENC[...] string")
    decoded = json.loads(base64.b64decode(match.group(1)))
    if TYPES.get(type(decoded)) != match.group(2):
        raise Fail(25, "Error decrypting tree: type mismatch")
    return decoded


def transform(node: Any, leaf: Any) -> Any:
    """Apply `leaf` to every scalar, keeping keys; subtrees under a key ending in _unencrypted stay as they are."""
    if isinstance(node, dict):
        return {k: (v if str(k).endswith("_unencrypted") else transform(v, leaf)) for k, v in node.items()}
    if isinstance(node, list):
        return [transform(item, leaf) for item in node]
    return leaf(node)


def plain_for_mac(node: Any) -> Any:
    """The document as JSON would carry it (timestamps as the strings they decrypt to)."""
    return transform(node, lambda v: v.isoformat() if isinstance(v, datetime.date) else v)


def load_yaml(text: str, what: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML quotes the offending line: a harsher case than go-yaml, useful to test redaction.
        raise Fail(2, f"Error unmarshalling {what}: {exc}") from None


def find_config(start: str) -> Path | None:
    directory = start
    for _ in range(MAX_DEPTH):
        candidate = Path(directory, ".sops.yaml")
        if candidate.is_file():
            return candidate
        directory = os.path.normpath(os.path.join(directory, ".."))
    return None


def creation_rule(filename: str) -> dict[str, Any]:
    wd = getwd()
    target = os.path.normpath(os.path.join(wd, filename))
    no_rules = Fail(
        1, "config file not found, or has no creation rules, and no keys provided through command line options"
    )
    config_path = find_config(wd)
    if config_path is None:
        raise no_rules
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise Fail(1, f"error loading config: {exc}") from None
    rules = config.get("creation_rules") if isinstance(config, dict) else None
    if not rules:
        raise no_rules
    prefix = os.path.abspath(config_path.parent) + os.sep
    relative = target.removeprefix(prefix)
    for rule in rules:
        regex = rule.get("path_regex") or ""
        try:
            if not regex or re.search(regex, relative):
                return dict(rule)
        except re.error as exc:
            raise Fail(1, f"can not compile regexp: {exc}") from None
    raise Fail(1, "error loading config: no matching creation rules found")


def encrypt(filename: str, stdin: str) -> str:
    if not stdin.strip():
        raise Fail(92, "Error: the input document is empty: need at least one document")
    document = load_yaml(stdin, "input yaml")
    if document is None:
        raise Fail(92, "Error: the input document is empty: need at least one document")
    if not isinstance(document, dict):
        raise Fail(2, "Error unmarshalling input yaml: the document is not a mapping")
    if "sops" in document:
        raise Fail(203, "Error: file already encrypted")
    rule = creation_rule(filename)
    if rule.get("standin_fail"):
        raise Fail(1, "Could not generate data key: [failed to encrypt new data key with master key: standin_fail]")
    encrypted = transform(document, encrypt_value)
    encrypted["sops"] = {
        "standin_key": os.environ.get("SOPS_STANDIN_KEY", DEFAULT_KEY),
        "mac": canonical_mac(plain_for_mac(document)),
        "lastmodified": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "unencrypted_suffix": "_unencrypted",
        "version": VERSION,
    }
    return yaml.safe_dump(encrypted, sort_keys=False, allow_unicode=True)


def decrypt(filename: str) -> str:
    path = Path(getwd(), filename)
    if not path.is_file():
        raise Fail(100, "Error: cannot operate on non-existent file")
    document = load_yaml(path.read_text(), "file")
    if not isinstance(document, dict) or not isinstance(document.get("sops"), dict):
        raise Fail(1, "Error unmarshalling file: sops metadata not found")
    metadata = document.pop("sops")
    if metadata.get("standin_key") != os.environ.get("SOPS_STANDIN_KEY", DEFAULT_KEY):
        raise Fail(128, "Failed to get the data key required to decrypt the SOPS file.")
    plain = transform(document, decrypt_value)
    mac = canonical_mac(plain)
    if metadata.get("mac") != mac:
        raise Fail(51, f"MAC mismatch. File has {metadata.get('mac')}, computed {mac}")
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def main(argv: list[str]) -> int:
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read().decode()
    log_path = os.environ.get("SOPS_STANDIN_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            entry = {"argv": argv, "cwd": getwd(), "stdin_bytes": len(stdin.encode())}
            log.write(json.dumps(entry) + "\n")
    try:
        if len(argv) == 2 and argv[0] == "decrypt" and not argv[1].startswith("-"):
            output = decrypt(argv[1])
        elif len(argv) == 3 and argv[:2] == ["encrypt", "--filename-override"]:
            output = encrypt(argv[2], stdin)
        else:
            raise Fail(8, f"Error: unsupported in the sops stand-in: {argv}")
    except Fail as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.code
    sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
