"""Which backend a terraform working directory is set up for, which one a run asks for, and how to `init` between
them without a state migration that `-input=false` cannot answer (../shared/facts/terraform.md, "Backends").

`init` without `-backend-config` keeps the backend the previous `init` stored in `.terraform/terraform.tfstate`;
only `-reconfigure` returns to the module's own. But `-reconfigure` is not free: with `backend "local"` and
workspace states at the default paths, OpenTofu 1.6.2 then offers to migrate those states and stops ("Error asking
for state migration action: input is disabled"). So `-reconfigure` is used only when the stored backend differs
from the requested one, and the migration question, where it still comes, is explained rather than shown raw.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Backend settings worth naming in messages; anything else (credentials, tokens, keys) is never shown.
SHOWN_SETTINGS = ("bucket", "prefix", "path", "workspace_dir", "key", "region", "container_name",
                  "storage_account_name", "resource_group_name", "organization", "hostname", "address")  # fmt: skip
BACKEND_BLOCK = re.compile(r'^\s*(backend\s+"|cloud\s*\{)', re.M)
EMPTY_BACKEND = re.compile(r'^\s*backend\s+"([A-Za-z0-9_-]+)"\s*\{\s*\}', re.M)
# The engine's words when init wants to copy states and may not ask (tofu 1.6.2 and Terraform alike).
MIGRATION_MARKER = "Error asking for state migration action"


@dataclass(frozen=True)
class Backend:
    """A backend type and its non-null settings, as written in the module or stored by the last `init`."""

    type: str
    config: Mapping[str, Any]

    def describe(self) -> str:
        shown = [f"{k}={self.config[k]}" for k in SHOWN_SETTINGS if self.config.get(k) not in (None, "")]
        return f"{self.type} ({', '.join(shown)})" if shown else f"{self.type} (default settings)"

    def same_as(self, other: Backend) -> bool:
        return self.type == other.type and _normal(self) == _normal(other)


# The local backend's settings when none are given: writing them out configures the same backend.
LOCAL_DEFAULTS = {"path": "terraform.tfstate", "workspace_dir": "terraform.tfstate.d"}


def _normal(backend: Backend) -> dict[str, str]:
    defaults = LOCAL_DEFAULTS if backend.type == "local" else {}
    shown = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in backend.config.items() if v is not None}
    return {k: v for k, v in shown.items() if defaults.get(k) != v.rstrip("/")}


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


def _hcl_settings(text: str) -> dict[str, Any] | None:
    import hcl2  # lazy: ~100 ms, only for files that need it
    from lark.exceptions import LarkError

    try:
        options = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True)
        data: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    except (LarkError, ValueError):
        return None
    return data


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
        data = _hcl_settings(text)
        if data is None:
            return None
        for block in data.get("terraform") or []:
            if block.get("cloud"):
                return None
            for backend in block.get("backend") or []:
                for kind, settings in backend.items():
                    config = {k: v for k, v in (settings or {}).items() if not k.startswith("__")}
                    return Backend(str(kind), config)
    return Backend("local", {})


def requested_backend(declared: Backend | None, backend_configs: Iterable[str]) -> Backend | None:
    """The backend an `init -backend-config=…` would configure: the module's block with the given settings on top
    (KEY=VALUE, or a file of `key = value` lines, already resolved to an absolute path). None when unknown."""
    if declared is None:
        return None
    config = dict(declared.config)
    for item in backend_configs:
        if "=" in item and not Path(item).is_file():
            key, _, value = item.partition("=")
            config[key.strip()] = value
            continue
        try:
            settings = _hcl_settings(Path(item).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        if settings is None:
            return None
        config.update({k: v for k, v in settings.items() if not k.startswith("__")})
    return Backend(declared.type, config)


@dataclass(frozen=True)
class InitPlan:
    """How to run `init`: with which -backend-config settings, whether -reconfigure, and why (for the report)."""

    backend_configs: tuple[str, ...]
    reconfigure: bool
    why: str


def plan_init(workdir: Path, backend_configs: Iterable[str] = ()) -> InitPlan:
    """The init that reaches the requested backend (the module's own, or it with --backend-config settings).

    A plain `init` keeps what `.terraform` records, which is right when it records the requested backend already
    (then the settings are not even passed: `-backend-config` without `-reconfigure` on a recorded backend makes
    the engine compare hashes and ask to migrate). Otherwise `-reconfigure`: a different backend than last time is
    intended, not a migration of states.
    """
    configs = tuple(backend_configs)
    stored = stored_backend(workdir)
    declared = declared_backend(workdir)
    if configs:
        requested = requested_backend(declared, configs)
        if stored is not None and requested is not None and stored.same_as(requested):
            return InitPlan((), False, f"the folder is already set up for {stored.describe()}, as asked")
        return InitPlan(configs, True, "settings from --backend-config")
    if stored is None:
        return InitPlan((), False, "the module's own backend")
    if declared is None:
        return InitPlan((), True, (
            f"the module's own backend (the folder was set up for {stored.describe()}; the module's backend block "
            "cannot be compared, so init -reconfigure returns to it)"
        ))  # fmt: skip
    if stored.same_as(declared):
        return InitPlan((), False, "the module's own backend")
    return InitPlan((), True, (
        f"the module's own backend: an earlier init had set the folder up for {stored.describe()}; init "
        "-reconfigure returns to the backend written in the module"
    ))  # fmt: skip


def asks_to_migrate(texts: Iterable[str]) -> bool:
    return any(MIGRATION_MARKER in text for text in texts)


def migration_hint(workdir: Path, binary: str, init: InitPlan) -> str:
    """What the engine's migration question means and the safe way on, for `init` failing with MIGRATION_MARKER."""
    configs = " ".join(f"-backend-config={c}" for c in init.backend_configs)
    command = " ".join(filter(None, [binary, f"-chdir={workdir}", "init", configs]))
    requested = requested_backend(declared_backend(workdir), init.backend_configs)
    # The question comes for states at the default places; copying them to a local backend at those same places
    # changes nothing.
    same_place = requested is not None and requested.same_as(Backend("local", {}))
    states = LOCAL_DEFAULTS["workspace_dir"]
    if same_place:
        return (
            f"the engine found workspace states at the local backend's default places ({states}/ in "
            f"{workdir}) with no record in .terraform of having set them up, and wants to ask whether to copy them "
            "into the backend being configured, which is the same local folder; with input disabled it stopped. "
            "Nothing was changed. Copying them onto themselves changes nothing, so after a backup of "
            f"{states}/ run `{command} -input=false -force-copy` once (it records the backend in "
            ".terraform), then the same provision command"
        )
    return (
        f"the engine found workspace states in {workdir} (the local backend's default places) and wants to ask "
        "whether to copy them into the backend being configured, overwriting states of the same names there; with "
        "input disabled it stopped. Nothing was changed. If that backend already holds the real states, move the "
        f"local ones aside (mv {states} {states}.bak in {workdir}) and run the same "
        f"provision command; if they are meant to move there, run `{command} -migrate-state` yourself and answer "
        "its question"
    )
