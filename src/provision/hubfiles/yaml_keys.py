"""Deleting keys from a round-trip YAML document without losing comments: the leaves a hub's registry owns (same
value, keyed list entries by key), then the mappings and lists this leaves empty, the comment lines of a deleted key
moved to the next key (ruamel.yaml keeps a comment line on the value before it)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from provision import clusterrepo

KeyPath = tuple[str, ...]
LIST_KEYS = ("slug", "name")  # keyed list entries (profileList, imagePullSecrets, extraEnv) match on these


def keyed(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, Mapping) and any(k in v for k in LIST_KEYS) for v in value)
    )


def entry_key(entry: Mapping[str, Any]) -> tuple[str, Any] | None:
    name = next((k for k in LIST_KEYS if k in entry), None)
    return (name, entry[name]) if name is not None else None


def remove_owned(
    target: MutableMapping[str, Any],
    owned: Mapping[str, Any],
    prefix: KeyPath,
    identity: set[KeyPath],
    removed: list[str],
    kept: list[str],
    pending: list[str],
) -> None:
    """Delete from `target` the leaves of `owned` it holds with the same value (keyed list entries by key), then
    the mappings and lists that this left empty. Mappings that were empty before stay. Comment lines orphaned by a
    deletion at the end of `target` are handed back in `pending`."""
    for key, value in owned.items():
        if key not in target:
            continue
        path = (*prefix, str(key))
        dotted = ".".join(path)
        current = target[key]
        if isinstance(value, Mapping) and isinstance(current, MutableMapping):
            if not current:
                continue
            inner: list[str] = []
            remove_owned(current, value, path, identity, removed, kept, inner)
            if not current:
                pending[:] = inner
                delete_key(target, key, pending)
            elif inner:
                place_pending(current, inner)
        elif keyed(value) and isinstance(current, list):
            ours = {entry_key(v) for v in value}
            before = len(current)
            for index in reversed(range(len(current))):
                entry = current[index]
                key_of = entry_key(entry) if isinstance(entry, Mapping) else None
                if key_of is not None and key_of in ours:
                    removed.append(f"{dotted}[{key_of[0]}={key_of[1]}]")
                    del current[index]
            if before and not current:
                delete_key(target, key, pending)
        elif path in identity or clusterrepo.plain(current) == clusterrepo.plain(value):
            # Hub-specific leaves were checked against the registry (removal_target.check_identity); others must match.
            removed.append(dotted)
            delete_key(target, key, pending)
        else:
            kept.append(dotted)


def delete_key(mapping: MutableMapping[str, Any], key: str, pending: list[str]) -> None:
    """Delete a key without losing the comments of the lines after it.

    ruamel.yaml stores a comment line that precedes a key on the end of the value before it, so deleting a value
    would take the next key's leading comment along. Those lines move to the next key (or, when the key was the
    last one, into `pending` for the caller to place after the mapping).
    """
    keys = list(mapping)
    following = "".join(pending) + following_lines(mapping, key)
    pending.clear()
    del mapping[key]
    index = keys.index(key)
    if following.strip():
        if index + 1 < len(keys):
            comment_before(mapping, keys[index + 1], following)
        else:
            pending.append(following)


def following_lines(node: Any, key: Any) -> str:
    """The comment lines after `node[key]`'s value (after its deepest last entry), without its own end-of-line."""
    ca = getattr(node, "ca", None)
    value = node[key]
    if isinstance(value, Mapping) and value:
        return following_lines(value, list(value)[-1])
    if isinstance(value, list) and value and getattr(value, "ca", None) is not None:
        last = len(value) - 1
        if isinstance(value[last], (Mapping, list)) and value[last]:
            inner = value[last]
            return following_lines(inner, list(inner)[-1] if isinstance(inner, Mapping) else len(inner) - 1)
        tokens = getattr(value, "ca").items.get(last)  # noqa: B009 - ruamel's CommentedSeq, typed as a list
        text = getattr(tokens[0], "value", "") if tokens else ""
        return text.split("\n", 1)[1] if "\n" in text else ""
    tokens = ca.items.get(key) if ca is not None else None
    token = tokens[2] if tokens and len(tokens) > 2 else None
    text = getattr(token, "value", "") if token is not None else ""
    return text.split("\n", 1)[1] if "\n" in text else ""


def comment_before(mapping: Any, key: Any, lines: str) -> None:
    """Put comment lines (kept verbatim) in front of `mapping[key]`."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    entry = mapping.ca.items.setdefault(key, [None, None, None, None])
    tokens = entry[1] if isinstance(entry[1], list) else []
    tokens.insert(0, CommentToken(lines, CommentMark(0), None))
    entry[1] = tokens


def place_pending(doc: Any, pending: list[str]) -> None:
    """Comment lines left over after the document's last key was deleted: they go after its new last value."""
    text = "".join(pending)
    if not text.strip() or not isinstance(doc, Mapping) or not doc:
        return
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    node, key = doc, list(doc)[-1]
    while isinstance(node[key], Mapping) and node[key]:
        node = node[key]
        key = list(node)[-1]
    if isinstance(node[key], list):
        return  # rare; the comment is dropped rather than misplaced inside a list
    entry = getattr(node, "ca").items.setdefault(key, [None, None, None, None])  # noqa: B009 - a CommentedMap
    old = getattr(entry[2], "value", "") if entry[2] is not None else ""
    entry[2] = CommentToken((old if old else "\n") + text, CommentMark(0), None)
