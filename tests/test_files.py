from __future__ import annotations

from pathlib import Path

import pytest

from provision import files
from provision.errors import ProvisionError
from provision.files import FileEdit, read_text, write_atomic


def test_write_atomic_keeps_mode_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "c.tfvars"
    path.write_text("a = 1\n")
    path.chmod(0o600)
    write_atomic(path, "a = 2\n")
    assert path.read_text() == "a = 2\n" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["c.tfvars"]


def test_edit_apply_and_restore(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\r\n")
    edit = FileEdit(path, read_text(path), "a: 2\r\n")
    edit.apply()
    assert path.read_bytes() == b"a: 2\r\n"
    edit.restore()
    assert path.read_bytes() == b"a: 1\r\n"
    new = FileEdit(tmp_path / "new.yaml", None, "b: 1\n")
    new.apply()
    assert "+b: 1" in new.diff() and "/dev/null" in new.diff()
    new.restore()
    assert not new.path.exists()


def test_lock_waits_then_times_out(tmp_path: Path) -> None:
    told: list[str] = []
    with files.locked([tmp_path], timeout=5, on_wait=told.append):
        with pytest.raises(ProvisionError, match="held the lock") as err:
            with files.locked([tmp_path], timeout=0.3, on_wait=told.append, poll=0.05):
                pass  # pragma: no cover
    assert "--lock-timeout" in str(err.value)
    assert len(told) == 1 and "waiting for another provision run" in told[0]
    with files.locked([tmp_path], timeout=0, on_wait=told.append):  # released again
        pass
