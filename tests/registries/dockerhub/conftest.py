"""Fixtures shared by the flow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.dockerhub import FakeDockerHub

DOCKERHUB_PASSWORD = "owner-password-123"


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    """A Docker Hub with alice (password login), owner of myorg (Team plan) and freeorg (no organization tokens)."""
    with FakeDockerHub() as server:
        server.add_user("alice", password=DOCKERHUB_PASSWORD)
        server.add_org("myorg", owners=["alice"], plan="team")
        server.add_org("freeorg", owners=["alice"], plan="personal")
        yield server
