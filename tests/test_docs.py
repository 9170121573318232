"""The documentation site (docs/, Sphinx + MyST) builds with warnings as errors, and its command-line reference,
generated from the CLI itself, names every command and every option (issue 21)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import typer

from provision.cli import app
from tests.conftest import REPO


def _commands(command: object, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_docs_build_with_warnings_as_errors_and_the_reference_names_every_option(tmp_path: Path) -> None:
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    code = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
                       str(REPO / "docs"), str(out)])  # fmt: skip
    assert code == 0, "sphinx-build -W failed (see the warnings above)"
    reference = html.unescape(re.sub(r"<[^>]+>", " ", (out / "reference" / "cli.html").read_text()))
    reference = " ".join(reference.split())
    missing = []
    for path, command in _commands(typer.main.get_command(app), ("provision",)):
        if " ".join(path) not in reference:
            missing.append(" ".join(path))
        for param in getattr(command, "params", []):
            if getattr(param, "hidden", False):
                continue
            names = [param.human_readable_name] if param.param_type_name == "argument" else param.opts
            missing += [f"{' '.join(path)} {n}" for n in names if n not in reference]
    assert not missing, f"not in the generated reference: {missing}"
