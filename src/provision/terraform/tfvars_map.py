"""Set one key of a map attribute in a .tfvars file, keeping every other byte (the other keys, comments, layout).

The map-valued sibling of tfvars.add_to_list, for per-hub settings such as `registry_retention = { "hub1" = {…} }`:
the same scanner finds the attribute's `{ … }` and the key's entry, only that entry's text is written (or a line
is added for it), and the result is parsed again with python-hcl2 and compared before anyone writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provision.terraform.tfvars import (
    TfvarsEdit,
    TfvarsError,
    Token,
    line_indent,
    list_members,
    parse,
    read,
    tokenize,
    top_level,
)

OPENERS = {"[": "]", "{": "}", "(": ")"}


def render(key: str, value: dict[str, int | str | None]) -> str:
    """`"key" = { a = 1, b = 2 }`: one line, keys quoted (hub names may hold hyphens), null attributes left out."""
    fields = ", ".join(f"{name} = {json.dumps(item)}" for name, item in value.items() if item is not None)
    return f"{json.dumps(key)} = {{ {fields} }}"


def _closing(tokens: list[Token], index: int) -> int:
    """The index of the token that closes the bracket opened at `index`."""
    depth = 0
    for position in range(index, len(tokens)):
        text = tokens[position].text
        if tokens[position].kind == "punct" and text in OPENERS:
            depth += 1
        elif tokens[position].kind == "punct" and text in OPENERS.values():
            depth -= 1
            if depth == 0:
                return position
    raise ValueError("not closed")


def _entry_span(tokens: list[Token], members: list[int], key: str) -> tuple[int, int] | None:
    """Text offsets of `key = value` among the map's members (quoted or bare key), or None."""
    solid = [i for i in members if tokens[i].kind != "newline"]
    for position, index in enumerate(solid):
        token = tokens[index]
        name = json.loads(token.text) if token.kind == "string" and token.text.startswith('"') else token.text
        if token.kind not in ("string", "ident") or name != key or position + 1 >= len(solid):
            continue
        if tokens[solid[position + 1]].text not in ("=", ":"):
            continue
        value = solid[position + 1] + 1
        end = value
        if tokens[value].text in OPENERS:
            end = _closing(tokens, value)
        elif value + 1 < len(tokens) and tokens[value + 1].text == "(":  # a function call
            end = _closing(tokens, value + 1)
        return token.start, tokens[end].end
    return None


def set_in_map(text: str, key: str, entry: str, *, attribute: str, path: Path | str = "<tfvars>") -> str:
    """Return `text` with the top-level map `attribute` holding `entry` (rendered `"key" = …`) for `key`: the key's
    old entry replaced, else a new line added (the attribute created at the end when absent)."""
    tokens = [t for t in tokenize(text) if t.kind != "comment"]
    found = top_level(tokens, attribute)
    nl = "\r\n" if "\r\n" in text else "\n"
    if len(found) > 1:
        raise TfvarsError(
            f"{attribute} is set more than once", path=path, line=text.count("\n", 0, tokens[found[1]].start) + 1
        )
    if not found:
        lead = "" if not text or text.endswith(nl * 2) else (nl if text.endswith(nl) else nl * 2)
        note = "# Per-hub settings written by provision (see the module's variables.tf)"
        return f"{text}{lead}{note}{nl}{attribute} = {{{nl}  {entry}{nl}}}{nl}"
    open_index = found[0] + 2
    if open_index >= len(tokens) or tokens[open_index].text != "{":
        raise TfvarsError(
            f"{attribute} is not a literal map", path=path, line=text.count("\n", 0, tokens[found[0]].start) + 1
        )
    members, close_index = list_members(tokens, open_index)
    if close_index is None:
        raise TfvarsError(f"the map of {attribute} is not closed", path=path)
    span = _entry_span(tokens, members, key)
    if span is not None:
        return text[: span[0]] + entry + text[span[1] :]
    opening, close = tokens[open_index], tokens[close_index]
    close_line = text.rfind("\n", 0, close.start) + 1
    if not members:
        if "\n" in text[opening.start : close.start]:
            indent = line_indent(text, opening.start) + "  "
            return text[:close_line] + f"{indent}{entry}{nl}" + text[close_line:]
        return text[: opening.start] + f"{{{nl}  {entry}{nl}}}" + text[close.end :]
    if "\n" in text[opening.start : close.start] and not text[close_line : close.start].strip():
        indent = line_indent(text, tokens[members[0]].start)
        return text[:close_line] + f"{indent}{entry}{nl}" + text[close_line:]
    last = tokens[members[-1]]
    return text[: last.end] + ("" if last.text == "," else ",") + f" {entry}" + text[last.end :]


def plan_set(
    path: Path, key: str, value: dict[str, Any], *, attribute: str, after: TfvarsEdit | None = None
) -> TfvarsEdit:
    """The edit that makes `attribute[key]` equal `value` (null attributes left out), verified by parsing the
    result; on top of `after` (an edit of the same file not yet written) when given. `changed` is False when the
    file (or `after`'s result) already says so. Raises TfvarsError."""
    if after is not None:
        original, text = after.original, after.updated
    else:
        original, _ = read(path, parse_values=False)
        text = original
    values = parse(text, path=path)
    current = values.get(attribute, {})
    if not isinstance(current, dict):
        raise TfvarsError(f"{attribute} is not a map", path=path)
    wanted = {name: item for name, item in value.items() if item is not None}
    base_values = after.values if after is not None and after.values else parse(original, path=path)
    if current.get(key) == wanted:
        return TfvarsEdit(path, original, text, base_values)
    updated = set_in_map(text, key, render(key, wanted), attribute=attribute, path=path)
    if parse(updated, path=path) != {**values, attribute: {**current, key: wanted}}:
        raise TfvarsError(
            f"setting {attribute}[{key!r}] would change other values; the file was left as it is",
            path=path,
            hint=f"set {attribute}[{key!r}] by hand ({render(key, wanted)}), then re-run",
        )
    return TfvarsEdit(path, original, updated, base_values)
