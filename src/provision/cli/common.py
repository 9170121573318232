"""What every command does the same way: map errors to exit codes (handled), report on stderr, read API tokens.

The options commands share are declared in cli/options.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.exceptions import Abort, TyperException

from provision.errors import EXIT_FAILURE, EXIT_INTERRUPTED, PromptInterrupted, ProvisionError, UsageError

if TYPE_CHECKING:
    # Imported inside the functions: `provision --help` and shell completion never need them.
    from provision.console import Reporter


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
