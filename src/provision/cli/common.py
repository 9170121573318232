"""What every command shares: option types, the error-to-exit-code mapping, tokens, and the final output."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provision.errors import EXIT_INTERRUPTED, ProvisionError, UsageError

if TYPE_CHECKING:
    # Imported inside the functions: `provision --help` and shell completion never need them.
    from provision.console import Reporter
    from provision.flows.hubfiles import FilesRequest, Published, SecretState
    from provision.hubconfig import HubOptions, HubRegistry, Profile


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"


class ChartChoice(StrEnum):
    basehub = "basehub"
    daskhub = "daskhub"
    z2jh = "z2jh"


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Hide progress (summaries and errors stay).")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show each API call (never secrets).")]
Debug = Annotated[bool, typer.Option("--debug", help="Add the traceback to error messages.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change and change nothing.")]
ShowSecrets = Annotated[
    bool, typer.Option("--show-secrets", help="Allow printing the secret values when stdout is a terminal.")
]
Format = Annotated[OutputFormat, typer.Option("--format", help="stdout format: the secret values as YAML, or JSON.")]
TokenFile = Annotated[
    Path | None,
    typer.Option("--token-file", help="Read the API token from this file instead of the environment.", dir_okay=False),
]
# Hub configuration options, shared by every registry command.
ValuesFile = Annotated[
    Path | None,
    typer.Option(
        "--values-file",
        help="Merge the public values into this <hub>.values.yaml (comments kept).",
        dir_okay=False,
        rich_help_panel="Hub files",
    ),
]
SecretFile = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help="Merge the secrets into this sops file enc-<hub>.secret.values.yaml instead of printing them "
        "(sops from SOPS_BIN, PATH or provision[sops]; an existing file keeps its recipients).",
        dir_okay=False,
        rich_help_panel="Hub files",
    ),
]
ClusterConfig = Annotated[
    Path | None,
    typer.Option(
        "--cluster-config",
        help="List the written files in the hub's helm_chart_values_files here.",
        dir_okay=False,
        rich_help_panel="Hub files",
    ),
]
ChartOption = Annotated[
    ChartChoice | None,
    typer.Option(
        "--chart",
        help="basehub (2i2c), daskhub (values under basehub:) or z2jh (plain Zero to "
        "JupyterHub); default: the hub's helm_chart in --cluster-config, else basehub.",
        rich_help_panel="Hub files",
    ),
]
DaskGateway = Annotated[
    bool,
    typer.Option(
        "--dask-gateway", help="The hub runs dask-gateway: give dask pods the pull secret.", rich_help_panel="Hub files"
    ),
]
Images = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        help="Image choice SLUG=IMAGE:TAG[;DISPLAY NAME[;DESCRIPTION]] for the "
        "fancy-profiles picker (repeatable; adds the image-building profile).",
        rich_help_panel="Hub files",
    ),
]
ImagesFile = Annotated[
    Path | None,
    typer.Option(
        "--images-file",
        help="YAML list of {slug, image, display_name, description} image choices.",
        exists=True,
        dir_okay=False,
        rich_help_panel="Hub files",
    ),
]
ProfileFlag = Annotated[
    bool,
    typer.Option(
        "--profile",
        help="Add the fancy-profiles image-building profile (also with no --image).",
        rich_help_panel="Hub files",
    ),
]

# What --rotate does after writing the new credential: the verify checks (issue 13).
_ROTATION = "After --rotate"
VerifyRotation = Annotated[
    bool,
    typer.Option(
        "--verify/--no-verify",
        help="After --rotate, prove the new credential with the `provision verify` checks.",
        rich_help_panel=_ROTATION,
    ),
]
VerifyRegistryUrl = Annotated[
    str | None,
    typer.Option(
        "--verify-registry-url",
        help="Prove the new credential against this v2 endpoint instead of the registry's own (a mirror).",
        rich_help_panel=_ROTATION,
    ),
]
VerifyArEndpoint = Annotated[
    str | None,
    typer.Option(
        "--verify-ar-endpoint", help="Artifact Registry API endpoint for the proof.", hidden=True,
        rich_help_panel=_ROTATION,
    ),
]  # fmt: skip
VerifyTimeout = Annotated[
    float,
    typer.Option(
        "--verify-timeout",
        min=0,
        help="Seconds to wait for the registry to accept the new credential (new GCP keys take a while).",
        rich_help_panel=_ROTATION,
    ),
]


@contextmanager
def handled(reporter: Reporter, *, debug: bool) -> Iterator[None]:
    """The one place that maps errors to exit codes: 1 operational, 2 usage, 130 interrupted."""
    try:
        yield
    except ProvisionError as exc:
        reporter.error(str(exc))
        if debug:
            import traceback

            reporter.always("".join(traceback.format_exception(exc)))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        reporter.error("interrupted; re-run the same command to finish: steps already done are skipped")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    from provision.console import Reporter

    reporter = Reporter(quiet=quiet, verbose=verbose)
    if verbose:
        import logging  # ~15 ms: only when asked for

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
        logger = logging.getLogger("provision")
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG)
    return reporter


def read_token(env_var: str, token_file: Path | None) -> str | None:
    """The API token, from --token-file or the environment; never from an argument value."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {str(token_file)!r}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {str(token_file)!r} is empty")
        return token
    return os.environ.get(env_var, "").strip() or None


def guard_terminal(*, show_secrets: bool, dry_run: bool, secret_file: Path | None = None) -> None:
    """Refuse, before any change, to print secrets on a terminal."""
    if not dry_run and secret_file is None and not show_secrets and sys.stdout.isatty():
        raise UsageError(
            "stdout is a terminal and would show the registry password; pipe it into sops, e.g. "
            "`... | sops encrypt --filename-override enc-HUB.secret.values.yaml --output enc-HUB.secret.values.yaml`, "
            "or pass --secret-file, or --show-secrets"
        )


def profile_from(images: list[str] | None, images_file: Path | None, flag: bool) -> Profile | None:
    """The image-building profile asked for by --image, --images-file or --profile (None when none is)."""
    from provision.hubconfig import ImageChoice, Profile, images_from_yaml

    choices: list[ImageChoice] = [ImageChoice.parse(spec) for spec in images or ()]
    if images_file is not None:
        choices += images_from_yaml(images_file.read_text(encoding="utf-8"), source=str(images_file))
    if len({c.slug for c in choices}) != len(choices):
        raise UsageError("image slugs must be unique")
    if not choices and not flag:
        return None
    return Profile(images=tuple(choices))


def files_request(
    *, values_file: Path | None, secret_file: Path | None, cluster_config: Path | None, hub: str | None
) -> FilesRequest:
    from provision.flows.hubfiles import FilesRequest

    return FilesRequest(values_file, secret_file, cluster_config, hub, sops_bin=os.environ.get("SOPS_BIN") or None)


def hub_options(
    files: FilesRequest, *, chart: ChartChoice | None, dask_gateway: bool, profile: Profile | None
) -> HubOptions:
    from provision.flows.hubfiles import chart_for
    from provision.hubconfig import HubOptions

    resolved = chart_for(files, chart.value if chart else None)
    # The daskhub chart runs dask-gateway by default: its pods need the pull secret without being asked.
    return HubOptions(chart=resolved, dask_gateway=dask_gateway or resolved == "daskhub", profile=profile)


def finish(
    reporter: Reporter, published: Published, *, fmt: OutputFormat, dry_run: bool, summary: dict[str, Any]
) -> None:
    """Write the machine output to stdout, once: the secret values, unless they went into --secret-file."""
    from provision.console import emit, to_json, to_yaml

    if dry_run:
        reporter.always("dry run: nothing was changed")
        if fmt is OutputFormat.json:
            emit(to_json({"dry_run": True, **summary, "public_values": published.public}))
        return
    if published.written:
        reporter.always("written: " + ", ".join(published.written))
    if published.secret_in_file:
        if fmt is OutputFormat.json:
            emit(to_json({**summary, "public_values": published.public, "written": list(published.written)}))
        return
    if fmt is OutputFormat.json:
        emit(to_json({**summary, "public_values": published.public, "secret_values": published.secret}))
    else:
        emit(to_yaml(published.secret))


@dataclass(frozen=True)
class HubFiles:
    """What a registry command will do with the values: the files to write, the values' shape, the sops binary."""

    files: FilesRequest
    options: HubOptions
    sops_binary: str | None
    secret_state: SecretState | None = None  # the secret file as read before the first remote write


@dataclass(frozen=True)
class RegistryOptions:
    """The options every registry command shares (hub files, output, verbosity), handed over as one object."""

    values_file: Path | None
    secret_file: Path | None
    cluster_config: Path | None
    chart: ChartChoice | None
    dask_gateway: bool
    image: list[str] | None
    images_file: Path | None
    profile: bool
    dry_run: bool
    show_secrets: bool
    fmt: OutputFormat
    quiet: bool
    verbose: bool
    debug: bool
    verify: bool = True
    verify_registry_url: str | None = None
    verify_ar_endpoint: str | None = None
    verify_timeout: float = 60.0

    def reporter(self) -> Reporter:
        return make_reporter(quiet=self.quiet, verbose=self.verbose)

    def prepare_hub_files(self, *, hub: str | None) -> HubFiles:
        """Check every local input before the command's first remote write: the hub-file options, the terminal, the
        values files (they parse), the secret file (it decrypts; a new one has a creation rule with usable keys).

        The decrypted secrets stay in memory in the result, for the merge after the remote work (no second decrypt).
        """
        from provision.flows import hubfiles

        files = files_request(
            values_file=self.values_file, secret_file=self.secret_file, cluster_config=self.cluster_config, hub=hub
        )
        sops_binary = hubfiles.validate(files)
        profile = profile_from(self.image, self.images_file, self.profile)
        options = hub_options(files, chart=self.chart, dask_gateway=self.dask_gateway, profile=profile)
        guard_terminal(show_secrets=self.show_secrets, dry_run=self.dry_run, secret_file=self.secret_file)
        state = hubfiles.preflight(files, sops_binary=sops_binary)
        return HubFiles(files, options, sops_binary, state)


# (option name, typer annotation, default), in --help order after each command's own options.
REGISTRY_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("values_file", ValuesFile, None),
    ("secret_file", SecretFile, None),
    ("cluster_config", ClusterConfig, None),
    ("chart", ChartOption, None),
    ("dask_gateway", DaskGateway, False),
    ("image", Images, None),
    ("images_file", ImagesFile, None),
    ("profile", ProfileFlag, False),
    ("dry_run", DryRun, False),
    ("show_secrets", ShowSecrets, False),
    ("fmt", Format, OutputFormat.yaml),
    ("quiet", Quiet, False),
    ("verbose", Verbose, False),
    ("debug", Debug, False),
    ("verify", VerifyRotation, True),
    ("verify_registry_url", VerifyRegistryUrl, None),
    ("verify_ar_endpoint", VerifyArEndpoint, None),
    ("verify_timeout", VerifyTimeout, 60.0),
)


def registry_command(command: Callable[..., None]) -> Callable[..., None]:
    """Give a registry command the shared options, as its keyword argument `options: RegistryOptions`."""
    return with_shared_options(REGISTRY_OPTIONS, RegistryOptions)(command)


def with_shared_options(
    table: tuple[tuple[str, Any, Any], ...], make: Callable[..., Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator that gives a command the options of `table`, as its keyword argument `options=make(**those)`.

    typer reads a command's parameters from its signature, so the shared ones are added to the signature here
    once instead of being declared, and forwarded one by one, in every command of a group.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
        shared = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, annotation, default in table
        ]

        @functools.wraps(command)
        def with_options(**kwargs: Any) -> None:
            options = make(**{name: kwargs.pop(name) for name, _, _ in table})
            command(**kwargs, options=options)

        with_options.__signature__ = inspect.Signature([*own, *shared], return_annotation=None)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in [*own, *shared]}
        return with_options

    return decorate


def publish(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    fmt: OutputFormat,
    dry_run: bool,
    summary: dict[str, Any],
) -> None:
    """Render and write the hub's values, then print the machine output."""
    from provision.flows import hubfiles

    published = hubfiles.publish(
        registry,
        prepared.options,
        prepared.files,
        sops_binary=prepared.sops_binary,
        state=prepared.secret_state,
        reporter=reporter,
        dry_run=dry_run,
    )
    finish(reporter, published, fmt=fmt, dry_run=dry_run, summary=summary)
