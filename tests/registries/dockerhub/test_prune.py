"""provision prune on Docker Hub (registries/dockerhub/prune.py through verbs/prune.py), against FakeDockerHub."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli import app
from provision.errors import ProvisionError, UsageError
from provision.hostlimit import HostLimiter
from provision.verbs.prune_rules import Rules
from tests.pruning import run, write_values
from tests.registries.dockerhub.conftest import DOCKERHUB_PASSWORD
from tests.servers.dockerhub import FakeDockerHub, RateLimited, ResetBefore

SERVER = "https://index.docker.io/v1/"


def values(tmp_path: Path, *, username: str = "alice", password: str = DOCKERHUB_PASSWORD, **kwargs: object) -> Path:
    return write_values(tmp_path, server=SERVER, username=username, password=password, prefix="myorg/hub1-",
                        **kwargs)  # type: ignore[arg-type]  # fmt: skip


def seed(hub: FakeDockerHub) -> None:
    """hub1's repositories (one it keeps using, one gone stale, one the values name) and another hub's."""
    for name, days in (("new", 1), ("mid", 20), ("old", 60)):
        hub.add_tag("myorg", "hub1-active", name, pushed_days_ago=days, size=2_000_000)
    hub.add_tag("myorg", "hub1-stale", "a", pushed_days_ago=90)
    hub.add_tag("myorg", "hub1-stale", "b", pushed_days_ago=80)
    hub.add_tag("myorg", "hub1-pinned", "v1", pushed_days_ago=300)
    hub.add_tag("myorg", "hub1-pinned", "v0", pushed_days_ago=400)
    hub.add_tag("myorg", "hub2-other", "ancient", pushed_days_ago=999)


def test_older_than_plans_and_deletes_keeping_protected_and_other_hubs(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    result = run(values(tmp_path, choices=("myorg/hub1-pinned:v1",)), Rules(older_than=30), api_url=hub.url)
    plans = {p.name: p for p in result.plans}
    assert set(plans) == {"myorg/hub1-active", "myorg/hub1-stale", "myorg/hub1-pinned"}  # hub2 never listed
    assert {d.tag.name for d in plans["myorg/hub1-active"].delete} == {"old"}
    assert plans["myorg/hub1-active"].reclaimed == 2_000_000
    assert plans["myorg/hub1-stale"].delete_repository
    assert hub.repositories("myorg") == {
        "hub1-active": ["mid", "new"], "hub1-pinned": ["v1"], "hub2-other": ["ancient"],
    }  # fmt: skip
    assert (result.deleted_tags, result.deleted_repositories) == (4, 1)
    assert not [r for r in hub.requests if "hub2" in r.path]  # the other hub's repository was never read


def test_singleuser_image_is_protected(hub: FakeDockerHub, tmp_path: Path) -> None:
    hub.add_tag("myorg", "hub1-base", "2024", pushed_days_ago=500)
    run(values(tmp_path, singleuser="docker.io/myorg/hub1-base:2024"), Rules(keep=1, older_than=1), api_url=hub.url)
    run(values(tmp_path, singleuser="myorg/hub1-base:2024"), Rules(older_than=1), api_url=hub.url)
    assert hub.repositories("myorg") == {"hub1-base": ["2024"]}


def test_unused_for_keeps_images_launched_recently(hub: FakeDockerHub, tmp_path: Path) -> None:
    hub.add_tag("myorg", "hub1-x", "launched", pushed_days_ago=200, pulled_days_ago=3)
    hub.add_tag("myorg", "hub1-x", "forgotten", pushed_days_ago=200, pulled_days_ago=45)
    hub.add_tag("myorg", "hub1-x", "fresh", pushed_days_ago=2)
    result = run(values(tmp_path), Rules(unused_for=30), api_url=hub.url)
    assert hub.repositories("myorg") == {"hub1-x": ["fresh", "launched"]}
    reasons = {d.tag.name: d.reason for d in result.plans[0].decisions}
    assert reasons["launched"] == "pulled 3 d ago" and reasons["forgotten"] == "pushed 200 d ago, pulled 45 d ago"


def test_keep_n(hub: FakeDockerHub, tmp_path: Path) -> None:
    for day in range(6):
        hub.add_tag("myorg", "hub1-x", f"t{day}", pushed_days_ago=day)
    run(values(tmp_path), Rules(keep=2), api_url=hub.url)
    assert hub.repositories("myorg") == {"hub1-x": ["t0", "t1"]}


def test_dry_run_and_declined_change_nothing(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    before = hub.repositories("myorg")
    result = run(values(tmp_path), Rules(older_than=30), api_url=hub.url, dry_run=True)
    assert result.to_delete == 5 and result.deleted_tags == 0
    declined = run(values(tmp_path), Rules(older_than=30), api_url=hub.url, answer=False)
    assert declined.declined
    assert hub.repositories("myorg") == before
    assert not [r for r in hub.requests if r.method == "DELETE"]


def test_listing_pages_through_next(hub: FakeDockerHub, tmp_path: Path) -> None:
    for i in range(130):
        hub.add_tag("myorg", f"hub1-r{i:03}", "t", pushed_days_ago=100)
        hub.add_tag("myorg", "hub1-many", f"t{i:03}", pushed_days_ago=100 + i)
    result = run(values(tmp_path), Rules(keep=120), api_url=hub.url, dry_run=True)
    assert len(result.plans) == 131
    many = next(p for p in result.plans if p.name == "myorg/hub1-many")
    assert len(many.keep) == 120 and len(many.delete) == 10
    pages = [r for r in hub.requests if r.path.endswith("/repositories")]
    assert len(pages) == 2  # 131 repositories at 100 a page


def test_429_retry_after_is_honoured(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    hub.inject("DELETE", r"/v2/repositories/myorg/hub1-active/tags/old/", RateLimited(retry_after="1"))
    limiter = HostLimiter(4)
    start = time.monotonic()
    result = run(values(tmp_path), Rules(older_than=30), api_url=hub.url, limiter=limiter)
    assert time.monotonic() - start >= 1.0
    assert result.deleted_tags == 5 and sum(limiter.waits_429.values()) == 1
    statuses = [r.status for r in hub.requests if r.path.endswith("hub1-active/tags/old/")]
    assert statuses == [429, 204]


def test_interrupted_run_is_finished_by_the_next(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    hub.inject("DELETE", r".*/tags/.*", ResetBefore(), times=50, after=2)  # the registry goes away mid-way
    with pytest.raises(ProvisionError) as caught:
        run(values(tmp_path), Rules(older_than=30), api_url=hub.url, jobs=1)
    assert "Already done: deleted 2 of 5 tag(s)" in str(caught.value)
    assert "run the same command again" in str(caught.value)
    hub.clear_faults()
    result = run(values(tmp_path), Rules(older_than=30), api_url=hub.url)
    assert result.deleted_tags == 3 and result.to_delete == 3
    assert hub.repositories("myorg") == {"hub1-active": ["mid", "new"], "hub2-other": ["ancient"]}


def test_a_token_that_may_not_delete_says_so_without_re_run(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    token = hub.add_pat("alice", label="push", scopes=["repo:write"])
    with pytest.raises(ProvisionError) as caught:
        run(values(tmp_path, password=token), Rules(older_than=30), api_url=hub.url)
    text = str(caught.value)
    assert "HTTP 403" in text and "Read, Write, Delete" in text and "same command" not in text
    assert token not in text


def test_deadline_bounds_the_run(hub: FakeDockerHub, tmp_path: Path) -> None:
    seed(hub)
    hub.latency = 0.3
    start = time.monotonic()
    with pytest.raises(ProvisionError, match="deadline of 1 s passed"):
        run(values(tmp_path), Rules(older_than=30), api_url=hub.url, deadline=1.0)
    assert time.monotonic() - start < 2.5


def test_no_rule_is_a_usage_error_before_any_request(hub: FakeDockerHub, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least one retention rule"):
        run(values(tmp_path), Rules(), api_url=hub.url)
    assert hub.requests == []


def test_cli_json_plan_and_result_on_stdout(hub: FakeDockerHub, tmp_path: Path) -> None:
    import json

    seed(hub)
    path = values(tmp_path)
    args = ["prune", "--values-file", str(path), "--older-than", "30", "--api-url", hub.url, "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] and doc["deleted"] == {"tags": 0, "repositories": 0}
    assert {r["name"] for r in doc["repositories"]} == {"myorg/hub1-active", "myorg/hub1-stale", "myorg/hub1-pinned"}
    assert DOCKERHUB_PASSWORD not in result.output
    result = CliRunner().invoke(app, [*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["deleted"] == {"tags": 5, "repositories": 2}
    assert CliRunner().invoke(app, ["prune", "--values-file", str(path)]).exit_code == 2
