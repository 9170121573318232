"""Command line: parse options, call one flow per command, map errors to exit codes, write stdout once.

Each command's --help groups its options in panels (cli/panels.py); the options commands share are declared once
in cli/options.py.

Flows and the libraries they need (requests, ruamel.yaml, hcl2) are imported inside the commands: shell
completion runs this program on every Tab, so start-up must stay close to typer's own. Commands live one per
module and are registered here explicitly (no import side effects).
"""

from __future__ import annotations

from typing import Annotated

import typer

from provision import __version__
from provision.cli.dockerhub import dockerhub
from provision.cli.doctor import doctor
from provision.cli.gcp import gcp
from provision.cli.panels import PanelledCommand
from provision.cli.profile import profile
from provision.cli.prune import prune
from provision.cli.quay import quay
from provision.cli.remove import remove
from provision.cli.verify import verify

app = typer.Typer(
    name="provision",
    help="Give a JupyterHub an image registry: create the registry credentials for BinderHub and print the "
    "hub's Helm values. Secret values go to stdout (pipe them into sops); everything else goes to stderr.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would include tokens
    rich_markup_mode=None,
)
app.command(cls=PanelledCommand)(quay)
app.command(cls=PanelledCommand)(gcp)
app.command(cls=PanelledCommand)(dockerhub)
app.command(cls=PanelledCommand)(profile)
app.command(cls=PanelledCommand)(verify)
app.command(cls=PanelledCommand)(doctor)
app.command(cls=PanelledCommand)(prune)
app.add_typer(remove)


def _version(value: bool) -> None:
    if value:
        from provision.console import emit

        emit(f"provision {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Give a JupyterHub an image registry."""


def main() -> None:
    app()
