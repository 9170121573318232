"""The retention rules of `provision prune`, pure: given one repository's tags (push and pull times, digests,
sizes) and what the hub's values name, which tags to keep (and why) and which to delete.

Each rule is a *retain* rule, as Harbor's are (the OR of rules; ../shared/facts/retention.md §6): `keep` keeps the
newest N tags by push time, `older_than` keeps what was pushed within that many days, `unused_for` keeps what was
pulled or pushed within that many days (BinderHub's existence check is a manifest GET on every launch, so "not
pulled for 30 days" means "not launched for 30 days"). A tag no given rule keeps is deleted, unless the hub's
values name it (protected). A tag with no push date is never deleted: its age is unknown. Where a
deletion removes a digest (registry v2), a digest any kept tag points to is kept, and so are its other tags.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from provision.registries.base import TagInfo

DAY = 86400.0


@dataclass(frozen=True)
class Rules:
    keep: int | None = None  # the newest N tags per repository
    older_than: float | None = None  # days since push
    unused_for: float | None = None  # days since the last pull or push

    @property
    def given(self) -> bool:
        return any(rule is not None for rule in (self.keep, self.older_than, self.unused_for))

    def describe(self) -> str:
        parts = []
        if self.keep is not None:
            parts.append(f"keep the newest {self.keep} tag(s) per repository")
        if self.older_than is not None:
            parts.append(f"keep tags pushed within {self.older_than:g} day(s)")
        if self.unused_for is not None:
            parts.append(f"keep tags pulled or pushed within {self.unused_for:g} day(s)")
        return "; ".join(parts)


@dataclass(frozen=True)
class Decision:
    tag: TagInfo
    delete: bool
    reason: str


@dataclass(frozen=True)
class Protected:
    """What the hub's values name in one repository: tags and digests."""

    tags: frozenset[str] = frozenset()
    digests: frozenset[str] = frozenset()

    def covers(self, tag: TagInfo) -> bool:
        return tag.name in self.tags or (tag.digest is not None and tag.digest in self.digests)


def _newest_first(tags: Sequence[TagInfo]) -> list[TagInfo]:
    """By push time, newest first; a tag without one counts as newest (its age is unknown); ties by name."""
    return sorted(tags, key=lambda t: (-(t.pushed if t.pushed is not None else float("inf")), t.name))


def _days(seconds: float) -> str:
    return f"{seconds / DAY:.0f} d"


def _retained(tag: TagInfo, rules: Rules, *, newest: Collection[str], now: float) -> str | None:
    """Why a rule keeps the tag (None: no rule does)."""
    if rules.keep is not None and tag.name in newest:
        return f"among the newest {rules.keep}"
    if tag.pushed is None:
        return "no push date"
    if rules.older_than is not None and now - tag.pushed < rules.older_than * DAY:
        return f"pushed {_days(now - tag.pushed)} ago"
    if rules.unused_for is not None:
        pulled_last = tag.pulled is not None and tag.pulled > tag.pushed
        last = tag.pulled if pulled_last and tag.pulled is not None else tag.pushed
        if now - last < rules.unused_for * DAY:
            return f"{'pulled' if pulled_last else 'pushed'} {_days(now - last)} ago"
    return None


def _why_delete(tag: TagInfo, now: float) -> str:
    pushed = f"pushed {_days(now - tag.pushed)} ago" if tag.pushed is not None else "push date unknown"
    pulled = f"pulled {_days(now - tag.pulled)} ago" if tag.pulled is not None else "never pulled"
    return f"{pushed}, {pulled}"


def decide(
    tags: Sequence[TagInfo], rules: Rules, *, protected: Protected, now: float, by_digest: bool
) -> list[Decision]:
    """Keep or delete each tag (newest first). With `by_digest`, a tag whose digest is unknown is kept, and a tag
    to delete whose digest a kept tag shares is kept too (deleting the digest would take the kept tag)."""
    ordered = _newest_first(tags)
    newest = {t.name for t in ordered[: rules.keep]} if rules.keep is not None else set()
    decisions: list[Decision] = []
    for tag in ordered:
        if protected.covers(tag):
            decisions.append(Decision(tag, False, "named in the hub's values"))
        elif by_digest and tag.digest is None:
            decisions.append(Decision(tag, False, "digest unknown"))
        elif (reason := _retained(tag, rules, newest=newest, now=now)) is not None:
            decisions.append(Decision(tag, False, reason))
        else:
            decisions.append(Decision(tag, True, _why_delete(tag, now)))
    if not by_digest:
        return decisions
    kept = {d.tag.digest: d.tag.name for d in decisions if not d.delete}
    return [
        Decision(d.tag, False, f"shares its digest with {kept[d.tag.digest]}")
        if d.delete and d.tag.digest in kept
        else d
        for d in decisions
    ]
