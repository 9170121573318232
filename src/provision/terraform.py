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
        # A copy: the process environment is never modified. TF_WORKSPACE is dropped: the workspace is selected
        # explicitly, and a stray value would silently create an empty workspace (facts §2).
        # provision's API credentials are dropped too (childenv): terraform needs none of them.
        base = {k: v for k, v in without_credentials(env).items() if k != "TF_WORKSPACE"}
        self.env = {**base, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        self._on_progress = on_progress or (lambda _line: None)
        self._on_output = on_output or (lambda _line: None)
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
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**self.env, **(env or {})}, text=True, encoding="utf-8", errors="replace",
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
                if not json_events and not secret:
                    self._on_output(line.rstrip("\n"))
        code = proc.wait()
        drain.join()
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

    def plan(
        self, *, var_file: Path, plan_file: Path, replace: Sequence[str] = (), refresh: bool = True
    ) -> PlanResult:
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


# --- which backend the working directory is configured for -----------------------------------------------------

# Backend settings worth naming in messages; anything else (credentials, tokens, keys) is never shown.
SHOWN_SETTINGS = ("bucket", "prefix", "path", "workspace_dir", "key", "region", "container_name",
                  "storage_account_name", "resource_group_name", "organization", "hostname", "address")  # fmt: skip
BACKEND_BLOCK = re.compile(r'^\s*(backend\s+"|cloud\s*\{)', re.M)
EMPTY_BACKEND = re.compile(r'^\s*backend\s+"([A-Za-z0-9_-]+)"\s*\{\s*\}', re.M)


@dataclass(frozen=True)
class Backend:
    """A backend type and its non-null settings, as written in the module or stored by the last `init`."""

    type: str
    config: Mapping[str, Any]

    def describe(self) -> str:
        shown = [f"{k}={self.config[k]}" for k in SHOWN_SETTINGS if self.config.get(k) not in (None, "")]
        return f"{self.type} ({', '.join(shown)})" if shown else f"{self.type} (default settings)"

    def same_as(self, other: Backend) -> bool:
        return self.type == other.type and _normal(self.config) == _normal(other.config)


def _normal(config: Mapping[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in config.items() if v is not None}


def data_dir(workdir: Path, env: Mapping[str, str] | None = None) -> Path:
    """The working directory's data folder (.terraform, or TF_DATA_DIR relative to the module)."""
    return workdir / ((os.environ if env is None else env).get("TF_DATA_DIR") or ".terraform")


def stored_backend(workdir: Path, env: Mapping[str, str] | None = None) -> Backend | None:
    """The backend the last `init` in `workdir` configured (.terraform/terraform.tfstate), or None."""
    try:
        data = json.loads((data_dir(workdir, env) / "terraform.tfstate").read_text(encoding="utf-8"))
        backend = data["backend"]
        return Backend(str(backend["type"]), {k: v for k, v in (backend.get("config") or {}).items() if v is not None})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def declared_backend(workdir: Path) -> Backend | None:
    """The backend written in the module's own .tf files (local when there is none); None when unknown
    (a `cloud` block, a .tf.json file or a file python-hcl2 cannot read)."""
    if any(workdir.glob("*.tf.json")):
        return None
    for path in sorted(workdir.glob("*.tf")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if not BACKEND_BLOCK.search(text):
            continue
        empty = EMPTY_BACKEND.search(text)
        if empty and len(BACKEND_BLOCK.findall(text)) == 1:
            return Backend(empty.group(1), {})  # `backend "x" {}`: no parser needed (~100 ms saved)
        import hcl2  # lazy: ~100 ms, only for the file that holds the backend block
        from lark.exceptions import LarkError

        try:
            options = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True)
            data = hcl2.loads(text, serialization_options=options)
        except (LarkError, ValueError):
            return None
        for block in data.get("terraform") or []:
            if block.get("cloud"):
                return None
            for backend in block.get("backend") or []:
                for kind, settings in backend.items():
                    config = {k: v for k, v in (settings or {}).items() if not k.startswith("__")}
                    return Backend(str(kind), config)
    return Backend("local", {})


# --- which binary ------------------------------------------------------------------------------------------------

KINDS = {"opentofu": "OpenTofu (tofu)", "terraform": "HashiCorp Terraform"}
REGISTRY_HOSTS = {"registry.opentofu.org": "opentofu", "registry.terraform.io": "terraform"}
PROVIDER_HOST = re.compile(r"(registry\.opentofu\.org|registry\.terraform\.io)/")


@dataclass(frozen=True)
class BinaryChoice:
    path: str
    kind: str  # "opentofu" or "terraform"
    reason: str


@dataclass(frozen=True)
class Evidence:
    """A file that shows which binary manages the module's state."""

    kind: str
    source: str


def binary_kind(path: str) -> str | None:
    """opentofu or terraform, judged by the file's name (symlinks followed), or None when the name says neither."""
    for name in (Path(os.path.realpath(path)).name, Path(path).name):
        if "tofu" in name:
            return "opentofu"
        if "terraform" in name:
            return "terraform"
    return None


def probe_kind(path: str, env: Mapping[str, str] | None = None) -> str | None:
    """Ask a binary with an uninformative name what it is (`-version`: "OpenTofu v…" or "Terraform v…")."""
    try:
        proc = subprocess.run(
            [path, "-version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            env=without_credentials(env),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    first = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    return "opentofu" if first.startswith("OpenTofu") else "terraform" if first.startswith("Terraform") else None


def _hosts_kind(text: str) -> str | None:
    kinds = {REGISTRY_HOSTS[h] for h in PROVIDER_HOST.findall(text)}
    return kinds.pop() if len(kinds) == 1 else None


def local_state_files(workdir: Path, workspace: str, backend: Backend | None) -> list[Path]:
    """Where a local backend keeps `workspace`'s state (nothing for remote backends)."""
    if backend is not None and backend.type != "local":
        return []
    config = backend.config if backend else {}
    if workspace == "default":
        return [workdir / str(config.get("path") or "terraform.tfstate")]
    return [workdir / str(config.get("workspace_dir") or "terraform.tfstate.d") / workspace / "terraform.tfstate"]


def state_evidence(workdir: Path, state_files: Iterable[Path]) -> list[Evidence]:
    """What the module's lock file and readable state files say about the binary that manages the state.

    A lock file lists providers by registry host (registry.opentofu.org is written by OpenTofu,
    registry.terraform.io by Terraform); a state names each resource's provider the same way. Built-in providers
    (terraform.io/builtin) say nothing.
    """
    found: list[Evidence] = []
    lock = workdir / ".terraform.lock.hcl"
    try:
        kind = _hosts_kind(lock.read_text(encoding="utf-8"))
        if kind:
            found.append(Evidence(kind, f"{lock.name} lists providers from {_host_of(kind)}"))
    except (OSError, UnicodeDecodeError):
        pass
    for path in state_files:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        providers = " ".join(str(r.get("provider", "")) for r in state.get("resources") or [] if isinstance(r, dict))
        kind = _hosts_kind(providers)
        if kind:
            version = state.get("terraform_version")
            written = f", written by version {version}" if version else ""
            found.append(
                Evidence(kind, f"the state {path.relative_to(workdir)} uses providers from {_host_of(kind)}{written}")
            )
    return found


def _host_of(kind: str) -> str:
    return next(host for host, k in REGISTRY_HOSTS.items() if k == kind)


def choose_binary(
    explicit: str | None,
    *,
    evidence: Sequence[Evidence],
    allow_switch: bool = False,
    search_path: str | None = None,
    env: Mapping[str, str] | None = None,
) -> BinaryChoice:
    """Pick tofu or terraform from evidence, never switching a state to the other binary unless allowed.

    Order: an explicit choice (option or PROVISION_TERRAFORM_BIN), else the kind the lock file or state shows,
    else the only one of tofu/terraform on PATH. Refuses (TerraformError) when the evidence disagrees with the
    choice (running the other binary would migrate the state: OpenTofu rewrites provider addresses in the state
    it writes), when both are on PATH with no evidence, and when none is found.
    """
    kinds = {e.kind for e in evidence}
    said = "; ".join(e.source for e in evidence)
    if explicit:
        path = shutil.which(explicit, path=search_path)
        if not path:
            raise TerraformError(f"no terraform binary found ({explicit})", hint=INSTALL_HINT)
        kind = binary_kind(path) or probe_kind(path, env)
        if kind is None:
            raise TerraformError(f"{path} does not say whether it is OpenTofu or Terraform (`{path} -version`)",
                                 hint="pass the path of a tofu or terraform binary to --terraform-bin")  # fmt: skip
        others = kinds - {kind}
        if others and not allow_switch:
            other = others.pop()
            raise TerraformError(
                f"refusing to run {KINDS[kind]} ({path}): this module's state is managed by {KINDS[other]} ({said}), "
                f"and the state {KINDS[kind]} writes would no longer be the other's; nothing was changed",
                hint=f"run with {KINDS[other]} (--terraform-bin {_name(other)}), or pass --allow-binary-switch "
                f"if the team has decided to migrate this state to {KINDS[kind]}",
            )
        why = "asked for with --terraform-bin or PROVISION_TERRAFORM_BIN"
        if others:
            why += f"; switching from {KINDS[others.pop()]} as allowed by --allow-binary-switch"
        elif kinds:
            why += f"; matches {said}"
        return BinaryChoice(path, kind, why)
    if len(kinds) > 1:
        raise TerraformError(
            f"cannot tell which binary manages this module's state: {said}; nothing was changed",
            hint="pass --terraform-bin tofu or --terraform-bin terraform",
        )
    on_path = {kind: shutil.which(_name(kind), path=search_path) for kind in KINDS}
    if kinds:
        kind = kinds.pop()
        path = on_path[kind]
        if not path:
            raise TerraformError(
                f"{said}, but `{_name(kind)}` is not on PATH; running the other binary would migrate the state, "
                "so nothing was run",
                hint=f"install {KINDS[kind]} or pass --terraform-bin PATH",
            )
        return BinaryChoice(path, kind, said)
    found = {kind: path for kind, path in on_path.items() if path}
    if len(found) == 2:
        raise TerraformError(
            "both tofu and terraform are on PATH, and no lock file or readable state in the module shows which one "
            "manages this state (a remote state, or a module never initialized here); nothing was run",
            hint="pass --terraform-bin terraform if your team runs HashiCorp Terraform (2i2c does), or "
            "--terraform-bin tofu (or set PROVISION_TERRAFORM_BIN); running the other binary on a shared state "
            "migrates it",
        )
    if found:
        kind, path = found.popitem()
        return BinaryChoice(path, kind, "the only one of tofu and terraform on PATH; no lock file or readable state "
                            "in the module names a binary")  # fmt: skip
    raise TerraformError("no terraform binary found (tofu or terraform)", hint=INSTALL_HINT)


def _name(kind: str) -> str:
    return "tofu" if kind == "opentofu" else "terraform"
