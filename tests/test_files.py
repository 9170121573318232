from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision import files
from provision.errors import ProvisionError, UsageError
from provision.files import FileEdit, check_writable, read_input, read_text, write_atomic


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


def test_careful_reads_name_the_file_never_its_content(tmp_path: Path) -> None:
    cases = {"latin1": (b"caf\xe9-secret", "not UTF-8"), "nul": (b"a\x00b-secret", "binary")}
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UsageError) as info:
            read_text(tmp_path / name, label="--values-file")
        assert expected in str(info.value) and "--values-file" in str(info.value) and "secret" not in str(info.value)
    with pytest.raises(UsageError, match="larger than"):
        (tmp_path / "big").write_bytes(b"x" * 2048)
        read_input(tmp_path / "big", max_bytes=1024)
    with pytest.raises(UsageError, match="Is a directory"):
        read_text(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a regular file"):
        read_text(tmp_path / "fifo")  # would block forever if opened
    assert read_text(tmp_path / "missing") is None
    with pytest.raises(UsageError, match="is a directory"):
        check_writable(tmp_path, label="--values-file")
    with pytest.raises(UsageError, match="not a regular file"):
        check_writable(tmp_path / "fifo", label="--values-file")
    check_writable(tmp_path / "new.yaml", label="--values-file")
    assert not list(tmp_path.glob("*.probe"))


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


def _shared(tmp_path: Path) -> tuple[Path, Path]:
    """A file in a shared folder and a relative symlink to it from a hub's folder."""
    target = tmp_path / "shared" / "enc-common.secret.values.yaml"
    target.parent.mkdir()
    target.write_text("a: 1\n")
    target.chmod(0o600)
    link = tmp_path / "hub" / "enc-staging.secret.values.yaml"
    link.parent.mkdir()
    link.symlink_to("../shared/enc-common.secret.values.yaml")
    return link, target


def test_write_atomic_writes_a_symlink_where_it_points_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link, target = _shared(tmp_path)
    write_atomic(link, "a: 2\n")
    assert link.is_symlink() and os.readlink(link) == "../shared/enc-common.secret.values.yaml"
    assert target.read_text() == "a: 2\n" and target.stat().st_mode & 0o777 == 0o600  # its mode kept
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # the temporary file went too
    assert [r.getMessage() for r in caplog.records] == [f"{link} is a symlink: edited {target}"]
    edit = FileEdit(link, "a: 2\n", "a: 3\n")
    edit.apply()
    edit.restore()
    assert link.is_symlink() and target.read_text() == "a: 2\n"


def test_a_symlink_is_checked_where_it_points(tmp_path: Path) -> None:
    link, target = _shared(tmp_path)
    assert files.link_target(link) == target and files.link_target(target) == target
    assert files.folders([link, None, target]) == [link.parent, target.parent]
    check_writable(link, label="--secret-file")
    target.unlink()
    target.mkdir()  # what the link points to is checked, not the link
    with pytest.raises(UsageError, match="is a directory") as err:
        check_writable(link, label="--secret-file")
    assert f"(a symlink to {str(target)!r})" in str(err.value)


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_dangling_symlink_is_refused(tmp_path: Path, kind: str) -> None:
    link = tmp_path / "enc-staging.secret.values.yaml"
    if kind == "dangling":
        link.symlink_to("../shared/gone.yaml")
    else:
        (tmp_path / "other").symlink_to(link.name)
        link.symlink_to("other")
    why = "which does not exist" if kind == "dangling" else "which leads into a loop of links"
    for check in (files.link_target, check_writable):
        with pytest.raises(UsageError, match=why) as err:
            check(link, label="--secret-file")
        assert str(err.value).startswith(f"--secret-file {str(link)!r} is a symlink to ")
    with pytest.raises(FileNotFoundError if kind == "dangling" else OSError):
        write_atomic(link, "a: 1\n")
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == []
