"""Reading and writing the files a user names: careful reads (any file may be binary, huge, a directory or
unreadable), a write check before anything changes, edits as before/after pairs with their diff, and an atomic,
mode-keeping write."""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError, UsageError

log = logging.getLogger(__name__)

# The files we read are values files, cluster.yaml, image lists and tokens: a few KiB. Anything this big is not one
# of them (a disk image, /dev/zero ...), and reading it whole would only exhaust memory.
MAX_INPUT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileEdit:
    """A file's content before (None: the file does not exist yet) and after an edit."""

    path: Path
    original: str | None
    updated: str

    @property
    def changed(self) -> bool:
        return self.original != self.updated

    def diff(self) -> str:
        return unified_diff(self.path, self.original, self.updated)

    def apply(self) -> None:
        if self.changed:
            write_atomic(self.path, self.updated)

    def restore(self) -> None:
        """Put the file back as it was (removing it if it was new)."""
        if self.original is None:
            self.path.unlink(missing_ok=True)
        elif read_text(self.path) != self.original:
            write_atomic(self.path, self.original, report=False)


def read_text(path: Path, *, label: str | None = None) -> str | None:
    """The file's exact text (bytes decoded, newlines untouched), or None when it does not exist.

    Raises UsageError, naming the file (after `label`, e.g. "--values-file") but never its content, when it is a
    directory, unreadable, larger than MAX_INPUT_BYTES, binary or not UTF-8.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError:
        mode = None  # read_input reports it
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        # A named pipe or a device would block the read or never end; these files are edited in place anyway.
        where = f"{label} {str(path)!r}" if label else str(path)
        raise UsageError(f"{where} is not a regular file")
    try:
        return read_input(path, label=label)
    except FileNotFoundError:
        return None


def read_input(path: Path, *, label: str | None = None, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The text of a file the user named; a pipe (`--token-file <(pass show x)`) works too.

    Raises FileNotFoundError when it does not exist, UsageError for anything else that is not a small UTF-8 text
    file; the message names the file and never shows its content.
    """
    where = f"{label} {str(path)!r}" if label else str(path)
    try:
        # Not Path.read_text(): universal newlines would turn CRLF into LF and change every line.
        with open(path, "rb") as handle:
            if stat.S_ISDIR(os.fstat(handle.fileno()).st_mode):
                raise IsADirectoryError(21, "Is a directory", str(path))
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise UsageError(f"{where} is larger than {max_bytes // (1024 * 1024)} MiB: not a file this command reads")
    if b"\0" in data:
        raise UsageError(f"{where} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def link_target(path: Path, *, label: str | None = None) -> Path:
    """The file a write to `path` changes: `path` itself, or for a symlink the file it points to (through any chain
    of links). A file named through a link is shared on purpose (one secret file for several hubs): replacing the
    link by a regular file would leave the others on the old content.

    Raises UsageError for a link that points nowhere (dangling, or a loop): writing "through" it would create a file
    somewhere the user may not expect, and replacing the link would lose where it pointed.
    """
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        where = f"{label} {str(path)!r}" if label else repr(str(path))
        try:
            points_to = f" to {os.readlink(path)!r}"
        except OSError:
            points_to = ""
        why = "which leads into a loop of links" if exc.errno == errno.ELOOP else "which does not exist"
        raise UsageError(
            f"{where} is a symlink{points_to}, {why}: provision edits the file a link points to and never replaces "
            "the link itself; nothing was changed. Create the target file, point the link at the right file, or "
            "pass the target's path instead"
        ) from None


def folders(paths: Iterable[Path | None]) -> list[Path]:
    """The folders to lock (see `locked`) around writing `paths`: each one's folder and, for a symlink, the folder
    of the file it points to (where the write happens)."""
    found: list[Path] = []
    for path in paths:
        if path is None:
            continue
        found.append(path.parent)
        if path.is_symlink():
            found.append(path.resolve().parent)
    return list(dict.fromkeys(found))


def check_writable(path: Path, *, label: str) -> None:
    """Make sure the file can be written (created, or replaced through a temporary file beside it) before anything
    changes anywhere. A symlink is checked where it points (see link_target; a dangling one is refused). Raises
    UsageError naming the file and what stands in the way."""
    where = f"{label} {str(path)!r}"
    target = link_target(path, label=label)
    if target != path:
        where = f"{where} (a symlink to {str(target)!r})"
        path = target
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot use {where}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{where} is a directory, not a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{where} is not a regular file: it cannot be replaced safely")
    if mode is not None and not os.access(path, os.W_OK):
        raise UsageError(f"{where} is not writable")
    # Writes go through a temporary file in the same folder: that folder must take a new file (a probe, because
    # permissions do not tell for root, read-only mounts or /proc).
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {where}: its folder does not take new files ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def unified_diff(path: Path, before: str | None, after: str) -> str:
    import difflib  # only dry runs and summaries show diffs

    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="/dev/null" if before is None else str(path),
        tofile=str(path),
    )
    return "".join(lines)


def write_atomic(path: Path, text: str, *, report: bool = True) -> None:
    """Replace the file's content in one step (a same-directory temporary file, then rename), keeping its mode.

    A symlink is written where it points, in the target's folder, and stays a link; `report`: say so (a warning
    through the `provision` logger, so the run's stderr names the file that changed). A dangling link raises
    FileNotFoundError (check_writable refuses it before any change).
    """
    target = Path(os.path.realpath(path, strict=True)) if path.is_symlink() else path
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if report and target != path:
        log.warning("%s is a symlink: edited %s", path, target)


@contextmanager
def locked(
    folders: Iterable[Path],
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.2,
) -> Iterator[None]:
    """Hold an exclusive advisory lock (flock) on each folder while the block reads, changes and replaces files.

    Concurrent provision runs editing files in the same folder then take turns instead of one replacing the
    other's edit. The folder itself is locked, not a lock file beside the secrets: nothing is left behind in the
    repository, and a file replaced by rename keeps no lock of its own. Sorted order: no two runs deadlock.
    Where flock does not exist (Windows) the block runs unlocked.

    `timeout` (seconds; None waits for ever) bounds the wait, after which ProvisionError is raised; `on_wait` is
    told once when the lock is held by someone else (a terraform apply under the lock can take minutes).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    descriptors: list[int] = []
    try:
        for folder in sorted({f.resolve() for f in folders}):
            try:
                descriptor = os.open(folder, os.O_RDONLY)
            except OSError as exc:
                raise ProvisionError(f"{folder}: cannot open the folder to lock it ({exc.strerror})") from None
            descriptors.append(descriptor)
            _wait_for_lock(fcntl, descriptor, folder, timeout=timeout, on_wait=on_wait, poll=poll)
        yield
    finally:
        for descriptor in descriptors:
            os.close(descriptor)  # closing releases the lock


def _wait_for_lock(
    fcntl: Any,
    descriptor: int,
    folder: Path,
    *,
    timeout: float | None,
    on_wait: Callable[[str], None] | None,
    poll: float,
) -> None:
    if timeout is None and on_wait is None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise ProvisionError(f"{folder}: cannot lock the folder ({exc.strerror})") from None
        if deadline is not None and time.monotonic() >= deadline:
            raise ProvisionError(
                f"{folder}: another provision run has held the lock on this folder for {timeout:g} s; nothing was "
                "changed",
                hint="wait for it to finish (its terraform apply may take minutes), or raise --lock-timeout",
            )
        if not told and on_wait is not None:
            limit = "" if timeout is None else f" (up to {timeout:g} s, --lock-timeout)"
            on_wait(f"waiting for another provision run on {folder} to finish{limit}")
            told = True
        time.sleep(poll)
