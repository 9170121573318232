"""Which secret values a sops file would leave in plaintext: judged before any remote write, checked after.

sops encrypts a value only when its file's selector says so (facts/sops.md §4): `encrypted_regex` (any key on the
value's path matches), `unencrypted_regex`, `encrypted_suffix`, `unencrypted_suffix` (the default, `_unencrypted`)
or the comment regexes. A repository whose rule was written for Kubernetes Secrets (`^(data|stringData)$`) would
store a registry password in clear text in a file meant for git: provision refuses instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SELECTORS = (
    "encrypted_regex", "unencrypted_regex", "encrypted_suffix", "unencrypted_suffix",
    "encrypted_comment_regex", "unencrypted_comment_regex",
)  # fmt: skip
DEFAULT = ("unencrypted_suffix", "_unencrypted")  # sops's choice when a file or rule names none

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Selector:
    """The one selector a sops file (its `sops:` metadata) or creation rule uses; `name` is one of SELECTORS."""

    name: str
    value: str

    def describe(self) -> str:
        return f"{self.name}: {self.value!r}"

    def encrypts(self, path: KeyPath) -> bool | None:
        """Whether sops encrypts the value at `path` (sops.go `shouldBeEncrypted`); None when it cannot be told
        (a Go regexp Python does not read): the ciphertext check after writing still applies."""
        if self.name.endswith("_suffix"):
            hit = any(key.endswith(self.value) for key in path)
        elif self.name.endswith("_comment_regex"):
            # The values provision writes carry no comment: only `unencrypted_comment_regex` leaves them encrypted.
            return self.name == "unencrypted_comment_regex"
        else:
            try:
                pattern = re.compile(self.value)
            except re.error:
                return None
            hit = any(pattern.search(key) for key in path)
        return hit if self.name.startswith("encrypted") else not hit


def selector_of(settings: Mapping[str, Any] | None) -> Selector:
    """The selector named in a file's `sops:` metadata or in a creation rule (sops's default when none is)."""
    for name in SELECTORS:
        value = (settings or {}).get(name)
        if isinstance(value, str) and value:
            return Selector(name, value)
    return Selector(*DEFAULT)


def leaf_paths(doc: Mapping[str, Any], prefix: KeyPath = ()) -> list[KeyPath]:
    """The key path of every non-mapping value in `doc` (the values sops encrypts one by one)."""
    paths: list[KeyPath] = []
    for key, value in doc.items():
        path = (*prefix, str(key))
        paths += leaf_paths(value, path) if isinstance(value, Mapping) else [path]
    return paths


def secret_paths(doc: Mapping[str, Any]) -> list[KeyPath]:
    """The paths of the credentials provision writes (every one is a `password`: registry, build pods, pull
    secrets); the usernames and server names beside them are not secret and a selector may leave them readable."""
    return [path for path in leaf_paths(doc) if path[-1] == "password"]


def left_in_plaintext(selector: Selector, paths: Iterable[KeyPath]) -> list[KeyPath]:
    """The paths `selector` would not encrypt (unknown verdicts are left to the ciphertext check)."""
    return [path for path in paths if selector.encrypts(path) is False]


def plaintext_in(ciphertext_doc: Any, paths: Sequence[KeyPath]) -> list[KeyPath]:
    """The paths whose value in an encrypted document is not sops ciphertext (`ENC[...]`)."""
    found: list[KeyPath] = []
    for path in paths:
        node = ciphertext_doc
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None and not (isinstance(node, str) and node.startswith("ENC[")):
            found.append(path)
    return found


def dotted(paths: Iterable[KeyPath]) -> str:
    return ", ".join(".".join(path) for path in paths)


FIX_HINT = (
    "make the selector cover these keys, e.g. encrypted_regex: '^(data|stringData|password|.*[Ss]ecret.*)$', or "
    "remove the selector so that sops encrypts every value"
)
