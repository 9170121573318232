"""Per-host request limits shared by concurrent checks: at most N requests in flight to one host, and 429 waits.

`provision verify` on a fleet checks many hubs at once, and many of them share a registry (quay.io, one Artifact
Registry region, Docker Hub). quay.io allows a few requests per second per client IP with small bursts
(../shared/facts/quay-api.md §9), so the number of requests in flight is bounded per host, across all hubs, by one
`HostLimiter` handed to every client. A 429 is waited out (its Retry-After, bounded) with the slot released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

DEFAULT_PER_HOST = 4
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is capped (a nightly run must end)
DEFAULT_WAIT = 1.0  # seconds, doubled per attempt, when a 429 carries no Retry-After (nginx sends none)
MAX_429_ATTEMPTS = 5


class SlotTimeout(TimeoutError):
    """No request slot for the host came free in time."""


def host_key(url: str) -> str:
    """`https://quay.io/v2/` → `quay.io`; the port stays (`127.0.0.1:5000`): it is another server."""
    return urlsplit(url).netloc.lower() or url


def retry_after_seconds(value: str | None, *, attempt: int, now: float | None = None) -> float:
    """How long to wait before attempt `attempt + 1` after a 429: Retry-After (seconds or an HTTP date), else
    exponential from DEFAULT_WAIT; capped at MAX_RETRY_AFTER. Pure apart from the clock for dates."""
    wait: float | None = None
    if value:
        value = value.strip()
        if value.isdigit():
            wait = float(value)
        else:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                wait = None
            else:
                wait = max(0.0, when.timestamp() - (time.time() if now is None else now))
    if wait is None:
        wait = DEFAULT_WAIT * 2**attempt
    return min(wait, MAX_RETRY_AFTER)


class HostLimiter:
    """A semaphore per host, created on first use; records the peak number of requests in flight per host."""

    def __init__(self, per_host: int = DEFAULT_PER_HOST) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.waits_429: dict[str, int] = {}

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._slots:
                self._slots[host] = threading.BoundedSemaphore(self.per_host)
            return self._slots[host]

    @contextmanager
    def request(self, url: str, *, timeout: float | None = None) -> Iterator[None]:
        """Hold one of the host's slots while the request runs. Raises TimeoutError when no slot came free within
        `timeout` seconds (None: wait as long as it takes)."""
        host = host_key(url)
        slot = self._slot(host)
        if not slot.acquire(timeout=timeout):
            raise SlotTimeout(f"no free request slot for {host}")
        try:
            with self._lock:
                self._in_flight[host] = self._in_flight.get(host, 0) + 1
                self.peak[host] = max(self.peak.get(host, 0), self._in_flight[host])
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight[host] -= 1
        finally:
            slot.release()

    def note_429(self, url: str) -> None:
        host = host_key(url)
        with self._lock:
            self.waits_429[host] = self.waits_429.get(host, 0) + 1
