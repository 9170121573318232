from __future__ import annotations

from provision.errors import EXIT_FAILURE, EXIT_USAGE, ProvisionError, UsageError


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
