"""Deliver a registry command's values, whatever the registry kind: check every local input before the first
remote write (prepare), write the hub's files and hand the machine output to the caller (publish), and after a
rotation prove the new credential works (publish_rotated, prove).

The machine output goes through the caller's `emit` (the CLI's stdout, written once): it is handed over at the
moment the values are delivered, before the proof, so a proof that fails never loses the only copy of a token.
Any failure after a rotation says which credential is live and where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.console import Reporter, to_json
from provision.errors import ProvisionError, UsageError
from provision.files import read_input
from provision.hubconfig import Chart, HubOptions, HubRegistry, ImageChoice, Profile, images_from_yaml
from provision.hubfiles import edits
from provision.hubfiles import preflight as local_inputs
from provision.hubfiles import write as hubfiles
from provision.hubfiles.secret_file import SecretState
from provision.registries.base import Rotated
from provision.verbs import rotate as rotation

Emit = Callable[[str], None]  # where the machine output goes (the CLI's stdout); called at most once a run


@dataclass(frozen=True)
class ProfileRequest:
    """The image-building profile as asked for: --image specs, --images-file, --profile, --default-image."""

    images: tuple[str, ...] = ()
    images_file: Path | None = None
    flag: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Delivery:
    """Where a registry command delivers the hub's values (files, or stdout) and in what shape, and how it proves
    a rotated credential (`proof` None: --no-verify)."""

    files: edits.FilesRequest
    chart: Chart | None = None  # None: found from the cluster.yaml (hubfiles.chart_for)
    dask_gateway: bool = False
    profile: ProfileRequest = field(default_factory=ProfileRequest)
    dry_run: bool = False
    json: bool = False
    show_secrets: bool = False
    stdout_is_terminal: bool = False
    proof: rotation.ProveOptions | None = field(default_factory=rotation.ProveOptions)


@dataclass(frozen=True)
class HubFiles:
    """What a registry command will do with the values: the files to write, the values' shape, the sops binary."""

    files: edits.FilesRequest
    options: HubOptions
    sops_binary: str | None
    secret_state: SecretState | None = None  # the secret file as read before the first remote write


def prepare(delivery: Delivery, *, cluster: str | None, reporter: Reporter) -> HubFiles:
    """Check every local input before the command's first remote write: the hub-file options, the terminal, the
    values files (they parse), the secret file (it decrypts; a new one has a creation rule with usable keys).

    The decrypted secrets stay in memory in the result, for the merge after the remote work (no second decrypt).
    `cluster` and `reporter`: where the chart is looked for, and told (hubfiles.chart_for).
    """
    files = delivery.files
    sops_binary = hubfiles.validate(files)
    local_inputs.check_hub_files(files)
    profile = profile_from(delivery.profile)
    options = hub_options(files, chart=delivery.chart, dask_gateway=delivery.dask_gateway, profile=profile,
                          cluster=cluster, reporter=reporter)  # fmt: skip
    guard_terminal(delivery)
    state = hubfiles.preflight(files, sops_binary=sops_binary, chart=options.chart, options=options)
    return HubFiles(files, options, sops_binary, state)


def profile_from(asked: ProfileRequest) -> Profile | None:
    """The image-building profile asked for by --image, --images-file, --default-image or --profile (None when
    none is). Whether it has any image choice is checked against the hub's values file later (check_profile)."""
    choices: list[ImageChoice] = [ImageChoice.parse(spec) for spec in asked.images]
    if asked.images_file is not None:
        try:
            text = read_input(asked.images_file, label="--images-file")
        except FileNotFoundError:
            raise UsageError(f"--images-file {str(asked.images_file)!r} does not exist") from None
        choices += images_from_yaml(text, source=f"--images-file {str(asked.images_file)!r}")
    if len({c.slug for c in choices}) != len(choices):
        raise UsageError("image slugs must be unique")
    marked = [c.slug for c in choices if c.default]
    default = asked.default
    if default is not None and marked and marked != [default]:
        raise UsageError(f"--default-image {default!r} and the images file's default {marked[0]!r} disagree")
    if not choices and not asked.flag and default is None:
        return None
    return Profile(images=tuple(choices), default=default or (marked[0] if marked else None))


def hub_options(
    files: edits.FilesRequest,
    *,
    chart: Chart | None,
    dask_gateway: bool,
    profile: Profile | None,
    cluster: str | None = None,
    reporter: Reporter | None = None,
) -> HubOptions:
    resolved = hubfiles.chart_for(files, chart, cluster=cluster, reporter=reporter)
    # Hubs on the legacy daskhub chart run dask-gateway (they set dask-gateway.enabled; basehub defaults it off):
    # give its pods the pull secret without being asked. Harmless where dask-gateway is off.
    options = HubOptions(chart=resolved, dask_gateway=dask_gateway or resolved == "daskhub", profile=profile)
    hubfiles.check_profile(files, options)  # before any change: a profile with no image choice is refused
    return options


def guard_terminal(delivery: Delivery) -> None:
    """Refuse, before any change, to print secrets on a terminal."""
    if delivery.dry_run or delivery.files.secret_file is not None or delivery.show_secrets:
        return
    if delivery.stdout_is_terminal:
        raise UsageError(
            "stdout is a terminal and would show the registry password; pipe it into sops, e.g. "
            "`... | sops encrypt --filename-override enc-HUB.secret.values.yaml --output enc-HUB.secret.values.yaml`, "
            "or pass --secret-file, or --show-secrets"
        )


def publish(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    delivery: Delivery,
    summary: dict[str, Any],
    emit: Emit,
) -> None:
    """Render and write the hub's values, then hand the machine output to `emit`."""
    published = hubfiles.publish(
        registry,
        prepared.options,
        prepared.files,
        sops_binary=prepared.sops_binary,
        state=prepared.secret_state,
        reporter=reporter,
        dry_run=delivery.dry_run,
    )
    text = machine_output(reporter, published, json=delivery.json, dry_run=delivery.dry_run, summary=summary)
    if text is not None:
        emit(text)


def machine_output(
    reporter: Reporter, published: hubfiles.Published, *, json: bool, dry_run: bool, summary: dict[str, Any]
) -> str | None:
    """The run's stdout (None: nothing to print): the secret values, unless they went into --secret-file.

    JSON names the chart; for z2jh, public_values and secret_values are keyed by release (jupyterhub,
    binderhub-service), each value a whole values document for that chart.
    """
    summary = {"chart": published.chart, **summary}
    if dry_run:
        reporter.always("dry run: nothing was changed")
        return to_json({"dry_run": True, **summary, "public_values": published.public}) if json else None
    if published.written:
        reporter.always("written: " + ", ".join(published.written))
    if published.secret_in_file:
        written = list(published.written)
        return to_json({**summary, "public_values": published.public, "written": written}) if json else None
    if json:
        return to_json({**summary, "public_values": published.public, "secret_values": published.secret})
    return published.documents(published.secret)


def publish_rotated(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    delivery: Delivery,
    summary: dict[str, Any],
    emit: Emit,
    rotated: Rotated | None,
    kept: Rotated | None = None,
) -> None:
    """Write the hub's values and emit the machine output; when `rotated`, then run the verify checks on it.

    `kept`: the credential exists without a rotation and can be read again (a GCP key terraform holds): a failed
    write says where it is and how to write it (rotation.unwritten)."""
    dry_run = delivery.dry_run
    if rotated is None or dry_run:
        try:
            publish(reporter, prepared, registry, delivery=delivery, summary=summary, emit=emit)
        except (ProvisionError, KeyboardInterrupt) as exc:
            if kept is None or dry_run:
                raise
            raise rotation.unwritten(exc, kept, rotation.destination(prepared.files.secret_file)) from None
        return
    try:
        publish(reporter, prepared, registry, delivery=delivery, summary=summary, emit=emit)
    except (ProvisionError, KeyboardInterrupt) as exc:
        raise rotation.undelivered(exc, rotated) from None
    prove(reporter, prepared, registry, delivery=delivery, rotated=rotated)


def prove(
    reporter: Reporter,
    prepared: HubFiles,
    registry: HubRegistry,
    *,
    delivery: Delivery,
    rotated: Rotated | None,
) -> None:
    """After a rotation whose credential is delivered: the verify checks on it (unless --no-verify).

    Docker Hub's flow delivers through its own callback (a token that cannot be stored is deleted there), so its
    pipeline calls this directly once the flow has returned."""
    if rotated is None or delivery.dry_run:
        return
    if delivery.proof is None:
        reporter.warn(f"not verified (--no-verify): {rotated.credential} was not tried against the registry")
        return
    files = prepared.files
    rotation.prove(
        registry, rotated=rotated, delivered_to=rotation.destination(files.secret_file), options=delivery.proof,
        reporter=reporter, values_file=files.values_file, secret_file=files.secret_file,
        sops_binary=prepared.sops_binary,
    )  # fmt: skip
