"""The secret side of a removal: which branches of the hub's sops file hold the registry's secrets (read decrypted
into memory), and whether the file is left with none (then it is deleted and unlisted)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provision import clusterrepo, sops
from provision.files import read_text
from provision.hubconfig import (
    HubOptions,
    secret_values,
)
from provision.hubfiles.removal_target import (
    PULL_SECRET,
    KeyPath,
    RemovalTarget,
    get,
    in_file,
    release_view,
)


def plan_secret(
    path: Path, target: RemovalTarget, client: sops.Sops | None, release: str | None
) -> tuple[list[KeyPath], list[str], bool, list[str]]:
    """Branches of the encrypted file to unset, read from its key names (sops leaves keys readable). A z2jh
    release's file is read in the hub layout (under the release's key) and its branches given back without it."""
    text = read_text(path)
    if text is None:
        return [], [], False, [f"{path}: does not exist"]
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe").load(text)
    except YAMLError:
        raise clusterrepo.ClusterRepoError("not valid YAML", path=path) from None
    if not isinstance(doc, dict) or "sops" not in doc:
        raise clusterrepo.ClusterRepoError(
            "has no sops metadata: it is not encrypted",
            path=path,
            hint="if it was committed in plaintext, rotate the secrets it holds, then encrypt it with sops",
        )
    data = release_view({k: v for k, v in doc.items() if k != "sops"}, release)
    owned = secret_values(target.registry, HubOptions(chart=target.chart))
    wanted: list[KeyPath] = []
    for leaf in _leaf_paths(owned):
        if leaf[: len(target.wrap(PULL_SECRET))] == target.wrap(PULL_SECRET):
            continue
        if _has(data, leaf):
            wanted.append(leaf)
    notes: list[str] = []
    pull = target.wrap(PULL_SECRET)
    if isinstance(get(data, pull), Mapping):
        assert client is not None, "the CLI finds the sops binary whenever a secret file is given"
        plain = release_view(YAML(typ="safe").load(client.decrypt(path)) or {}, release)
        registry = get(plain, (*pull, "registry"))
        if str(registry) in target.pull_hosts:
            wanted.append(pull)
        else:
            kept = in_file([".".join(pull)], release)[0]
            notes.append(f"{path.name}: kept {kept}: its registry is not this registry's")
    if not wanted:
        return [], [], False, notes
    remaining = copy.deepcopy(data)
    for leaf in wanted:
        _pop(remaining, leaf)
    # Unset the highest branch each removal empties: sops unset leaves empty parents behind.
    branches = sorted({_emptied_branch(data, remaining, leaf) for leaf in wanted}, key=len)
    minimal: list[KeyPath] = [b for b in branches if not any(b[: len(o)] == o and b != o for o in branches)]
    removed = in_file([".".join(leaf) for leaf in wanted], release)
    if release is not None:
        # (release,) itself: the file is left empty and deleted rather than unset.
        minimal = [branch[1:] for branch in minimal if branch[1:]]
    return minimal, removed, not _prune(remaining), notes


def _leaf_paths(doc: Mapping[str, Any], prefix: KeyPath = ()) -> list[KeyPath]:
    out: list[KeyPath] = []
    for key, value in doc.items():
        if isinstance(value, Mapping):
            out += _leaf_paths(value, (*prefix, str(key)))
        else:
            out.append((*prefix, str(key)))
    return out


def _has(doc: Any, keys: Sequence[str]) -> bool:
    parent = get(doc, keys[:-1])
    return isinstance(parent, Mapping) and keys[-1] in parent


def _pop(doc: Any, keys: KeyPath) -> None:
    parent = get(doc, keys[:-1])
    if isinstance(parent, dict):
        parent.pop(keys[-1], None)


def _emptied_branch(before: Any, after: Any, leaf: KeyPath) -> KeyPath:
    """The highest ancestor of `leaf` that held something before and nothing after the removals."""
    branch = leaf
    for depth in range(len(leaf) - 1, 0, -1):
        parent = leaf[:depth]
        if get(before, parent) and not _prune_copy(get(after, parent)):
            branch = parent
        else:
            break
    return branch


def _prune_copy(value: Any) -> Any:
    return _prune(copy.deepcopy(value)) if isinstance(value, dict) else value


def _prune(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without mappings that hold nothing (in place; returns it)."""
    for key in list(doc):
        if isinstance(doc[key], dict):
            _prune(doc[key])
            if not doc[key]:
                del doc[key]
    return doc
