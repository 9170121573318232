"""Terraform / OpenTofu runner: argv from a pure function, stdin closed, -json events parsed; TerraformError.

Facts in ../shared/facts/terraform.md: every command gets `-input=false -no-color` (prompts would hang, colour
codes would pollute messages); flags go before positional arguments; `plan -detailed-exitcode` exits 2 when
there are changes; with `-json` diagnostics arrive on stdout. Output values are sensitive: never logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError

log = logging.getLogger(__name__)

BINARIES = ("tofu", "terraform")
INSTALL_HINT = "install OpenTofu (tofu) or Terraform, or pass --terraform-bin PATH"
# Events worth showing as progress (outputs and version events are not).
PROGRESS_EVENTS = {
    "planned_change",
    "apply_start",
    "apply_progress",
    "apply_complete",
    "apply_errored",
    "change_summary",
}


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    filename: str | None = None
    line: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnostic:
        start = (data.get("range") or {}).get("start") or {}
        return cls(
            severity=str(data.get("severity", "error")),
            summary=str(data.get("summary", "")),
            detail=str(data.get("detail", "")),
            filename=(data.get("range") or {}).get("filename"),
            line=start.get("line"),
        )

    def describe(self) -> str:
        where = f" ({self.filename}:{self.line})" if self.filename and self.line else ""
        return f"{self.summary}{where}"


class TerraformError(ProvisionError):
    """A terraform command failed: carries its argv, returncode, diagnostics and the tail of its stderr."""

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str] = (),
        returncode: int | None = None,
        diagnostics: Sequence[Diagnostic] = (),
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        errors = [d.describe() for d in diagnostics if d.severity == "error"]
        if errors:
            message = f"{message}: {'; '.join(errors)}"
        elif stderr_tail:
            message = f"{message}: {stderr_tail}"
        super().__init__(message, hint=hint)
        self.cmd = list(cmd)
        self.returncode = returncode
        self.diagnostics = list(diagnostics)
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class PlannedChange:
    address: str
    action: str  # create, update, delete, replace, read, ...
    resource_key: str | int | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> PlannedChange:
        change = event.get("change") or {}
        resource = change.get("resource") or {}
        return cls(
            address=str(resource.get("addr", "")),
            action=str(change.get("action", "")),
            resource_key=resource.get("resource_key"),
        )


@dataclass(frozen=True)
class PlanResult:
    has_changes: bool
    changes: tuple[PlannedChange, ...]
    plan_file: Path


def find_binary(explicit: str | None) -> str:
    """The terraform binary to run: `explicit`, else tofu, else terraform on PATH. Raises TerraformError."""
    candidates = [explicit] if explicit else list(BINARIES)
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    wanted = explicit or " or ".join(BINARIES)
    raise TerraformError(f"no terraform binary found ({wanted})", hint=INSTALL_HINT)


def build_args(
    command: str,
    *,
    backend_configs: Iterable[str] = (),
    workspace: str | None = None,
    create_workspace: bool = False,
    var_file: Path | None = None,
    plan_file: Path | None = None,
    output_name: str | None = None,
) -> list[str]:
    """Arguments (after the binary and -chdir) for one command. Pure; flags always precede positionals."""
    if command == "init":
        configs = [f"-backend-config={c}" for c in backend_configs]
        # -reconfigure: a different backend config than last time is intended, not a migration.
        return ["init", "-input=false", "-no-color", *configs, *(["-reconfigure"] if configs else [])]
    if command == "workspace select":
        assert workspace
        return ["workspace", "select", "-no-color", *(["-or-create"] if create_workspace else []), workspace]
    if command == "plan":
        assert var_file and plan_file
        return [
            "plan", "-input=false", "-no-color", "-json", "-detailed-exitcode",
            f"-out={plan_file}", f"-var-file={var_file}",
        ]  # fmt: skip
    if command == "apply":
        assert plan_file
        return ["apply", "-input=false", "-no-color", "-json", str(plan_file)]
    if command == "output":
        assert output_name
        return ["output", "-no-color", "-json", output_name]
    raise ValueError(f"unknown terraform command {command!r}")


def parse_text_diagnostics(text: str) -> list[Diagnostic]:
    """Diagnostics from terraform's human output (commands without -json), box-drawing characters or not."""
    diagnostics: list[Diagnostic] = []
    for raw in text.splitlines():
        line = raw.lstrip("│╷╵ ").rstrip()
        head = re.match(r"(Error|Warning): (.+)", line)
        if head:
            diagnostics.append(Diagnostic(severity=head.group(1).lower(), summary=head.group(2)))
            continue
        where = re.match(r"on (\S+) line (\d+)", line)
        if where and diagnostics and diagnostics[-1].filename is None:
            last = diagnostics[-1]
            diagnostics[-1] = Diagnostic(last.severity, last.summary, last.detail, where.group(1), int(where.group(2)))
    return diagnostics


class Terraform:
    """Runs one terraform binary in one root module directory, counting the processes it starts.

    `on_progress` receives human progress lines (terraform's event messages); `on_output` receives raw
    lines of commands without -json (init). Neither ever receives output values.
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        # A copy: the process environment is never modified.
        self.env = {**(os.environ if env is None else env), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        self._on_progress = on_progress or (lambda _line: None)
        self._on_output = on_output or (lambda _line: None)
        self.process_count = 0

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.binary, f"-chdir={self.workdir}", *args]

    def display(self, args: Sequence[str]) -> str:
        """The command as a person would type it in the module directory (for plans and messages)."""
        return shlex.join([Path(self.binary).name, *args])

    def _run(
        self, args: list[str], *, json_events: bool, ok: Iterable[int] = (0,)
    ) -> tuple[int, list[dict[str, Any]], str]:
        """Run one command; returns (exit code, JSON events, stdout text). Raises TerraformError otherwise."""
        argv = self.argv(args)
        log.debug("run %s", self.display(args))
        self.process_count += 1
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env, text=True, encoding="utf-8", errors="replace",
            )  # fmt: skip
        except OSError as exc:
            raise TerraformError(f"cannot run {self.binary} ({exc.strerror})", cmd=argv, hint=INSTALL_HINT) from None
        stderr_chunks: list[str] = []
        # Drain stderr concurrently: a full pipe would block the child while we read stdout.
        drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read() if proc.stderr else ""))
        drain.start()
        events: list[dict[str, Any]] = []
        text_lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if json_events and line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.append(event)
                if event.get("type") in PROGRESS_EVENTS and event.get("@message"):
                    self._on_progress(str(event["@message"]))
            else:
                text_lines.append(line)
                if not json_events and args[0] != "output":
                    self._on_output(line.rstrip("\n"))
        code = proc.wait()
        drain.join()
        stderr = "".join(stderr_chunks)
        if code not in set(ok):
            diagnostics = [Diagnostic.from_dict(e["diagnostic"]) for e in events if e.get("type") == "diagnostic"]
            diagnostics += parse_text_diagnostics(stderr)
            if args[0] != "output":
                diagnostics += parse_text_diagnostics("".join(text_lines))
            tail = " ".join([line.strip() for line in stderr.splitlines() if line.strip()][-3:])
            raise TerraformError(
                # The subcommand only: full argv (with temporary paths) stays in `cmd`.
                f"`{self.display([a for a in args[:2] if not a.startswith('-')])}` failed with exit code {code}",
                cmd=argv, returncode=code, diagnostics=diagnostics,
                stderr_tail="" if args[0] == "output" else tail,
            )  # fmt: skip
        return code, events, "".join(text_lines)

    def init(self, *, backend_configs: Iterable[str] = ()) -> None:
        self._run(build_args("init", backend_configs=backend_configs), json_events=False)

    def select_workspace(self, name: str, *, create: bool = False) -> None:
        self._run(build_args("workspace select", workspace=name, create_workspace=create), json_events=False)

    def plan(self, *, var_file: Path, plan_file: Path) -> PlanResult:
        """Plan into `plan_file`. Exit code 2 means changes (detailed exit code)."""
        args = build_args("plan", var_file=var_file, plan_file=plan_file)
        code, events, _ = self._run(args, json_events=True, ok=(0, 2))
        changes = tuple(PlannedChange.from_event(e) for e in events if e.get("type") == "planned_change")
        return PlanResult(has_changes=code == 2, changes=changes, plan_file=plan_file)

    def apply(self, plan_file: Path) -> None:
        """Apply a saved plan (no approval prompt: the plan is the approval)."""
        self._run(build_args("apply", plan_file=plan_file), json_events=True)

    def output(self, name: str) -> Any:
        """One output's value (may be sensitive: never logged). Returns None when the output does not exist."""
        try:
            _, _, text = self._run(build_args("output", output_name=name), json_events=False)
        except TerraformError as exc:
            if any("not found" in d.summary for d in exc.diagnostics):
                return None
            raise
        try:
            return json.loads(text)
        except ValueError:
            raise TerraformError(f"`{self.display(['output', name])}` did not print JSON") from None
