"""What each `locals` value of a terraform module reads, from the module's .tf files (python-hcl2).

`show -json` carries every resource's and module call's references but not the locals' expressions, so a
`for_each = local.repos` cannot be traced to `var.container_repos` from the plan alone. This reads them for the
root module and for the local child modules the plan's configuration calls (`source = "./…"`). A module whose
files cannot be read (a registry or git source, a .tf.json file, HCL python-hcl2 rejects) is left out of the
answer: its locals are unknown, which plan_judge treats as not deriving from anything (the safe side).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# A reference that matches no source: a template plan_judge cannot see into (a heredoc with interpolations).
UNKNOWN = "?unknown"
LOCAL_SOURCE = ("./", "../")
LOCALS_BLOCK = re.compile(r"^\s*locals\s*\{", re.MULTILINE)

ModuleLocals = dict[str, dict[str, tuple[str, ...]]]


def module_locals(module_dir: Path, configuration: Mapping[str, Any]) -> ModuleLocals:
    """Module prefix ("" for the root, "module.a." for a child, as in plan_judge's config addresses) → local name →
    the references its expression makes. Modules that cannot be read are absent."""
    found: ModuleLocals = {}
    _collect(module_dir, configuration.get("root_module") or {}, "", found)
    return found


def _collect(directory: Path, module: Mapping[str, Any], prefix: str, found: ModuleLocals) -> None:
    values = read_locals(directory)
    if values is not None:
        found[prefix] = values
    for name, call in (module.get("module_calls") or {}).items():
        source = str(call.get("source") or "")
        if source.startswith(LOCAL_SOURCE):  # a registry/git module is installed elsewhere: its locals stay unknown
            _collect((directory / source).resolve(), call.get("module") or {}, f"{prefix}module.{name}.", found)


def read_locals(directory: Path) -> dict[str, tuple[str, ...]] | None:
    """Local name → references, for one module folder; None when a file cannot be read."""
    if any(directory.glob("*.tf.json")):
        return None  # JSON configuration may declare locals too; not read here
    values: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.tf")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if not LOCALS_BLOCK.search(text):
            continue  # python-hcl2 costs ~100 ms; most files hold no locals
        parsed = _parse_locals(text)
        if parsed is None:
            return None
        values.update(parsed)
    return values


def _parse_locals(text: str) -> dict[str, tuple[str, ...]] | None:
    import hcl2  # lazy: ~100 ms, only when the module has locals
    from lark import Tree
    from lark.exceptions import LarkError

    try:
        tree = hcl2.parses_to_tree(text)
    except (LarkError, ValueError):
        return None
    values: dict[str, tuple[str, ...]] = {}
    for block in _children(tree, "body", "block"):
        if _name(_child(block, "identifier")) != "locals":
            continue
        for attribute in _children(block, "body", "attribute"):
            name = _name(_child(attribute, "identifier"))
            expression = [c for c in attribute.children if isinstance(c, Tree) and c.data != "identifier"]
            values[name] = tuple(sorted(set(references(expression[-1])))) if expression else ()
    return values


def references(expression: Any) -> Iterator[str]:
    """The traversals an expression reads (`var.x`, `local.y`, `module.m.out`, `type.name`, `data.t.n.attr`), as
    `show -json` would list them: maximal attribute chains, without for-expression variables."""
    from lark import Token, Tree

    bound = {_name(i) for node in _subtrees(expression) if node.data in ("for_intro", "template_for_start")
             for i in node.children if isinstance(i, Tree) and i.data == "identifier"}  # fmt: skip

    def walk(node: Any, extended: bool) -> Iterator[str]:
        if isinstance(node, Token):
            if node.type.startswith("HEREDOC") and ("${" in node or "%{" in node):  # heredocs stay one token
                yield UNKNOWN
            return
        if not isinstance(node, Tree):
            return
        if node.data == "expr_term" and not extended:
            path = _path(node)
            if path and len(path) >= 2 and path[0] not in bound:
                yield ".".join(path)
        for index, child in enumerate(node.children):
            # the base of `a.b` is part of the longer chain, not a reference of its own
            yield from walk(child, node.data == "get_attr_expr_term" and index == 0)

    yield from walk(expression, False)


def _path(node: Any) -> list[str] | None:
    """`a.b.c` for an expr_term that is a plain attribute chain (no call, index or splat), else None."""
    from lark import Tree

    kids = [c for c in node.children if isinstance(c, Tree)]
    if node.data == "expr_term" and len(kids) == 1:
        kid = kids[0]
        if kid.data == "identifier":
            return [_name(kid)]
        return _path(kid) if kid.data == "get_attr_expr_term" else None
    if node.data == "get_attr_expr_term" and len(kids) == 2:
        base = _path(kids[0])
        return base + [_name(_child(kids[1], "identifier"))] if base is not None else None
    return None


def _subtrees(node: Any) -> Iterator[Any]:
    from lark import Tree

    return node.iter_subtrees() if isinstance(node, Tree) else iter(())


def _children(node: Any, container: str, kind: str) -> Iterator[Any]:
    """The `kind` trees inside `node`'s `container` child (a body's blocks or attributes)."""
    for body in (c for c in node.children if getattr(c, "data", None) == container):
        yield from (c for c in body.children if getattr(c, "data", None) == kind)


def _child(node: Any, kind: str) -> Any:
    return next((c for c in node.children if getattr(c, "data", None) == kind), None)


def _name(identifier: Any) -> str:
    return str(identifier.children[0]) if identifier is not None and identifier.children else ""
