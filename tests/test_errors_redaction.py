"""The run-wide secret registry: what add_secret registers, how redact uses it, and how runs are kept apart."""

from __future__ import annotations

import threading

from provision.errors import REDACTED, add_secret, known_secrets, redact, secrets_scope


def test_a_secret_and_each_of_its_lines_are_redacted() -> None:
    with secrets_scope():
        add_secret("first-line-of-it\nsecond-line-of-it\n")
        text = redact("got first-line-of-it, then second-line-of-it")
    assert text == f"got {REDACTED}, then {REDACTED}"


def test_short_values_are_not_registered() -> None:
    with secrets_scope():
        add_secret("abc")
        assert redact("abc abc") == "abc abc"


def test_scopes_keep_runs_apart() -> None:
    with secrets_scope():
        add_secret("secret-of-run-one")
        assert "secret-of-run-one" in known_secrets()
    with secrets_scope():
        assert "secret-of-run-one" not in known_secrets()
        seen: list[bool] = []
        # Another thread (another run in the same process) does not see this run's secrets.
        thread = threading.Thread(target=lambda: seen.append("x" * 8 in known_secrets()))
        add_secret("x" * 8)
        thread.start()
        thread.join()
        assert seen == [False] and redact("x" * 8) == REDACTED
