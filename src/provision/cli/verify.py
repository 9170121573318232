"""provision verify: prove a hub's registry credentials work, without creating or changing anything."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from provision.cli.common import Debug, Quiet, Verbose, handled, make_reporter
from provision.errors import EXIT_FAILURE, UsageError


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


def verify(
    values_file: Annotated[
        Path | None, typer.Option("--values-file", help="The hub's public values (<hub>.values.yaml).", dir_okay=False)
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file", help="The hub's encrypted secrets, decrypted with sops into memory.", dir_okay=False
        ),
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the secret values (YAML) from stdin, e.g. from sops decrypt.")
    ] = False,
    server: Annotated[str | None, typer.Option("--server", help="Registry server, instead of --values-file.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Registry user name.")] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="File holding the registry password.", dir_okay=False)
    ] = None,
    image_prefix: Annotated[str | None, typer.Option("--image-prefix", help="BinderHub image_prefix.")] = None,
    registry_url: Annotated[
        str | None, typer.Option("--registry-url", help="Talk to this v2 endpoint instead of the configured server.")
    ] = None,
    ar_endpoint: Annotated[
        str | None, typer.Option("--ar-endpoint", help="Artifact Registry API endpoint (default: Google's).")
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table on stderr, or JSON on stdout.")
    ] = ReportFormat.table,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Check that a hub's registry answers, accepts its credentials and lets them push, with no side effect.

    Exit 0 only when no check failed (a check that could not be made does not fail).
    """
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        import os

        from provision.console import emit, to_json
        from provision.flows import verify as flow
        from provision.hubconfig import HubRegistry

        if values_file is not None:
            if secret_file is not None and secret_stdin:
                raise UsageError("--secret-file and --secret-stdin are alternatives")
            request = flow.request_from_files(
                values_file,
                secret_file=secret_file,
                secret_text=sys.stdin.read() if secret_stdin else None,
                sops_bin=os.environ.get("SOPS_BIN") or None,
                registry_url=registry_url,
                ar_endpoint=ar_endpoint,
            )
        elif server and username and password_file and image_prefix:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UsageError(f"cannot read --password-file {str(password_file)!r}: {exc.strerror}") from None
            hub_registry = HubRegistry(
                kind=flow.kind_of(server, username), server=server, username=username,
                image_prefix=image_prefix, password=password,
            )  # fmt: skip
            request = flow.VerifyRequest(hub_registry, None, registry_url, ar_endpoint)
        else:
            raise UsageError("give --values-file (and the secrets), or --server, --username, --password-file and "
                             "--image-prefix")  # fmt: skip
        checks = flow.run(request, reporter=reporter)
        width = max(len(c.name) for c in checks)
        for check in checks:
            reporter.always(f"{check.status:<15} {check.name:<{width}}  {check.detail}")
        failed = [c for c in checks if c.status == "fail"]
        reporter.always(f"{len(checks)} checks: {len(failed)} failed")
        if fmt is ReportFormat.json:
            emit(to_json([{"check": c.name, "status": c.status, "detail": c.detail} for c in checks]))
        if failed:
            raise typer.Exit(EXIT_FAILURE)
