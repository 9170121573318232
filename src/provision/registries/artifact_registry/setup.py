"""provision gcp as the create verb drives it: the hub's repository, service account and key through terraform
(create.py), or with --rotate only a new key (rotate.py)."""

from __future__ import annotations

from collections.abc import Callable

from provision.console import Reporter
from provision.errors import UsageError
from provision.registries.artifact_registry import create as flow
from provision.registries.artifact_registry import rotate as rotation
from provision.verbs.create import Created, Handover
from provision.verbs.deliver import HubFiles


class GcpSetup:
    """Add an Artifact Registry repository for a hub through terraform (with `rotate`, replace only its key)."""

    def __init__(self, request: flow.GcpRequest, *, rotate: bool, confirm: Callable[[str], bool]) -> None:
        self.request, self.rotate, self.confirm = request, rotate, confirm
        self.cluster: str | None = request.cluster

    def validate(self) -> None:
        flow.validate(self.request)
        if self.rotate and self.request.create_workspace:
            raise UsageError("--rotate replaces the key of an existing registry: --create-workspace has no use here")
        if self.rotate and self.request.retention is not None:
            raise UsageError(
                "--rotate replaces only the hub's key: set --keep-tags/--prune-older-than in a run without --rotate"
            )

    def check(self, prepared: HubFiles, reporter: Reporter, *, dry_run: bool) -> None:
        """Nothing more: terraform's inputs are checked by the run itself, under its lock."""

    def run(self, handover: Handover, reporter: Reporter) -> Created:
        request = self.request
        run = rotation.run if self.rotate else flow.run
        result = run(request, reporter=reporter, confirm=self.confirm, dry_run=handover.dry_run)
        if not handover.dry_run:
            applied = f"applied {len(result.plan.changes)} change(s)" if result.applied else "nothing applied"
            edited = "tfvars edited" if result.tfvars_changed else "tfvars unchanged"
            reporter.always(f"summary: {edited}; {applied}; {result.processes} terraform processes")
        summary = {
            "tfvars_changed": result.tfvars_changed,
            "applied": result.applied,
            "terraform_changes": [c.describe() for c in result.plan.changes],
        }
        rotated = flow.rotated_credential(request) if self.rotate and result.applied else None
        kept = flow.rotated_credential(request, new=False)  # terraform holds the key: a failed write says where
        return Created(result.registry, summary, rotated, kept)
