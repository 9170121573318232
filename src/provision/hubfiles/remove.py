"""Take a hub's registry out of its files: the keys provision wrote leave `<hub>.values.yaml` (round trip, other keys
and comments kept) and the sops-encrypted `enc-<hub>.secret.values.yaml` (`sops unset`, recipients kept); a file left
with no key at all is deleted and unlisted from the hub's `helm_chart_values_files` in `cluster.yaml`.

A plain Zero to JupyterHub hub (--chart z2jh) has one values file and one secret file per Helm release, named as
provision writes them (hubfiles/releases.py: `<hub>.binderhub-service.values.yaml` beside `<hub>.values.yaml`...):
each is cleaned of its release's keys, and one left with no key is deleted (there is no cluster.yaml to unlist it
from).

"The keys provision wrote" are read off the one hub-config model (hubconfig.public_values / secret_values), so this
stays in step with what the registry commands write. A key whose value is not what provision writes is kept (the
user changed it), except the hub-specific ones (image prefix, registry URL, user name): when those name another
registry the files are refused as a whole, before anything is changed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision import clusterrepo, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.files import FileEdit, read_text
from provision.hubconfig import (
    Z2JH_RELEASES,
    Profile,
)
from provision.hubfiles import remove_secret, yaml_keys
from provision.hubfiles.releases import release_base, release_file
from provision.hubfiles.removal_target import (
    IDENTITY_LEAVES,
    KeyPath,
    RemovalTarget,
    check_identity,
    get,
    in_file,
    owned_public,
    release_view,
)
from provision.plan import Change


@dataclass(frozen=True)
class FilesRemoval:
    """Every file step of a removal, computed before anything is written; each step is idempotent."""

    values_file: Path | None = None
    values_edit: FileEdit | None = None  # None: nothing to remove from the values file
    values_removed: tuple[str, ...] = ()
    secret_file: Path | None = None
    secret_unset: tuple[KeyPath, ...] = ()  # branches to `sops unset`
    secret_removed: tuple[str, ...] = ()
    secret_original: str | None = field(default=None, repr=False)  # ciphertext as planned (a deletion checks it)
    registration: FileEdit | None = None  # cluster.yaml without the files deleted below
    deletions: tuple[Path, ...] = ()  # files left with no key, deleted
    notes: tuple[str, ...] = field(default=())

    def changes(self, part: int = 0) -> list[Change]:
        """The plan's file steps, in the order apply runs them; `part`: this removal's index in a HubFilesRemoval
        (carried in each Change's args, for apply_step)."""
        out: list[Change] = []
        args = (str(part),)
        if self.secret_file is not None and self.secret_unset and self.secret_file not in self.deletions:
            removed = ", ".join(self.secret_removed)
            out.append(Change("secret_unset", "remove", f"from {self.secret_file}", removed, args))
        if self.values_file is not None and self.values_edit is not None and self.values_file not in self.deletions:
            removed = ", ".join(self.values_removed)
            out.append(Change("values_edit", "remove", f"from {self.values_file}", removed, args))
        if self.registration is not None and self.registration.changed:
            names = ", ".join(p.name for p in self.deletions)
            where = f"{names} in {self.registration.path}"
            out.append(Change("unlist", "unlist", where, "helm_chart_values_files", args))
        for path in self.deletions:
            what = ", ".join(self.secret_removed if path == self.secret_file else self.values_removed)
            out.append(Change("delete_file", "delete", str(path), f"no key left after removing {what}", args))
        return out


@dataclass(frozen=True)
class HubFilesRemoval:
    """The file steps of every set of files the hub's values live in: one for a 2i2c hub, one per Helm release for
    a z2jh hub (the hub's files, then their siblings)."""

    parts: tuple[FilesRemoval, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(note for part in self.parts for note in part.notes)

    def changes(self) -> list[Change]:
        return [change for index, part in enumerate(self.parts) for change in part.changes(index)]


# --- planning -------------------------------------------------------------------------------------------------


def plan_removal(
    target: RemovalTarget,
    *,
    values_file: Path | None,
    secret_file: Path | None,
    cluster_config: Path | None,
    hub: str | None,
    sops_client: sops.Sops | None,
    release: str | None = None,
) -> FilesRemoval:
    """Read the hub's files and compute what leaves them. Writes nothing; decrypts only in memory, and only when
    the secret file holds a pull secret whose registry must be checked. `release`: the files hold that z2jh
    release's values (see plan_hub_removal); a file they leave with no key is deleted.

    Raises UsageError when the values describe another registry, ClusterRepoError for files that cannot be edited
    safely, SopsError when the secret file cannot be decrypted.
    """
    notes: list[str] = []
    values_edit: FileEdit | None = None
    values_removed: list[str] = []
    values_empty = False
    if values_file is not None:
        values_edit, values_removed, values_empty, kept = _plan_values(values_file, target, release)
        notes += [
            f"{values_file.name}: kept {k}" + ("" if k.startswith("profile ") else ": not what provision writes")
            for k in kept
        ]
        if read_text(values_file) is None:
            notes.append(f"{values_file}: does not exist")
    secret_unset: list[KeyPath] = []
    secret_removed: list[str] = []
    secret_empty = False
    if secret_file is not None:
        secret_unset, secret_removed, secret_empty, secret_notes = remove_secret.plan_secret(
            secret_file, target, sops_client, release
        )
        notes += secret_notes
    emptied = [
        path
        for path, empty, removed in (
            (values_file, values_empty, values_removed),
            (secret_file, secret_empty, secret_removed),
        )
        if path is not None and empty and removed
    ]
    deletions: list[Path] = []
    registration = None
    if release is not None:  # a z2jh release's file: no cluster.yaml lists it
        deletions = emptied
    elif cluster_config is not None and hub is not None:
        deletions = emptied
        registration = _plan_unlisting(cluster_config, hub, deletions)
    else:
        notes += [f"{path.name} has no key left: pass --cluster-config to delete it and unlist it" for path in emptied]
    return FilesRemoval(
        values_file=values_file,
        values_edit=values_edit if values_removed else None,
        values_removed=tuple(values_removed),
        secret_file=secret_file,
        secret_unset=tuple(secret_unset),
        secret_removed=tuple(secret_removed),
        secret_original=read_text(secret_file) if secret_file is not None else None,
        registration=registration,
        deletions=tuple(deletions),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class HubFiles:
    """The files a removal was given (--values-file, --secret-file, --cluster-config) and the hub they are for."""

    values_file: Path | None = None
    secret_file: Path | None = None
    cluster_config: Path | None = None
    hub: str | None = None


def plan_hub_removal(target: RemovalTarget, given: HubFiles, *, sops_client: sops.Sops | None) -> HubFilesRemoval:
    """plan_removal for every file the hub's values live in. For z2jh, each Helm release's files are found beside
    the given ones, named as provision writes them (hubfiles/releases.py); dask-gateway has no secret file.

    Raises UsageError when a given file is itself a release's sibling (the hub's file is the one to give), and what
    plan_removal raises.
    """
    values_file, secret_file, hub = given.values_file, given.secret_file, given.hub
    if target.chart != "z2jh":
        part = plan_removal(target, values_file=values_file, secret_file=secret_file,
                            cluster_config=given.cluster_config, hub=hub, sops_client=sops_client)  # fmt: skip
        siblings = [release_file(values_file, r) for r in Z2JH_RELEASES[1:2] if values_file is not None]
        notes = [f"{s} is there: if it is this hub's (a z2jh hub), pass --chart z2jh" for s in siblings if s.is_file()]
        return HubFilesRemoval((replace(part, notes=(*part.notes, *notes)),))
    for option, path in (("--values-file", values_file), ("--secret-file", secret_file)):
        base, release = release_base(path) if path is not None else (None, None)
        if release is not None:
            raise UsageError(
                f"{option} {str(path)!r} is the {release} release's file: with --chart z2jh give the hub's own "
                f"file ({base}, the jupyterhub release's); the other releases' files are found beside it",
                hint="pass the files you passed to provision; nothing was changed",
            )
    parts = []
    for release in Z2JH_RELEASES:
        part = plan_removal(
            target,
            values_file=release_file(values_file, release) if values_file is not None else None,
            secret_file=release_file(secret_file, release) if secret_file and release != "dask-gateway" else None,
            cluster_config=None,
            hub=hub,
            sops_client=sops_client,
            release=release,
        )
        if release == "dask-gateway":  # written only for hubs with dask-gateway: its absence is no news
            part = replace(part, notes=tuple(n for n in part.notes if not n.endswith(": does not exist")))
        parts.append(part)
    return HubFilesRemoval(tuple(parts))


def _plan_values(
    path: Path, target: RemovalTarget, release: str | None
) -> tuple[FileEdit | None, list[str], bool, list[str]]:
    original = read_text(path)
    if original is None or not original.strip():
        return None, [], False, []
    doc, style = clusterrepo.load(original, path=path)
    if clusterrepo.dump(doc, style) != original:
        raise clusterrepo.ClusterRepoError(
            "cannot be edited without reformatting other lines (ruamel.yaml would not write it back byte for byte)",
            path=path,
            hint="remove the registry keys by hand (--dry-run lists them), or normalise the file's formatting first",
        )
    check_identity(release_view(doc, release), target, path)
    removed: list[str] = []
    kept: list[str] = []
    identity = {target.wrap(leaf) for leaf in IDENTITY_LEAVES}
    pending: list[str] = []
    owned = owned_public(target)
    prefix: KeyPath = ()
    if release is not None:  # the file holds the release's values themselves
        owned, prefix = owned.get(release) or {}, (release,)
    yaml_keys.remove_owned(doc, owned, prefix, identity, removed, kept, pending)
    yaml_keys.place_pending(doc, pending)
    kept += _other_build_profiles(release_view(doc, release), target)
    removed, kept = in_file(removed, release), in_file(kept, release)
    if not removed:
        return None, [], False, kept
    empty = len(doc) == 0
    return FileEdit(path, original, clusterrepo.dump(doc, style)), removed, empty, kept


def _other_build_profiles(doc: Any, target: RemovalTarget) -> list[str]:
    """Profiles not written by provision that still offer image building (doctor would flag them)."""
    profiles = get(doc, target.wrap(("jupyterhub", "singleuser", "profileList")))
    found = []
    for entry in profiles if isinstance(profiles, list) else ():
        options = entry.get("profile_options") if isinstance(entry, Mapping) else None
        for name, option in (options or {}).items() if isinstance(options, Mapping) else ():
            building = option.get("dynamic_image_building") if isinstance(option, Mapping) else None
            if entry.get("slug") != Profile().slug and isinstance(building, Mapping) and building.get("enabled"):
                found.append(f"profile {entry.get('slug')!r} (option {name!r} builds images: edit it by hand)")
    return found


def _plan_unlisting(path: Path, hub: str, deletions: Sequence[Path]) -> FileEdit:
    original = read_text(path)
    if original is None:
        raise clusterrepo.ClusterRepoError("does not exist", path=path)
    doc, style = clusterrepo.load(original, path=path)
    if clusterrepo.dump(doc, style) != original:
        raise clusterrepo.ClusterRepoError(
            "cannot be edited without reformatting other lines", path=path, hint="unlist the deleted files by hand"
        )
    entry = clusterrepo.hub_entry(doc, hub, path=path)
    listed = entry.get("helm_chart_values_files")
    changed = False
    if isinstance(listed, list):
        names = {os.path.relpath(p.resolve(), path.resolve().parent) for p in deletions}
        for index in reversed(range(len(listed))):
            if str(listed[index]) in names:
                del listed[index]
                changed = True
    return FileEdit(path, original, clusterrepo.dump(doc, style) if changed else original)


# --- applying -------------------------------------------------------------------------------------------------


def apply_step(hub_removal: HubFilesRemoval, change: Change, *, sops_client: sops.Sops | None) -> None:
    """Run one file step of the plan. Each is idempotent: a resumed run finds it done or does it again.

    A file that changed since it was planned (another run, an editor) is not overwritten: ProvisionError.
    """
    removal = hub_removal.parts[int(change.args[0])]
    try:
        if change.kind == "secret_unset":
            assert removal.secret_file is not None and sops_client is not None
            sops.unset_keys(sops_client, removal.secret_file, removal.secret_unset)
        elif change.kind == "values_edit":
            assert removal.values_edit is not None
            _unchanged_since_plan(removal.values_edit)
            removal.values_edit.apply()
        elif change.kind == "unlist":
            assert removal.registration is not None
            _unchanged_since_plan(removal.registration)
            removal.registration.apply()
        elif change.kind == "delete_file":
            path = Path(change.subject)
            planned = removal.values_edit.original if path == removal.values_file and removal.values_edit else None
            planned = removal.secret_original if path == removal.secret_file else planned
            if read_text(path) not in (None, planned):
                raise ProvisionError(
                    f"{path} changed while this removal ran (another run or an editor); it was not deleted",
                    hint="re-run the same command: it plans again from the file as it is now",
                )
            path.unlink(missing_ok=True)
        else:  # pragma: no cover - plan and apply are written together
            raise AssertionError(change.kind)
    except OSError as exc:
        raise ProvisionError(f"cannot write {exc.filename or change.subject}: {exc.strerror}") from None


def _unchanged_since_plan(edit: FileEdit) -> None:
    if read_text(edit.path) != edit.original:
        raise ProvisionError(
            f"{edit.path} changed while this removal ran (another run or an editor); it was left as it is",
            hint="re-run the same command: it plans again from the file as it is now",
        )


def show(hub_removal: HubFilesRemoval, reporter: Reporter) -> None:
    """Each values file's diff (plain YAML), and cluster.yaml's; the encrypted files' key paths are in the plan
    (their diff would be ciphertext)."""
    for removal in hub_removal.parts:
        if removal.values_edit is not None and removal.values_file not in removal.deletions:
            reporter.always(removal.values_edit.diff().rstrip())
        if removal.registration is not None and removal.registration.changed:
            reporter.always(removal.registration.diff().rstrip())
