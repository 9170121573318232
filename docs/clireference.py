"""A Sphinx directive that writes the command-line reference from the CLI itself: every command (nested groups
included), its help, usage, arguments and options with their help, defaults and help panel.

typer vendors its own click, which sphinx-click does not accept, so the few lines that walk the command tree are
here; what they read is what `provision COMMAND --help` shows, so the reference cannot drift from the program.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _commands(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """(name path, command) for `command` and every command below it, in the order --help lists them."""
    found = [(path, command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if not getattr(sub, "hidden", False):
            found += _commands(sub, (*path, name))
    return found


def _param_lines(param: Any) -> list[str]:
    if getattr(param, "hidden", False):
        return []
    names = ", ".join(f"``{n}``" for n in [*param.opts, *getattr(param, "secondary_opts", [])])
    if param.param_type_name == "argument":
        names = f"``{param.human_readable_name}`` (argument)"
    lines = [f"* - {names}", f"  - {(getattr(param, 'help', None) or '').strip() or '-'}"]
    default = param.default if not callable(param.default) else None
    shown = "" if default in (None, False, (), []) or getattr(param, "is_flag", False) and not default else default
    lines.append(f"  - ``{shown}``" if shown != "" else "  -")
    lines.append(f"  - {getattr(param, 'rich_help_panel', None) or ''}")
    return lines


def _rst(path: tuple[str, ...], command: Any) -> list[str]:
    title = " ".join(path)
    out = [title, "-" * len(title), ""]
    out += [(command.help or "").strip(), ""]
    params = [line for p in command.params for line in _param_lines(p)]
    if params:
        out += [".. list-table::", "   :header-rows: 1", "   :widths: 25 50 10 15", "",
                "   * - Option", "     - Meaning", "     - Default", "     - Panel"]
        out += [f"   {line}" for line in params]
        out.append("")
    return out


class ProvisionCli(SphinxDirective):
    """`.. provision-cli::`: the whole command tree of `provision`."""

    def run(self) -> list[nodes.Node]:
        import typer

        from provision.cli import app

        root = typer.main.get_command(app)
        lines: list[str] = []
        for path, command in _commands(root, ("provision",)):
            lines += _rst(path, command)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="provision --help"), container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("provision-cli", ProvisionCli)
    return {"parallel_read_safe": True}
