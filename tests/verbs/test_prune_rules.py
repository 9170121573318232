"""The retention rules of provision prune (verbs/prune_rules.py): examples per rule, and properties that hold
for any tags (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provision.registries.base import TagInfo
from provision.verbs.prune_rules import DAY, Protected, Rules, decide

NOW = 1_800_000_000.0


def tag(name: str, pushed_days: float | None, pulled_days: float | None = None, digest: str | None = None) -> TagInfo:
    return TagInfo(
        name,
        digest=digest or f"sha256:{name}",
        pushed=None if pushed_days is None else NOW - pushed_days * DAY,
        pulled=None if pulled_days is None else NOW - pulled_days * DAY,
        size=10,
    )


def deleted(tags: list[TagInfo], rules: Rules, *, by_digest: bool = False) -> set[str]:
    protected = Protected()
    return {d.tag.name for d in decide(tags, rules, protected=protected, now=NOW, by_digest=by_digest) if d.delete}


def test_keep_keeps_the_newest_n_by_push_time() -> None:
    tags = [tag("a", 5), tag("b", 1), tag("c", 30), tag("d", 10)]
    assert deleted(tags, Rules(keep=2)) == {"c", "d"}


def test_older_than_deletes_by_push_age_only() -> None:
    tags = [tag("new", 3), tag("old", 40, pulled_days=1)]
    assert deleted(tags, Rules(older_than=30)) == {"old"}  # a recent pull does not save it under --older-than


def test_unused_for_keeps_what_was_pulled_or_pushed_recently() -> None:
    tags = [tag("pulled", 90, pulled_days=2), tag("pushed", 5), tag("stale", 90, pulled_days=45), tag("never", 60)]
    assert deleted(tags, Rules(unused_for=30)) == {"stale", "never"}


def test_rules_are_retain_rules_or_ed() -> None:
    """--keep 1 --older-than 30: delete what is neither the newest nor pushed within 30 days."""
    tags = [tag("newest", 50), tag("recent", 60), tag("old", 70)]
    assert deleted(tags, Rules(keep=1, older_than=30)) == {"recent", "old"}
    tags = [tag("newest", 5), tag("recent", 20), tag("old", 70)]
    assert deleted(tags, Rules(keep=1, older_than=30)) == {"old"}


def test_protected_tags_and_digests_are_kept() -> None:
    tags = [tag("named", 400), tag("pinned", 400, digest="sha256:pin"), tag("other", 400)]
    protected = Protected(frozenset({"named"}), frozenset({"sha256:pin"}))
    decisions = decide(tags, Rules(older_than=30), protected=protected, now=NOW, by_digest=False)
    assert {d.tag.name for d in decisions if d.delete} == {"other"}
    assert {d.reason for d in decisions if not d.delete} == {"named in the hub's values"}


def test_no_push_date_is_never_deleted_by_age() -> None:
    assert deleted([tag("unknown", None), tag("old", 40)], Rules(older_than=30)) == {"old"}


def test_by_digest_keeps_a_digest_a_kept_tag_points_to() -> None:
    tags = [tag("latest", 1, digest="sha256:x"), tag("v1", 90, digest="sha256:x"), tag("v0", 90, digest="sha256:y")]
    decisions = decide(tags, Rules(older_than=30), protected=Protected(), now=NOW, by_digest=True)
    assert {d.tag.name for d in decisions if d.delete} == {"v0"}
    assert next(d.reason for d in decisions if d.tag.name == "v1") == "shares its digest with latest"


# --- properties


@st.composite
def tag_lists(draw: st.DrawFn) -> list[TagInfo]:
    names = draw(st.lists(st.text("abcdef0123", min_size=1, max_size=4), unique=True, max_size=12))
    days = st.none() | st.floats(0, 400)
    return [tag(n, draw(days), draw(days), digest=f"sha256:{draw(st.sampled_from('pqrs'))}") for n in names]


rules_strategy = st.builds(
    Rules, keep=st.none() | st.integers(1, 5), older_than=st.none() | st.floats(1, 100),
    unused_for=st.none() | st.floats(1, 100),
).filter(lambda r: r.given)  # fmt: skip


@given(tag_lists(), rules_strategy, st.booleans(), st.data())
def test_properties(tags: list[TagInfo], rules: Rules, by_digest: bool, data: st.DataObject) -> None:
    named = data.draw(st.sets(st.sampled_from([t.name for t in tags]))) if tags else set()
    protected = Protected(frozenset(named))
    decisions = decide(tags, rules, protected=protected, now=NOW, by_digest=by_digest)
    assert sorted(d.tag.name for d in decisions) == sorted(t.name for t in tags)  # every tag, once
    gone = {d.tag.name for d in decisions if d.delete}
    assert not gone & named  # protected tags are never deleted
    if rules.keep is not None:
        assert len(tags) - len(gone) >= min(rules.keep, len(tags))  # at least the newest N stay
    if by_digest:  # no kept tag loses its digest to a deletion
        kept_digests = {d.tag.digest for d in decisions if not d.delete}
        assert not {d.tag.digest for d in decisions if d.delete} & kept_digests
    for d in decisions:  # every deleted tag is older than each age rule (push, and pull for --unused-for)
        if d.delete:
            assert d.tag.pushed is not None
            if rules.older_than is not None:
                assert NOW - d.tag.pushed >= rules.older_than * DAY
            if rules.unused_for is not None:
                last = max(d.tag.pushed, d.tag.pulled or d.tag.pushed)
                assert NOW - last >= rules.unused_for * DAY


@given(tag_lists(), st.integers(1, 5))
def test_a_larger_keep_never_deletes_more(tags: list[TagInfo], keep: int) -> None:
    fewer = deleted(tags, Rules(keep=keep + 1, older_than=10))
    assert fewer <= deleted(tags, Rules(keep=keep, older_than=10))
