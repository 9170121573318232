"""Artifact Registry retention from `provision gcp --keep-tags N --prune-older-than DAYS`: the hub's entry of the
module's per-hub `registry_retention` map in the cluster's tfvars, which terraform turns into the hub's repository's
cleanup policies (terraform/gcp/registry.tf).

Why per hub: the module-wide `cleanup_*` variables change every hub's repository at once, and the plan judge rightly
refuses other hubs' changes in `provision gcp --hub H`. A `registry_retention["H"]` entry changes H's repository
only: an update of H's registry resource, which the judge accepts for H and refuses for any other hub.

What the options map to (Artifact Registry: keep beats delete; `most_recent_versions` and `condition` never share a
policy; at most 3 of the 10 policies a repository may have):
- `--keep-tags N` → `keep_recent = N`: a KEEP policy for the N most recent versions of each image (each BinderHub
  image is a package). Alone it also sets `delete_older_than_days = 0`: a DELETE policy for every other version, so
  that, as with Quay's `number_of_tags`, only N are left (a KEEP policy alone deletes nothing).
- `--prune-older-than DAYS` → `delete_older_than_days = DAYS`: a DELETE policy for versions, tagged or not, uploaded
  more than DAYS days ago (`older_than = "<DAYS*86400>s"`). With --keep-tags, keep beats delete: a version goes when
  it is older than DAYS *and* not among the N newest of its image (Quay deletes when either holds).
The options give the hub's whole policy: the entry is rewritten from them (an entry written by hand with
`delete_untagged_older_than_days` loses it); without them the entry is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError, UsageError
from provision.registries.base import Retention as RetentionState

VARIABLE = "registry_retention"
DECLARED = re.compile(rf'^\s*variable\s+"?{VARIABLE}"?\s*\{{', re.MULTILINE)


@dataclass(frozen=True)
class Retention:
    keep_tags: int | None = None  # keep the N most recent versions of each image
    prune_older_than_days: int | None = None  # delete versions older than this

    def entry(self) -> dict[str, int | None]:
        """The hub's registry_retention value (null attributes are not written)."""
        delete = self.prune_older_than_days
        if delete is None and self.keep_tags is not None:
            delete = 0  # everything the keep policy does not keep
        return {"keep_recent": self.keep_tags, "delete_older_than_days": delete}

    def describe(self) -> str:
        keep, delete = self.keep_tags, self.prune_older_than_days
        if delete is None:
            return f"keep the {keep} most recent versions of each image, delete the others"
        if keep is None:
            return f"delete versions older than {delete} days"
        return f"delete versions older than {delete} days unless among the {keep} most recent of their image"


def check(retention: Retention) -> None:
    """The options' own rules (typer checks their minimums too). Raises UsageError."""
    if retention.keep_tags is not None and retention.keep_tags < 1:
        raise UsageError("--keep-tags must be at least 1 (0 would delete every image)")
    if retention.prune_older_than_days is not None and retention.prune_older_than_days < 1:
        raise UsageError("--prune-older-than must be at least 1 day")


def module_supports(module: Path) -> bool:
    """Whether the root module declares `variable "registry_retention"` (read from its .tf files, before terraform
    runs: 2i2c's module has no cleanup support, and a tfvars value for an undeclared variable is only a warning)."""
    for path in sorted(module.glob("*.tf")):
        try:
            if DECLARED.search(path.read_text(encoding="utf-8")):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def require_support(module: Path, shown: Path) -> None:
    """Refuse, before any change, retention options for a module that would silently ignore them."""
    if module_supports(module):
        return
    raise UsageError(
        f"--keep-tags and --prune-older-than need cleanup-policy support in the terraform module, and {shown} has "
        f"none: it declares no variable {VARIABLE!r} (2i2c-org/infrastructure's terraform/gcp sets no "
        "cleanup_policies on its repositories today, so its images are never deleted); nothing was changed. To add "
        f'it, declare `variable "{VARIABLE}" {{ type = map(object({{ keep_recent = optional(number), '
        "delete_older_than_days = optional(number) })), default = {} }` and give "
        'google_artifact_registry_repository.registry `dynamic "cleanup_policies"` blocks that read '
        f"`lookup(var.{VARIABLE}, each.key, null)` (a KEEP policy with most_recent_versions {{ keep_count }}, a "
        'DELETE policy with condition { tag_state = "ANY", older_than = "<days*86400>s" }), as provision\'s '
        "terraform/gcp/registry.tf does; or run without these options"
    )


def tfvars_path(repository: Path, cluster: str) -> Path:
    """The cluster's tfvars in 2i2c-org/infrastructure's layout."""
    return repository / "terraform" / "gcp" / "projects" / f"{cluster}.tfvars"


def from_tfvars(repository: Path | None, cluster: str, hub: str) -> RetentionState | None:
    """The hub's cleanup policies as its cluster's tfvars sets them (None: no such file to read). No entry in
    `registry_retention` is "none": terraform gives the repository no cleanup policy."""
    from provision.terraform.tfvars import read

    path = None if repository is None else tfvars_path(repository, cluster)
    if path is None or not path.is_file():
        return None
    shown = f"terraform/gcp/projects/{cluster}.tfvars"
    try:
        _, values = read(path)
    except ProvisionError as exc:
        return RetentionState("unknown", f"{shown} cannot be read: {exc.message}", shown)
    table = values.get(VARIABLE)
    entries = {str(k).strip('"'): v for k, v in table.items()} if isinstance(table, dict) else {}
    entry = entries.get(hub)
    if not isinstance(entry, dict):
        return RetentionState("none", f"no {VARIABLE} entry for {hub} in {shown}: provision gcp --keep-tags or "
                              "--prune-older-than sets one", shown)  # fmt: skip
    keep, delete = entry.get("keep_recent"), entry.get("delete_older_than_days")
    kept = Retention(int(keep) if isinstance(keep, int | float) else None,
                     int(delete) if isinstance(delete, int | float) and delete else None)  # fmt: skip
    if kept.keep_tags is None and kept.prune_older_than_days is None:
        return RetentionState("none", f"the {VARIABLE} entry for {hub} in {shown} sets no policy", shown)
    return RetentionState("server-side", f"cleanup policies: {kept.describe()}", shown)
