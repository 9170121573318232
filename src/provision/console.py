"""The two output streams: emit() writes machine output to stdout once; Reporter writes everything else to stderr."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from provision.errors import REDACTED as REDACTED
from provision.errors import PromptInterrupted, ProvisionError, add_secret, redact
from provision.plan import Plan


def emit(text: str) -> None:
    """Write the command's machine output (YAML or JSON) to stdout. Only cli.py calls this.

    Raises ProvisionError when stdout is closed (`provision … | head -c 10`): the output was not delivered, and a
    credential made for it is handled like any other undelivered one (deleted again, or named).
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would try the flush again at exit and print a second error: point stdout at nothing instead.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file descriptor (a test runner's capture): nothing flushes it at exit
        raise ProvisionError(
            "stdout was closed before provision's output was written to it (the reading end of the pipe exited), "
            "so the output was not delivered; run again with stdout going to a file or to sops, or use "
            "--secret-file"
        ) from None


def ask(question: str) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin; no answer (EOF) means no.

    Not click.confirm: it writes a space to stdout, which would corrupt the YAML piped into sops.
    """
    return read_answer(f"{question} [y/N]: ").lower() in ("y", "yes")


def read_answer(prompt: str) -> str:
    """Write `prompt` on stderr and read one line from stdin (stripped; "" at EOF).

    Ctrl-C while asking is PromptInterrupted: nothing was applied yet (cli.common.handled says so, not "re-run to
    finish").
    """
    try:  # the prompt is written inside: Ctrl-C as soon as it shows is still at the prompt
        sys.stderr.write(prompt)
        sys.stderr.flush()
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # end the prompt's line before the message
        raise PromptInterrupted from None
    if not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.strip()


def to_yaml(doc: Any) -> str:
    """Render a values document as YAML; multi-line strings (JSON keys) become literal blocks."""
    from ruamel.yaml import YAML  # lazy: keeps `provision --help` fast
    from ruamel.yaml.scalarstring import LiteralScalarString

    def literal(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: literal(v) for k, v in node.items()}
        if isinstance(node, list):
            return [literal(v) for v in node]
        if isinstance(node, str) and "\n" in node:
            return LiteralScalarString(node)
        return node

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096  # never fold long tokens or prefixes
    out = io.StringIO()
    yaml.dump(literal(doc), out)
    return out.getvalue()


def to_yaml_stream(docs: Iterable[tuple[str | None, Any]]) -> str:
    """Values documents as one YAML text: a lone unnamed document as is, else a stream (`---`) with each document
    headed by a comment naming the chart it is for (each is handed whole to `helm upgrade -f`)."""
    docs = list(docs)
    if len(docs) == 1 and docs[0][0] is None:
        return to_yaml(docs[0][1])
    return "---\n".join(f"# values for the {name} chart\n{to_yaml(doc)}" for name, doc in docs)


def to_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


class Reporter:
    """Progress, plans, summaries and warnings, on stderr only, with every known secret redacted.

    `quiet` hides progress (warnings, errors and summaries stay); `verbose` adds debug lines.
    """

    def __init__(self, *, stream: TextIO | None = None, quiet: bool = False, verbose: bool = False) -> None:
        self._stream = stream
        self.quiet = quiet
        self.verbose = verbose
        self._secrets: set[str] = set()

    def add_secret(self, secret: str | None) -> None:
        """Register a value that must never be printed (tokens, passwords), for this reporter and the whole run."""
        if secret:
            self._secrets.add(secret)
            add_secret(secret)

    def redact(self, text: str) -> str:
        """The text without any secret this reporter or the run knows."""
        return redact(text, self._secrets)

    def _write(self, text: str) -> None:
        # sys.stderr is looked up on each call so test runners that swap it capture our output.
        stream = self._stream or sys.stderr
        stream.write(self.redact(text) + "\n")
        stream.flush()

    def info(self, text: str) -> None:
        if not self.quiet:
            self._write(text)

    def debug(self, text: str) -> None:
        if self.verbose:
            self._write(f"debug: {text}")

    def warn(self, text: str) -> None:
        self._write(f"warning: {text}")

    def error(self, text: str) -> None:
        self._write(f"error: {text}")

    def always(self, text: str) -> None:
        """Output that -q does not hide (summaries, values to copy)."""
        self._write(text)

    @contextmanager
    def step(self, title: str, *, index: int | None = None, total: int | None = None) -> Iterator[None]:
        """Report a step's start and its outcome with the elapsed time."""
        label = f"{index}/{total}: {title}" if index is not None and total is not None else title
        self.info(f"{label} ...")
        start = time.monotonic()
        try:
            yield
        except BaseException:
            self.info(f"{label}: failed after {time.monotonic() - start:.2f} s")
            raise
        self.info(f"{label}: done ({time.monotonic() - start:.2f} s)")

    def plan(self, plan: Plan, *, title: str = "plan") -> None:
        if plan.empty:
            self.always(f"{title}: nothing to do, everything is already in place")
        else:
            self.always(f"{title}: {len(plan.changes)} change(s)")
            for change in plan.changes:
                self.always(f"  + {change.describe()}")
        for item in plan.present:
            self.info(f"  = {item}")
        for note in plan.notes:
            self.always(f"  note: {note}")

    def log_handler(self) -> Any:
        """A logging handler that shows the `provision` loggers' records through this reporter (so redacted):
        DEBUG as debug lines (-v), INFO as progress (retries), WARNING and above as warnings."""
        import logging

        reporter = self

        class _ToReporter(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    text = record.getMessage()
                except Exception:  # a malformed log call must not break the command
                    text = str(record.msg)
                if record.levelno >= logging.WARNING:
                    reporter.warn(text)
                elif record.levelno >= logging.INFO:
                    reporter.info(text)
                else:
                    reporter.debug(f"{record.name}: {text}")

        return _ToReporter()

    def block(self, heading: str, lines: Iterable[str]) -> None:
        self.always(heading)
        for line in lines:
            self.always(f"  {line}" if line else "")
