"""`provision quay --rotate-shared`: rotate a robot that other hubs of the cluster.yaml push with, once, and write
its new token into every such hub's secret file, then prove it for each hub.

Every other hub's secret file is read, decrypted and checked before the first remote write (prepare); after the
rotation each is changed only at its password keys with `sops set` (edits.plan_files: every other key, byte and
recipient stays). A failure after the rotation names which hubs hold the new token and which do not.

Docker Hub has no such option, by design: provision gives each hub its own token, labelled for that hub, and
Docker Hub shows a token's secret once, to the run that delivers it to that one hub (registries/dockerhub/create.py).
No two hubs' files hold one Docker Hub token unless someone copied it by hand, so a Docker Hub rotation cannot
break another hub.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision import clusterrepo, files, sops
from provision.console import Reporter
from provision.errors import EXIT_INTERRUPTED, ProvisionError, UsageError
from provision.hubconfig import HubRegistry, get_path
from provision.hubfiles import edits
from provision.hubfiles.cluster import cluster_hubs, other_hubs_using
from provision.hubfiles.secret_file import SecretState, read_secret
from provision.registries.base import Rotated
from provision.registries.quay.create import QuayRequest
from provision.verbs import rotate as rotation
from provision.verbs import verify

# The sections whose `password` is the registry credential; it is replaced where the section's username (from the
# hub's files, later files winning, as Helm merges them) is the robot. The first is the one a pushing hub must have.
PASSWORD_SECTIONS: tuple[tuple[str, ...], ...] = (
    ("binderhub-service", "buildPodsRegistryCredentials"),
    ("binderhub-service", "config", "DockerRegistry"),
    ("jupyterhub", "imagePullSecret"),
)
ROOTS: tuple[tuple[str, ...], ...] = ((), ("basehub",))  # a daskhub hub's values sit under basehub:


@dataclass(frozen=True)
class Target:
    """One other hub's secret file, decrypted before any remote write, and the password keys to replace in it."""

    path: Path
    hubs: tuple[str, ...]
    state: SecretState = field(repr=False)
    keys: tuple[tuple[str, ...], ...]

    def secret(self, token: str) -> dict[str, Any]:
        """The values to merge: the new token at each password key, nothing else."""
        doc: dict[str, Any] = {}
        for keys in self.keys:
            node = doc
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = token
        return doc


@dataclass(frozen=True)
class SharedHub:
    name: str
    values_files: tuple[Path, ...]  # its plain values files, in cluster.yaml order (read back by the proof)
    secret_files: tuple[Path, ...]  # its enc-* files, in cluster.yaml order
    shares_own_secret: bool = False  # one of them is the rotating hub's own --secret-file


@dataclass(frozen=True)
class SharedRotation:
    req: QuayRequest
    cluster_config: Path
    hubs: tuple[SharedHub, ...] = ()
    targets: tuple[Target, ...] = ()  # each file once; the rotating hub's own secret file is written with its values
    sops_binary: str | None = None

    @property
    def names(self) -> list[str]:
        return [hub.name for hub in self.hubs]


def validate(*, cluster_config: Path | None, hub: str | None) -> None:
    if cluster_config is None or hub is None:
        raise UsageError(
            "--rotate-shared needs --hub and --cluster-config: the cluster.yaml lists the other hubs that push as "
            "the robot, and their secret files"
        )


def prepare(
    req: QuayRequest, own: edits.FilesRequest, *, sops_binary: str | None, reporter: Reporter
) -> SharedRotation:
    """Find the other hubs of --cluster-config pushing as the robot and check every local input of each (its secret
    files exist, decrypt, hold the password, can be written, would keep the new token encrypted) before any remote
    write. Raises UsageError (ProvisionError for sops failures) naming the hub; nothing has been changed then."""
    assert own.cluster_config is not None and req.hub is not None
    config = own.cluster_config
    names = other_hubs_using(config, req.hub, req.robot_full)
    if not names:
        reporter.info(f"--rotate-shared: no other hub of {config} pushes as {req.robot_full}")
        return SharedRotation(req, config)
    entries = {str(e.get("name")): e for e in cluster_hubs(config)}
    hubs = [_hub_files(config, name, entries[name]) for name in names]
    checked: list[SharedHub] = []
    binary = sops_binary or sops.find_binary(own.sops_bin)
    client = sops.Sops(binary)
    own_secret = files.link_target(own.secret_file) if own.secret_file is not None else None
    targets: dict[Path, Target] = {}
    for hub in hubs:
        found = [_target(hub, path, client, req.robot_full) for path in hub.secret_files]
        if not any(_holds_push_password(t) for t in found):
            listed = ", ".join(str(p) for p in hub.secret_files)
            raise UsageError(
                f"hub {hub.name} of {config} pushes as {req.robot_full}, but none of its secret files ({listed}) "
                f"holds {'.'.join(PASSWORD_SECTIONS[0])}.password: --rotate-shared cannot tell where its token "
                "is, so nothing was changed. Give that hub its robot's token in an enc-* file listed in its "
                "cluster.yaml entry, or give it its own robot"
            )
        for target in found:
            resolved = files.link_target(target.path)
            if resolved == own_secret:
                hub = replace(hub, shares_own_secret=True)
            if not target.keys or resolved == own_secret:
                continue
            known = targets.get(resolved)
            hubs_of = (known.hubs if known else ()) + (hub.name,)
            keys = tuple(dict.fromkeys((known.keys if known else ()) + target.keys))  # one file, several hubs
            targets[resolved] = Target(target.path, hubs_of, target.state, keys)
        checked.append(hub)
    for target in targets.values():
        _check_writable_and_encrypted(target, client)
    shared = SharedRotation(req, config, tuple(checked), tuple(targets.values()), binary)
    reporter.info(
        f"--rotate-shared: the hubs {', '.join(shared.names)} of {config} also push as {req.robot_full}; their "
        "secret files decrypt and can be written"
    )
    return shared


def _hub_files(config: Path, name: str, entry: dict[str, Any]) -> SharedHub:
    listed = [config.parent / str(item) for item in entry.get("helm_chart_values_files") or ()]
    secret = tuple(p for p in listed if p.name.startswith("enc-"))
    plain = tuple(p for p in listed if not p.name.startswith("enc-") and p.suffix in (".yaml", ".yml"))
    if not secret:
        raise UsageError(
            f"hub {name} of {config} pushes as the robot but lists no enc-* secret file in its "
            "helm_chart_values_files: --rotate-shared cannot write the new token for it, so nothing was changed. "
            "List its secret file there, or give that hub its own robot"
        )
    return SharedHub(name, plain, secret)


def _target(hub: SharedHub, path: Path, client: sops.Sops, robot: str) -> Target:
    """The secret file decrypted (memory only) and the password keys it holds for `robot`."""
    if not path.is_file():
        raise UsageError(
            f"{path}, a secret file of hub {hub.name} (listed in its cluster.yaml entry), does not exist: "
            "--rotate-shared could not write the new token there, so nothing was changed. Restore the file, or "
            "remove it from the hub's helm_chart_values_files"
        )
    try:
        state = read_secret(path, client)
    except ProvisionError as exc:
        raise _not_usable(hub.name, path, exc) from None
    if not state.encrypted:
        raise UsageError(f"{path}, a secret file of hub {hub.name}, holds no sops-encrypted data; nothing was changed")
    docs = [_plain_doc(p) for p in hub.values_files] + [state.doc]
    keys = tuple(
        (*root, *section, "password")
        for root in ROOTS
        for section in PASSWORD_SECTIONS
        if isinstance(get_path(state.doc, *root, *section), dict)
        and "password" in get_path(state.doc, *root, *section)
        and _username(docs, (*root, *section)) == robot
    )
    return Target(path, (hub.name,), state, keys)


def _holds_push_password(target: Target) -> bool:
    return any(keys[-3:] == (*PASSWORD_SECTIONS[0][-2:], "password") for keys in target.keys)


def _plain_doc(path: Path) -> Any:
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe").load(files.read_text(path) or "") or {}
    except Exception:  # noqa: BLE001 - a file that does not parse names no username; verify reports it later
        return {}


def _username(docs: Sequence[Any], section: tuple[str, ...]) -> Any:
    found = None
    for doc in docs:
        value = get_path(doc, *section, "username")
        found = value if value is not None else found
    return found


def _check_writable_and_encrypted(target: Target, client: sops.Sops) -> None:
    """As for the hub's own files: the file can be replaced, the passwords merge into it, and the file's selector
    keeps them encrypted (hubfiles.read_secret with the shape of what is written)."""
    shape = target.secret("placeholder")
    try:
        files.check_writable(target.path, label="the secret file")
        read_secret(target.path, client, shape=shape)
        clusterrepo.deep_merge(copy.deepcopy(target.state.doc), shape, source=target.path)
    except ProvisionError as exc:
        raise _not_usable(", ".join(target.hubs), target.path, exc) from None


def _not_usable(hub: str, path: Path, exc: ProvisionError) -> ProvisionError:
    error = UsageError if isinstance(exc, UsageError) else ProvisionError
    return error(
        f"the secret file {path} of hub {hub} cannot take the new token: {exc.message.rstrip('.')}; nothing was "
        "changed (no Quay request that changes anything was sent)",
        hint=exc.hint or "fix that file (or give that hub its own robot) before rotating the shared robot",
    )


def show(shared: SharedRotation, reporter: Reporter, *, dry_run: bool) -> None:
    """Say which hubs and files the new token goes into (a dry run: would go)."""
    verb = "would write" if dry_run else "will write"
    for target in shared.targets:
        keys = ", ".join(".".join(k) for k in target.keys)
        reporter.always(
            f"--rotate-shared {verb} the new token into {target.path} (hub {', '.join(target.hubs)}): {keys}"
        )


def write(shared: SharedRotation, token: str, *, rotated: Rotated, reporter: Reporter) -> None:
    """Write the new token into every other hub's secret file, one file at a time (each all or nothing). Raises
    ProvisionError naming the hubs that hold the new token and those that do not (after_rotation)."""
    written: list[Path] = []
    for target in shared.targets:
        req = edits.FilesRequest(secret_file=target.path)
        try:
            with files.locked(files.folders([target.path])):
                plan = edits.plan_files(
                    req, public={}, secret=target.secret(token), state=target.state, sops_binary=shared.sops_binary
                )
                edits.apply_files(plan, reporter)
        except (ProvisionError, KeyboardInterrupt) as exc:
            raise after_rotation(exc, shared, rotated, written=written, own_written=True, failed=target.path) from None
        written.append(target.path)
        reporter.always(f"hub {', '.join(target.hubs)}: wrote the new token into {target.path}")


def after_rotation(
    exc: BaseException,
    shared: SharedRotation,
    rotated: Rotated,
    *,
    written: Sequence[Path],
    own_written: bool,
    failed: Path | None,
) -> ProvisionError:
    """The error of a write that failed after the rotation: which hubs hold the new token, which do not, where it
    can be read, and the commands that write it into the others without another rotation."""
    what = str(exc) if isinstance(exc, ProvisionError) else "interrupted"
    holding = [shared.req.hub] if own_written else []
    holding += [h.name for h in shared.hubs if _holds_new_token(shared, h, written, own_written)]
    missing = [h for h in [shared.req.hub, *shared.names] if h not in holding]
    place = f" into {failed}" if failed else ""
    error = ProvisionError(
        f"the shared rotation is done but writing the new token{place} failed: {what.rstrip('.')}. "
        f"{rotated.credential[:1].upper()}{rotated.credential[1:]} is live (the old one no longer works); "
        f"{rotated.where}. Hubs whose secrets hold it: {', '.join(map(str, holding)) or 'none'}; hubs "
        f"whose secrets still hold the old token: {', '.join(map(str, missing))}",
        hint="Once the cause is fixed, write it without another rotation: "
        + "; ".join(_finish_commands(shared, written, own_written)),
    )
    if isinstance(exc, KeyboardInterrupt):
        error.exit_code = EXIT_INTERRUPTED
    return error


def _holds_new_token(shared: SharedRotation, hub: SharedHub, written: Sequence[Path], own_written: bool) -> bool:
    own_ok = own_written or not hub.shares_own_secret
    return own_ok and all(t.path in written for t in shared.targets if hub.name in t.hubs)


def _finish_commands(shared: SharedRotation, written: Sequence[Path], own_written: bool) -> list[str]:
    req = shared.req
    http = " --allow-http" if req.allow_http else ""
    commands = [] if own_written else [f"for hub {req.hub} the same `provision quay` command without --rotate-shared"]
    for target in shared.targets:
        if target.path not in written:
            commands.append(
                f"for hub {target.hubs[0]} `provision quay --api-url {req.api_url}{http} --org {req.org} --robot "
                f"{req.robot} --shared-org --hub {target.hubs[0]} --secret-file {target.path}` (it reads the "
                "robot's token and writes it)"
            )
    return commands


def prove_hub(
    shared: SharedRotation,
    hub: SharedHub,
    token: str,
    *,
    registry: HubRegistry,
    rotated: Rotated,
    options: rotation.ProveOptions,
    reporter: Reporter,
) -> None:
    """The verify checks on another hub's files as written (its plain and secret files read back)."""
    delivered_to = ", ".join(str(p) for p in hub.secret_files)
    try:
        request = verify.request_from_files(
            hub.values_files, secret_files=hub.secret_files, sops_bin=shared.sops_binary,
            registry_url=options.registry_url, ar_endpoint=options.ar_endpoint, reporter=reporter,
        )  # fmt: skip
    except ProvisionError as exc:
        reason = f"hub {hub.name}'s files cannot be read back ({str(exc).rstrip('.')})"
        raise rotation.unproven(reason, rotated, delivered_to) from None
    if request.registry.password != token:
        raise rotation.unproven(f"hub {hub.name}'s secret files do not hold the new token", rotated, delivered_to)
    rotation.prove(
        registry, rotated=rotated, delivered_to=delivered_to, options=options, reporter=reporter, request=request
    )


def prove_each(proofs: Sequence[tuple[str, Callable[[], object]]], reporter: Reporter) -> None:
    """Run each hub's proof, saying per hub whether it passed; one error at the end names the hubs that failed."""
    failed: list[str] = []
    for hub, proof in proofs:
        reporter.always(f"hub {hub}: proving the new token")
        try:
            proof()
        except ProvisionError as exc:
            if exc.exit_code == EXIT_INTERRUPTED:
                raise
            reporter.warn(f"hub {hub}: {exc}")
            failed.append(hub)
    if failed:
        passed = [hub for hub, _ in proofs if hub not in failed]
        raise ProvisionError(
            f"the new token is written into every hub's secret file but did not pass verify for the hubs "
            f"{', '.join(failed)} (see above; passed: {', '.join(passed) or 'none'})",
            hint="check those hubs with `provision verify` on their files; running this command again would rotate "
            "the token once more",
        )
