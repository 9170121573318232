"""The end of every registry command: publish the values; after a rotation, also prove the new credential works.

The credential is delivered first (the secret file written, or stdout), then verified: a proof that fails must not
lose the only copy of a token. Any failure after the rotation says which credential is live and where it is.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from provision.cli.common import HubFiles, RegistryOptions
from provision.cli.common import publish as publish_values

if TYPE_CHECKING:
    from provision.console import Reporter
    from provision.hubconfig import HubRegistry
    from provision.registries.artifact_registry.create import GcpRequest
    from provision.registries.base import Rotated
    from provision.registries.dockerhub.create import DockerHubRequest
    from provision.registries.quay.create import QuayRequest
    from provision.registries.quay.shared_rotation import SharedRotation


def for_quay(req: QuayRequest) -> Rotated:
    from provision.registries.quay.create import rotated_credential

    return rotated_credential(req)


def for_dockerhub(req: DockerHubRequest) -> Rotated:
    from provision.registries.dockerhub.create import rotated_credential

    return rotated_credential(req)


def for_gcp(req: GcpRequest, *, new: bool = True) -> Rotated:
    from provision.registries.artifact_registry.create import rotated_credential

    return rotated_credential(req, new=new)


def publish(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    options: RegistryOptions,
    summary: dict[str, Any],
    rotated: Rotated | None,
    kept: Rotated | None = None,
) -> None:
    """Write the hub's values and print the machine output; when `rotated`, then run the verify checks on it.

    `kept`: the credential exists without a rotation and can be read again (a GCP key terraform holds): a failed
    write says where it is and how to write it (rotation.unwritten)."""
    from provision.errors import ProvisionError
    from provision.verbs import rotate as rotation

    if rotated is None or options.dry_run:
        try:
            publish_values(reporter, prepared, registry, fmt=options.fmt, dry_run=options.dry_run, summary=summary)
        except (ProvisionError, KeyboardInterrupt) as exc:
            if kept is None or options.dry_run:
                raise
            raise rotation.unwritten(exc, kept, rotation.destination(prepared.files.secret_file)) from None
        return

    try:
        publish_values(reporter, prepared, registry, fmt=options.fmt, dry_run=False, summary=summary)
    except (ProvisionError, KeyboardInterrupt) as exc:
        raise rotation.undelivered(exc, rotated) from None
    prove(reporter, prepared, registry, options=options, rotated=rotated)


def prove(
    reporter: Reporter, prepared: HubFiles, registry: HubRegistry, *, options: RegistryOptions, rotated: Rotated | None
) -> None:
    """After a rotation whose credential is delivered: the verify checks on it (unless --no-verify).

    Docker Hub's flow delivers through its own callback (a token that cannot be stored is deleted there), so its
    command calls this directly once the flow has returned."""
    if rotated is None or options.dry_run:
        return
    from provision.verbs import rotate as rotation

    if not options.verify:
        reporter.warn(f"not verified (--no-verify): {rotated.credential} was not tried against the registry")
        return
    settings = rotation.ProveOptions(options.verify_registry_url, options.verify_ar_endpoint, options.verify_timeout)
    delivered_to = rotation.destination(prepared.files.secret_file)
    files = prepared.files
    rotation.prove(
        registry, rotated=rotated, delivered_to=delivered_to, options=settings, reporter=reporter,
        values_file=files.values_file, secret_file=files.secret_file, sops_binary=prepared.sops_binary,
    )  # fmt: skip


def publish_shared(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    options: RegistryOptions,
    summary: dict[str, Any],
    rotated: Rotated,
    shared: SharedRotation,
) -> None:
    """--rotate-shared after the rotation: the hub's values, then every other hub's secret file, then the proof for
    each hub. A failed write names the hubs that hold the new token and those that do not."""
    from provision.errors import ProvisionError
    from provision.registries.quay import shared_rotation
    from provision.verbs import rotate as rotation

    try:
        publish_values(reporter, prepared, registry, fmt=options.fmt, dry_run=False, summary=summary)
    except (ProvisionError, KeyboardInterrupt) as exc:
        failed = prepared.files.secret_file
        raise shared_rotation.after_rotation(exc, shared, rotated, written=[], own_written=False,
                                             failed=failed) from None  # fmt: skip
    shared_rotation.write(shared, registry.password, rotated=rotated, reporter=reporter)
    if not options.verify or options.dry_run:
        prove(reporter, prepared, registry, options=options, rotated=rotated)  # says it was not verified
        return
    settings = rotation.ProveOptions(options.verify_registry_url, options.verify_ar_endpoint, options.verify_timeout)
    proofs: list[tuple[str, Any]] = [
        (str(shared.req.hub), lambda: prove(reporter, prepared, registry, options=options, rotated=rotated))
    ]
    for hub in shared.hubs:
        proofs.append((hub.name, functools.partial(
            shared_rotation.prove_hub, shared, hub, registry.password, registry=registry, rotated=rotated,
            options=settings, reporter=reporter,
        )))  # fmt: skip
    shared_rotation.prove_each(proofs, reporter)
