"""Reading merged values without decrypting them: `ENC[...]` values, placeholders, credentials left in plaintext."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

ENC = re.compile(r"ENC\[[A-Z0-9_]+,data:.*,type:(\w+)\]", re.S)
# A stand-in such as `<set-in-encrypted-values>`, meant to be overridden by an encrypted file (projectpythia).
PLACEHOLDER = re.compile(r"<[^<>\n]*>")
# A value that names where the secret comes from instead of holding it: `{env:OPENAI_API_KEY}` (jupyter-ai and
# opencode settings on 2i2c hubs) or `${OPENAI_API_KEY}`: read from the environment at run time.
ENV_REFERENCE = re.compile(r"\$?\{(?:env:)?[A-Za-z_][A-Za-z0-9_]*\}")
# Key names (lower-case, without `_` and `-`) whose values are credentials. "password" also matches any name ending
# in it (adminPassword). Bare "token" is left out: too many non-secret keys use it.
SECRET_NAMES = frozenset(
    {
        "password",
        "apitoken",
        "clientsecret",
        "secrettoken",
        "cookiesecret",
        "secretkey",
        "secretaccesskey",
        "accesstoken",
        "privatekey",
        "apikey",
    }
)


def has(doc: Any, keys: Sequence[str]) -> bool:
    for key in keys:
        if not isinstance(doc, Mapping) or key not in doc:
            return False
        doc = doc[key]
    return True


def enc_type(value: Any) -> str | None:
    """The type sops recorded for an encrypted value (str, int, bool...), or None for a plaintext value."""
    match = ENC.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def text(value: Any) -> str | None:
    """A readable, non-empty, non-placeholder string; None for anything else (including encrypted values)."""
    if not isinstance(value, str) or enc_type(value) is not None:
        return None
    value = value.strip()
    return value if value and not PLACEHOLDER.fullmatch(value) else None


def string_problem(value: Any) -> str | None:
    """Why `value` is not a usable string (missing, a placeholder, another type), or None when it is one."""
    enc = enc_type(value)
    if enc is not None:
        return None if enc == "str" else f"is not a string (sops recorded type {enc})"
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is missing"
    if isinstance(value, str):
        return "is still a placeholder" if PLACEHOLDER.fullmatch(value.strip()) else None
    return f"is not a string (a {type(value).__name__})"


def _secret_name(key: Any) -> bool:
    name = re.sub(r"[_-]", "", str(key).lower())
    return name in SECRET_NAMES or name.endswith("password")


def plaintext_secrets(doc: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of credential-named keys whose value is readable (not ENC[...], not empty, not a placeholder)."""
    items: Any = doc.items() if isinstance(doc, Mapping) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(doc, list) else f"{path}.{key}" if path else str(key)
        if isinstance(value, (Mapping, list)):
            yield from plaintext_secrets(value, where)
        elif not isinstance(doc, list) and _secret_name(key):
            readable = text(value)
            if readable is not None and ENV_REFERENCE.fullmatch(readable):
                continue
            if readable is not None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                yield where
