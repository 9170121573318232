"""tfvars edits keep every comment and byte: exact expected texts for each layout, then re-parsed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.errors import UsageError
from provision.files import write_atomic
from provision.terraform import tfvars
from provision.terraform.tfvars import TfvarsError

HEAD = (
    '# Cluster "leap" (comment with "quotes" and [brackets])\nproject_id = "leap-pangeo"\nregion     = "us-central1"\n'
)

LAYOUTS = {
    "empty list": (
        HEAD + "container_repos = []\n",
        HEAD + 'container_repos = ["hub2"]\n',
    ),
    "one-line list": (
        HEAD + 'container_repos = ["hub1"] # inline\n',
        HEAD + 'container_repos = ["hub1", "hub2"] # inline\n',
    ),
    "one-line list, trailing comma": (
        HEAD + 'container_repos = ["hub1",]\n',
        HEAD + 'container_repos = ["hub1", "hub2",]\n',
    ),
    "multi-line, trailing comma, # comments": (
        HEAD + 'container_repos = [\n  # the first hub\n  "hub1", # prod\n]\nother = 1\n',
        HEAD + 'container_repos = [\n  # the first hub\n  "hub1", # prod\n  "hub2",\n]\nother = 1\n',
    ),
    "multi-line, no trailing comma, // comment after the item": (
        HEAD + 'container_repos = [\n    "hub1" // legacy\n]\n',
        HEAD + 'container_repos = [\n    "hub1", // legacy\n    "hub2",\n]\n',
    ),
    "multi-line with /* */ and a commented-out item": (
        HEAD + 'container_repos = [\n  "hub1",\n  /* "old", */\n  # "older",\n]\n',
        HEAD + 'container_repos = [\n  "hub1",\n  /* "old", */\n  # "older",\n  "hub2",\n]\n',
    ),
    "multi-line empty list": (
        HEAD + "container_repos = [\n]\n",
        HEAD + 'container_repos = [\n  "hub2",\n]\n',
    ),
    "closing bracket after the last item": (
        HEAD + 'container_repos = [\n  "a",\n  "hub1"]\n',
        HEAD + 'container_repos = [\n  "a",\n  "hub1", "hub2"]\n',
    ),
    "attribute absent": (
        HEAD + '\nhub_cloud_permissions = {\n  "x" = { container_repos = [] }\n}\n',
        HEAD
        + '\nhub_cloud_permissions = {\n  "x" = { container_repos = [] }\n}\n\ncontainer_repos = [\n  "hub2",\n]\n',
    ),
    "attribute absent, no final newline": (
        'project_id = "p"',
        'project_id = "p"\n\ncontainer_repos = [\n  "hub2",\n]\n',
    ),
    "CRLF line endings": (
        'project_id = "p"\r\ncontainer_repos = [\r\n  "hub1",\r\n]\r\n',
        'project_id = "p"\r\ncontainer_repos = [\r\n  "hub1",\r\n  "hub2",\r\n]\r\n',
    ),
    "other lists and a string containing the name": (
        'note = "container_repos = [x]"\nzones = ["a", "b"]\ncontainer_repos = ["hub1"]\nlast = ["z"]\n',
        'note = "container_repos = [x]"\nzones = ["a", "b"]\ncontainer_repos = ["hub1", "hub2"]\nlast = ["z"]\n',
    ),
}


@pytest.mark.parametrize(("before", "after"), LAYOUTS.values(), ids=LAYOUTS.keys())
def test_layouts(tmp_path: Path, before: str, after: str) -> None:
    path = tmp_path / "c.tfvars"
    path.write_bytes(before.encode())
    edit = tfvars.plan_add(path, "hub2")
    assert edit.updated == after
    assert path.read_bytes() == before.encode()  # planning writes nothing
    write_atomic(path, edit.updated)
    assert path.read_bytes() == after.encode()
    again = tfvars.plan_add(path, "hub2")
    assert not again.changed  # idempotent


def test_diff_names_the_file_and_the_new_line(tmp_path: Path) -> None:
    path = tmp_path / "leap.tfvars"
    path.write_text('container_repos = [\n  "hub1",\n]\n')
    diff = tfvars.plan_add(path, "hub2").diff()
    assert f"+++ {path}" in diff and '+  "hub2",' in diff


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfvars"
    path.write_text('project_id = "p"\ncontainer_repos = [\n  "hub1"\n  region = 1\n')
    with pytest.raises(TfvarsError) as err:
        tfvars.plan_add(path, "hub2")
    assert err.value.line == 4 and f"{path}:4" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [('container_repos = "hub1"\n', "not a list"), ("container_repos = var.x\n", "not a list")],
)
def test_refuses_what_it_cannot_edit(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.tfvars"
    path.write_text(text)
    with pytest.raises(TfvarsError, match=message):
        tfvars.plan_add(path, "hub2")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TfvarsError, match="cannot read"):
        tfvars.plan_add(tmp_path / "nope.tfvars", "hub2")


names = st.from_regex(r"[a-z][a-z0-9-]{0,17}", fullmatch=True)
comments = st.sampled_from(["", " # c", " // c", " /* c */"])


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(names, max_size=4, unique=True),
    new=names,
    comment=comments,
    trailing=st.booleans(),
    multiline=st.booleans(),
    before=st.sampled_from(["", "# top\n", 'a = "x"\n\n']),
)
def test_only_the_new_item_is_added(
    items: list[str], new: str, comment: str, trailing: bool, multiline: bool, before: str
) -> None:
    """Removing the inserted characters gives back the original text exactly, and the list gains one item."""
    if multiline:
        body = "".join(f'  "{i}",{comment}\n' for i in items)
        if items and not trailing:
            body = body[::-1].replace(",", "", 1)[::-1]
        text = f"{before}container_repos = [\n{body}]\nafter = true\n"
    else:
        joined = ", ".join(f'"{i}"' for i in items) + ("," if trailing and items else "")
        text = f"{before}container_repos = [{joined}]{comment}\nafter = true\n"
    values = tfvars.parse(text, path="t")
    assert tfvars.simple_values(text) in (None, values)  # the fast path never disagrees with python-hcl2
    updated = tfvars.add_to_list(text, new, attribute="container_repos")
    assert tfvars.parse(updated, path="t") == {**values, "container_repos": [*values["container_repos"], new]}
    # Every original byte is still there, in order: the edit only inserts.
    it = iter(updated)
    assert all(ch in it for ch in text)


@pytest.mark.parametrize(("before", "after"), LAYOUTS.values(), ids=LAYOUTS.keys())
def test_fast_path_agrees_with_hcl2(before: str, after: str) -> None:
    for text in (before, after):
        fast = tfvars.simple_values(text)
        assert fast is None or fast == tfvars.parse(text, path="t")
    assert tfvars.simple_values('a = "x"\na = "y"\n') is None
    assert tfvars.simple_values('a = "${var.x}"\n') is None
    assert tfvars.simple_values(HEAD + 'container_repos = ["a", "b"]\n') == {
        "project_id": "leap-pangeo",
        "region": "us-central1",
        "container_repos": ["a", "b"],
    }


@pytest.mark.parametrize(("before", "after"), list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_remove_undoes_add(tmp_path: Path, before: str, after: str) -> None:
    """Removing the added entry from the edited file gives the original values back, every other line kept (what
    a failed run relies on when the file has changed since its own edit)."""
    path = tmp_path / "c.tfvars"
    path.write_bytes(after.encode())
    removal = tfvars.plan_remove(path, "hub2")
    assert removal.changed
    kept = [line for line in after.splitlines() if "hub2" not in line and "container_repos" not in line]
    assert kept == [line for line in removal.updated.splitlines() if "container_repos" not in line][: len(kept)]
    assert tfvars.parse(removal.updated, path=path).get("container_repos", []) == [
        n for n in tfvars.parse(after, path=path)["container_repos"] if n != "hub2"
    ]


def test_remove_keeps_other_entries_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "c.tfvars"
    path.write_text('container_repos = [\n  "a", // first\n  "mine", # ours\n  "b",\n]\n')
    assert tfvars.plan_remove(path, "mine").updated == 'container_repos = [\n  "a", // first\n  "b",\n]\n'
    assert not tfvars.plan_remove(path, "absent").changed


@pytest.mark.parametrize("target", ["file", "folder"])
def test_check_writable_refuses_read_only_even_for_root(tmp_path: Path, target: str) -> None:
    path = tmp_path / "projects" / "c.tfvars"
    path.parent.mkdir()
    path.write_text("container_repos = []\n")
    tfvars.check_writable(path)
    locked = path if target == "file" else path.parent
    locked.chmod(0o444 if target == "file" else 0o555)
    try:
        with pytest.raises(TfvarsError) as err:
            tfvars.check_writable(path)
    finally:
        locked.chmod(0o755)
    assert "not writable" in str(err.value) and "chmod u+w" in str(err.value)
    with pytest.raises(TfvarsError, match="is a folder"):
        tfvars.check_writable(path.parent)


def test_write_error_is_a_tfvars_error(tmp_path: Path) -> None:
    with pytest.raises(TfvarsError, match="cannot write the file"):
        tfvars.write(tmp_path / "missing-folder" / "c.tfvars", "x = 1\n")


def test_a_symlinked_tfvars_is_checked_and_written_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "c.tfvars"
    target.parent.mkdir()
    target.write_text("container_repos = []\n")
    link = tmp_path / "projects" / "c.tfvars"
    link.parent.mkdir()
    link.symlink_to("../shared/c.tfvars")
    tfvars.check_writable(link)
    tfvars.write(link, 'container_repos = ["mine"]\n')
    assert link.is_symlink() and target.read_text() == 'container_repos = ["mine"]\n'
    target.unlink()
    with pytest.raises(UsageError, match="is a symlink to '../shared/c.tfvars', which does not exist"):
        tfvars.check_writable(link)
