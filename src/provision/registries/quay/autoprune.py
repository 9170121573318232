"""Quay's auto-prune policies of an organization: the API calls (facts: ../shared/facts/retention.md §1).

`GET|POST /organization/{org}/autoprunepolicy/` and `PUT /organization/{org}/autoprunepolicy/{uuid}`, all under
the token scope org:admin. When Quay runs without FEATURE_AUTO_PRUNE (or is older than 3.10) these routes are not
registered at all: the list answers 404 like any unknown URL, which `list_org_policies` reports as None. The calls
go through the client's transport (`send`: retries, deadline, error texts and scope hints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from provision import answers
from provision.registries.quay.client import QuayClient, QuayError

KEEP_NEWEST = "number_of_tags"
OLDER_THAN = "creation_date"
# util/timedeltastring.py: an int and one unit. "m" is MINUTES there, not months; "y" is 365 days.
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"(\d+)([smhdwy])")


@dataclass(frozen=True)
class PrunePolicy:
    """One organization policy: `method` number_of_tags (value: int, the tags kept in each repository) or
    creation_date (value: "<n><unit>", the age past which a tag is pruned); `tag_pattern` limits it to matching
    tags (None: every tag). `uuid` is empty for a policy not yet created."""

    method: str
    value: int | str
    tag_pattern: str | None = None
    tag_pattern_matches: bool = True
    uuid: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrunePolicy:
        value = data["value"]
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise TypeError("value is neither an integer nor a string")
        pattern = data.get("tagPattern")
        return cls(
            method=str(data["method"]),
            value=value,
            tag_pattern=str(pattern) if pattern else None,
            tag_pattern_matches=data.get("tagPatternMatches") is not False,
            uuid=str(data.get("uuid") or ""),
        )

    def body(self) -> dict[str, Any]:
        """The request body (AutoPrunePolicyConfig); no tagPattern key for a policy on every tag."""
        body: dict[str, Any] = {"method": self.method, "value": self.value}
        if self.tag_pattern is not None:
            body.update(tagPattern=self.tag_pattern, tagPatternMatches=self.tag_pattern_matches)
        return body

    @property
    def every_tag(self) -> bool:
        """Whether the policy applies to every tag (no tag pattern)."""
        return self.tag_pattern is None

    def same_rule(self, other: PrunePolicy) -> bool:
        """Whether both prune the same tags: same method, same value (durations compared in seconds, so `4w`
        equals `28d`), same tag pattern."""
        return (
            self.method == other.method
            and _normal(self.method, self.value) == _normal(other.method, other.value)
            and (self.tag_pattern, self.tag_pattern_matches) == (other.tag_pattern, other.tag_pattern_matches)
        )

    def describe(self) -> str:
        """In words, for plans and summaries."""
        if self.method == KEEP_NEWEST:
            rule = f"keep the {self.value} newest tags of each repository"
        elif self.method == OLDER_THAN:
            rule = f"prune tags older than {_words(str(self.value))}"
        else:
            rule = f"{self.method} {self.value}"
        if self.tag_pattern is None:
            return rule
        return f"{rule}, tags {'matching' if self.tag_pattern_matches else 'not matching'} {self.tag_pattern!r}"


def days(count: int) -> str:
    """A creation_date value of `count` days: always `<n>d` (`m` would be minutes)."""
    return f"{count}d"


def list_org_policies(client: QuayClient, org: str) -> list[PrunePolicy] | None:
    """The organization's auto-prune policies, or None when this Quay has no such route (404: the feature is
    off, or Quay is older than 3.10)."""
    path = f"/organization/{_seg(org)}/autoprunepolicy/"  # the trailing slash is part of the route
    data = client.get_or_none(path)
    if data is None:
        return None

    def policies(body: dict[str, Any]) -> list[PrunePolicy]:
        return [PrunePolicy.from_dict(item) for item in body["policies"] if isinstance(item, dict)]

    return answers.parse(policies, data, server=f"Quay at {client.api_url}", call=f"GET /api/v1{path}")


def create_org_policy(client: QuayClient, org: str, policy: PrunePolicy) -> str:
    """Create the policy; returns its uuid. A create that landed although its answer was lost (a retry) or that a
    concurrent run made meanwhile (Quay refuses the duplicate with 400) is found by reading the list again."""
    path = f"/organization/{_seg(org)}/autoprunepolicy/"

    def landed() -> dict[str, str] | None:  # shaped as POST's answer
        found = next((p for p in list_org_policies(client, org) or () if p.same_rule(policy)), None)
        return {"uuid": found.uuid} if found is not None else None

    try:
        data = client.send("POST", path, body=policy.body(), recover=landed)
    except QuayError as exc:
        data = landed() if exc.status == 400 and "duplicate" in str(exc).lower() else None
        if data is None:
            raise
    return str(data.get("uuid") or "") if isinstance(data, dict) else ""


def update_org_policy(client: QuayClient, org: str, uuid: str, policy: PrunePolicy) -> None:
    """Replace the policy's method, value and tag pattern (a PUT: repeating it is harmless)."""
    path = f"/organization/{_seg(org)}/autoprunepolicy/{_seg(uuid)}"
    client.send("PUT", path, body=policy.body())


def _seg(value: str) -> str:
    return quote(value, safe="+")


def _normal(method: str, value: int | str) -> int | str:
    """A value in one unit, for comparison: seconds for a creation_date duration."""
    if method != OLDER_THAN or not isinstance(value, str):
        return value
    match = _DURATION.fullmatch(value.strip())
    return int(match[1]) * _UNIT_SECONDS[match[2]] if match else value


def _words(value: str) -> str:
    names = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "y": "years"}
    match = _DURATION.fullmatch(value.strip())
    return f"{match[1]} {names[match[2]]}" if match else value
