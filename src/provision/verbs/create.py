"""`provision quay|gcp|dockerhub`: one pipeline per registry kind, each the whole run of its command.

validate → check every local input (hub files, sops) → the registry's plan, confirmation and changes (the kind's
flow) → deliver the values (files or stdout) → after a rotation, prove the new credential (verbs/deliver.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.registries.artifact_registry import create as gcp_flow
from provision.registries.artifact_registry import rotate as gcp_rotation
from provision.registries.base import Rotated
from provision.registries.dockerhub import create as dockerhub_flow
from provision.registries.quay import create as quay_flow
from provision.registries.quay import shared_rotation
from provision.verbs import deliver
from provision.verbs import rotate as rotation
from provision.verbs.deliver import Delivery, Emit, HubFiles


def quay(
    request: quay_flow.QuayRequest,
    delivery: Delivery,
    *,
    rotate_shared: bool,
    deadline: float,
    reporter: Reporter,
    emit: Emit,
) -> None:
    """Create (or reuse) a Quay organization, robot and team for a hub and deliver its values; with
    `rotate_shared` (the request rotates), also write the new token into every other hub that pushes as the robot."""
    quay_flow.validate(request)
    if rotate_shared:
        shared_rotation.validate(cluster_config=delivery.files.cluster_config, hub=request.hub)
    prepared = deliver.prepare(delivery, cluster=request.cluster, reporter=reporter)
    shared = None
    if rotate_shared:
        shared = shared_rotation.prepare(request, prepared.files, sops_binary=prepared.sops_binary,
                                         reporter=reporter)  # fmt: skip
        shared_rotation.show(shared, reporter, dry_run=delivery.dry_run)
    else:
        quay_flow.refuse_shared_rotation(request, prepared.files, reporter=reporter)
    result = quay_flow.run(request, reporter=reporter, dry_run=delivery.dry_run, deadline=deadline)
    _report_quay(result, request, reporter, dry_run=delivery.dry_run)
    summary = {
        "changes": [c.describe() for c in result.plan.changes],
        "present": list(result.plan.present),
        "members": list(result.member_report),
        **({"shared_hubs": shared.names} if shared is not None else {}),
    }
    rotated = quay_flow.rotated_credential(request) if any(c.kind == "rotate" for c in result.plan.changes) else None
    if shared is not None and shared.hubs and not delivery.dry_run:
        if rotated is not None:
            _publish_shared(reporter, prepared, result.registry, delivery=delivery, summary=summary, emit=emit,
                            rotated=rotated, shared=shared)  # fmt: skip
            return
        reporter.warn(f"nothing was rotated (the robot is new): the files of {', '.join(shared.names)} "
                      "were not written")  # fmt: skip
    deliver.publish_rotated(reporter, prepared, result.registry, delivery=delivery, summary=summary, emit=emit,
                            rotated=rotated)  # fmt: skip


def _report_quay(result: quay_flow.QuayResult, request: quay_flow.QuayRequest, reporter: Reporter, *,
                 dry_run: bool) -> None:  # fmt: skip
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
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    delivery: Delivery,
    summary: dict[str, Any],
    emit: Emit,
    rotated: Rotated,
    shared: shared_rotation.SharedRotation,
) -> None:
    """--rotate-shared after the rotation: the hub's values, then every other hub's secret file, then the proof for
    each hub. A failed write names the hubs that hold the new token and those that do not."""
    try:
        deliver.publish(reporter, prepared, registry, delivery=delivery, summary=summary, emit=emit)
    except (ProvisionError, KeyboardInterrupt) as exc:
        failed = prepared.files.secret_file
        raise shared_rotation.after_rotation(exc, shared, rotated, written=[], own_written=False,
                                             failed=failed) from None  # fmt: skip
    shared_rotation.write(shared, registry.password, rotated=rotated, reporter=reporter)
    if delivery.proof is None:
        deliver.prove(reporter, prepared, registry, delivery=delivery, rotated=rotated)  # says it was not verified
        return
    proofs: list[tuple[str, Callable[[], object]]] = [
        (str(shared.req.hub), lambda: deliver.prove(reporter, prepared, registry, delivery=delivery, rotated=rotated))
    ]
    for hub in shared.hubs:
        proofs.append((hub.name, functools.partial(
            shared_rotation.prove_hub, shared, hub, registry.password, registry=registry, rotated=rotated,
            options=delivery.proof, reporter=reporter,
        )))  # fmt: skip
    shared_rotation.prove_each(proofs, reporter)


def gcp(
    request: gcp_flow.GcpRequest,
    delivery: Delivery,
    *,
    rotate: bool,
    confirm: Callable[[str], bool],
    reporter: Reporter,
    emit: Emit,
) -> None:
    """Add an Artifact Registry repository for a hub through terraform (with `rotate`, replace only its key) and
    deliver its values; a rotated key is then proved."""
    gcp_flow.validate(request)
    if rotate and request.create_workspace:
        raise UsageError("--rotate replaces the key of an existing registry: --create-workspace has no use here")
    prepared = deliver.prepare(delivery, cluster=request.cluster, reporter=reporter)
    run = gcp_rotation.run if rotate else gcp_flow.run
    result = run(request, reporter=reporter, confirm=confirm, dry_run=delivery.dry_run)
    if not delivery.dry_run:
        applied = f"applied {len(result.plan.changes)} change(s)" if result.applied else "nothing applied"
        edited = "container_repos edited" if result.tfvars_changed else "container_repos unchanged"
        reporter.always(f"summary: {edited}; {applied}; {result.processes} terraform processes")
    summary = {
        "tfvars_changed": result.tfvars_changed,
        "applied": result.applied,
        "terraform_changes": [c.describe() for c in result.plan.changes],
    }
    rotated = gcp_flow.rotated_credential(request) if rotate and result.applied else None
    kept = gcp_flow.rotated_credential(request, new=False)  # terraform holds the key: a failed write says where it is
    deliver.publish_rotated(reporter, prepared, result.registry, delivery=delivery, summary=summary, emit=emit,
                            rotated=rotated, kept=kept)  # fmt: skip


def dockerhub(
    request: dockerhub_flow.DockerHubRequest,
    delivery: Delivery,
    *,
    deadline: float,
    reporter: Reporter,
    emit: Emit,
) -> None:
    """Create (or rotate) the Docker Hub access token a hub pushes with and deliver its values; a rotated token is
    then proved."""
    dockerhub_flow.validate(request)
    # Every local input is checked before the token exists: its secret can be shown only once.
    prepared = deliver.prepare(delivery, cluster=request.cluster, reporter=reporter)

    def deliver_values(result: dockerhub_flow.DockerHubResult) -> None:
        # Called by the flow right after the token is created: if this fails, the flow deletes the token.
        summary = {"changes": [c.describe() for c in result.plan.changes]}
        deliver.publish(reporter, prepared, result.registry, delivery=delivery, summary=summary, emit=emit)
        if not delivery.dry_run:  # only once the secret is stored: a failure above deletes the token again
            reporter.always("summary: " + "; ".join(result.applied))

    result = dockerhub_flow.run(request, reporter=reporter, dry_run=delivery.dry_run, deliver=deliver_values,
                                deadline=deadline,
                                delivered_to=rotation.destination(delivery.files.secret_file))  # fmt: skip
    rotates = any(c.kind == "rotate" for c in result.plan.changes)
    rotated = dockerhub_flow.rotated_credential(request) if rotates else None
    deliver.prove(reporter, prepared, result.registry, delivery=delivery, rotated=rotated)
