"""Shared fixtures: the real schemas beside the repository, and a Quay-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def quay_server() -> Iterator[object]:
    from tests.servers.quay import FakeQuay

    with FakeQuay() as server:
        yield server
