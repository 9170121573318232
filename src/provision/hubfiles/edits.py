"""The edits of a hub's files, computed before anything is written (a plan: values merged into `<hub>.values.yaml`,
secrets set into the sops file with their ciphertext made in memory, the files listed in cluster.yaml), then written
together; a failure while writing puts back what was already written."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import clusterrepo, secretcheck, sops
from provision.console import Reporter
from provision.errors import ProvisionError
from provision.files import FileEdit, read_text
from provision.hubconfig import (
    secret_key_paths,
)
from provision.hubfiles.secret_file import SecretState, plain_load, read_secret


@dataclass(frozen=True)
class FilesRequest:
    values_file: Path | None = None
    secret_file: Path | None = None
    cluster_config: Path | None = None
    hub: str | None = None
    sops_bin: str | None = None
    # Copy the profiles a hub gets from a file listed before its values file (common.values.yaml) into that file
    # along with the image-building profile (see profile_base).
    copy_shared_profiles: bool = False

    @property
    def writes_anything(self) -> bool:
        return any((self.values_file, self.secret_file, self.cluster_config))


@dataclass(frozen=True)
class FilesPlan:
    edits: tuple[FileEdit, ...] = ()
    replaced: tuple[str, ...] = ()  # "file: dotted.path" of values that change (never the values)
    secret_paths: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def plan_files(
    req: FilesRequest,
    *,
    public: dict[str, Any],
    secret: dict[str, Any] | None,
    state: SecretState | None,
    sops_binary: str | None,
    encrypt: bool = True,
) -> FilesPlan:
    """Compute every edit; only the secret file's ciphertext is produced (into memory), nothing is written.

    `encrypt=False` (dry runs) stops before sops changes anything. Callers hold `files.locked` around this and
    `apply_files`, so the secret file read here is the one replaced.
    """
    edits: list[FileEdit] = []
    replaced: list[str] = []
    notes: list[str] = []
    if req.values_file is not None:
        edit, report = clusterrepo.plan_values_edit(req.values_file, public)
        edits.append(edit)
        replaced += [f"{req.values_file.name}: {p}" for p in report.replaced]
        notes += [
            f"{req.values_file.name}: {p} was a YAML anchor; its aliases keep the old value (check the diff)"
            for p in report.anchored
        ]
    secret_paths: list[str] = []
    if req.secret_file is not None and secret is not None:
        assert sops_binary is not None and state is not None
        client = sops.Sops(sops_binary)
        secret_edit, secret_replaced, state = _plan_secret(state, secret, client, encrypt=encrypt)
        secret_paths = secret_key_paths(secret)
        replaced += [f"{req.secret_file.name}: {p}" for p in secret_replaced]
        if secret_edit is None or secret_edit.changed:  # an unchanged file is "already up to date", nothing more
            notes.append(_secret_note(state, dry_run=not encrypt))
        if secret_edit is not None:
            edits.append(secret_edit)
        else:
            notes.append(f"{req.secret_file}: would encrypt {', '.join(secret_paths)}")
    if req.cluster_config is not None and req.hub is not None:
        listed = [p for p in (req.values_file, req.secret_file) if p is not None]
        edits.append(clusterrepo.plan_registration(req.cluster_config, req.hub, listed))
    return FilesPlan(tuple(edits), tuple(replaced), tuple(secret_paths), tuple(notes))


def _secret_note(state: SecretState, *, dry_run: bool) -> str:
    if state.encrypted:
        verb = "would be updated" if dry_run else "updated"
        return f"{state.path.name}: {verb} in place with sops set; its recipients and key groups stay as they are"
    what = "would be a new sops file" if dry_run else "new sops file"
    return f"{state.path.name}: {what}, keys from the creation rule of {state.config.describe()}"


def _plan_secret(
    state: SecretState, secret: dict[str, Any], client: sops.Sops, *, encrypt: bool
) -> tuple[FileEdit | None, list[str], SecretState]:
    """Merge the secrets into the decrypted document and produce the new ciphertext (None in a dry run).

    Returns the edit, the replaced key paths and the state it was computed from.
    """
    import copy

    current = read_text(state.path)
    if current != state.original:
        # Another run replaced the file since the pre-flight: merge into its version, so its edits stay.
        state = read_secret(state.path, client)
    merged = copy.deepcopy(state.doc)
    report = clusterrepo.deep_merge(merged, secret, source=state.path)
    if not report.changed:
        return FileEdit(state.path, current, current or ""), [], state
    if not encrypt:
        return None, report.replaced, state
    if state.encrypted:
        ciphertext = _set_in_copy(state, merged, secret, client)
    else:
        plaintext = clusterrepo.dump_after(current, merged, state.style)  # a comment-only file: its comments lead
        ciphertext = client.encrypt(plaintext, filename=state.path, secrets=secret)
    # Never accepted silently: a secret value the ciphertext holds in clear text (the file is not written).
    left = secretcheck.plaintext_in(plain_load(ciphertext), secretcheck.secret_paths(secret))
    if left:
        raise ProvisionError(
            f"{state.path}: sops left {secretcheck.dotted(left)} in plaintext (the file's selector does not cover "
            f"them), so the file was not written; {secretcheck.FIX_HINT}"
        )
    return FileEdit(state.path, current, ciphertext), report.replaced, state


def changed_branches(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the smallest subtrees of `new` that differ from `old`: a key missing from `old` is one branch
    (set whole), a mapping present in both is descended into (its other keys stay), any other value is replaced.
    """
    branches: list[tuple[str, ...]] = []
    for key, value in new.items():
        path = (*prefix, str(key))
        if not isinstance(old, dict) or key not in old:
            branches.append(path)
        elif isinstance(value, dict) and isinstance(old[key], dict):
            branches += changed_branches(old[key], value, path)
        elif old[key] != value:
            branches.append(path)
    return branches


def _set_in_copy(state: SecretState, merged: Any, secret: dict[str, Any], client: sops.Sops) -> str:
    """The file's new ciphertext: `sops set` of each changed branch on a ciphertext copy beside the file.

    `set` keeps the file's recipients, key groups, threshold, encryption selectors and comments; it writes in place
    and not atomically, hence the copy (removed again; the caller replaces the file by rename). One sops process
    per branch: a first write into a file is one per top-level section, a rotation one per changed password.
    """
    import tempfile

    path = state.path
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    copy_path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(state.original or "")
        for keys in changed_branches(state.doc, secret):
            node = merged
            for key in keys:
                node = node[key]
            client.set_value(copy_path, keys, clusterrepo.plain(node), config_of=path)
        return copy_path.read_bytes().decode("utf-8")
    finally:
        copy_path.unlink(missing_ok=True)


def show_plan(plan: FilesPlan, reporter: Reporter, *, dry_run: bool) -> None:
    """Diffs of the plain files; for the encrypted file only key paths (its diff would be ciphertext)."""
    for edit in plan.edits:
        if not edit.changed:
            reporter.info(f"{edit.path}: already up to date")
        elif edit.path.name.startswith("enc-"):
            verb = "would encrypt" if dry_run else "encrypting"
            reporter.always(f"{edit.path}: {verb} {', '.join(plan.secret_paths)}")
        else:
            reporter.always(edit.diff().rstrip())
    for note in plan.notes:
        reporter.always(note)
    if plan.replaced:
        reporter.warn("values replaced (by key path): " + "; ".join(plan.replaced))


def apply_files(plan: FilesPlan, reporter: Reporter) -> tuple[str, ...]:
    """Write every changed file; if one write fails, put back those already written. Returns what was written."""
    written: list[FileEdit] = []
    try:
        for edit in plan.edits:
            if edit.changed:
                edit.apply()
                written.append(edit)
                reporter.info(f"wrote {edit.path}")
    except OSError as exc:
        for edit in reversed(written):
            edit.restore()
        raise ProvisionError(
            f"cannot write {exc.filename}: {exc.strerror}; the files written before were put back",
            hint="fix the cause and re-run the same command",
        ) from None
    return tuple(str(e.path) for e in written)
