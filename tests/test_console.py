from __future__ import annotations

import io

import yaml

from provision.console import Reporter, to_yaml
from provision.plan import Change, Plan


def test_reporter_redacts_registered_secrets() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    reporter.add_secret("s3cr3t-token")
    reporter.info("sending s3cr3t-token now")
    reporter.error("failed with s3cr3t-token")
    assert "s3cr3t-token" not in stream.getvalue()
    assert stream.getvalue().count("***") == 2


def test_step_reports_elapsed_time_and_failure() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    with reporter.step("create robot", index=1, total=2):
        pass
    try:
        with reporter.step("add member", index=2, total=2):
            raise RuntimeError("x")
    except RuntimeError:
        pass
    out = stream.getvalue()
    assert "1/2: create robot: done (" in out and " s)" in out
    assert "2/2: add member: failed after" in out


def test_quiet_hides_progress_not_summary() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream, quiet=True)
    with reporter.step("x"):
        pass
    reporter.plan(Plan(changes=(Change("k", "create", "robot r"),)))
    assert "x ..." not in stream.getvalue()
    assert "+ create robot r" in stream.getvalue()


def test_yaml_keeps_multiline_strings_as_blocks() -> None:
    key = '{\n  "type": "service_account",\n  "private_key": "-----BEGIN-----\\nabc\\n"\n}'
    text = to_yaml({"a": {"password": key, "n": 1}})
    assert "password: |" in text
    assert yaml.safe_load(text) == {"a": {"password": key, "n": 1}}
