"""The retry loop every HTTP API client uses: urllib3's Retry is the policy (counts, exponential backoff with
jitter, Retry-After), and a write is re-sent only after reading the state again shows it did not land."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from urllib3.exceptions import DecodeError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from provision.errors import ProvisionError

log = logging.getLogger(__name__)

T = TypeVar("T")
# 429 comes from a rate limiter in front of the app; 5xx may or may not have reached it.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


DEFAULT_DEADLINE = 120.0  # seconds for a whole command's API calls; a normal run takes a few


class Unreachable(Exception):
    """Every attempt failed before an HTTP answer arrived (or the deadline passed); callers turn it into their
    own error type."""

    def __init__(self, error: Exception, attempts: int, *, deadline: Deadline | None = None) -> None:
        what = describe(error)
        if deadline is not None:
            text = f"{what}; gave up when the {deadline.seconds:g} s deadline passed, after {attempts} attempt(s)"
        else:
            text = f"{what}, {attempts} attempt(s)"
        super().__init__(text)
        self.error = error
        self.attempts = attempts
        self.deadline = deadline


class DeadlinePassed(Exception):
    """The command's deadline passed before a call could be sent."""


class SlowAnswer(ProvisionError):
    """The server was answering, but the body did not arrive before the command's deadline."""


class AnswerTooLarge(ProvisionError):
    """The body is larger than any answer of the API could be: not read whole (memory), not used."""


# API answers (Quay, Docker Hub, registry tokens) are a few KiB; a page of a long listing some hundred KiB.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024


def read_body(
    response: requests.Response, *, where: str, deadline: Deadline | None, limit: int = MAX_ANSWER_BYTES
) -> None:
    """Read a `stream=True` response's body into it under the deadline and the size cap (`response.content` then
    works as usual). requests' read timeout bounds each socket read, not the body: a server sending one byte a
    second would hold a call for as long as it likes. Each read returns what one socket read brought (read1), so
    the deadline is looked at least once per read timeout. Raises SlowAnswer or AnswerTooLarge (body closed)."""
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if deadline is not None and deadline.remaining() <= 0:
                raise SlowAnswer(
                    f"{where}: the server answered HTTP {response.status_code} but sent the body too slowly: the "
                    f"deadline of {deadline.seconds:g} s ran out after {size} bytes. Try again later, or raise "
                    "--deadline if the server is known to be slow"
                )
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except ReadTimeoutError as exc:
                if deadline is not None and deadline.remaining() <= 0.05:
                    continue  # the read was cut to the deadline: say so above, not "read timed out"
                raise requests.ReadTimeout(exc) from exc
            except (ProtocolError, DecodeError) as exc:
                raise requests.ConnectionError(exc) from exc
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(
                    f"{where}: the answer is larger than {limit // (1024 * 1024)} MiB, far more than this API sends; "
                    "it was not read further. Check that the URL names the right server"
                )
            chunks.append(chunk)
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)  # what requests itself stores after reading a body
    response._content_consumed = True  # type: ignore[attr-defined]


class Deadline:
    """The time left for a whole command: every call and every wait between retries is cut to fit in it."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError("a deadline must be positive")
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def cut(self, timeout: tuple[float, float]) -> tuple[float, float]:
        """A call's (connect, read) timeout cut to the time left (never below a millisecond: 0 means no timeout)."""
        left = max(self.remaining(), 0.001)
        return min(timeout[0], left), min(timeout[1], left)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the clock while the user answers a question: the deadline is for the network, not for people."""
        start = time.monotonic()
        try:
            yield
        finally:
            self._end += time.monotonic() - start


def header_safe(value: str) -> bool:
    """Whether a credential can go into an HTTP header as it is: one line of printable ASCII, no whitespace."""
    return value.isascii() and value.isprintable() and not any(c.isspace() for c in value)


def describe(error: BaseException) -> str:
    """What went wrong with a call, in words (never the request's headers)."""
    if isinstance(error, requests.ConnectTimeout):
        return "the connection timed out"
    if isinstance(error, requests.ReadTimeout):
        return "no answer in time (read timeout)"
    if isinstance(error, requests.ConnectionError):
        text = str(error).lower()
        if "refused" in text:
            return "connection refused"
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return "the connection was reset"
        if "name or service not known" in text or "resolve" in text or "nodename" in text:
            return "the host name does not resolve"
        return "the connection failed"
    if isinstance(error, DeadlinePassed):
        return "no time left"
    return type(error).__name__


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
    deadline: Deadline | None = None,
    **kwargs: Any,
) -> requests.Response | T:
    """Send one call, retrying connection errors, timeouts, 429 and 5xx under `retry`.

    Without `recover` the call is re-sent as it is (reads, idempotent writes). With it, `recover()` reads the state
    before each re-send and its result is returned when the earlier attempt turns out to have landed. Returns the
    last response (even a failed one, for the caller's error mapping). Raises Unreachable when no answer came.
    """
    total = retry.total if isinstance(retry.total, int) and not isinstance(retry.total, bool) else None
    where = f"{method} {url.split('?')[0]}"
    attempt = 1
    while True:
        response: requests.Response | None = None
        error: Exception | None = None
        left = deadline.remaining() if deadline is not None else None
        if left is not None and left <= 0:
            raise Unreachable(DeadlinePassed(), attempt - 1, deadline=deadline)
        call_timeout = timeout if left is None else (min(timeout[0], left), min(timeout[1], left))
        try:
            response = session.request(method, url, timeout=call_timeout, allow_redirects=False, stream=True, **kwargs)
            read_body(response, where=where, deadline=deadline)
        except (requests.ConnectionError, requests.Timeout) as exc:
            waited = call_timeout[0] if isinstance(exc, requests.ConnectTimeout) else call_timeout[1]
            limit = timeout[0] if isinstance(exc, requests.ConnectTimeout) else timeout[1]
            if isinstance(exc, requests.Timeout) and waited < limit:
                # The wait was cut to what the deadline left: the deadline, not the server's answer time, ended it.
                raise Unreachable(exc, attempt, deadline=deadline) from exc
            error = exc
        else:
            log.debug("%s -> %s", where, response.status_code)
            if response.status_code not in RETRY_STATUSES:
                return response
        raw = response.raw if response is not None else None
        try:
            retry = retry.increment(method, url, response=raw, error=error)
        except MaxRetryError:
            if response is not None:
                return response
            assert error is not None
            raise Unreachable(error, attempt) from error
        wait = _wait(retry, raw)
        failed = f"HTTP {response.status_code} {response.reason or ''}".rstrip() if response is not None else None
        reason = failed or describe(error or Exception())
        left = deadline.remaining() if deadline is not None else None
        if left is not None and wait >= left:
            if response is not None:
                return response
            assert error is not None
            raise Unreachable(error, attempt, deadline=deadline) from error
        attempt += 1
        of = f" of {total + 1}" if total is not None else ""
        # INFO, not DEBUG: a user waiting on a slow or failing server sees why (the CLI shows INFO as progress).
        log.info("%s: %s; attempt %d%s in %.1f s", where, reason, attempt, of, wait)
        if wait > 0:
            time.sleep(wait)
        if recover is not None:
            found = recover()
            if found is not None:
                log.debug("%s had landed; not re-sent", where)
                return found


def _wait(retry: Retry, raw: Any) -> float:
    """Seconds before the next attempt: Retry-After when the server sent one (and it is honoured), else the
    policy's backoff with jitter."""
    if raw is not None and retry.respect_retry_after_header:
        after = retry.get_retry_after(raw)
        if after is not None:
            return max(0.0, after)  # not capped: the command's deadline decides whether to wait that long
    return retry.get_backoff_time()
