"""provision prune on Quay (registries/quay/prune.py through verbs/prune.py), against FakeQuay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import ProvisionError, UsageError
from provision.hostlimit import HostLimiter
from provision.verbs.prune_rules import Rules
from tests.pruning import run, write_values
from tests.servers.quay import FakeQuay, Html429, ResetBefore

API_TOKEN = "quay-oauth-token-0123456789abcdef012345"
ROBOT_PASSWORD = "ROBOTTOKEN0123456789"


@pytest.fixture
def quay(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQuay]:
    """A Quay with alice, admin of myorg, and her API token (repo:admin, org:admin) in QUAY_TOKEN."""
    monkeypatch.setenv("QUAY_TOKEN", API_TOKEN)
    with FakeQuay() as server:
        server.add_user("alice")
        server.add_token(API_TOKEN, user="alice", scopes={"repo:admin", "org:admin"})
        server.add_org("myorg", admin="alice")
        yield server


def values(tmp_path: Path, **kwargs: object) -> Path:
    return write_values(tmp_path, server="quay.io", username="myorg+hub1builder", password=ROBOT_PASSWORD,
                        prefix="quay.io/myorg/hub1-", **kwargs)  # type: ignore[arg-type]  # fmt: skip


def seed(quay: FakeQuay) -> None:
    """hub1's repositories (one in use, one gone stale, one the values name) and another hub's."""
    for name, days in (("new", 1), ("mid", 20), ("old", 60)):
        quay.add_tag("myorg", "hub1-active", name, pushed_days_ago=days, size=2_000_000)
    quay.add_tag("myorg", "hub1-stale", "a", pushed_days_ago=90)
    quay.add_tag("myorg", "hub1-stale", "b", pushed_days_ago=80)
    quay.add_tag("myorg", "hub1-pinned", "v1", pushed_days_ago=300)
    quay.add_tag("myorg", "hub1-pinned", "v0", pushed_days_ago=400)
    quay.add_tag("myorg", "hub2-other", "ancient", pushed_days_ago=999)


def deletes(quay: FakeQuay) -> list[str]:
    return [r.path for r in quay.requests if r.method == "DELETE"]


def test_older_than_deletes_tags_and_emptied_repositories_keeping_protected_and_other_hubs(
    quay: FakeQuay, tmp_path: Path
) -> None:
    seed(quay)
    result = run(values(tmp_path, choices=("quay.io/myorg/hub1-pinned:v1",)), Rules(older_than=30), api_url=quay.url)
    plans = {p.name: p for p in result.plans}
    assert set(plans) == {"myorg/hub1-active", "myorg/hub1-stale", "myorg/hub1-pinned"}
    assert {d.tag.name for d in plans["myorg/hub1-active"].delete} == {"old"}
    assert plans["myorg/hub1-active"].reclaimed == 2_000_000
    assert plans["myorg/hub1-stale"].delete_repository and not plans["myorg/hub1-pinned"].delete_repository
    assert quay.live_tags("myorg") == {"hub1-active": ["mid", "new"], "hub1-pinned": ["v1"], "hub2-other": ["ancient"]}
    assert (result.deleted_tags, result.deleted_repositories) == (4, 1)
    assert not [r for r in quay.requests if "hub2" in r.path]  # the other hub's repository was never read
    assert any("not its image" in note for note in result.notes)
    assert not any("server-side policy" in note for note in result.notes)


def test_keep_n_and_singleuser_image(quay: FakeQuay, tmp_path: Path) -> None:
    for day in range(6):
        quay.add_tag("myorg", "hub1-x", f"t{day}", pushed_days_ago=day)
    run(values(tmp_path, singleuser="quay.io/myorg/hub1-x:t5"), Rules(keep=2), api_url=quay.url)
    assert quay.live_tags("myorg") == {"hub1-x": ["t0", "t1", "t5"]}


def test_a_tag_deletion_leaves_the_other_tags_of_its_manifest(quay: FakeQuay, tmp_path: Path) -> None:
    quay.add_tag("myorg", "hub1-x", "recent", pushed_days_ago=1, digest="sha256:" + "a" * 64)
    quay.add_tag("myorg", "hub1-x", "old-alias", pushed_days_ago=50, digest="sha256:" + "a" * 64)
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url)
    assert [d.tag.name for d in result.plans[0].delete] == ["old-alias"]
    assert quay.live_tags("myorg") == {"hub1-x": ["recent"]}


def test_more_than_a_page_of_tags_and_repositories(quay: FakeQuay, tmp_path: Path) -> None:
    quay.repositories_page_size = 50
    for i in range(130):
        quay.add_tag("myorg", "hub1-many", f"t{i:03}", pushed_days_ago=100 + i)
    for i in range(60):
        quay.add_tag("myorg", f"hub1-r{i:02}", "t", pushed_days_ago=1)
    result = run(values(tmp_path), Rules(keep=120), api_url=quay.url, dry_run=True)
    assert len(result.plans) == 61
    many = next(p for p in result.plans if p.name == "myorg/hub1-many")
    assert len(many.keep) == 120 and {d.tag.name for d in many.delete} == {f"t{i}" for i in range(120, 130)}
    tag_pages = [r.query for r in quay.requests if r.path.endswith("hub1-many/tag/")]
    assert len(tag_pages) == 2 and all("onlyActiveTags=true" in q and "limit=100" in q for q in tag_pages)
    assert len([r for r in quay.requests if r.path == "/api/v1/repository"]) == 2  # 61 repositories, 50 a page


def test_dead_tags_are_never_counted(quay: FakeQuay, tmp_path: Path) -> None:
    quay.add_tag("myorg", "hub1-x", "latest", pushed_days_ago=200)
    quay.add_tag("myorg", "hub1-x", "latest", pushed_days_ago=1)  # the 200-day-old row is dead now
    quay.add_tag("myorg", "hub1-x", "gone", pushed_days_ago=300)
    run(values(tmp_path), Rules(older_than=30), api_url=quay.url)  # "gone" is deleted: a dead row of it too
    result = run(values(tmp_path), Rules(keep=1, older_than=30), api_url=quay.url)
    assert [(d.tag.name, d.delete) for d in result.plans[0].decisions] == [("latest", False)]
    assert deletes(quay) == ["/api/v1/repository/myorg/hub1-x/tag/gone"]


def test_dry_run_and_declined_send_no_delete(quay: FakeQuay, tmp_path: Path) -> None:
    seed(quay)
    before = quay.live_tags("myorg")
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url, dry_run=True)
    assert result.to_delete == 5 and result.deleted_tags == 0
    assert run(values(tmp_path), Rules(older_than=30), api_url=quay.url, answer=False).declined
    assert quay.live_tags("myorg") == before and deletes(quay) == []


def test_a_fault_mid_way_then_a_re_run_finishes(quay: FakeQuay, tmp_path: Path) -> None:
    seed(quay)
    quay.inject("DELETE", r".*/tag/.*", ResetBefore(), times=50, after=2)  # Quay goes away mid-way
    with pytest.raises(ProvisionError) as caught:
        run(values(tmp_path), Rules(older_than=30), api_url=quay.url, jobs=1)
    assert "Already done: deleted 2 of 5 tag(s)" in str(caught.value)
    assert "run the same command again" in str(caught.value)
    quay.clear_faults()
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url)
    assert result.deleted_tags == 3 and result.deleted_repositories == 2
    assert quay.live_tags("myorg") == {"hub1-active": ["mid", "new"], "hub2-other": ["ancient"]}


def test_429_is_honoured(quay: FakeQuay, tmp_path: Path) -> None:
    seed(quay)
    quay.inject("DELETE", r"/api/v1/repository/myorg/hub1-active/tag/old", Html429(retry_after="1"))
    limiter = HostLimiter(4)
    start = time.monotonic()
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url, limiter=limiter)
    assert time.monotonic() - start >= 1.0
    assert result.deleted_tags == 5 and sum(limiter.waits_429.values()) == 1
    assert [r.status for r in quay.requests if r.path.endswith("hub1-active/tag/old")] == [429, 204]


def test_missing_token_is_refused_before_any_request(
    quay: FakeQuay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(quay)
    monkeypatch.delenv("QUAY_TOKEN")
    with pytest.raises(UsageError, match="QUAY_TOKEN is not set") as caught:
        run(values(tmp_path), Rules(older_than=30), api_url=quay.url)
    assert "repo:admin" in str(caught.value.hint)
    assert quay.requests == []


def test_unused_for_is_refused_quay_records_no_pulls(quay: FakeQuay, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--unused-for needs pull times"):
        run(values(tmp_path), Rules(unused_for=30), api_url=quay.url)
    assert quay.requests == []


def test_a_token_without_the_scope_or_unknown_says_so_without_re_run(
    quay: FakeQuay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(quay)
    quay.add_token("read-only-token", user="alice", scopes={"repo:read"})
    monkeypatch.setenv("QUAY_TOKEN", "read-only-token")
    with pytest.raises(ProvisionError) as caught:
        run(values(tmp_path), Rules(older_than=30), api_url=quay.url)
    text = str(caught.value)
    assert "HTTP 403" in text and "repo:admin" in text and "same command" not in text
    monkeypatch.setenv("QUAY_TOKEN", "unknown-token")
    with pytest.raises(ProvisionError, match="did not accept QUAY_TOKEN") as unknown:
        run(values(tmp_path), Rules(older_than=30), api_url=quay.url)
    assert "unknown-token" not in str(unknown.value)
    assert quay.live_tags("myorg")["hub1-stale"] == ["a", "b"]


def test_an_organization_auto_prune_policy_is_noted_not_refused(quay: FakeQuay, tmp_path: Path) -> None:
    seed(quay)
    quay.add_prune_policy("myorg", "number_of_tags", 5)
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url, dry_run=True)
    assert "server-side policy present: keep the 5 newest tags of each repository" in " ".join(result.notes)
    quay.auto_prune = False  # FEATURE_AUTO_PRUNE off: the route answers 404
    result = run(values(tmp_path), Rules(older_than=30), api_url=quay.url, dry_run=True)
    assert not any("policy" in note for note in result.notes) and result.to_delete == 5


def test_cli_json_on_stdout_and_missing_token_is_exit_2(quay: FakeQuay, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from provision.cli import app

    seed(quay)
    args = ["prune", "--values-file", str(values(tmp_path)), "--older-than", "30", "--api-url", quay.url,
            "--format", "json", "--yes"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["deleted"] == {"tags": 5, "repositories": 2}
    assert API_TOKEN not in result.output and ROBOT_PASSWORD not in result.output
    refused = CliRunner().invoke(app, args, env={"QUAY_TOKEN": ""})
    assert refused.exit_code == 2 and refused.stdout == "" and "QUAY_TOKEN is not set" in refused.stderr
