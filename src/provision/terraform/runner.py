"""Terraform / OpenTofu runner: argv from a pure function, stdin closed, -json events parsed; TerraformError.

Facts in ../shared/facts/terraform.md: every command gets `-input=false -no-color` (prompts would hang, colour
codes would pollute messages); flags go before positional arguments; `plan -detailed-exitcode` exits 2 when
there are changes; with `-json` diagnostics arrive on stdout. Output values are sensitive: never logged.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.childenv import without_credentials
from provision.errors import ProvisionError

log = logging.getLogger(__name__)

BINARIES = ("tofu", "terraform")
# Commands whose stdout carries secrets (output values; a saved plan embeds the prior state): never shown.
SECRET_STDOUT = {"output", "show"}
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


class TerraformInterrupted(KeyboardInterrupt):
    """Ctrl-C while a command ran: the interrupt was passed on and the command has ended (`returncode`)."""

    def __init__(self, command: str, returncode: int) -> None:
        super().__init__(command)
        self.command = command
        self.returncode = returncode


# Google's answer when an organization policy forbids service account keys (enforced by default on organizations
# created since 3 May 2024): "Key creation is not allowed on this service account." with the violated constraint.
KEY_POLICY_MARKERS = ("Key creation is not allowed on this service account", "disableServiceAccountKeyCreation")


KEY_POLICY = "iam.disableServiceAccountKeyCreation"
MANAGED_KEY_POLICY = "iam.managed.disableServiceAccountKeyCreation"
KEY_POLICY_SINCE = "enforced by default on Google Cloud organizations created since May 2024"
POLICY_ADMIN = (
    "Someone with the Organization Policy Administrator role (roles/orgpolicy.policyAdmin, granted at the "
    "organization) can make an exception for this project"
)
NO_KEY_REGISTRIES = "use a registry that needs no Google key (provision quay or provision dockerhub)"


def key_policy_command(constraint: str) -> str:
    """The command that exempts one project from `constraint` (each constraint has its own API)."""
    if constraint == MANAGED_KEY_POLICY:
        return (
            f"`gcloud org-policies set-policy FILE` with a policy for projects/PROJECT/policies/{MANAGED_KEY_POLICY} "
            "whose rule is `enforce: false`"
        )
    return f"`gcloud resource-manager org-policies disable-enforce {KEY_POLICY} --project=PROJECT`"


def key_policy_hint(texts: Iterable[str]) -> str | None:
    """The way out when Google refused to create a service account key for an organization policy, else None."""
    text = " ".join(texts)
    if not any(marker in text for marker in KEY_POLICY_MARKERS):
        return None
    constraint = MANAGED_KEY_POLICY if MANAGED_KEY_POLICY in text else KEY_POLICY
    return (
        f"Google refused to create the registry's service account key: the organization policy {constraint} "
        f"forbids service account keys ({KEY_POLICY_SINCE}), and BinderHub pushes with a JSON key. "
        f"{POLICY_ADMIN}: {key_policy_command(constraint)}; then run the same provision command again. Otherwise "
        f"{NO_KEY_REGISTRIES}"
    )


def key_policy_note() -> str:
    """The same explanation where terraform's answer is not at hand (provision doctor reads only a hub's files):
    why an Artifact Registry hub may have no key, and the way out."""
    return (
        f"The organization policies {KEY_POLICY} and {MANAGED_KEY_POLICY}, {KEY_POLICY_SINCE}, forbid service "
        "account keys, so in a project of such an organization `provision gcp` cannot create the JSON key "
        f"BinderHub pushes with. {POLICY_ADMIN}: {key_policy_command(KEY_POLICY)} (for {MANAGED_KEY_POLICY}: "
        f"{key_policy_command(MANAGED_KEY_POLICY)}); then run provision gcp again. Otherwise {NO_KEY_REGISTRIES}"
    )


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
    """A saved plan. `has_changes` counts resources only: an output that drifts by itself (2i2c's
    `regular_channel_latest_k8s_versions`) makes `-detailed-exitcode` exit 2 with no resource change."""

    has_changes: bool
    changes: tuple[PlannedChange, ...]
    plan_file: Path
    output_only: bool = False  # exit code 2, but no resource changes


def build_args(
    command: str,
    *,
    backend_configs: Iterable[str] = (),
    reconfigure: bool = False,
    workspace: str | None = None,
    create_workspace: bool = False,
    var_file: Path | None = None,
    plan_file: Path | None = None,
    output_name: str | None = None,
    replace: Sequence[str] = (),
    refresh: bool = True,
) -> list[str]:
    """Arguments (after the binary and -chdir) for one command. Pure; flags always precede positionals.

    `replace`: plan the replacement of these resource instances (`-replace=ADDR`, key rotation); `refresh=False`:
    plan from the state as stored (a read-only look at the configuration and the instances, no API reads).
    """
    if command == "init":
        configs = [f"-backend-config={c}" for c in backend_configs]
        # -reconfigure: a different backend than last time is intended, not a migration of states.
        return ["init", "-input=false", "-no-color", *configs, *(["-reconfigure"] if configs or reconfigure else [])]
    if command == "workspace list":
        return ["workspace", "list", "-no-color"]
    if command == "show":
        assert plan_file
        return ["show", "-no-color", "-json", str(plan_file)]
    if command == "workspace select":
        assert workspace
        return ["workspace", "select", "-no-color", *(["-or-create"] if create_workspace else []), workspace]
    if command == "plan":
        assert var_file and plan_file
        return [
            "plan", "-input=false", "-no-color", "-json", "-detailed-exitcode",
            *([] if refresh else ["-refresh=false"]), *(f"-replace={a}" for a in replace),
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
    lines of commands without -json (init). Neither ever receives output values. `on_interrupt` hears of each
    Ctrl-C passed on to the running command (1: it stops gracefully; 2: it quits at once).
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
        on_output: Callable[[str], None] | None = None,
        on_interrupt: Callable[[int], None] | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        # A copy: the process environment is never modified. TF_WORKSPACE is dropped: the workspace is selected
        # explicitly, and a stray value would silently create an empty workspace (facts §2).
        # provision's API credentials are dropped too (childenv): terraform needs none of them.
        base = {k: v for k, v in without_credentials(env).items() if k != "TF_WORKSPACE"}
        self.env = {**base, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        self._on_progress = on_progress or (lambda _line: None)
        self._on_output = on_output or (lambda _line: None)
        self._on_interrupt = on_interrupt or (lambda _count: None)
        self.process_count = 0

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.binary, f"-chdir={self.workdir}", *args]

    def display(self, args: Sequence[str]) -> str:
        """The command as a person would type it in the module directory (for plans and messages)."""
        return shlex.join([Path(self.binary).name, *args])

    def _run(
        self,
        args: list[str],
        *,
        json_events: bool,
        ok: Iterable[int] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, list[dict[str, Any]], str]:
        """Run one command; returns (exit code, JSON events, stdout text). Raises TerraformError otherwise."""
        argv = self.argv(args)
        secret = args[0] in SECRET_STDOUT
        log.debug("run %s", self.display(args))
        self.process_count += 1
        try:
            # A process group of its own: a terminal's Ctrl-C reaches provision only, which forwards exactly one
            # SIGINT (terraform stops gracefully and saves its state; a second SIGINT would make it quit at once).
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**self.env, **(env or {})}, text=True, encoding="utf-8", errors="replace",
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise TerraformError(f"cannot run {self.binary} ({exc.strerror})", cmd=argv, hint=INSTALL_HINT) from None
        stderr_chunks: list[str] = []
        # Drain stderr concurrently: a full pipe would block the child while we read stdout.
        drain = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read() if proc.stderr else ""))
        drain.start()
        events: list[dict[str, Any]] = []
        text_lines: list[str] = []

        def take(line: str) -> None:
            if json_events and line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    return
                events.append(event)
                if event.get("type") in PROGRESS_EVENTS and event.get("@message"):
                    self._on_progress(str(event["@message"]))
            else:
                text_lines.append(line)
                if not json_events and not secret:
                    self._on_output(line.rstrip("\n"))

        interrupts, code = self._follow(proc, take)
        drain.join()
        if interrupts:
            raise TerraformInterrupted(self.display(args[:1]), code)
        stderr = "".join(stderr_chunks)
        if code not in set(ok):
            diagnostics = [Diagnostic.from_dict(e["diagnostic"]) for e in events if e.get("type") == "diagnostic"]
            diagnostics += parse_text_diagnostics(stderr)
            if not secret:
                diagnostics += parse_text_diagnostics("".join(text_lines))
            tail = " ".join([line.strip() for line in stderr.splitlines() if line.strip()][-3:])
            raise TerraformError(
                # The subcommand only: full argv (with temporary paths) stays in `cmd`.
                f"`{self.display([a for a in args[:2] if not a.startswith('-')])}` failed with exit code {code}",
                cmd=argv, returncode=code, diagnostics=diagnostics,
                stderr_tail="" if secret else tail,
                hint=key_policy_hint([stderr, *(f"{d.summary} {d.detail}" for d in diagnostics)]),
            )  # fmt: skip
        return code, events, "".join(text_lines)

    def _follow(self, proc: subprocess.Popen[str], take: Callable[[str], None]) -> tuple[int, int]:
        """Read the child's output to its end and wait for it; on Ctrl-C, pass the interrupt on and keep reading
        while it stops. Returns how many interrupts were passed on, and the exit code."""
        assert proc.stdout is not None
        interrupts = 0
        while True:
            try:
                for line in proc.stdout:
                    take(line)
                return interrupts, proc.wait()
            except KeyboardInterrupt:
                interrupts += 1
                proc.send_signal(signal.SIGINT)
                self._on_interrupt(interrupts)

    def init(self, *, backend_configs: Iterable[str] = (), reconfigure: bool = False) -> None:
        """`init` (with `-reconfigure` when asked or when backend configs are given).

        TF_WORKSPACE=default: init checks that the selected workspace exists in the backend, and the one an
        earlier run selected may only exist in the previous backend; `default` exists in every backend.
        """
        args = build_args("init", backend_configs=backend_configs, reconfigure=reconfigure)
        self._run(args, json_events=False, env={"TF_WORKSPACE": "default"})

    def select_workspace(self, name: str, *, create: bool = False) -> None:
        self._run(build_args("workspace select", workspace=name, create_workspace=create), json_events=False)

    def list_workspaces(self) -> list[str]:
        """The workspaces of the configured backend (for messages)."""
        _, _, text = self._run(build_args("workspace list"), json_events=False)
        return [line.strip(" *") for line in text.splitlines() if line.strip(" *")]

    def plan(self, *, var_file: Path, plan_file: Path, replace: Sequence[str] = (), refresh: bool = True) -> PlanResult:
        """Plan into `plan_file`. Exit code 2 means changes, to resources or only to outputs."""
        args = build_args("plan", var_file=var_file, plan_file=plan_file, replace=replace, refresh=refresh)
        code, events, _ = self._run(args, json_events=True, ok=(0, 2))
        changes = tuple(PlannedChange.from_event(e) for e in events if e.get("type") == "planned_change")
        summary = next((e.get("changes") or {} for e in events if e.get("type") == "change_summary"), {})
        counted = sum(int(summary.get(k) or 0) for k in ("add", "change", "remove", "import"))
        real = counted > 0 or any(c.action not in ("noop", "read") for c in changes)
        return PlanResult(has_changes=real, changes=changes, plan_file=plan_file, output_only=code == 2 and not real)

    def show_plan(self, plan_file: Path) -> dict[str, Any]:
        """`show -json` of a saved plan: resource_changes and the module's configuration. Holds secrets (the
        prior state): keep it in memory, never log it."""
        _, _, text = self._run(build_args("show", plan_file=plan_file), json_events=False)
        try:
            data = json.loads(text)
        except ValueError:
            raise TerraformError(f"`{self.display(['show', '-json'])}` did not print JSON") from None
        if not isinstance(data, dict):
            raise TerraformError(f"`{self.display(['show', '-json'])}` did not print a JSON object")
        return data

    def apply(self, plan_file: Path) -> None:
        """Apply a saved plan (no approval prompt: the plan is the approval)."""
        self._run(build_args("apply", plan_file=plan_file), json_events=True)

    def state_list(self) -> list[str]:
        """The resource instance addresses the selected workspace's state holds (no values: nothing secret)."""
        _, _, text = self._run(["state", "list", "-no-color"], json_events=False)
        return [line.strip() for line in text.splitlines() if line.strip()]

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
