"""provision verify: prove a hub's registry credentials work and fit its values, creating and changing nothing.

The values are read by verify_values.py (re-exported here: the verb's one entry point for its callers)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from provision import httpretry, registries, registry
from provision.console import Reporter
from provision.errors import ProvisionError
from provision.hostlimit import HostLimiter
from provision.registries.base import DeadlineWhileAsking, PermissionProbe, Status, host_of
from provision.verbs.verify_values import (
    BINDERHUB,
    HUB_KEYS,
    MAPPING,
    READ_KEYS,
    RELEASE_KEYS,
    TEXT,
    PullSecret,
    ValuesDocument,
    VerifyRequest,
    check_keys,
    from_values,
    hub_view,
    kind_of,
    lookup_from_values,
    merged_hub,
    read_documents,
    release_of,
    release_sibling,
    request_from_files,
)

__all__ = [
    "BINDERHUB",
    "Check",
    "DeadlinePassed",
    "HUB_KEYS",
    "LOOKUP_CHECK",
    "LOOKUP_CREDENTIALS",
    "MAPPING",
    "PullSecret",
    "READ_KEYS",
    "RELEASE_KEYS",
    "TEXT",
    "V2_CHECK",
    "ValuesDocument",
    "VerifyRequest",
    "check_config",
    "check_keys",
    "from_values",
    "host_of",
    "hub_view",
    "kind_of",
    "lookup_from_values",
    "merged_hub",
    "read_documents",
    "release_of",
    "release_sibling",
    "request_from_files",
    "run",
    "target_url",
]

V2_CHECK = "registry answers the v2 API"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def check_config(req: VerifyRequest) -> list[Check]:
    """Consistency of the values themselves (no network)."""
    reg = req.registry
    kind = registries.named(reg.kind)
    checks: list[Check] = []
    problem = kind.prefix_problem(reg)
    checks.append(Check("image_prefix matches the registry", "fail" if problem else "pass",
                        f"{reg.image_prefix}: {problem}" if problem else reg.image_prefix))  # fmt: skip
    if req.pull_secret is not None:
        same = host_of(req.pull_secret.registry) == host_of(reg.server)
        checks.append(Check(
            "pull secret is for the push registry", "pass" if same else "fail",
            f"imagePullSecret.registry {req.pull_secret.registry!r} vs {reg.server!r}",
        ))  # fmt: skip
    elif kind.pull_secret and not req.from_values:
        checks.append(Check(
            "pull secret present", "could-not-check",
            "given by --server/--username/--password-file, no values were read: pass --values-file (and the "
            "secrets) to check jupyterhub.imagePullSecret",
        ))  # fmt: skip
    elif kind.pull_secret == "required":
        checks.append(Check(
            "pull secret present", "fail",
            f"{kind.name} makes pushed repositories private: user pods need "
            f"{req.key('jupyterhub', 'imagePullSecret')}",
        ))  # fmt: skip
    elif kind.pull_secret == "maybe":
        checks.append(Check(
            "pull secret present", "could-not-check",
            f"{kind.title} repositories may be private: then pods need an imagePullSecret",
        ))  # fmt: skip
    if req.lookup is not None:
        checks.append(_lookup_config_check(req))
    return checks


LOOKUP_CHECK = "BinderHub image lookup login set"
LOOKUP_CREDENTIALS = "BinderHub image lookup credentials accepted"


def _lookup_config_check(req: VerifyRequest) -> Check:
    """BinderHub asks `DockerRegistry.url` whether an image exists, with `DockerRegistry.username/password`; without
    them it gets 401 (or asks Docker Hub) and rebuilds every image on every launch (2i2c infrastructure#4315, #8458)."""
    lookup, reg = req.lookup, req.registry
    assert lookup is not None
    if not lookup.registry:
        return Check(LOOKUP_CHECK, "fail", f"{req.key(BINDERHUB, 'config.DockerRegistry.url')} is not set: BinderHub "
                     "looks for images on Docker Hub and rebuilds every image on every launch")  # fmt: skip
    missing = [k for k in ("username", "password") if not getattr(lookup, k)]
    if missing:
        keys = req.key(BINDERHUB, ", ".join(f"config.DockerRegistry.{k}" for k in missing))
        if req.release_files is None:
            keys = keys.replace(".", " ", 1)  # `binderhub-service config.DockerRegistry.username, …`
        return Check(LOOKUP_CHECK, "fail", f"{keys} not set: BinderHub's image lookups get 401, "
                     "so it rebuilds every image on every launch")  # fmt: skip
    if host_of(lookup.registry) != registries.named(reg.kind).lookup_host(reg):
        url = "config.DockerRegistry.url"
        url = url if req.release_files is None else req.key(BINDERHUB, url)
        return Check(LOOKUP_CHECK, "fail", f"{url} {lookup.registry!r} is not the push registry "
                     f"({reg.server!r}): BinderHub looks for images where they are not pushed")  # fmt: skip
    same = (lookup.username, lookup.password) == (reg.username, reg.password)
    return Check(LOOKUP_CHECK, "pass", "the build pods' credentials" if same else "its own credentials (checked below)")


def _credential_checks(client: registry.RegistryClient, label: str, *, scopes: Sequence[str] = ()) -> list[Check]:
    try:
        challenge = client.challenge()
    except registry.RegistryDeadline:
        raise  # not the registry's answer: the run's time is up (run() says what was left)
    except ProvisionError as exc:
        return [Check(V2_CHECK, "fail", str(exc))]
    checks = [Check(V2_CHECK, "pass", f"auth: {challenge.scheme if challenge else 'none'}")]
    try:
        result = client.check_credentials(scopes)
    except registry.RegistryDeadline as exc:
        raise DeadlinePassed(exc.pending, seconds=exc.seconds, checks=checks) from None
    status: Status = "pass" if result.accepted else "fail" if result.accepted is False else "could-not-check"
    checks.append(Check(f"{label} credentials accepted", status, result.detail))
    return checks


def _permission_check(
    req: VerifyRequest,
    client: registry.RegistryClient,
    *,
    limiter: HostLimiter | None = None,
    deadline: httpretry.Deadline | None = None,
) -> Check:
    probe = PermissionProbe(client, limiter=limiter, deadline=deadline, ar_endpoint=req.ar_endpoint)
    try:
        verdict = registries.named(req.registry.kind).permission(req.registry, probe)
    except DeadlineWhileAsking as exc:
        raise DeadlinePassed(exc.pending, seconds=exc.seconds) from None
    return Check("may push and pull under image_prefix", verdict.status, verdict.detail)


def target_url(req: VerifyRequest) -> str:
    """The v2 API URL the checks talk to: --registry-url, else the values' DockerRegistry.url or server."""
    return req.registry_url or registries.named(req.registry.kind).v2_url(req.registry)


class DeadlinePassed(ProvisionError):
    """The command's deadline passed before every check was made: what was pending, and which checks were not made
    (`checks` holds those that were)."""

    def __init__(
        self, pending: str, *, seconds: float, checks: Sequence[Check] = (), not_made: Sequence[str] = ()
    ) -> None:
        made = "; ".join(f"{c.name}: {c.status}" for c in checks)
        text = f"gave up when the {seconds:g} s deadline passed: {pending}"
        if not_made:
            text += f". Not checked: {', '.join(not_made)}"
        if made:
            text += f". Checked before: {made}"
        super().__init__(text, hint="check that the registry is up and reachable from here (or give --registry-url), "
                         "or allow more time with --deadline")  # fmt: skip
        self.pending = pending
        self.seconds = seconds
        self.checks = tuple(checks)
        self.not_made = tuple(not_made)


def run(
    req: VerifyRequest,
    *,
    reporter: Reporter,
    limiter: HostLimiter | None = None,
    announce: bool = True,
    deadline: httpretry.Deadline | float | None = None,
) -> list[Check]:
    """Every check, in order; network failures become failed checks, never exceptions, except the deadline.

    `limiter` bounds requests in flight per host (shared by concurrent runs); `announce` prints the request
    line with its elapsed time (a fleet run reports per hub instead); `deadline` cuts every request and wait to the
    time it leaves (seconds: a deadline starting now). Raises DeadlinePassed when it passes before the checks are
    made.
    """
    if isinstance(deadline, int | float):
        deadline = httpretry.Deadline(deadline)
    reporter.add_secret(req.registry.password)
    for login in (req.pull_secret, req.lookup):
        if login is not None:
            reporter.add_secret(login.password)
    checks = check_config(req)
    reg = req.registry
    url = target_url(req)
    start = time.monotonic()
    if announce:
        reporter.info(f"ask {url}/v2/ ...")
    pull = req.pull_secret
    lookup = req.lookup
    own = (reg.username, reg.password)
    # The logins checked, each with its own client: the build pods' (push), then the pull secret's and BinderHub's
    # lookup login when they differ from it.
    logins: list[tuple[str, str, str]] = [("push", reg.username, reg.password)]
    if pull is not None and (pull.username, pull.password) != own:
        logins.append(("pull secret", pull.username, pull.password))
    if lookup is not None and lookup.username and lookup.password and (lookup.username, lookup.password) != own:
        logins.append(("BinderHub image lookup", lookup.username, lookup.password))
    stages = [f"{label} credentials accepted" for label, _, _ in logins]
    stages.insert(1, "may push and pull under image_prefix")
    for label, username, password in logins:
        client = registry.RegistryClient(url, username=username, password=password, limiter=limiter,
                                         deadline=deadline)  # fmt: skip
        try:
            if label == "push":
                scopes = registries.named(reg.kind).probe_scopes(reg)
                checks += _credential_checks(client, label, scopes=scopes)
                stages.pop(0)
                if checks[-1].status != "fail" and checks[-2].status == "pass":
                    checks.append(_permission_check(req, client, limiter=limiter, deadline=deadline))
                stages.pop(0)
            else:
                checks += [c for c in _credential_checks(client, label) if "credentials" in c.name]
                stages.pop(0)
        except (registry.RegistryDeadline, DeadlinePassed) as exc:
            made = [*checks, *exc.checks] if isinstance(exc, DeadlinePassed) else checks
            raise DeadlinePassed(exc.pending, seconds=exc.seconds, checks=made, not_made=stages) from None
        finally:
            client.close()
    if announce:
        # Not "done": a registry that did not answer is a result, told by the table, not a finished step.
        answered = any(c.name == V2_CHECK and c.status == "pass" for c in checks)
        outcome = "answered" if answered else "no answer"
        reporter.info(f"ask {url}/v2/: {outcome} ({time.monotonic() - start:.2f} s)")
    return checks
