"""Option combinations a command refuses, as a table of rules checked by one function (check).

A rule reads like its message: "when these are given and those are not, these others may not be given (or must
all be)". The first rule broken raises its UsageError (exit 2), so the table's order decides which message a user
who got several things wrong sees first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.errors import UsageError


@dataclass(frozen=True)
class Rule:
    """`message` may name the options at fault: {names} (all of them, comma-separated) or {first}."""

    message: str
    when: tuple[str, ...] = ()  # the rule applies when all of these are given...
    unless: tuple[str, ...] = ()  # ...and none of these is
    refuse: tuple[str, ...] = ()  # then giving any of these is an error
    need: tuple[str, ...] = ()  # and so is leaving any of these empty


def given(value: Any) -> bool:
    """Whether an option was given: a flag set, a value (even an empty string), a repeatable option used."""
    return value is not None and value is not False and value != []


def check(rules: Sequence[Rule], options: Mapping[str, Any]) -> None:
    """Raise the UsageError of the first rule that `options` (option name -> parsed value) break."""
    for rule in rules:
        if not all(given(options[name]) for name in rule.when) or any(given(options[name]) for name in rule.unless):
            continue
        refused = [name for name in rule.refuse if given(options[name])]
        if refused or any(not options[name] for name in rule.need):
            raise UsageError(rule.message.format(names=", ".join(refused), first=refused[0] if refused else ""))
