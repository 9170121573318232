"""Read a .tfvars file and add a name to a list attribute, keeping every other byte; TfvarsError.

python-hcl2 is used to parse only: its writer drops comments. The edit itself is positional: a small scanner
finds the attribute's list while skipping strings and `#`, `//` and `/* */` comments, the new item is inserted,
and the result is parsed again and compared with the original before anyone writes it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.files import link_target, unified_diff, write_atomic

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n")


class TfvarsError(ProvisionError):
    """A tfvars file cannot be read, parsed or edited safely; carries the file and line."""

    def __init__(self, message: str, *, path: Path | str, line: int | None = None, hint: str | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = Path(path)
        self.line = line


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "ident", "punct", "newline", "comment", "other"
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class TfvarsEdit:
    """The file before and after adding a name; `changed` is False when the name was already listed."""

    path: Path
    original: str
    updated: str
    values: dict[str, Any] = field(default_factory=dict)  # the original file, parsed

    @property
    def changed(self) -> bool:
        return self.original != self.updated

    def diff(self) -> str:
        return unified_diff(self.path, self.original, self.updated)


def tokenize(text: str) -> list[Token]:
    """Split HCL text into the tokens the editor needs; comments, strings and heredocs are single tokens."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            tokens.append(Token("newline", i, i + 1, c))
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            tokens.append(Token("comment", i, end, text[i:end]))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            tokens.append(Token("comment", i, end, text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            tokens.append(Token("string", i, min(j + 1, n), text[i : j + 1]))
            i = j + 1
        elif (m := HEREDOC.match(text, i)) is not None:
            close = re.compile(rf"^\s*{re.escape(m.group(1))}\s*$", re.M).search(text, m.end())
            end = n if close is None else close.end()
            tokens.append(Token("string", i, end, text[i:end]))
            i = end
        elif (m := IDENT.match(text, i)) is not None:
            tokens.append(Token("ident", i, m.end(), m.group()))
            i = m.end()
        elif c in "[]{}()=,":
            tokens.append(Token("punct", i, i + 1, c))
            i += 1
        else:
            tokens.append(Token("other", i, i + 1, c))
            i += 1
    return tokens


def parse(text: str, *, path: Path | str) -> dict[str, Any]:
    """Parse tfvars text to plain Python values. Raises TfvarsError with the line of a syntax error."""
    import hcl2  # lazy: ~100 ms
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        options = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True)
        data = hcl2.loads(text, serialization_options=options)
    except UnexpectedInput as exc:
        raise TfvarsError(f"not valid HCL ({str(exc).splitlines()[0]})", path=path, line=exc.line) from None
    except LarkError as exc:
        raise TfvarsError(f"not valid HCL ({exc})", path=path) from None
    return dict(data)


def read(path: Path, *, parse_values: bool = True) -> tuple[str, dict[str, Any]]:
    """The file's text and (unless parse_values is False) its parsed values. Raises TfvarsError."""
    try:
        # Bytes, not read_text(): universal newlines would turn CRLF into LF and change every line.
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TfvarsError(f"cannot read the file ({exc.strerror})", path=path) from None
    except UnicodeDecodeError:
        raise TfvarsError("not UTF-8 text", path=path) from None
    return text, parse(text, path=path) if parse_values else {}


def top_level(tokens: list[Token], attribute: str) -> list[int]:
    """Indexes of `attribute =` at the top level (not inside a block, list or call)."""
    depth, found = 0, []
    for index, token in enumerate(tokens):
        if token.kind == "punct" and token.text in "[{(":
            depth += 1
        elif token.kind == "punct" and token.text in "]})":
            depth -= 1
        elif depth == 0 and token.kind == "ident" and token.text == attribute:
            if index + 1 < len(tokens) and tokens[index + 1].text == "=":
                found.append(index)
    return found


def list_members(tokens: list[Token], open_index: int) -> tuple[list[int], int | None]:
    """Indexes of the tokens directly inside the list opened at `open_index` (items and commas; a nested
    value shows as its closing bracket), and the index of its `]` (None when it is not closed)."""
    depth, members = 0, list[int]()
    for index in range(open_index, len(tokens)):
        token = tokens[index]
        if token.kind == "punct" and token.text in "[{(":
            depth += 1
        elif token.kind == "punct" and token.text in "]})":
            depth -= 1
            if depth == 0:
                return members, index
        if depth == 1 and token.kind != "newline" and index > open_index:
            members.append(index)
    return members, None


def add_to_list(text: str, name: str, *, attribute: str, path: Path | str = "<tfvars>") -> str:
    """Return `text` with `"name"` appended to the top-level list `attribute` (created at the end if absent)."""
    tokens = [t for t in tokenize(text) if t.kind != "comment"]
    found = top_level(tokens, attribute)
    if len(found) > 1:
        line = text.count("\n", 0, tokens[found[1]].start) + 1
        raise TfvarsError(f"{attribute} is set more than once", path=path, line=line)
    item = f'"{name}"'
    nl = "\r\n" if "\r\n" in text else "\n"
    if not found:
        lead = "" if not text or text.endswith(nl * 2) else (nl if text.endswith(nl) else nl * 2)
        return f"{text}{lead}{attribute} = [{nl}  {item},{nl}]{nl}"

    open_index = found[0] + 2
    if open_index >= len(tokens) or tokens[open_index].text != "[":
        line = text.count("\n", 0, tokens[found[0]].start) + 1
        raise TfvarsError(f"{attribute} is not a literal list", path=path, line=line)
    members, close_index = list_members(tokens, open_index)
    last_elem, trailing_comma = None, False
    for index in members:
        if tokens[index].text == ",":
            trailing_comma = True
        else:
            last_elem, trailing_comma = tokens[index], False
    if close_index is None:
        raise TfvarsError(f"the list of {attribute} is not closed", path=path)

    close = tokens[close_index]
    opening = tokens[open_index]
    multiline = "\n" in text[opening.start : close.start]
    edits: list[tuple[int, str]] = []
    if last_elem is None:
        if multiline:
            line_start = text.rfind("\n", 0, close.start) + 1
            indent = line_indent(text, opening.start) + "  "
            edits.append((line_start, f"{indent}{item},{nl}"))
        else:
            edits.append((close.start, item))
    elif multiline and not text[text.rfind("\n", 0, close.start) + 1 : close.start].strip():
        # `]` on a line of its own: the new item gets a line of its own before it.
        if not trailing_comma:
            edits.append((last_elem.end, ","))
        line_start = text.rfind("\n", 0, close.start) + 1
        edits.append((line_start, f"{line_indent(text, last_elem.start)}{item},{nl}"))
    else:
        edits.append((last_elem.end, f", {item}"))
    for position, insert in sorted(edits, reverse=True):
        text = text[:position] + insert + text[position:]
    return text


def line_indent(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    line = text[line_start:position]
    return line[: len(line) - len(line.lstrip())]


def simple_values(text: str) -> dict[str, Any] | None:
    """Top-level attributes of a file made only of `name = "string"` and `name = ["string", ...]`, or None.

    A fast path: parsing with python-hcl2 costs ~130 ms (Lark), more than a terraform command on a small module.
    Anything else (numbers, maps, expressions, heredocs) returns None and the caller parses with python-hcl2.
    """
    tokens = [t for t in tokenize(text) if t.kind not in ("comment", "newline")]
    values: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        if i + 2 >= len(tokens) or tokens[i].kind != "ident" or tokens[i + 1].text != "=":
            return None
        key, value = tokens[i].text, tokens[i + 2]
        if key in values:
            return None  # set twice: let the real parser report it
        if value.kind == "string" and _plain(value.text):
            values[key], i = value.text[1:-1], i + 3
        elif value.text == "[":
            items, j, expect_item = [], i + 3, True
            while j < len(tokens) and tokens[j].text != "]":
                token = tokens[j]
                if expect_item and token.kind == "string" and _plain(token.text):
                    items.append(token.text[1:-1])
                elif not expect_item and token.text == ",":
                    pass
                else:
                    return None
                expect_item, j = not expect_item, j + 1
            if j == len(tokens):
                return None
            values[key], i = items, j + 1
        else:
            return None
    return values


def _plain(literal: str) -> bool:
    """A quoted string with no escapes or template sequences (so its text is its value)."""
    return len(literal) >= 2 and literal.endswith('"') and not any(c in literal[1:-1] for c in '\\$%"')


def plan_add(path: Path, name: str, *, attribute: str = "container_repos") -> TfvarsEdit:
    """Compute (without writing) the edit that adds `name` to `attribute`, verified by parsing the result.

    Returns an edit with `changed` False when the name is already listed. Raises TfvarsError.
    """
    original, _ = read(path, parse_values=False)
    fast = simple_values(original)
    if fast is not None and name in (fast.get(attribute) or []):
        return TfvarsEdit(path, original, original, fast)  # nothing to write, so nothing to verify
    values = parse(original, path=path)
    current = values.get(attribute, [])
    if not isinstance(current, list):
        raise TfvarsError(f"{attribute} is not a list", path=path)
    if name in current:
        return TfvarsEdit(path, original, original, values)
    updated = add_to_list(original, name, attribute=attribute, path=path)
    after = parse(updated, path=path)
    expected = {**values, attribute: [*current, name]}
    if after != expected:
        raise TfvarsError(
            f"adding {name!r} to {attribute} would change other values; the file was left as it is",
            path=path,
            hint=f"add {name!r} to {attribute} by hand, then re-run",
        )
    return TfvarsEdit(path, original, updated, values)


def remove_from_list(text: str, name: str, *, attribute: str, path: Path | str = "<tfvars>") -> str:
    """Return `text` without the item `"name"` of the top-level list `attribute` (its line too, when the item had
    a line of its own). Raises TfvarsError when the item is not there as a plain string."""
    tokens = [t for t in tokenize(text) if t.kind != "comment"]
    found = top_level(tokens, attribute)
    if not found or found[0] + 2 >= len(tokens) or tokens[found[0] + 2].text != "[":
        raise TfvarsError(f"{attribute} is not a literal list", path=path)
    members, _ = list_members(tokens, found[0] + 2)
    for index in members:
        token = tokens[index]
        if token.kind == "string" and token.text == f'"{name}"':
            following = [t for t in tokens[index + 1 :] if t.kind != "newline"]
            end = following[0].end if following and following[0].text == "," else token.end
            line_start = text.rfind("\n", 0, token.start) + 1
            line_end = text.find("\n", end)
            line_end = len(text) if line_end == -1 else line_end
            rest = text[end:line_end].strip()
            if not text[line_start : token.start].strip() and (not rest or rest.startswith(("#", "//", "/*"))):
                return text[:line_start] + text[line_end + 1 :]  # the item's own line, with its comment
            if end == token.end:  # the last item of a one-line list: drop the comma before it
                before = [t for t in tokens[:index] if t.kind != "newline"]
                if before and before[-1].text == ",":
                    return text[: before[-1].start] + text[token.end :]
            return text[: token.start] + text[end:].lstrip(" ")
    raise TfvarsError(f"{name!r} is not a plain entry of {attribute}", path=path)


def plan_remove(path: Path, name: str, *, attribute: str = "container_repos") -> TfvarsEdit:
    """Compute (without writing) the edit that removes `name` from `attribute`, verified by parsing the result.

    Returns an edit with `changed` False when the name is not listed. Raises TfvarsError.
    """
    original, values = read(path)
    current = values.get(attribute, [])
    if not isinstance(current, list):
        raise TfvarsError(f"{attribute} is not a list", path=path)
    if name not in current:
        return TfvarsEdit(path, original, original, values)
    updated = remove_from_list(original, name, attribute=attribute, path=path)
    expected = {**values, attribute: [item for item in current if item != name]}
    if parse(updated, path=path) != expected:
        raise TfvarsError(
            f"removing {name!r} from {attribute} would change other values; the file was left as it is",
            path=path,
            hint=f"remove {name!r} from {attribute} by hand",
        )
    return TfvarsEdit(path, original, updated, values)


def check_writable(path: Path) -> None:
    """Refuse, before any change, a file or folder we could not (or should not) write. Raises TfvarsError.

    A file without any write permission bit is read-only on purpose, even for root (who could write it). A symlink
    is written where it points: its target and the target's folder are checked (a dangling link is a UsageError).
    """
    if path.is_dir():
        raise TfvarsError("is a folder, not a tfvars file", path=path, hint="pass the .tfvars file with --var-file")
    written = link_target(path, label="var file")
    folder = written.parent
    for target, what in ((written, "the file"), (folder, "its folder")):
        try:
            mode = target.stat().st_mode
        except OSError as exc:
            raise TfvarsError(f"cannot check {what} ({exc.strerror})", path=path) from None
        if not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(target, os.W_OK):
            raise TfvarsError(
                f"{what} is not writable ({stat.filemode(mode)}{'' if target == written else f' {folder}'}): "
                "provision edits the file by writing a new copy beside it; nothing was changed",
                path=path,
                hint=f"make {'it' if target == written else folder} writable (chmod u+w), or edit container_repos by "
                "hand and re-run",
            )


def write(path: Path, text: str) -> None:
    """Write the whole file atomically, keeping its mode. Raises TfvarsError (one paragraph) on any OS error."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise TfvarsError(f"cannot write the file ({exc.strerror})", path=path) from None
