from __future__ import annotations

from provision.errors import EXIT_FAILURE, EXIT_USAGE, ProvisionError, UsageError


def test_message_is_one_paragraph_with_done_and_hint() -> None:
    exc = ProvisionError("creating robot failed", done=["create organization x"], hint="re-run the command")
    assert str(exc) == "creating robot failed. Already done: create organization x. re-run the command."
    assert "\n" not in str(exc)
    assert exc.exit_code == EXIT_FAILURE


def test_with_context_prepends_done_and_keeps_specific_hint() -> None:
    exc = ProvisionError("boom", done=["b"], hint="specific")
    exc.with_context(done=["a"], hint="generic")
    assert exc.done == ("a", "b")
    assert exc.hint == "specific"
    assert ProvisionError("boom").with_context(hint="generic").hint == "generic"


def test_usage_error_exit_code() -> None:
    assert UsageError("bad").exit_code == EXIT_USAGE
