"""The README stays short and its first command works on a fresh machine without a warning (issue 21)."""

from __future__ import annotations

import re
import shlex

from typer.testing import CliRunner

from provision.cli import app
from tests.conftest import REPO


def test_the_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def test_the_first_command_runs_as_written_and_warns_of_nothing() -> None:
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block is not None
    first = block.group(1).splitlines()[0]
    command = shlex.split(first.split("&& .venv/bin/provision", 1)[1])
    result = CliRunner().invoke(app, command, env={"QUAY_TOKEN": ""})
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    assert "dry run: nothing was changed" in result.stderr
