"""What an interrupted apply says and whether the hub's tfvars entry stays, by what the state holds (the real
interrupt, through tofu, is in tests/test_cli_interrupts.py)."""

from __future__ import annotations

from pathlib import Path

from provision.errors import EXIT_INTERRUPTED
from provision.registries.artifact_registry.apply import Target, _interrupted

TARGET = Target("hub1", "container_repos", Path("projects/c1.tfvars"), "c1")


def test_nothing_of_the_hub_in_the_state_lets_the_entry_go() -> None:
    stopped = _interrupted(TARGET, [])
    assert not stopped.keeps_entry and stopped.exit_code == EXIT_INTERRUPTED
    assert str(stopped) == "interrupted during terraform apply, before any registry resource of 'hub1' was created."


def test_an_unreadable_state_keeps_the_entry_on_the_safe_side() -> None:
    stopped = _interrupted(TARGET, None)
    assert stopped.keeps_entry
    assert "the state could not be read" in str(stopped) and "'hub1' stays in container_repos" in str(stopped)
