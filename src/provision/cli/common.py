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
from typer.exceptions import Abort, TyperException

from provision.errors import EXIT_FAILURE, EXIT_INTERRUPTED, PromptInterrupted, ProvisionError, UsageError

if TYPE_CHECKING:
    # Imported inside the functions: `provision --help` and shell completion never need them.
    from provision.console import Reporter
    from provision.hubconfig import HubOptions, HubRegistry, Profile
    from provision.hubfiles.secret_file import SecretState
    from provision.hubfiles.write import FilesRequest, Published


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
DeadlineSeconds = Annotated[
    float,
    typer.Option(
        "--deadline",
        min=1,
        help="Give up on the registry's API after this many seconds in all (retries and waits included).",
    ),
]
AllowHttp = Annotated[
    bool,
    typer.Option(
        "--allow-http",
        # The text is endpoints.ALLOW_HTTP_HELP (not imported: start-up).
        help="Allow an http:// server that is not on this machine. Everything sent to it, the API token or "
        "password included, crosses the network unencrypted: only for a server reached through a trusted tunnel.",
    ),
]
DEFAULT_DEADLINE = 120.0  # the same as httpretry.DEFAULT_DEADLINE, which the CLI does not import (start-up)
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
CopySharedProfiles = Annotated[
    bool,
    typer.Option(
        "--copy-shared-profiles",
        help="When a file listed before --values-file in --cluster-config (common.values.yaml) defines the hub's "
        "profileList, copy its profiles into --values-file with the image-building profile (Helm replaces lists "
        "whole); without it provision refuses.",
        rich_help_panel="Hub files",
    ),
]
ChartOption = Annotated[
    ChartChoice | None,
    typer.Option(
        "--chart",
        help="basehub (2i2c), daskhub (values under basehub:) or z2jh (plain Zero to "
        "JupyterHub); default: the hub's helm_chart in --cluster-config, else in the cluster.yaml beside the hub "
        "files, else (with --cluster) in config/clusters/<cluster>/cluster.yaml, else basehub.",
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
DefaultImage = Annotated[
    str | None,
    typer.Option(
        "--default-image",
        metavar="SLUG",
        help="The image choice selected by default (one of --image, --images-file or the values file's choices); "
        "default: the one already marked, else the first.",
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
        help="Seconds to wait for the registry to accept the new credential (new GCP keys take a while); the "
        "proof's last attempt gets 30 s more, then a registry that does not answer ends it.",
        rich_help_panel=_ROTATION,
    ),
]


INTERRUPTED_MIDWAY = "interrupted; re-run the same command to finish: steps already done are skipped"
INTERRUPTED_READ_ONLY = "interrupted; nothing was changed"  # commands that never write (verify, doctor)
INTERRUPTED_AT_PROMPT = "interrupted at the confirmation prompt; nothing was changed"


@contextmanager
def handled(reporter: Reporter, *, debug: bool, on_interrupt: str = INTERRUPTED_MIDWAY) -> Iterator[None]:
    """The one place that maps errors to exit codes: 1 operational, 2 usage, 130 interrupted.

    `on_interrupt` is what Ctrl-C says: the default suits commands that change things step by step; read-only
    commands pass INTERRUPTED_READ_ONLY. Ctrl-C at a confirmation prompt (PromptInterrupted) says nothing changed.

    Every message goes through the reporter, so it is redacted of every secret the run has met. Anticipated
    failures (ProvisionError) are one paragraph; anything else is a bug, reported as one paragraph too (its type and
    redacted text) with the advice to re-run with --debug, which adds the traceback (redacted as well).
    """
    from provision.errors import secrets_scope

    with secrets_scope(), _logs_through(reporter):
        try:
            yield
        except ProvisionError as exc:
            reporter.error(str(exc))
            if debug:
                reporter.always(_traceback(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            if isinstance(exc, PromptInterrupted):
                left = f"interrupted at the confirmation prompt; nothing was applied, but {exc.left}"
                reporter.error(left if exc.left else INTERRUPTED_AT_PROMPT)
            else:
                reporter.error(on_interrupt)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, Abort, TyperException):
            raise  # typer's own ways out (exit codes, usage errors) keep their meaning
        except Exception as exc:
            text = " ".join(str(exc).split()) or "no details"
            reporter.error(
                f"unexpected {type(exc).__name__}: {text}. This is a bug in provision, not in your input. "
                + ("The traceback follows." if debug else "Re-run with --debug to see the traceback, and report it.")
            )
            if debug:
                reporter.always(_traceback(exc))
            raise typer.Exit(EXIT_FAILURE) from None


def _traceback(exc: BaseException) -> str:
    """The chained traceback as plain text, without locals (they would hold tokens); the reporter redacts it."""
    import traceback

    return "".join(traceback.format_exception(exc)).rstrip()


@contextmanager
def _logs_through(reporter: Reporter) -> Iterator[None]:
    """For the run, the `provision` loggers write through the reporter (redacted): retries at normal verbosity,
    each API call with -v. The logger is put back afterwards (tests run many commands in one process)."""
    import logging

    logger = logging.getLogger("provision")
    handlers, level = logger.handlers[:], logger.level
    logger.handlers[:] = [reporter.log_handler()]
    logger.setLevel(logging.DEBUG if reporter.verbose else logging.INFO)
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    from provision.console import Reporter

    return Reporter(quiet=quiet, verbose=verbose)


def read_token(env_var: str, token_file: Path | None) -> str | None:
    """The API token, from --token-file or the environment; never from an argument value.

    Surrounding whitespace (a trailing newline) is dropped. A token that no HTTP header can carry (inner
    whitespace, a second line, control or non-ASCII characters) is a usage error naming where it came from,
    never the token. Raises UsageError.
    """
    from provision.errors import add_secret
    from provision.files import read_input

    source = f"--token-file {str(token_file)!r}" if token_file is not None else env_var
    if token_file is not None:
        try:
            raw = read_input(token_file, label="--token-file", max_bytes=64 * 1024)
        except FileNotFoundError:
            raise UsageError(f"cannot read --token-file {str(token_file)!r}: No such file or directory") from None
    else:
        raw = os.environ.get(env_var, "")
    add_secret(raw)
    token = raw.strip()
    if not token:
        if token_file is not None:
            raise UsageError(f"--token-file {str(token_file)!r} is empty")
        return None
    problem = token_problem(token)
    if problem:
        raise UsageError(
            f"the token in {source} {problem}: a token is one line of printable ASCII characters. "
            "Check that it was copied whole and alone (no second line, no spaces)"
        )
    return token


def token_problem(token: str) -> str | None:
    """Why the token cannot go into an HTTP header (None when it can); never quotes the token."""
    if any(c in "\r\n" for c in token):
        return "has more than one line"
    if any(c.isspace() for c in token):
        return "contains whitespace"
    if not token.isascii():
        return "contains a non-ASCII character"
    if not token.isprintable():
        return "contains a control character"
    return None


def guard_terminal(*, show_secrets: bool, dry_run: bool, secret_file: Path | None = None) -> None:
    """Refuse, before any change, to print secrets on a terminal."""
    if not dry_run and secret_file is None and not show_secrets and sys.stdout.isatty():
        raise UsageError(
            "stdout is a terminal and would show the registry password; pipe it into sops, e.g. "
            "`... | sops encrypt --filename-override enc-HUB.secret.values.yaml --output enc-HUB.secret.values.yaml`, "
            "or pass --secret-file, or --show-secrets"
        )


def profile_from(
    images: list[str] | None, images_file: Path | None, flag: bool, default: str | None = None
) -> Profile | None:
    """The image-building profile asked for by --image, --images-file, --default-image or --profile (None when
    none is). Whether it has any image choice is checked against the hub's values file later (check_profile)."""
    from provision.files import read_input
    from provision.hubconfig import ImageChoice, Profile, images_from_yaml

    choices: list[ImageChoice] = [ImageChoice.parse(spec) for spec in images or ()]
    if images_file is not None:
        try:
            text = read_input(images_file, label="--images-file")
        except FileNotFoundError:
            raise UsageError(f"--images-file {str(images_file)!r} does not exist") from None
        choices += images_from_yaml(text, source=f"--images-file {str(images_file)!r}")
    if len({c.slug for c in choices}) != len(choices):
        raise UsageError("image slugs must be unique")
    marked = [c.slug for c in choices if c.default]
    if default is not None and marked and marked != [default]:
        raise UsageError(f"--default-image {default!r} and the images file's default {marked[0]!r} disagree")
    if not choices and not flag and default is None:
        return None
    return Profile(images=tuple(choices), default=default or (marked[0] if marked else None))


def files_request(
    *,
    values_file: Path | None,
    secret_file: Path | None,
    cluster_config: Path | None,
    hub: str | None,
    copy_shared_profiles: bool = False,
) -> FilesRequest:
    from provision.hubfiles.write import FilesRequest

    return FilesRequest(
        values_file,
        secret_file,
        cluster_config,
        hub,
        sops_bin=os.environ.get("SOPS_BIN") or None,
        copy_shared_profiles=copy_shared_profiles,
    )


def hub_options(
    files: FilesRequest,
    *,
    chart: ChartChoice | None,
    dask_gateway: bool,
    profile: Profile | None,
    cluster: str | None = None,
    reporter: Reporter | None = None,
) -> HubOptions:
    from provision.hubconfig import HubOptions
    from provision.hubfiles.write import chart_for, check_profile

    resolved = chart_for(files, chart.value if chart else None, cluster=cluster, reporter=reporter)
    # Hubs on the legacy daskhub chart run dask-gateway (they set dask-gateway.enabled; basehub defaults it off):
    # give its pods the pull secret without being asked. Harmless where dask-gateway is off.
    options = HubOptions(chart=resolved, dask_gateway=dask_gateway or resolved == "daskhub", profile=profile)
    check_profile(files, options)  # before any change: a profile with no image choice is refused
    return options


def finish(
    reporter: Reporter, published: Published, *, fmt: OutputFormat, dry_run: bool, summary: dict[str, Any]
) -> None:
    """Write the machine output to stdout, once: the secret values, unless they went into --secret-file.

    JSON names the chart; for z2jh, public_values and secret_values are keyed by release (jupyterhub,
    binderhub-service), each value a whole values document for that chart.
    """
    from provision.console import emit, to_json

    summary = {"chart": published.chart, **summary}

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
        emit(published.documents(published.secret))


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
    verify: bool = True
    verify_registry_url: str | None = None
    verify_ar_endpoint: str | None = None
    verify_timeout: float = 60.0

    def reporter(self) -> Reporter:
        return make_reporter(quiet=self.quiet, verbose=self.verbose)

    def prepare_hub_files(
        self, *, hub: str | None, cluster: str | None = None, reporter: Reporter | None = None
    ) -> HubFiles:
        """Check every local input before the command's first remote write: the hub-file options, the terminal, the
        values files (they parse), the secret file (it decrypts; a new one has a creation rule with usable keys).

        The decrypted secrets stay in memory in the result, for the merge after the remote work (no second decrypt).
        `cluster` and `reporter`: where the chart is looked for, and told (hubfiles.chart_for).
        """
        from provision.hubfiles import preflight
        from provision.hubfiles import write as hubfiles

        files = files_request(
            values_file=self.values_file,
            secret_file=self.secret_file,
            cluster_config=self.cluster_config,
            hub=hub,
            copy_shared_profiles=self.copy_shared_profiles,
        )
        sops_binary = hubfiles.validate(files)
        preflight.check_hub_files(files)
        profile = profile_from(self.image, self.images_file, self.profile, self.default_image)
        options = hub_options(files, chart=self.chart, dask_gateway=self.dask_gateway, profile=profile,
                              cluster=cluster, reporter=reporter)  # fmt: skip
        guard_terminal(show_secrets=self.show_secrets, dry_run=self.dry_run, secret_file=self.secret_file)
        state = hubfiles.preflight(files, sops_binary=sops_binary, chart=options.chart, options=options)
        return HubFiles(files, options, sops_binary, state)


# (option name, typer annotation, default), in --help order after each command's own options.
REGISTRY_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("values_file", ValuesFile, None),
    ("secret_file", SecretFile, None),
    ("cluster_config", ClusterConfig, None),
    ("copy_shared_profiles", CopySharedProfiles, False),
    ("chart", ChartOption, None),
    ("dask_gateway", DaskGateway, False),
    ("image", Images, None),
    ("images_file", ImagesFile, None),
    ("profile", ProfileFlag, False),
    ("default_image", DefaultImage, None),
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
    from provision.hubfiles import write as hubfiles

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
