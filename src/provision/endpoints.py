"""Where credentials may travel: plain HTTP only to this machine, or when the user explicitly allows it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from provision.errors import UsageError


def is_loopback(host: str) -> bool:
    """Whether `host` (a URL's hostname, without port or brackets) names this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_cleartext(url: str, *, option: str, allow_http: bool) -> None:
    """Refuse an http:// URL to another machine unless allowed: the credentials would go over the network in clear
    text (a proxy or anyone on the path reads them). Raises UsageError before any request."""
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_http or is_loopback(parts.hostname or ""):
        return
    raise UsageError(
        f"{option} {url!r} is plain HTTP to another machine: the API credentials would cross the network "
        "unencrypted, so nothing was sent. Use https://, or pass --allow-http if the server is reached through a "
        "trusted tunnel and you accept that"
    )
