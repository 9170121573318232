"""File edits shared by every editor: a before/after pair with its diff, and an atomic, mode-keeping write."""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError


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
            write_atomic(self.path, self.original)


def read_text(path: Path) -> str | None:
    """The file's exact text (bytes decoded, newlines untouched), or None when it does not exist."""
    try:
        # Not read_text(): universal newlines would turn CRLF into LF and change every line.
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


def unified_diff(path: Path, before: str | None, after: str) -> str:
    import difflib  # only dry runs and summaries show diffs

    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="/dev/null" if before is None else str(path),
        tofile=str(path),
    )
    return "".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Replace the file's content in one step (a same-directory temporary file, then rename), keeping its mode."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
