"""QuayClient's removal calls over real HTTP: robot and repository deletion (idempotent, retried), paged listing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from urllib3.util.retry import Retry

from provision.registries.quay.client import QuayClient, QuayError
from tests.servers.quay import FakeQuay, ResetAfter

TOKEN = "T" * 40
NO_REPO_SCOPE = "N" * 40


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay(repositories_page_size=2) as server:
        server.add_user("admin")
        server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin", "repo:admin"})
        server.add_token(NO_REPO_SCOPE, user="admin", scopes={"org:admin", "user:admin"})
        server.add_org("org", admin="admin")
        for name in ("c1-hub-a", "other-b", "c1-hub-c", "c1-hub-d", "c1-hubby-e"):
            server.add_repository("org", name)
        yield server


def client(server: FakeQuay, token: str = TOKEN) -> QuayClient:
    return QuayClient(server.url, token, retry=Retry(total=3, backoff_factor=0, raise_on_status=False), timeout=(1, 1))


def test_delete_robot_is_idempotent(quay: FakeQuay) -> None:
    quay.add_robot("org", "bot")
    assert client(quay).delete_robot("org", "bot") is True
    assert quay.robot_token("org", "bot") is None
    assert client(quay).delete_robot("org", "bot") is False  # Quay's 400 "Could not find robot"


def test_a_robot_deletion_whose_answer_was_lost_is_done(quay: FakeQuay) -> None:
    quay.add_robot("org", "bot")
    quay.inject("DELETE", r"/api/v1/organization/org/robots/bot", ResetAfter())
    assert client(quay).delete_robot("org", "bot") is False  # the re-sent DELETE finds it gone
    assert quay.robot_token("org", "bot") is None


def test_list_repositories_follows_every_page_and_filters_by_prefix(quay: FakeQuay) -> None:
    repos = client(quay).list_repositories("org", prefix="c1-hub-")
    assert [r.full_name for r in repos] == ["org/c1-hub-a", "org/c1-hub-c", "org/c1-hub-d"]
    pages = [r for r in quay.requests if r.path == "/api/v1/repository"]
    assert len(pages) == 3 and "next_page=" in pages[1].query and "namespace=org" in pages[0].query


def test_delete_repository_keeps_the_slash_and_is_idempotent(quay: FakeQuay) -> None:
    assert client(quay).delete_repository("org", "c1-hub-a") is True
    assert quay.requests[-1].path == "/api/v1/repository/org/c1-hub-a"
    assert "c1-hub-a" not in quay.repositories("org")
    assert client(quay).delete_repository("org", "c1-hub-a") is False


def test_repositories_need_a_repo_scope(quay: FakeQuay) -> None:
    with pytest.raises(QuayError) as info:
        client(quay, NO_REPO_SCOPE).list_repositories("org")
    assert info.value.status == 403
    with pytest.raises(QuayError):
        client(quay, NO_REPO_SCOPE).delete_repository("org", "c1-hub-a")
    assert "c1-hub-a" in quay.repositories("org")
