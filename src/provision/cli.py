"""Command line: parse options, call one flow per command, map errors to exit codes, write stdout once.

Flows and the libraries they need (requests, ruamel.yaml) are imported inside the commands: shell completion
runs this program on every Tab, so start-up must stay close to typer's own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from provision import __version__
from provision.console import Reporter, ask, emit, to_json, to_yaml
from provision.errors import EXIT_INTERRUPTED, ProvisionError, UsageError
from provision.hubconfig import HubRegistry, public_values, secret_values

app = typer.Typer(
    name="provision",
    help="Give a JupyterHub an image registry: create the registry credentials for BinderHub and print the "
    "hub's Helm values. Secret values go to stdout (pipe them into sops); everything else goes to stderr.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would include tokens
    rich_markup_mode=None,
)


class OutputFormat(StrEnum):
    yaml = "yaml"
    json = "json"


class QuayTeam(StrEnum):
    owners = "owners"
    creator = "creator"


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


def _version(value: bool) -> None:
    if value:
        emit(f"provision {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Give a JupyterHub an image registry."""


@contextmanager
def _handled(reporter: Reporter, *, debug: bool) -> Iterator[None]:
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


def _reporter(*, quiet: bool, verbose: bool) -> Reporter:
    reporter = Reporter(quiet=quiet, verbose=verbose)
    if verbose:
        import logging  # ~15 ms: only when asked for

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
        logger = logging.getLogger("provision")
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG)
    return reporter


def _read_token(env_var: str, token_file: Path | None) -> str | None:
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


def _guard_terminal(*, show_secrets: bool, dry_run: bool) -> None:
    """Refuse, before any change, to print secrets on a terminal."""
    if not dry_run and not show_secrets and sys.stdout.isatty():
        raise UsageError(
            "stdout is a terminal and would show the registry password; pipe it into sops, e.g. "
            "`... | sops encrypt --filename-override enc-HUB.secret.values.yaml --output enc-HUB.secret.values.yaml`, "
            "or pass --show-secrets"
        )


def _finish(
    reporter: Reporter,
    *,
    fmt: OutputFormat,
    dry_run: bool,
    registry: HubRegistry,
    summary: dict[str, Any],
) -> None:
    """Print the public values to stderr and the machine output (the secret values) to stdout, once."""
    public = public_values(registry)
    reporter.always("")
    reporter.always("public values (for <hub>.values.yaml):")
    reporter.always(to_yaml(public).rstrip())
    if dry_run:
        reporter.always("dry run: nothing was changed")
        if fmt is OutputFormat.json:
            emit(to_json({"dry_run": True, **summary, "public_values": public}))
        return
    secret = secret_values(registry)
    if fmt is OutputFormat.json:
        emit(to_json({**summary, "public_values": public, "secret_values": secret}))
    else:
        emit(to_yaml(secret))


@app.command()
def quay(
    org: Annotated[str, typer.Option("--org", help="Quay organization that holds the hub's images.")],
    robot: Annotated[str, typer.Option("--robot", help="Robot account short name.")] = "image_builder",
    cluster: Annotated[str | None, typer.Option("--cluster", help="Cluster name, for the image prefix.")] = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Hub name: image prefix <host>/<org>/<cluster>-<hub>-.")
    ] = None,
    member: Annotated[
        list[str] | None, typer.Option("--member", help="Quay user to add to the owners team (repeatable).")
    ] = None,
    team: Annotated[
        QuayTeam,
        typer.Option("--team", help="Team for the robot: owners (admin) or creator (may only create and push repos)."),
    ] = QuayTeam.owners,
    email: Annotated[str | None, typer.Option("--email", help="Organization e-mail (quay.io requires one).")] = None,
    api_url: Annotated[
        str, typer.Option("--api-url", help="Quay server (any self-hosted Quay works).")
    ] = "https://quay.io",
    shared_org: Annotated[
        bool,
        typer.Option("--shared-org", help="Only look up an existing organization and robot (no changes)."),
    ] = False,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Regenerate the robot token (the old one stops working).")
    ] = False,
    token_file: TokenFile = None,
    dry_run: DryRun = False,
    show_secrets: ShowSecrets = False,
    fmt: Format = OutputFormat.yaml,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Create (or reuse) a Quay organization, robot and team for a hub; print its values.

    The API token comes from QUAY_TOKEN or --token-file and needs the scopes org:admin and user:admin.
    """
    reporter = _reporter(quiet=quiet, verbose=verbose)
    with _handled(reporter, debug=debug):
        from provision.flows import quay as flow

        request = flow.QuayRequest(
            org=org,
            api_url=api_url,
            robot=robot,
            cluster=cluster,
            hub=hub,
            members=tuple(member or ()),
            team=team.value,
            email=email,
            shared_org=shared_org,
            rotate=rotate,
            token=_read_token("QUAY_TOKEN", token_file),
        )
        flow.validate(request)
        _guard_terminal(show_secrets=show_secrets, dry_run=dry_run)
        result = flow.run(request, reporter=reporter, dry_run=dry_run)
        if not dry_run:
            reporter.always(
                "summary: " + ("; ".join(result.applied) if result.applied else "nothing to do, no change made")
            )
            for line in result.member_report:
                reporter.always(f"  {line}")
        summary = {
            "changes": [c.describe() for c in result.plan.changes],
            "present": list(result.plan.present),
            "members": list(result.member_report),
        }
        _finish(
            reporter,
            fmt=fmt,
            dry_run=dry_run,
            registry=result.registry,
            summary=summary,
        )


@app.command()
def gcp(
    cluster: Annotated[str, typer.Option("--cluster", help="Cluster name: the tfvars file and workspace default.")],
    hub: Annotated[str, typer.Option("--hub", help="Hub name; also the repository name unless --repo is given.")],
    repo: Annotated[
        str | None, typer.Option("--repo", help="container_repos entry (<=18 chars), default the hub name.")
    ] = None,
    terraform_dir: Annotated[
        Path, typer.Option("--terraform-dir", help="The terraform root module.", file_okay=False)
    ] = Path("terraform/gcp"),
    var_file: Annotated[
        Path | None,
        typer.Option(
            "--var-file",
            help="tfvars file to edit (default: <terraform-dir>/projects/<cluster>.tfvars).",
            dir_okay=False,
        ),
    ] = None,
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Terraform workspace (default: the cluster).")
    ] = None,
    backend_config: Annotated[
        list[str] | None, typer.Option("--backend-config", help="Passed to terraform init (repeatable).")
    ] = None,
    terraform_bin: Annotated[
        str | None, typer.Option("--terraform-bin", help="tofu or terraform binary (default: tofu, then terraform).")
    ] = None,
    create_workspace: Annotated[
        bool, typer.Option("--create-workspace", help="Create the workspace when it does not exist.")
    ] = False,
    allow_unrelated_changes: Annotated[
        bool, typer.Option("--allow-unrelated-changes", help="Apply even if the plan changes other resources.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")] = False,
    dry_run: DryRun = False,
    show_secrets: ShowSecrets = False,
    fmt: Format = OutputFormat.yaml,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Add an Artifact Registry repository for a hub through terraform; print its values.

    Edits container_repos in the cluster's tfvars, plans, asks, applies, then reads the service-account key from
    the sensitive output registry_sa_keys (username _json_key).
    """
    reporter = _reporter(quiet=quiet, verbose=verbose)
    with _handled(reporter, debug=debug):
        from provision.flows import gcp as flow

        request = flow.GcpRequest(
            cluster=cluster,
            hub=hub,
            repo=repo,
            terraform_dir=terraform_dir,
            var_file=var_file,
            workspace=workspace,
            backend_configs=tuple(backend_config or ()),
            terraform_bin=terraform_bin,
            create_workspace=create_workspace,
            allow_unrelated_changes=allow_unrelated_changes,
            yes=yes,
        )
        flow.validate(request)
        _guard_terminal(show_secrets=show_secrets, dry_run=dry_run)
        result = flow.run(request, reporter=reporter, confirm=ask, dry_run=dry_run)
        if not dry_run:
            applied = f"applied {len(result.plan.changes)} change(s)" if result.applied else "nothing applied"
            edited = "container_repos edited" if result.tfvars_changed else "container_repos unchanged"
            reporter.always(f"summary: {edited}; {applied}; {result.processes} terraform processes")
        summary = {
            "tfvars_changed": result.tfvars_changed,
            "applied": result.applied,
            "terraform_changes": [c.describe() for c in result.plan.changes],
        }
        _finish(
            reporter,
            fmt=fmt,
            dry_run=dry_run,
            registry=result.registry,
            summary=summary,
        )


def main() -> None:
    app()
