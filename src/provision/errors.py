"""Error types shared by every module, and the exit codes the CLI maps them to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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


class Interrupted(ProvisionError):
    """Ctrl-C that a flow stopped cleanly and can describe (what is done, what is left): exit 130."""

    exit_code = EXIT_INTERRUPTED


class PromptInterrupted(KeyboardInterrupt):
    """Ctrl-C at a confirmation prompt: nothing has been applied yet, so "re-run to finish" would be wrong (a flow
    that prepared a local edit before asking puts it back on its way out, as for any interruption). `left` says
    what is left when putting that edit back failed (then "nothing was changed" would be wrong)."""

    def __init__(self, left: str = "") -> None:
        super().__init__()
        self.left = left


# --- the run's secrets ------------------------------------------------------------------------------------
# Every secret a run learns (tokens read, passwords created, decrypted values) is registered here, by whichever
# module meets it first, so that every message printed can be redacted of all of them: Reporter.redact and the
# CLI's error mapping both use redact(). A run (cli.common.handled) opens its own scope; registrations made outside
# any scope (library use, other threads) go to a process-wide set, which only ever redacts more.
REDACTED = "***"
MIN_SECRET_LENGTH = 4  # shorter values cannot be told apart from ordinary text; redacting them would garble it

_process_secrets: set[str] = set()
_run_secrets: ContextVar[set[str] | None] = ContextVar("provision_run_secrets", default=None)


def add_secret(value: str | None) -> None:
    """Register a value that must never be printed: a token, a password, a decrypted value (not a whole decrypted
    document: each of its lines would be redacted everywhere). Its lines are registered too, so that a multi-line
    secret (a JSON key, a token pasted with a second line) is redacted even when a message shows one line of it."""
    if not value:
        return
    scope = _run_secrets.get()
    target = _process_secrets if scope is None else scope
    for part in (value, value.strip(), *(line.strip() for line in value.splitlines())):
        if len(part) >= MIN_SECRET_LENGTH:
            target.add(part)


SECRET_KEY_WORDS = ("password", "token", "secret", "key", "credential", "auth")


def add_secrets_from(doc: object) -> None:
    """Register every string of a decrypted document that sits under a key naming a secret (password, token,
    *secret*, *key* ...). Not every string: a secret file also holds user names and registry hosts, and redacting
    "quay.io" from every message would only garble them."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(value, str) and any(word in str(key).lower() for word in SECRET_KEY_WORDS):
                add_secret(value)
            else:
                add_secrets_from(value)
    elif isinstance(doc, list):
        for item in doc:
            add_secrets_from(item)


def known_secrets() -> set[str]:
    scope = _run_secrets.get()
    return _process_secrets | (scope or set())


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known secret (and each of `extra`) replaced by ***, longest first."""
    for secret in sorted(known_secrets().union(extra), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


@contextmanager
def secrets_scope() -> Iterator[None]:
    """Collect the secrets of one run (one command) apart from other runs in the same process (tests)."""
    outer = _run_secrets.get()
    token = _run_secrets.set(set(outer or ()))
    try:
        yield
    finally:
        _run_secrets.reset(token)
