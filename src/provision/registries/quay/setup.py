"""provision quay as the create verb drives it: the organization, robot and team (registries/quay/create.py), and
with --rotate-shared the new token written into every other hub that pushes as the robot (shared_rotation.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provision.console import Reporter
from provision.errors import ProvisionError
from provision.hubconfig import HubRegistry
from provision.registries.base import Rotated
from provision.registries.quay import create as flow
from provision.registries.quay import retention, shared_rotation
from provision.verbs.create import Created, Handover
from provision.verbs.deliver import HubFiles


class QuaySetup:
    """Create (or reuse) a Quay organization, robot and team for a hub; with `rotate_shared` (the request
    rotates), also write the new token into every other hub that pushes as the robot."""

    def __init__(
        self, request: flow.QuayRequest, *, rotate_shared: bool, deadline: float, cluster_config: Path | None
    ) -> None:
        self.request, self.rotate_shared, self.deadline = request, rotate_shared, deadline
        self.cluster_config = cluster_config
        self.cluster = request.cluster
        self.shared: shared_rotation.SharedRotation | None = None
        self.prepared: HubFiles | None = None

    def validate(self) -> None:
        flow.validate(self.request)
        if self.rotate_shared:
            shared_rotation.validate(cluster_config=self.cluster_config, hub=self.request.hub)

    def check(self, prepared: HubFiles, reporter: Reporter, *, dry_run: bool) -> None:
        self.prepared = prepared
        req, configs = self.request, flow.cluster_configs(prepared.files)
        retention.refuse_unannounced_sharing(req.retention, org=req.org, host=req.host, hub=req.hub, configs=configs,
                                             reporter=reporter)  # fmt: skip
        if not self.rotate_shared:
            flow.refuse_shared_rotation(self.request, prepared.files, reporter=reporter)
            return
        self.shared = shared_rotation.prepare(self.request, prepared.files, sops_binary=prepared.sops_binary,
                                              reporter=reporter)  # fmt: skip
        shared_rotation.show(self.shared, reporter, dry_run=dry_run)

    def run(self, handover: Handover, reporter: Reporter) -> Created:
        request, shared = self.request, self.shared
        result = flow.run(request, reporter=reporter, dry_run=handover.dry_run, deadline=self.deadline)
        _report(result, request, reporter, dry_run=handover.dry_run)
        summary = {
            "changes": [c.describe() for c in result.plan.changes],
            "present": list(result.plan.present),
            "members": list(result.member_report),
            **({"shared_hubs": shared.names} if shared is not None else {}),
            **({"retention": result.retention} if result.retention is not None else {}),
        }
        rotates = any(c.kind == "rotate" for c in result.plan.changes)
        rotated = flow.rotated_credential(request) if rotates else None
        if shared is not None and shared.hubs and not handover.dry_run:
            if rotated is not None:
                _publish_shared(handover, result.registry, summary=summary, rotated=rotated, shared=shared)
                return Created(result.registry, summary, rotated, delivered=True, proved=True)
            reporter.warn(f"nothing was rotated (the robot is new): the files of {', '.join(shared.names)} "
                          "were not written")  # fmt: skip
        return Created(result.registry, summary, rotated)


def _report(result: flow.QuayResult, request: flow.QuayRequest, reporter: Reporter, *, dry_run: bool) -> None:
    if dry_run and request.email is None and request.host == "quay.io":
        if any(c.kind == "create_org" for c in result.plan.changes):
            reporter.warn("quay.io requires an e-mail to create an organization: without --email the real run fails")
    if not dry_run:
        reporter.always(
            "summary: " + ("; ".join(result.applied) if result.applied else "nothing to do, no change made")
        )
        for line in result.member_report:
            reporter.always(f"  {line}")


def _publish_shared(
    handover: Handover,
    registry: HubRegistry,
    *,
    summary: dict[str, Any],
    rotated: Rotated,
    shared: shared_rotation.SharedRotation,
) -> None:
    """--rotate-shared after the rotation: the hub's values, then every other hub's secret file, then the proof for
    each hub. A failed write names the hubs that hold the new token and those that do not."""
    reporter = handover.reporter
    try:
        handover.publish(registry, summary)
    except (ProvisionError, KeyboardInterrupt) as exc:
        raise shared_rotation.after_rotation(exc, shared, rotated, written=[], own_written=False,
                                             failed=handover.secret_file) from None  # fmt: skip
    shared_rotation.write(shared, registry.password, rotated=rotated, reporter=reporter)
    proof = handover.delivery.proof
    if proof is None:
        handover.prove(registry, rotated)  # says it was not verified
        return
    proofs: list[tuple[str, Callable[[], object]]] = [
        (str(shared.req.hub), lambda: handover.prove(registry, rotated))
    ]
    for hub in shared.hubs:
        proofs.append((hub.name, functools.partial(
            shared_rotation.prove_hub, shared, hub, registry.password, registry=registry, rotated=rotated,
            options=proof, reporter=reporter,
        )))  # fmt: skip
    shared_rotation.prove_each(proofs, reporter)
