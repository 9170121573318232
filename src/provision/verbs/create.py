"""`provision quay|gcp|dockerhub` (and any kind's creation): one pipeline, whatever the registry kind.

validate → check every local input (hub files, sops) → the kind's own checks on them → the registry's plan,
confirmation and changes (the kind's Setup) → deliver the values (files or stdout) → after a rotation, prove the new
credential (verbs/deliver.py). A kind delivers through the `Handover` it is given, at the moment that suits it (Docker
Hub before it keeps a token it can show only once); otherwise the pipeline delivers what the kind returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provision.console import Reporter
from provision.hubconfig import HubRegistry
from provision.registries.base import Rotated
from provision.verbs import deliver
from provision.verbs import rotate as rotation
from provision.verbs.deliver import Delivery, Emit, HubFiles


@dataclass(frozen=True)
class Created:
    """What a kind's Setup made: the hub's values, the summary for `--format json`, and after a rotation the live
    credential (`rotated`) or, without one, a credential that can be read again elsewhere (`kept`: a GCP key that
    terraform holds). `delivered`/`proved`: the kind already delivered (and proved) through its Handover."""

    registry: HubRegistry
    summary: dict[str, Any] = field(default_factory=dict)
    rotated: Rotated | None = None
    kept: Rotated | None = None
    delivered: bool = False
    proved: bool = False


class Handover:
    """What a kind may do with the hub's files during its run: deliver the values, prove a credential."""

    def __init__(self, prepared: HubFiles, delivery: Delivery, *, reporter: Reporter, emit: Emit) -> None:
        self.prepared, self.delivery, self.reporter, self.emit = prepared, delivery, reporter, emit

    @property
    def dry_run(self) -> bool:
        return self.delivery.dry_run

    @property
    def secret_file(self) -> Path | None:
        return self.prepared.files.secret_file

    @property
    def destination(self) -> str:
        """Where the values go, for messages: the encrypted file, or stdout."""
        return rotation.destination(self.secret_file)

    def publish(self, registry: HubRegistry, summary: dict[str, Any]) -> None:
        deliver.publish(self.reporter, self.prepared, registry, delivery=self.delivery, summary=summary, emit=self.emit)

    def prove(self, registry: HubRegistry, rotated: Rotated | None) -> None:
        deliver.prove(self.reporter, self.prepared, registry, delivery=self.delivery, rotated=rotated)


class Setup(Protocol):
    """A kind's creation (or rotation) of one hub's credential, as the create verb drives it."""

    cluster: str | None  # where the hub's chart is looked up (config/clusters/<cluster>/cluster.yaml)

    def validate(self) -> None:
        """Every option of the kind, before anything is read (UsageError)."""

    def check(self, prepared: HubFiles, reporter: Reporter, *, dry_run: bool) -> None:
        """The kind's local checks that need the hub's files, before the first remote write."""

    def run(self, handover: Handover, reporter: Reporter) -> Created:
        """The registry's plan, confirmation and changes; may deliver through `handover` itself."""


def run(setup: Setup, delivery: Delivery, *, reporter: Reporter, emit: Emit) -> None:
    """Create (or rotate) a hub's registry credential through its kind's Setup, deliver its values, prove it."""
    setup.validate()
    prepared = deliver.prepare(delivery, cluster=setup.cluster, reporter=reporter)
    setup.check(prepared, reporter, dry_run=delivery.dry_run)
    handover = Handover(prepared, delivery, reporter=reporter, emit=emit)
    created = setup.run(handover, reporter)
    if created.proved:
        return
    if created.delivered:
        handover.prove(created.registry, created.rotated)
        return
    deliver.publish_rotated(reporter, prepared, created.registry, delivery=delivery, summary=created.summary,
                            emit=emit, rotated=created.rotated, kept=created.kept)  # fmt: skip

