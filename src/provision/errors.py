"""Error types shared by every module, and the exit codes the CLI maps them to."""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ProvisionError(Exception):
    """An anticipated operational failure: printed as one paragraph, no traceback, exit 1.

    `done` lists what had already been changed when the failure happened, `hint` says how to resume.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, done: Iterable[str] = (), hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.done = tuple(done)
        self.hint = hint

    def with_context(self, *, done: Iterable[str] = (), hint: str | None = None) -> ProvisionError:
        """Add what a flow had already done, and how to resume after the specific hint; returns self."""
        self.done = tuple(done) + self.done
        if self.hint is None:
            self.hint = hint
        elif hint and "re-run" not in self.hint:
            self.hint = f"{self.hint.rstrip('.')}; then {hint}"
        return self

    def __str__(self) -> str:
        parts = [self.message.rstrip(".") + "."]
        if self.done:
            parts.append("Already done: " + "; ".join(self.done) + ".")
        if self.hint:
            parts.append(self.hint.rstrip(".") + ".")
        return " ".join(parts)


class UsageError(ProvisionError):
    """Bad input detected before any side effect: exit 2."""

    exit_code = EXIT_USAGE
