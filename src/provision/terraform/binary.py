"""Which binary runs a module: `tofu` or `terraform`, from the module's lock file and readable state, the option,
and PATH (../shared/facts/terraform.md, "Which binary": running one on the other's state is a migration)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.childenv import without_credentials
from provision.terraform.backends import Backend
from provision.terraform.runner import INSTALL_HINT, TerraformError

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
