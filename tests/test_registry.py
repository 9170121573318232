"""Pure parts of the registry client: WWW-Authenticate parsing and JWT access claims."""

from __future__ import annotations

import base64
import json

import pytest

from provision.registry import Challenge, jwt_access, parse_www_authenticate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:a/b:pull,push",
                },
            ),
        ),
        (
            'Bearer realm="https://quay.io/v2/auth", service="quay.io"',
            Challenge("bearer", {"realm": "https://quay.io/v2/auth", "service": "quay.io"}),
        ),
        (
            "Bearer realm=http://127.0.0.1:1/token,service=test",
            Challenge("bearer", {"realm": "http://127.0.0.1:1/token", "service": "test"}),
        ),
        ('Basic realm="a \\"quoted\\" realm"', Challenge("basic", {"realm": 'a "quoted" realm'})),
        ("", None),
        (None, None),
    ],
)
def test_parse_www_authenticate(header: str | None, expected: Challenge | None) -> None:
    assert parse_www_authenticate(header) == expected


def _jwt(payload: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2ln"


def test_jwt_access() -> None:
    access = [{"type": "repository", "name": "hubs/x", "actions": ["pull"]}]
    assert jwt_access(_jwt({"sub": "u", "access": access})) == access
    assert jwt_access(_jwt({"sub": "u"})) is None
    assert jwt_access("opaque-token") is None
    assert jwt_access("a.!!!.c") is None
