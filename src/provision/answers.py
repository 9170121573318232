"""Reading a server's answer into our models: an answer that is not what the API returns is the server's fault,
said as such (which server, which call, what was wrong), never "a bug in provision"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from provision.errors import ProvisionError

T = TypeVar("T")


class MalformedAnswer(ProvisionError):
    """A 2xx answer whose body is not the JSON object, fields or types the API documents."""


def what_is_wrong(body: Any, exc: BaseException) -> str:
    if isinstance(body, (str, bytes)) or body is None:
        start = (body or "")[:40] if isinstance(body, str) else ""
        return "not JSON" + (f" (it starts with {start!r})" if start.strip() else "")
    if not isinstance(body, dict):
        return f"a JSON {type(body).__name__} where an object was expected"
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    return f"a field is not of the type the API documents ({exc})"


def parse(build: Callable[[Any], T], body: Any, *, server: str, call: str) -> T:
    """`build(body)`, or MalformedAnswer naming the server, the call and what was wrong with the body."""
    try:
        if not isinstance(body, dict):
            raise TypeError("not an object")
        return build(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedAnswer(
            f"{server} answered {call} with something its API does not return: {what_is_wrong(body, exc)}; nothing "
            "was taken from it. Check that --api-url names the right server (a proxy or a login page may answer "
            "instead)"
        ) from None


def secret_text(value: Any, *, field: str) -> str:
    """A token or password from a server: text without control characters (it goes into YAML, files and headers),
    else TypeError (parse turns it into MalformedAnswer)."""
    if not isinstance(value, str) or not value or not value.isprintable() or value != value.strip():
        raise TypeError(f"{field} is not a printable string")
    return value
