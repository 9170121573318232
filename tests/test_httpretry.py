"""The retry loop: what it says while retrying, and how the command's deadline cuts calls and waits."""

from __future__ import annotations

import logging
import time

import pytest
import requests
from urllib3.util.retry import Retry

from provision import httpretry
from tests.servers.quay import Delay, FakeQuay, Html429, Status


def test_each_retry_is_logged_at_info_with_attempt_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="provision")
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Status(503), times=2)
        retry = Retry(total=3, backoff_factor=0, raise_on_status=False)
        response = httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=retry, timeout=(1, 1))
    assert isinstance(response, requests.Response) and response.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [
        f"GET {quay.url}/api/v1/users/x: HTTP 503 Service Unavailable; attempt 2 of 4 in 0.0 s",
        f"GET {quay.url}/api/v1/users/x: HTTP 503 Service Unavailable; attempt 3 of 4 in 0.0 s",
    ]


def test_a_wait_longer_than_the_deadline_gives_up_with_the_answer() -> None:
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Html429(retry_after="600"))
        start = time.monotonic()
        response = httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=httpretry.default_retry(),
                                  timeout=(1, 1), deadline=httpretry.Deadline(5))  # fmt: skip
    assert isinstance(response, requests.Response) and response.status_code == 429
    assert time.monotonic() - start < 3


def test_a_hung_server_ends_at_the_deadline() -> None:
    with FakeQuay() as quay, requests.Session() as session:
        quay.inject("GET", "/api/v1/users/x", Delay(5), times=10)
        start = time.monotonic()
        with pytest.raises(httpretry.Unreachable) as info:
            httpretry.send(session, "GET", quay.url + "/api/v1/users/x", retry=httpretry.default_retry(),
                           timeout=(5, 30), deadline=httpretry.Deadline(1))  # fmt: skip
    assert time.monotonic() - start < 3
    assert info.value.deadline is not None and "1 s deadline" in str(info.value)


def test_header_safe() -> None:
    assert httpretry.header_safe("A" * 40)
    for bad in ("a b", "a\nb", "é", "a\x07b", "\t"):
        assert not httpretry.header_safe(bad)
