"""tfvars_map: one key of a map attribute set, every other byte kept, verified by parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.terraform import tfvars, tfvars_map
from provision.terraform.tfvars import TfvarsError

ENTRY = {"keep_recent": 30, "delete_older_than_days": 90}
NEW = '"hub1" = { keep_recent = 30, delete_older_than_days = 90 }'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('a = "x"\n', f'a = "x"\n\n# Per-hub settings written by provision (see the module\'s variables.tf)\n'
                      f"r = {{\n  {NEW}\n}}\n"),
        ("r = {}\n", f"r = {{\n  {NEW}\n}}\n"),
        ("r = {\n}\n", f"r = {{\n  {NEW}\n}}\n"),
        ('r = { "b" = { keep_recent = 1 } }\n', f'r = {{ "b" = {{ keep_recent = 1 }}, {NEW} }}\n'),
        ("r = {\n  # the staging hub\n  b = { keep_recent = 1 } # b\n}\n# end\n",
         f"r = {{\n  # the staging hub\n  b = {{ keep_recent = 1 }} # b\n  {NEW}\n}}\n# end\n"),
        ('r = {\n  "hub1" = {\n    keep_recent = 5\n  }\n  b = {} // kept\n}\n',
         f"r = {{\n  {NEW}\n  b = {{}} // kept\n}}\n"),
        ("r = {\r\n  b = {}\r\n}\r\n", f"r = {{\r\n  b = {{}}\r\n  {NEW}\r\n}}\r\n"),
    ],
    ids=["absent", "empty", "empty-multiline", "one-line", "comments", "replace", "crlf"],
)  # fmt: skip
def test_layouts(tmp_path: Path, before: str, after: str) -> None:
    path = tmp_path / "c.tfvars"
    path.write_bytes(before.encode())
    edit = tfvars_map.plan_set(path, "hub1", ENTRY, attribute="r")
    assert edit.updated == after
    assert edit.original == before and path.read_bytes() == before.encode()  # planned, not written
    path.write_bytes(edit.updated.encode())
    assert not tfvars_map.plan_set(path, "hub1", ENTRY, attribute="r").changed  # idempotent


def test_null_attributes_are_left_out_and_on_top_of_another_edit(tmp_path: Path) -> None:
    path = tmp_path / "c.tfvars"
    path.write_text('container_repos = ["a"] # hubs\n')
    added = tfvars.plan_add(path, "hub1")
    edit = tfvars_map.plan_set(
        path, "hub1", {"keep_recent": 3, "delete_older_than_days": None}, attribute="r", after=added
    )
    assert edit.original == 'container_repos = ["a"] # hubs\n'
    assert tfvars.parse(edit.updated, path=path) == {
        "container_repos": ["a", "hub1"],
        "r": {"hub1": {"keep_recent": 3}},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [("r = [1]\n", "not a map"), ("r = {}\nr = {}\n", "more than once"), ("r = merge({}, {})\n", "not a map")],
)
def test_refuses_what_it_cannot_edit(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.tfvars"
    path.write_text(text)
    with pytest.raises(TfvarsError, match=message):
        tfvars_map.plan_set(path, "hub1", ENTRY, attribute="r")
