"""The options more than one command shares, each declared once as an `Annotated` alias, and their --help panels.

A command lists the aliases it takes in its own signature (typer reads options from there); the registry commands
then gather theirs into one RegistryOptions with `RegistryOptions.of(locals())`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    # Imported inside the functions: `provision --help` and shell completion never need them.
    from provision.console import Reporter
    from provision.hubfiles.edits import FilesRequest
    from provision.verbs.deliver import Delivery

# The --help panels (cli/panels.py prints them).
REGISTRY = "Registry"  # the kind's own options: what to create on which server
HUB_FILES = "Hub files"  # where the hub's values go, and their shape
RUN = "Run"  # what the run may change without asking
OUTPUT = "Output"  # stdout and stderr
LIMITS = "Limits"  # how long the run may wait
ROTATION = "After --rotate"  # the proof of a rotated credential (issue 13)
RETENTION = "Retention"  # how long the registry keeps built images (issue 20)
PANELS = (REGISTRY, RETENTION, HUB_FILES, RUN, LIMITS, ROTATION, OUTPUT)  # a command's own panels come before these

DEFAULT_DEADLINE = 120.0  # the same as httpretry.DEFAULT_DEADLINE, which the CLI does not import (start-up)


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"


class ChartChoice(StrEnum):
    basehub = "basehub"
    daskhub = "daskhub"
    z2jh = "z2jh"


# Output and run options, shared by every command.
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Hide progress (summaries and errors stay).", rich_help_panel=OUTPUT)
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show each API call (never secrets).", rich_help_panel=OUTPUT)
]
Debug = Annotated[bool, typer.Option("--debug", help="Add the traceback to error messages.", rich_help_panel=OUTPUT)]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change and change nothing.", rich_help_panel=RUN)
]
ShowSecrets = Annotated[
    bool,
    typer.Option(
        "--show-secrets", help="Allow printing the secret values when stdout is a terminal.", rich_help_panel=OUTPUT
    ),
]
Format = Annotated[
    OutputFormat,
    typer.Option("--format", help="stdout format: the secret values as YAML, or JSON.", rich_help_panel=OUTPUT),
]

# Registry API options, shared by the Quay and Docker Hub commands (create and remove).
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Read the API token from this file instead of the environment.",
        dir_okay=False,
        rich_help_panel=REGISTRY,
    ),
]
AllowHttp = Annotated[
    bool,
    typer.Option(
        "--allow-http",
        # The text is endpoints.ALLOW_HTTP_HELP (not imported: start-up).
        help="Allow an http:// server that is not on this machine. Everything sent to it, the API token or "
        "password included, crosses the network unencrypted: only for a server reached through a trusted tunnel.",
        rich_help_panel=REGISTRY,
    ),
]
DeadlineSeconds = Annotated[
    float,
    typer.Option(
        "--deadline",
        min=1,
        help="Give up on the registry's API after this many seconds in all (retries and waits included).",
        rich_help_panel=LIMITS,
    ),
]

# Hub configuration options, shared by every registry command (and `profile`).
ValuesFile = Annotated[
    Path | None,
    typer.Option(
        "--values-file",
        help="Merge the public values into this <hub>.values.yaml (comments kept).",
        dir_okay=False,
        rich_help_panel=HUB_FILES,
    ),
]
SecretFile = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help="Merge the secrets into this sops file enc-<hub>.secret.values.yaml instead of printing them "
        "(sops from SOPS_BIN, PATH or provision[sops]; an existing file keeps its recipients).",
        dir_okay=False,
        rich_help_panel=HUB_FILES,
    ),
]
ClusterConfig = Annotated[
    Path | None,
    typer.Option(
        "--cluster-config",
        help="List the written files in the hub's helm_chart_values_files here.",
        dir_okay=False,
        rich_help_panel=HUB_FILES,
    ),
]
CopySharedProfiles = Annotated[
    bool,
    typer.Option(
        "--copy-shared-profiles",
        help="When a file listed before --values-file in --cluster-config (common.values.yaml) defines the hub's "
        "profileList, copy its profiles into --values-file with the image-building profile (Helm replaces lists "
        "whole); without it provision refuses.",
        rich_help_panel=HUB_FILES,
    ),
]
ChartOption = Annotated[
    ChartChoice | None,
    typer.Option(
        "--chart",
        help="basehub (2i2c), daskhub (values under basehub:) or z2jh (plain Zero to "
        "JupyterHub); default: the hub's helm_chart in --cluster-config, else in the cluster.yaml beside the hub "
        "files, else (with --cluster) in config/clusters/<cluster>/cluster.yaml, else basehub.",
        rich_help_panel=HUB_FILES,
    ),
]
DaskGateway = Annotated[
    bool,
    typer.Option(
        "--dask-gateway", help="The hub runs dask-gateway: give dask pods the pull secret.", rich_help_panel=HUB_FILES
    ),
]
Images = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        help="Image choice SLUG=IMAGE:TAG[;DISPLAY NAME[;DESCRIPTION]] for the "
        "fancy-profiles picker (repeatable; adds the image-building profile).",
        rich_help_panel=HUB_FILES,
    ),
]
ImagesFile = Annotated[
    Path | None,
    typer.Option(
        "--images-file",
        help="YAML list of {slug, image, display_name, description} image choices.",
        exists=True,
        dir_okay=False,
        rich_help_panel=HUB_FILES,
    ),
]
DefaultImage = Annotated[
    str | None,
    typer.Option(
        "--default-image",
        metavar="SLUG",
        help="The image choice selected by default (one of --image, --images-file or the values file's choices); "
        "default: the one already marked, else the first.",
        rich_help_panel=HUB_FILES,
    ),
]
ProfileFlag = Annotated[
    bool,
    typer.Option(
        "--profile",
        help="Add the fancy-profiles image-building profile (also with no --image).",
        rich_help_panel=HUB_FILES,
    ),
]

# What --rotate does after writing the new credential: the verify checks (issue 13).
VerifyRotation = Annotated[
    bool,
    typer.Option(
        "--verify/--no-verify",
        help="After --rotate, prove the new credential with the `provision verify` checks.",
        rich_help_panel=ROTATION,
    ),
]
VerifyRegistryUrl = Annotated[
    str | None,
    typer.Option(
        "--verify-registry-url",
        help="Prove the new credential against this v2 endpoint instead of the registry's own (a mirror).",
        rich_help_panel=ROTATION,
    ),
]
VerifyArEndpoint = Annotated[
    str | None,
    typer.Option(
        "--verify-ar-endpoint", help="Artifact Registry API endpoint for the proof.", hidden=True,
        rich_help_panel=ROTATION,
    ),
]  # fmt: skip
VerifyTimeout = Annotated[
    float,
    typer.Option(
        "--verify-timeout",
        min=0,
        help="Seconds to wait for the registry to accept the new credential (new GCP keys take a while); the "
        "proof's last attempt gets 30 s more, then a registry that does not answer ends it.",
        rich_help_panel=ROTATION,
    ),
]


@dataclass(frozen=True)
class RegistryOptions:
    """The options every registry command shares (hub files, output, the proof after --rotate), as one object.

    Each field is a parameter of the same name in every registry command, declared with the alias above whose name
    is the field's in CamelCase (fmt: Format, image: Images, profile: ProfileFlag, verify: VerifyRotation).
    """

    values_file: Path | None
    secret_file: Path | None
    cluster_config: Path | None
    copy_shared_profiles: bool
    chart: ChartChoice | None
    dask_gateway: bool
    image: list[str] | None
    images_file: Path | None
    profile: bool
    default_image: str | None
    dry_run: bool
    show_secrets: bool
    fmt: OutputFormat
    quiet: bool
    verbose: bool
    debug: bool
    verify: bool
    verify_registry_url: str | None
    verify_ar_endpoint: str | None
    verify_timeout: float

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> RegistryOptions:
        """The shared options among a command's parameters: call it with locals() first thing in the command."""
        return cls(**{f.name: parameters[f.name] for f in fields(cls)})

    def reporter(self) -> Reporter:
        from provision.console import Reporter

        return Reporter(quiet=self.quiet, verbose=self.verbose)

    def delivery(self, *, hub: str | None) -> Delivery:
        """What the create flows need of these options: the hub's files, the values' shape, stdout, the proof."""
        from provision.verbs.deliver import Delivery, ProfileRequest
        from provision.verbs.rotate import ProveOptions

        proof = ProveOptions(self.verify_registry_url, self.verify_ar_endpoint, self.verify_timeout)
        return Delivery(
            files_request(values_file=self.values_file, secret_file=self.secret_file,
                          cluster_config=self.cluster_config, hub=hub, copy_shared_profiles=self.copy_shared_profiles),
            chart=self.chart.value if self.chart else None,
            dask_gateway=self.dask_gateway,
            profile=ProfileRequest(tuple(self.image or ()), self.images_file, self.profile, self.default_image),
            dry_run=self.dry_run,
            json=self.fmt is OutputFormat.json,
            show_secrets=self.show_secrets,
            stdout_is_terminal=sys.stdout.isatty(),
            proof=proof if self.verify else None,
        )  # fmt: skip


def files_request(
    *,
    values_file: Path | None,
    secret_file: Path | None,
    cluster_config: Path | None,
    hub: str | None,
    copy_shared_profiles: bool = False,
) -> FilesRequest:
    from provision.hubfiles.edits import FilesRequest

    return FilesRequest(
        values_file,
        secret_file,
        cluster_config,
        hub,
        sops_bin=os.environ.get("SOPS_BIN") or None,
        copy_shared_profiles=copy_shared_profiles,
    )


# Image retention (issue 20), shared by the registry commands that can set a server-side policy. Each kind maps
# them onto its own policies and documents how (Artifact Registry: registries/artifact_registry/retention.py).
KeepTags = Annotated[
    int | None,
    typer.Option(
        "--keep-tags",
        min=1,
        metavar="N",
        help="Keep the N most recent tags of each image; delete older ones (with --prune-older-than: only those "
        "older than DAYS).",
        rich_help_panel=RETENTION,
    ),
]
PruneOlderThan = Annotated[
    int | None,
    typer.Option(
        "--prune-older-than",
        min=1,
        metavar="DAYS",
        help="Delete images pushed more than DAYS days ago.",
        rich_help_panel=RETENTION,
    ),
]
