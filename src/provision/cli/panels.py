"""--help with the options grouped in panels, in click's plain formatter.

typer groups options by their `rich_help_panel` only in its rich help, which imports rich on every `--help` and
shell completion (start-up time, README "Benchmarks"); this command class does the same grouping in plain text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.core import TyperCommand

from provision.cli.options import PANELS

if TYPE_CHECKING:
    from typer._click import Context
    from typer._click.formatting import HelpFormatter


class PanelledCommand(TyperCommand):
    """A command whose --help lists its arguments, then its options under their panels, then the options with no
    panel (--help) under "Options". Panels of options.PANELS come in that order, after the command's own panels
    (in the order they first appear among its parameters)."""

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        unpanelled: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            panel = getattr(param, "rich_help_panel", None)
            if param.param_type_name == "argument":
                sections.setdefault("Arguments", []).append(record)
            elif panel:
                sections.setdefault(panel, []).append(record)
            else:
                unpanelled.append(record)
        ordered = sorted(sections, key=lambda title: PANELS.index(title) if title in PANELS else -1)
        if unpanelled:
            ordered.append("Options")
            sections["Options"] = unpanelled
        for title in ordered:
            records = sections[title]
            with formatter.section(title):
                formatter.write_dl(records)
