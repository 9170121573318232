"""A hub's sops secret file, read before any remote write: an existing one decrypted into memory (its recipients
kept for `sops set` later), a new one proven to have a creation rule with usable keys, and either refused when sops
would leave a password provision writes in plaintext (secretcheck)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import clusterrepo, secretcheck, sops
from provision.errors import UsageError, add_secrets_from
from provision.files import read_text


@dataclass(frozen=True)
class SecretState:
    """The secret file as read before any remote write: its ciphertext and its decrypted document (memory only).

    `encrypted`: an existing sops file, changed with `sops set` so it keeps its recipients; otherwise the file is
    new (or empty, or comments only) and is encrypted by the creation rule of `config`.
    """

    path: Path
    original: str | None
    doc: Any = field(repr=False)
    style: clusterrepo.Style
    encrypted: bool
    config: sops.ConfigChoice


# Encrypted, into memory, to prove a new file has a creation rule and usable keys before any remote write.
PROBE_DOCUMENT = "provision_preflight: creation rule check\n"


def read_secret(path: Path, client: sops.Sops, *, shape: dict[str, Any] | None = None) -> SecretState:
    """Decrypt an existing secret file into memory, or check that a new one has a creation rule. Raises SopsError.

    `shape`: the secret values provision will write (placeholders): refused (UsageError) when the file's selector,
    or the creation rule of a new file, would leave any of them in plaintext (secretcheck).
    """
    original = read_text(path)
    config = client.config_for(path)
    if original is None or clusterrepo.no_data(original):
        # A probe through the real sops and the rule that will apply: its ciphertext shows what it encrypts.
        probe = clusterrepo.dump_after(None, shape, clusterrepo.load("", path=path)[1]) if shape else PROBE_DOCUMENT
        ciphertext = client.encrypt(probe, filename=path, secrets=None)
        if shape:
            left = secretcheck.plaintext_in(plain_load(ciphertext), secretcheck.secret_paths(shape))
            _refuse_plaintext(path, left, f"the creation rule of {config.describe()} ({_rule_selector(path, config)})")
        doc, style = clusterrepo.load(original or "", path=path)
        return SecretState(path, original, doc, style, encrypted=False, config=config)
    if shape:
        selector = secretcheck.selector_of(plain_load(original).get("sops") if original else None)
        left = secretcheck.left_in_plaintext(selector, secretcheck.secret_paths(shape))
        _refuse_plaintext(path, left, f"its own sops metadata ({selector.describe()})")
    # Nested secrets (OAuth client secrets ...) stay: the merge is deep, unlike the deployer's top-level update.
    doc, style = clusterrepo.load(client.decrypt(path), path=path)
    add_secrets_from(doc)  # from here on, no message may show them
    return SecretState(path, original, doc, style, encrypted=True, config=config)


def plain_load(text: str) -> Any:
    """A YAML document as plain dicts (a sops file's ciphertext and metadata: nothing secret in it)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe", pure=True).load(text.lstrip("\ufeff"))
    except YAMLError:
        return {}  # not judged here: sops reports the file it cannot parse
    return doc if isinstance(doc, dict) else {}


def _rule_selector(path: Path, config: sops.ConfigChoice) -> str:
    """The selector of the first creation rule whose path_regex matches `path`, for the message (best effort: sops
    itself chose the rule; a Go regexp Python does not read is skipped)."""
    import re

    rules = plain_load(read_text(config.path) or "").get("creation_rules") if config.path else None
    relative = str(path.absolute())
    if config.path is not None and relative.startswith(str(config.path.parent) + os.sep):
        relative = relative[len(str(config.path.parent)) + 1 :]
    for rule in rules if isinstance(rules, list) else []:
        try:
            if isinstance(rule, dict) and re.search(str(rule.get("path_regex") or ""), relative):
                return secretcheck.selector_of(rule).describe()
        except re.error:
            continue
    return "selector unknown"


def _refuse_plaintext(path: Path, left: list[secretcheck.KeyPath], rule: str) -> None:
    if left:
        raise UsageError(
            f"{path}: {rule} would leave {secretcheck.dotted(left)} in plaintext, in a file meant for git; nothing "
            f"was changed anywhere. {secretcheck.FIX_HINT[0].upper()}{secretcheck.FIX_HINT[1:]} (for an existing "
            "file the selector stored in it applies: decrypt it and encrypt it again under the fixed rule)"
        )
