"""provision quay --keep-tags/--prune-older-than: the organization's auto-prune policy, over real HTTP against
FakeQuay (with and without FEATURE_AUTO_PRUNE, Quay before and since 3.13)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner
from urllib3.util.retry import Retry

from provision.cli import app
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubfiles.edits import FilesRequest
from provision.registries.quay import autoprune
from provision.registries.quay.create import QuayRequest, QuayResult, run
from provision.registries.quay.retention import Retention
from provision.registries.quay.setup import QuaySetup
from tests.servers.quay import FakeQuay, ResetAfter, Status

TOKEN = "A" * 40
ORG = "hubs"
POLICIES = f"/api/v1/organization/{ORG}/autoprunepolicy/"
KEEP_10 = Retention(keep_tags=10)


@pytest.fixture
def quay() -> Iterator[FakeQuay]:
    with FakeQuay() as server:
        seed(server)
        yield server


def seed(server: FakeQuay, *, org: bool = False) -> None:
    server.add_user("admin", email="admin@example.org")
    server.add_token(TOKEN, user="admin", scopes={"org:admin", "user:admin"})
    if org:
        server.add_org(ORG, admin="admin")
        server.add_robot(ORG, "image_builder")
        server.add_team_member(ORG, "owners", f"{ORG}+image_builder")


class Outcome:
    def __init__(self, result: QuayResult | None, stderr: str, error: ProvisionError | None) -> None:
        self.result, self.stderr, self.error = result, stderr, error


def provision(server: FakeQuay, retention: Retention, *, dry_run: bool = False, **kwargs: Any) -> Outcome:
    stream = io.StringIO()
    fields: dict[str, Any] = {"org": ORG, "api_url": server.url, "token": TOKEN, "cluster": "c1", "hub": "staging"}
    fields.update(kwargs, retention=retention)
    try:
        result = run(QuayRequest(**fields), reporter=Reporter(stream=stream), dry_run=dry_run,
                     retry=Retry(total=3, backoff_factor=0, raise_on_status=False), timeout=(1.0, 1.0))  # fmt: skip
    except ProvisionError as exc:
        return Outcome(None, stream.getvalue(), exc)
    return Outcome(result, stream.getvalue(), None)


def ok(server: FakeQuay, retention: Retention, **kwargs: Any) -> QuayResult:
    outcome = provision(server, retention, **kwargs)
    assert outcome.error is None, str(outcome.error)
    assert outcome.result is not None
    return outcome.result


def rules(server: FakeQuay) -> list[tuple[str, object, object]]:
    return [(p["method"], p["value"], p["tagPattern"]) for p in server.prune_policies(ORG)]


def policy_writes(server: FakeQuay) -> list[str]:
    return [r.method for r in server.writes() if "/autoprunepolicy/" in r.path]


# --- create, update, keep ----------------------------------------------------------------------------------


def test_policy_created_with_the_new_organization(quay: FakeQuay) -> None:
    result = ok(quay, KEEP_10)
    assert rules(quay) == [("number_of_tags", 10, None)]
    assert [r.path for r in quay.writes()][-1] == POLICIES  # after the organization, robot and team
    assert "create auto-prune policy of hubs (keep the 10 newest tags of each repository)" in result.applied
    assert result.retention == {"auto_prune_policy": "keep the 10 newest tags of each repository", "action": "create"}


def test_policy_updated_when_its_value_differs(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    uuid = quay.add_prune_policy(ORG, "number_of_tags", 5)
    result = ok(quay, KEEP_10)
    assert quay.prune_policies(ORG) == [
        {"uuid": uuid, "method": "number_of_tags", "value": 10, "tagPattern": None, "tagPatternMatches": True}
    ]
    assert policy_writes(quay) == ["PUT"]
    assert result.retention is not None and result.retention["action"] == "update"


def test_other_method_is_replaced_not_added(quay: FakeQuay) -> None:
    """One managed policy: switching from --keep-tags to --prune-older-than updates it (Quay < 3.13 holds one)."""
    quay.add_org(ORG, admin="admin")
    quay.add_prune_policy(ORG, "number_of_tags", 10)
    ok(quay, Retention(older_than_days=30))
    assert rules(quay) == [("creation_date", "30d", None)]
    assert policy_writes(quay) == ["PUT"]


def test_rerun_changes_nothing(quay: FakeQuay) -> None:
    ok(quay, Retention(older_than_days=90))
    quay.clear_log()
    outcome = provision(quay, Retention(older_than_days=90))
    assert outcome.result is not None and outcome.result.plan.empty
    assert quay.writes() == []
    assert "keep auto-prune policy of hubs (prune tags older than 90 days): already in place" in outcome.stderr
    assert outcome.result.retention == {"auto_prune_policy": "prune tags older than 90 days", "action": "keep"}


def test_an_equal_duration_in_other_units_is_kept(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_prune_policy(ORG, "creation_date", "4w")
    ok(quay, Retention(older_than_days=28))
    assert policy_writes(quay) == []
    assert rules(quay) == [("creation_date", "4w", None)]


def test_a_policy_with_a_tag_pattern_is_left_alone(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_prune_policy(ORG, "number_of_tags", 3, tag_pattern="^pr-")
    outcome = provision(quay, KEEP_10)
    assert outcome.error is None
    assert sorted(rules(quay), key=str) == [("number_of_tags", 10, None), ("number_of_tags", 3, "^pr-")]
    assert "has a tag pattern, left as it is" in outcome.stderr


def test_quay_before_3_13_refuses_a_second_policy_named() -> None:
    with FakeQuay(several_prune_policies=False) as quay:
        seed(quay, org=True)
        quay.add_prune_policy(ORG, "number_of_tags", 3, tag_pattern="^pr-")
        outcome = provision(quay, KEEP_10)
    assert isinstance(outcome.error, ProvisionError) and outcome.error.exit_code == 1
    text = str(outcome.error)
    assert "before Quay 3.13" in text and "provision prune" in text
    assert rules(quay) == [("number_of_tags", 3, "^pr-")]


def test_a_lost_answer_to_the_create_does_not_create_twice(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.inject("POST", POLICIES, ResetAfter())
    ok(quay, KEEP_10)
    assert rules(quay) == [("number_of_tags", 10, None)]


def test_a_token_without_org_admin_is_named(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    refusal = {"error_type": "insufficient_scope", "error_message": "Unauthorized", "status": 403}
    quay.inject("POST", POLICIES, Status(403, body=refusal))
    outcome = provision(quay, KEEP_10)
    assert outcome.error is not None and "org:admin" in str(outcome.error)
    assert quay.prune_policies(ORG) == []


# --- the feature off, shared organizations, dry runs ----------------------------------------------------------


@pytest.mark.parametrize("org_exists", [False, True])
def test_feature_off_stops_before_any_change(org_exists: bool) -> None:
    """Choice: exit 1 with the way out, before any write (the rest of the run is not half done, nothing is lost)."""
    with FakeQuay(auto_prune=False) as quay:
        seed(quay, org=org_exists)
        outcome = provision(quay, KEEP_10)
        assert quay.writes() == []
        assert quay.org_exists(ORG) is org_exists
    assert outcome.error is not None and outcome.error.exit_code == 1 and not isinstance(outcome.error, UsageError)
    text = str(outcome.error)
    assert "FEATURE_AUTO_PRUNE" in text and "provision prune" in text and "Nothing was changed" in text
    assert "re-run" not in text


def test_feature_off_dry_run_says_so() -> None:
    with FakeQuay(auto_prune=False) as quay:
        seed(quay, org=True)
        outcome = provision(quay, KEEP_10, dry_run=True)
        assert quay.writes() == []
    assert outcome.result is not None and outcome.result.plan.empty
    assert "no auto-prune policies (404): a real run stops before any change" in outcome.stderr
    assert outcome.result.retention is not None and outcome.result.retention["action"] == "unavailable"


def test_without_the_options_no_policy_is_asked(quay: FakeQuay) -> None:
    ok(quay, Retention())
    assert not [r for r in quay.requests if "autoprunepolicy" in r.path]


def test_shared_org_without_opt_in_is_refused_before_any_request(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    outcome = provision(quay, KEEP_10, shared_org=True)
    assert isinstance(outcome.error, UsageError)
    assert "--retention-for-whole-org" in str(outcome.error) and "Nothing was changed" in str(outcome.error)
    assert quay.requests == []


def test_shared_org_with_opt_in_applies_the_policy(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_robot(ORG, "image_builder")
    ok(quay, Retention(keep_tags=20, whole_org=True), shared_org=True)
    assert [(r.method, r.path) for r in quay.writes()] == [("POST", POLICIES)]
    assert rules(quay) == [("number_of_tags", 20, None)]


def test_other_hubs_of_the_cluster_yaml_pushing_to_the_org_need_the_opt_in(tmp_path: Path) -> None:
    (tmp_path / "prod.values.yaml").write_text(
        "binderhub-service:\n  config:\n    BinderHub:\n      image_prefix: quay.io/hubs/c1-prod-\n"
    )
    (tmp_path / "cluster.yaml").write_text(
        "name: c1\nhubs:\n- name: staging\n  helm_chart_values_files: [staging.values.yaml]\n"
        "- name: prod\n  helm_chart_values_files: [prod.values.yaml]\n"
    )
    prepared = SimpleNamespace(files=FilesRequest(cluster_config=tmp_path / "cluster.yaml"))

    def check(retention: Retention) -> None:
        request = QuayRequest(org=ORG, cluster="c1", hub="staging", retention=retention)
        setup = QuaySetup(request, rotate_shared=False, deadline=10, cluster_config=None)
        setup.check(prepared, Reporter(stream=io.StringIO()), dry_run=False)  # type: ignore[arg-type]

    with pytest.raises(UsageError, match=r"the hubs prod of .* also push to 'hubs'"):
        check(KEEP_10)
    check(Retention(keep_tags=10, whole_org=True))
    check(Retention())  # no policy asked: nothing to refuse
    request = QuayRequest(org="other", hub="staging", retention=KEEP_10)
    QuaySetup(request, rotate_shared=False, deadline=10, cluster_config=None).check(
        prepared, Reporter(stream=io.StringIO()), dry_run=False  # type: ignore[arg-type]
    )


def test_dry_run_changes_nothing(quay: FakeQuay) -> None:
    quay.add_org(ORG, admin="admin")
    quay.add_prune_policy(ORG, "number_of_tags", 5)
    outcome = provision(quay, KEEP_10, dry_run=True)
    assert outcome.result is not None
    assert quay.writes() == []
    assert "+ update auto-prune policy of hubs (keep the 5 newest tags of each repository -> keep the 10" in (
        outcome.stderr
    )
    assert rules(quay) == [("number_of_tags", 5, None)]


def test_dry_run_without_token_plans_the_create() -> None:
    outcome = provision(SimpleNamespace(url="https://quay.io"), KEEP_10, dry_run=True, token=None)  # type: ignore[arg-type]
    assert outcome.result is not None
    assert "+ create auto-prune policy of hubs (keep the 10 newest tags of each repository)" in outcome.stderr


# --- values and options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 7, 30, 90, 365, 36500])
def test_days_are_never_sent_as_minutes(count: int) -> None:
    value = Retention(older_than_days=count).policy().body()["value"]
    assert value == f"{count}d" and not value.endswith("m")


def test_the_server_stores_days(quay: FakeQuay) -> None:
    ok(quay, Retention(older_than_days=45))
    assert rules(quay) == [("creation_date", "45d", None)]
    assert autoprune.PrunePolicy("creation_date", "45d").describe() == "prune tags older than 45 days"


@pytest.mark.parametrize(
    ("retention", "text"),
    [
        (Retention(keep_tags=3, older_than_days=7), "cannot be combined"),
        (Retention(keep_tags=0), "invalid --keep-tags 0"),
        (Retention(older_than_days=0), "invalid --prune-older-than 0"),
        (Retention(older_than_days=99999), "invalid --prune-older-than 99999"),
        (Retention(whole_org=True), "needs --keep-tags or --prune-older-than"),
    ],
)
def test_bad_options_are_refused_before_any_request(quay: FakeQuay, retention: Retention, text: str) -> None:
    outcome = provision(quay, retention)
    assert isinstance(outcome.error, UsageError) and text in str(outcome.error)
    assert quay.requests == []


def test_cli_options_json_summary_and_usage_errors(quay: FakeQuay) -> None:
    runner = CliRunner()
    env = {"QUAY_TOKEN": TOKEN}
    base = ["quay", "--org", ORG, "--hub", "h", "--api-url", quay.url]
    for bad in (["--keep-tags", "0"], ["--keep-tags", "3", "--prune-older-than", "7"], ["--prune-older-than", "x"]):
        result = runner.invoke(app, [*base, *bad], env=env)
        assert result.exit_code == 2, (bad, result.stderr)
    assert quay.requests == []
    result = runner.invoke(app, [*base, "--prune-older-than", "30", "--format", "json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["retention"] == {
        "auto_prune_policy": "prune tags older than 30 days", "action": "create"
    }
    help_text = runner.invoke(app, ["quay", "--help"]).stdout
    assert "Retention:" in help_text and "--retention-for-whole-org" in help_text.split("Retention:")[1]
