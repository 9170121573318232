"""The tfvars edit of one `provision gcp` run: the hub added to container_repos and, with retention options, its
registry_retention entry set; and the undo of that edit when the run fails or is declined before apply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.console import Reporter
from provision.errors import PromptInterrupted, ProvisionError
from provision.registries.artifact_registry.retention import VARIABLE, Retention
from provision.terraform import tfvars, tfvars_map

ATTRIBUTE = "container_repos"


@dataclass(frozen=True)
class HubEdit:
    file: tfvars.TfvarsEdit  # the whole edit: original → updated
    name: str
    added: bool  # container_repos gained the name
    retention: dict[str, Any] | None  # the entry set in registry_retention (None: left as it was)
    previous: Any = None  # the entry it replaced (None: there was none)

    @property
    def changed(self) -> bool:
        return self.file.changed


def plan(path: Path, name: str, retention: Retention | None) -> HubEdit:
    """Compute (without writing) the run's edit. Raises TfvarsError."""
    added = tfvars.plan_add(path, name, attribute=ATTRIBUTE)
    if retention is None:
        return HubEdit(added, name, added.changed, None)
    both = tfvars_map.plan_set(path, name, retention.entry(), attribute=VARIABLE, after=added)
    if both.updated == added.updated:
        return HubEdit(added, name, added.changed, None)
    previous = (tfvars.parse(added.updated, path=path).get(VARIABLE) or {}).get(name)
    entry = {key: value for key, value in retention.entry().items() if value is not None}
    return HubEdit(both, name, added.changed, entry, previous)


def report(edit: HubEdit, reporter: Reporter) -> None:
    """What a real run's edit does, on stderr."""
    path = edit.file.path
    if edit.added:
        reporter.info(f"added {edit.name!r} to {ATTRIBUTE} in {path}")
    else:
        reporter.info(f"{edit.name!r} is already in {ATTRIBUTE} of {path}")
    if edit.retention is not None:
        reporter.always(f"set {VARIABLE}[{edit.name!r}] = {edit.retention} in {path}")


def report_dry_run(edit: HubEdit, reporter: Reporter) -> None:
    """What the edit would do, with its diff."""
    path = edit.file.path
    if edit.added:
        reporter.always(f"dry run: would add {edit.name!r} to {ATTRIBUTE} in {path}:")
    else:
        reporter.always(f"dry run: {edit.name!r} is already in {ATTRIBUTE} of {path}")
    if edit.retention is not None:
        reporter.always(f"dry run: would set {VARIABLE}[{edit.name!r}] = {edit.retention} in {path}:")
    if edit.changed:
        reporter.always(edit.file.diff().rstrip())


@dataclass
class Progress:
    applied: bool = False


@contextmanager
def undone_on_failure(edit: HubEdit, progress: Progress, reporter: Reporter) -> Iterator[None]:
    """On failure before apply, take this run's changes out again, from the file as it is now (never an older copy
    over someone else's edit). After an apply the entry stays: removing it would destroy the applied registry."""
    try:
        yield
    except BaseException as exc:
        if not edit.changed or progress.applied:
            raise
        note, undone = _undo(edit)
        reporter.info(note)
        if isinstance(exc, PromptInterrupted) and not undone:
            exc.left = note  # else "nothing was changed" holds: the file is as it was
        if isinstance(exc, ProvisionError):
            exc.message = f"{exc.message.rstrip('.')}; {note}"
        raise


def _undo(edit: HubEdit) -> tuple[str, bool]:
    """What was done to take this run's changes out again, and whether they are out."""
    path, name = edit.file.path, edit.name
    try:
        current = path.read_bytes().decode("utf-8")
        if current == edit.file.updated:
            tfvars.write(path, edit.file.original)
            return f"{path} was restored to its previous content", True
        notes = []
        if edit.retention is not None:  # someone else edited the file meanwhile: name what to put back
            was = "remove it" if edit.previous is None else f"set it back to {edit.previous}"
            notes.append(f"{VARIABLE}[{name!r}] was left as this run set it ({path} changed meanwhile): {was} by hand")
        if edit.added:
            removal = tfvars.plan_remove(path, name, attribute=ATTRIBUTE)
            if removal.changed:
                tfvars.write(path, removal.updated)
                notes.insert(
                    0, f"{name!r} was taken out of {ATTRIBUTE} in {path} again (other changes to it were kept)"
                )
            else:
                notes.insert(0, f"{path} no longer lists {name!r}")
        return "; ".join(notes), edit.retention is None
    except (OSError, UnicodeDecodeError, ProvisionError) as problem:
        also = "" if edit.retention is None else f" and its {VARIABLE} entry"
        return (
            f"{name!r} could not be taken out of {ATTRIBUTE}{also} in {path} again ({problem}): remove it by hand",
            False,
        )
