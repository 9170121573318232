"""Per-host request limits and the 429 wait: pure parts with a table, the bound with real threads."""

from __future__ import annotations

import threading
import time

import pytest

from provision.hostlimit import MAX_RETRY_AFTER, HostLimiter, host_key, retry_after_seconds


@pytest.mark.parametrize(
    ("value", "attempt", "expected"),
    [
        ("3", 0, 3.0),
        (" 0 ", 2, 0.0),
        (None, 0, 1.0),  # nginx sends no Retry-After: 1 s, doubling
        (None, 2, 4.0),
        ("soon", 1, 2.0),
        ("86400", 0, MAX_RETRY_AFTER),  # a nightly run must end
        ("Thu, 01 Jan 1970 00:00:10 GMT", 0, 5.0),  # an HTTP date, 5 s after "now"
        ("Thu, 01 Jan 1970 00:00:01 GMT", 0, 0.0),  # in the past
    ],
)
def test_retry_after_seconds(value: str | None, attempt: int, expected: float) -> None:
    assert retry_after_seconds(value, attempt=attempt, now=5.0) == expected


@pytest.mark.parametrize(
    ("url", "key"),
    [("https://quay.io/v2/", "quay.io"), ("http://127.0.0.1:5000/token?x=1", "127.0.0.1:5000"), ("Quay.IO", "Quay.IO")],
)
def test_host_key(url: str, key: str) -> None:
    assert host_key(url) == key


def test_requests_in_flight_per_host_never_exceed_the_bound() -> None:
    limiter = HostLimiter(2)
    in_flight = {"a": 0, "b": 0}
    seen = {"a": 0, "b": 0}
    lock = threading.Lock()

    def work(host: str) -> None:
        with limiter.request(f"https://{host}/v2/"):
            with lock:
                in_flight[host] += 1
                seen[host] = max(seen[host], in_flight[host])
            time.sleep(0.02)
            with lock:
                in_flight[host] -= 1

    threads = [threading.Thread(target=work, args=(host,)) for host in "ab" * 6]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": 2, "b": 2}  # the two hosts do not share their slots
    assert limiter.peak == {"a": 2, "b": 2}


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HostLimiter(0)


def test_artifact_registry_429_is_waited_out() -> None:
    """testIamPermissions answering 429 RESOURCE_EXHAUSTED is retried after 1 s, through the same limiter."""
    from provision.registries.artifact_registry import client as gcp
    from tests.servers.artifact_registry import WRITER, FakeGoogle, make_service_account_key

    email = "hub-sa@proj.iam.gserviceaccount.com"
    with FakeGoogle() as google:
        key = make_service_account_key(google, email=email, project="proj")
        name = google.add_repository("proj", "us-central1", "hub-registry")
        google.grant(email, name, sorted(WRITER))
        google.fail_next(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Requests'")
        limiter = HostLimiter(1)
        start = time.monotonic()
        repo = gcp.RepositoryRef("proj", "us-central1", "hub-registry")
        held = gcp.test_permissions(key, repo, api_endpoint=google.url, limiter=limiter)
        elapsed = time.monotonic() - start
    assert held == {gcp.UPLOAD, gcp.DOWNLOAD}
    assert limiter.waits_429 == {google.host: 1} and elapsed >= 1.0
    assert [status for method, path, status in google.paths() if path.endswith(":testIamPermissions")] == [429, 200]
