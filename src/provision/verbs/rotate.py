"""After a rotation: say exactly which credential is live and where, and prove it works with the verify checks.

A rotation makes the old credential stop working at once, so everything after it (writing the hub's files, the
proof) must either succeed or leave a message that names the live credential and the place it can be read from,
never the credential itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision import httpretry
from provision.console import Reporter
from provision.errors import EXIT_INTERRUPTED, ProvisionError
from provision.hubconfig import HubRegistry
from provision.registries.base import Rotated
from provision.verbs import verify

CREDENTIAL_CHECK = "push credentials accepted"
# New Google service-account keys can take a minute to be accepted; Quay and Docker Hub tokens work at once, so
# the wait only costs time when the proof would otherwise fail.
DEFAULT_SETTLE = 60.0
RETRY_EVERY = 5.0
# The last attempt of the proof may start just before --verify-timeout ends: it gets this long to be answered, so
# the proof as a whole (every request, every wait) ends within --verify-timeout + LAST_ATTEMPT seconds.
LAST_ATTEMPT = 30.0


def destination(secret_file: Path | None) -> str:
    return f"the encrypted file {secret_file}" if secret_file else "this run's standard output (the secret values)"


def undelivered(exc: BaseException, rotated: Rotated) -> ProvisionError:
    """The error of a failed or interrupted delivery, saying which credential is live and where it is."""
    what = str(exc) if isinstance(exc, ProvisionError) else "interrupted"
    again = (
        f"run {rotated.rewrite} once the cause is fixed"
        if rotated.rewrite
        else "fix the cause, then run the same command with --rotate again (a new token replaces this one)"
    )
    error = ProvisionError(
        f"the rotation is done but its credential was not delivered: {what.rstrip('.')}. "
        f"{_sentence(rotated.credential)} is live (the old one no longer works) and can be read from "
        f"{rotated.where}; the hub's secrets still hold the old one",
        hint=again,
    )
    if isinstance(exc, KeyboardInterrupt):
        error.exit_code = EXIT_INTERRUPTED
    return error


def unwritten(exc: BaseException, credential: Rotated, destination: str) -> ProvisionError:
    """The error of a failed or interrupted delivery of a credential that exists without a rotation (a GCP key
    terraform holds): that it exists, where it can be read, that it was not written, and how to write it."""
    what = str(exc) if isinstance(exc, ProvisionError) else "interrupted"
    error = ProvisionError(
        f"{credential.credential} exists but was not delivered: {what.rstrip('.')}. It can be read from "
        f"{credential.where}; it was not written to {destination}, so the hub's secrets do not hold it",
        hint=f"Run {credential.rewrite} once the cause is fixed" if credential.rewrite else None,
    )
    if isinstance(exc, KeyboardInterrupt):
        error.exit_code = EXIT_INTERRUPTED
    return error


@dataclass(frozen=True)
class ProveOptions:
    registry_url: str | None = None  # talk to this v2 endpoint instead of the registry's own (a mirror, tests)
    ar_endpoint: str | None = None  # Artifact Registry API endpoint (default Google's)
    settle: float = DEFAULT_SETTLE  # seconds a new credential may take to be accepted
    last_attempt: float = LAST_ATTEMPT  # seconds more for the attempt started last (see LAST_ATTEMPT)


def proof_request(
    registry: HubRegistry,
    *,
    rotated: Rotated,
    delivered_to: str,
    options: ProveOptions,
    values_file: Path | None = None,
    secret_file: Path | None = None,
    sops_binary: str | None = None,
    reporter: Reporter | None = None,
) -> verify.VerifyRequest:
    """What to verify: the hub's files as they are now when both were written (so the proof covers what the hub
    will deploy, and that the file holds the new credential), else the new credential as the run holds it."""
    if values_file is None or secret_file is None:
        pull = (
            verify.PullSecret(registry.pull_secret_registry, registry.username, registry.password)
            if registry.pull_secret_registry
            else None
        )  # the pull secret provision writes holds the same credential
        return verify.VerifyRequest(registry, pull, options.registry_url, options.ar_endpoint)
    try:
        request = verify.request_from_files(
            [values_file], secret_files=[secret_file], sops_bin=sops_binary, registry_url=options.registry_url,
            ar_endpoint=options.ar_endpoint, reporter=reporter,
        )  # fmt: skip
    except ProvisionError as exc:
        reason = f"the hub's files cannot be read back ({str(exc).rstrip('.')})"
        raise unproven(reason, rotated, delivered_to) from None
    if request.registry.password != registry.password:
        raise unproven(f"{secret_file} does not hold the new credential after writing it", rotated, delivered_to)
    return request


def prove(
    registry: HubRegistry,
    *,
    rotated: Rotated,
    delivered_to: str,
    options: ProveOptions,
    reporter: Reporter,
    values_file: Path | None = None,
    secret_file: Path | None = None,
    sops_binary: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    request: verify.VerifyRequest | None = None,
) -> list[verify.Check]:
    """Run the verify checks on the new credential until they pass or `options.settle` seconds have passed.

    With both hub files, the checks read them back (decrypting the secret file into memory), as `provision verify`
    would; `request`: what to verify, read by the caller (another hub's files: registries/quay/shared_rotation.py).
    Passing means no check failed and the registry accepted the credential. Raises ProvisionError naming the live
    credential and where it was delivered (its value never appears).
    """
    try:
        return _prove(
            registry, rotated=rotated, delivered_to=delivered_to, options=options, reporter=reporter,
            values_file=values_file, secret_file=secret_file, sops_binary=sops_binary, sleep=sleep, request=request,
        )  # fmt: skip
    except KeyboardInterrupt:
        # The credential is already rotated and delivered: re-running the same command would rotate it again.
        error = ProvisionError(
            f"interrupted while proving the rotated credential: {rotated.credential} is live (the old one no longer "
            f"works) and was written to {delivered_to}",
            hint="check it with `provision verify` on the hub's files (running this command again would rotate "
            "the credential once more)",
        )
        error.exit_code = EXIT_INTERRUPTED
        raise error from None


def _prove(
    registry: HubRegistry,
    *,
    rotated: Rotated,
    delivered_to: str,
    options: ProveOptions,
    reporter: Reporter,
    values_file: Path | None,
    secret_file: Path | None,
    sops_binary: str | None,
    sleep: Callable[[float], None],
    request: verify.VerifyRequest | None,
) -> list[verify.Check]:
    request = request or proof_request(
        registry, rotated=rotated, delivered_to=delivered_to, options=options, values_file=values_file,
        secret_file=secret_file, sops_binary=sops_binary, reporter=reporter,
    )  # fmt: skip
    settled = time.monotonic() + options.settle  # no new attempt after this
    clock = httpretry.Deadline(options.settle + options.last_attempt)  # and no request or wait after this
    while True:
        try:
            checks = verify.run(request, reporter=reporter, deadline=clock)
        except verify.DeadlinePassed as exc:
            reason = f"no answer in time ({exc.message}; allow more with --verify-timeout)"
            raise unproven(reason, rotated, delivered_to) from None
        failed = [c for c in checks if c.status == "fail"]
        accepted = any(c.name == CREDENTIAL_CHECK and c.status == "pass" for c in checks)
        if not failed and accepted:
            for check in checks:
                reporter.info(f"  {check.status:<15} {check.name}  {check.detail}")
            reporter.always(f"verified: {rotated.credential} works ({len(checks)} checks, none failed)")
            return checks
        remaining = settled - time.monotonic()
        # Only a registry refusing the credential may change its mind; a wrong URL, an answer that is not a
        # registry's or a host that cannot be reached stays so however long the proof waits.
        if not refused(checks) or remaining <= 0:
            break
        reporter.info(f"the registry does not accept the new credential yet; checking again in {RETRY_EVERY:.0f} s")
        sleep(min(RETRY_EVERY, remaining))
    problems = failed or [c for c in checks if c.name == CREDENTIAL_CHECK] or checks
    listed = "; ".join(f"{c.name}: {c.status} ({c.detail})" for c in problems)
    if not any(c.name == CREDENTIAL_CHECK for c in checks):
        listed = f"the registry was not asked about the credential: {listed}"
    raise unproven(listed, rotated, delivered_to)


_REFUSED = re.compile(r"\bHTTP (401|403)$")


def refused(checks: list[verify.Check]) -> bool:
    """Whether the registry answered the v2 API and refused the credential (HTTP 401 or 403): the one failure a
    new credential can outgrow (a new Google key takes a while to be accepted)."""
    return any(
        c.name == CREDENTIAL_CHECK and c.status == "fail" and _REFUSED.search(c.detail) is not None for c in checks
    )


def unproven(reason: str, rotated: Rotated, delivered_to: str) -> ProvisionError:
    return ProvisionError(
        f"the rotated credential did not pass verify: {reason}. {_sentence(rotated.credential)} is live "
        f"(the old one no longer works) and was written to {delivered_to}",
        hint="check the failures above with `provision verify` on the hub's files; if the registry is only slow to "
        "accept the new credential, verify again later",
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
