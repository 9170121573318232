"""The retry loop every HTTP API client uses: urllib3's Retry is the policy (counts, exponential backoff with
jitter, Retry-After), and a write is re-sent only after reading the state again shows it did not land."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

T = TypeVar("T")
# 429 comes from a rate limiter in front of the app; 5xx may or may not have reached it.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Unreachable(Exception):
    """Every attempt failed before an HTTP answer arrived; callers turn it into their own error type."""

    def __init__(self, error: Exception, attempts: int) -> None:
        super().__init__(f"{type(error).__name__} after {attempts} attempts")
        self.error = error
        self.attempts = attempts


def default_retry() -> Retry:
    """5 retries, exponential backoff (0.5 s doubling, capped at 30 s) with jitter, honouring Retry-After."""
    return Retry(
        total=5,
        backoff_factor=0.5,
        backoff_jitter=0.5,
        backoff_max=30.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    retry: Retry,
    timeout: tuple[float, float],
    recover: Callable[[], T | None] | None = None,
    **kwargs: Any,
) -> requests.Response | T:
    """Send one call, retrying connection errors, timeouts, 429 and 5xx under `retry`.

    Without `recover` the call is re-sent as it is (reads, idempotent writes). With it, `recover()` reads the state
    before each re-send and its result is returned when the earlier attempt turns out to have landed. Returns the
    last response (even a failed one, for the caller's error mapping). Raises Unreachable when no answer came.
    """
    while True:
        response: requests.Response | None = None
        error: Exception | None = None
        try:
            response = session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            error = exc
        else:
            log.debug("%s %s -> %s", method, url.split("?")[0], response.status_code)
            if response.status_code not in RETRY_STATUSES:
                return response
        raw = response.raw if response is not None else None
        try:
            retry = retry.increment(method, url, response=raw, error=error)
        except MaxRetryError:
            if response is not None:
                return response
            assert error is not None
            raise Unreachable(error, len(retry.history) + 1) from error
        log.debug("%s %s failed (%s); retrying", method, url.split("?")[0], error or raw and raw.status)
        retry.sleep(raw)
        if recover is not None:
            found = recover()
            if found is not None:
                log.debug("%s %s had landed; not re-sent", method, url.split("?")[0])
                return found
