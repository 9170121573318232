from __future__ import annotations

import threading

from provision.errors import (
    EXIT_FAILURE,
    EXIT_USAGE,
    REDACTED,
    ProvisionError,
    UsageError,
    add_secret,
    add_secrets_from,
    known_secrets,
    redact,
    secrets_scope,
)


def test_message_is_one_paragraph_with_done_and_hint() -> None:
    exc = ProvisionError("creating robot failed", done=["create organization x"], hint="re-run the command")
    assert str(exc) == "creating robot failed. Already done: create organization x. re-run the command."
    assert "\n" not in str(exc)
    assert exc.exit_code == EXIT_FAILURE


def test_with_context_prepends_done_and_joins_hints() -> None:
    exc = ProvisionError("boom", done=["b"], hint="fix the name")
    exc.with_context(done=["a"], hint="re-run the command")
    assert exc.done == ("a", "b")
    assert exc.hint == "fix the name; then re-run the command"
    assert ProvisionError("boom").with_context(hint="re-run").hint == "re-run"
    # A hint that already says how to resume is not repeated.
    assert ProvisionError("x", hint="do Y, then re-run").with_context(hint="re-run it").hint == "do Y, then re-run"


def test_usage_error_exit_code() -> None:
    assert UsageError("bad").exit_code == EXIT_USAGE


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


def test_secrets_from_a_decrypted_document_are_the_values_under_secret_keys() -> None:
    doc = {"jupyterhub": {"imagePullSecret": {"registry": "quay.io", "username": "hubs+bot", "password": "pw-1234"}},
           "hub": {"services": [{"apiToken": "tok-5678"}]}, "client_secret": "cs-9012"}  # fmt: skip
    with secrets_scope():
        add_secrets_from(doc)
        assert {"pw-1234", "tok-5678", "cs-9012"} <= known_secrets()
        assert "quay.io" not in known_secrets() and "hubs+bot" not in known_secrets()
