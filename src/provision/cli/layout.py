"""The 2i2c layout as defaults for the registry commands: `provision quay <cluster> <hub>` (as `deployer deploy`
takes them) finds the repository's `config/clusters` from the current folder upwards, writes the files the hub's
cluster.yaml entry lists (hubfiles/layout.py), and takes the fleet's settings from `provision.toml` at the
repository root (fleetconfig.py). Options given on the command line always win; without the two words a command
runs as before (files by option, or stdout), so existing scripts keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import typer

from provision.errors import UsageError

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.fleetconfig import FleetConfig

Place = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[CLUSTER HUB]",
        show_default=False,
        help="The hub's cluster and name, as `deployer deploy` takes them. Inside a repository with config/clusters "
        "(found from the current folder upwards), the hub's values and secret files are those its cluster.yaml "
        "entry lists (new ones are named <hub>.values.yaml and enc-<hub>.secret.values.yaml and listed there), and "
        "provision.toml at the repository root gives the fleet's settings.",
    ),
]


# A command's options object: RegistryOptions or RemovalOptions (a dataclass with the three file fields).
Options = TypeVar("Options", bound=Any)


@dataclass(frozen=True)
class Placed(Generic[Options]):
    """The command's cluster, hub and options once the layout and the fleet's settings are applied."""

    cluster: str | None
    hub: str | None
    options: Options
    settings: FleetConfig


def place(
    words: list[str] | None,
    *,
    cluster: str | None,
    hub: str | None,
    options: Options,
    reporter: Reporter,
) -> Placed[Options]:
    """Apply `[CLUSTER HUB]` and provision.toml. Raises UsageError (two words needed, disagreeing options, no
    layout, an unknown cluster or hub, a bad provision.toml)."""
    from provision import fleetconfig
    from provision.hubfiles import layout

    root = layout.find_root(Path.cwd())
    settings = fleetconfig.load(root)
    if settings.path is not None:
        reporter.info(f"settings: {settings.path}")
    if not words:
        return Placed(cluster, hub, options, settings)
    if len(words) != 2:
        raise UsageError(f"give the cluster and the hub, two words (got {len(words)}): provision COMMAND CLUSTER HUB")
    for option, given, word in (("--cluster", cluster, words[0]), ("--hub", hub, words[1])):
        if given is not None and given != word:
            raise UsageError(f"{option} {given!r} and the argument {word!r} disagree: give one of them")
    if root is None:
        raise UsageError(
            f"CLUSTER HUB reads the hub's files from config/clusters, and there is none in {Path.cwd()} or above",
            hint="run it inside the infrastructure repository, or give --cluster, --hub and --values-file/"
            "--secret-file (or no file: the values go to stdout)",
        )
    if options.values_file or options.secret_file or options.cluster_config:
        return Placed(words[0], words[1], options, settings)  # files given by option win
    files = layout.hub_files(root, words[0], words[1])
    reporter.always(f"files: {files.values_file}, {files.secret_file} ({files.describe()})")
    chosen = replace(options, values_file=files.values_file, secret_file=files.secret_file,
                     cluster_config=files.cluster_config)  # fmt: skip
    return Placed(words[0], words[1], chosen, settings)


def required(value: str | None, *, option: str, setting: str | None = None) -> str:
    """An option that may come from provision.toml (`setting`): UsageError naming the ways to give it."""
    if value is None:
        where = f" (or set {setting} in provision.toml at the repository root)" if setting else ""
        raise UsageError(f"{option} is required{where}")
    return value


def setting_path(value: str | None, settings: FleetConfig, default: str) -> Path:
    """A folder named in provision.toml, relative to the repository root it sits in (else `default`, relative
    to the current folder, as an option's value is)."""
    if value is None or settings.path is None:
        return Path(default)
    return settings.path.parent / value
