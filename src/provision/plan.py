"""What a flow will change: the same Plan is printed by --dry-run and executed by apply."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Change:
    """One side effect. `action` is a verb for humans ("create", "add", "invite"...), `kind` keys the applier."""

    kind: str
    action: str
    subject: str
    detail: str = ""
    args: tuple[str, ...] = ()  # what the applier needs (names), never shown

    def describe(self) -> str:
        text = f"{self.action} {self.subject}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class Plan:
    """Changes to make, in order, plus what was found already in place (for the summary)."""

    changes: tuple[Change, ...] = ()
    present: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes
