"""The profile list a hub gets from the values files listed around its own (2i2c's `common.values.yaml`).

Helm replaces lists whole: a `profileList` in a hub's own values file hides every profile of a file listed before
it, and a `profileList` in a file listed after it hides the hub's own. The hub's files are read in cluster.yaml
order, as the deployer passes them to Helm, and merged as Helm merges them (hubfiles/cluster.py).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision import clusterrepo
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.files import read_text
from provision.hubconfig import Chart, get_path
from provision.hubfiles import cluster as clusterfiles

PROFILE_LIST = ("jupyterhub", "singleuser", "profileList")


@dataclass(frozen=True)
class SharedProfiles:
    """What a hub's other values files do to a profileList in its own values file."""

    inherited: tuple[Any, ...] = ()  # the profiles the hub gets from the files listed before its own
    source: str | None = None  # the file (relative to the cluster folder) that sets them
    later: tuple[str, ...] = ()  # files listed after the hub's own that set a profileList: theirs wins
    # The comment lines before the first inherited profile in `source` (ruamel comment tokens), copied with them.
    lead: Any = None


def base(
    existing: Any, *, chart: Chart, values_file: Path | None, cluster_config: Path | None, hub: str | None, copy: bool
) -> tuple[Any, SharedProfiles]:
    """The document the image-building profile is merged into, and the profiles to copy into the hub's file.

    Helm replaces lists whole, so a profileList written into a hub's own values file (`existing`) hides every
    profile a file listed before it in cluster.yaml defines (2i2c's common.values.yaml). When that file's list is
    what the hub gets today and the hub's own file has none, provision refuses unless `copy`
    (--copy-shared-profiles); with it, the shared profiles are copied into the hub's file, ours merged in or
    appended. Refusing is the default because copying forks shared config: later edits of the shared profiles (a
    new image tag, a resource limit) would silently stop reaching this hub, which an engineer should choose
    knowingly, or avoid by adding the profile to the shared file when every hub using it builds images. Writing
    the merged list unasked would also hide the fork in a long diff. A hub file that already has a profileList
    already hides the shared one (provision doctor warns): ours joins it, nothing is copied.
    """
    keys = profile_keys(chart)
    if values_file is None or cluster_config is None or hub is None:
        return existing, SharedProfiles()
    shared = read(cluster_config, hub, values_file, chart)
    if sets(existing, keys) or not shared.inherited:
        return existing, SharedProfiles(later=shared.later)
    if not copy:
        listed = ", ".join(profile_names(shared.inherited)) or f"{len(shared.inherited)} profiles"
        raise UsageError(
            f"hub {hub!r} gets its profiles ({listed}) from {shared.source}, listed before "
            f"{values_file.name} in cluster.yaml. Helm replaces lists whole, so an image-building profile "
            f"written into {values_file.name} would hide all of them. Pass --copy-shared-profiles to copy them "
            f"into {values_file.name} with the image-building profile (later edits to {shared.source}'s "
            f"profiles then no longer reach this hub), or add the profile to {shared.source} itself if every hub "
            "listing it builds images (provision profile --values-file)"
        )
    return with_inherited(existing, shared.inherited, keys), shared


def finish(
    public: dict[str, Any],
    shared: SharedProfiles,
    existing: Any,
    *,
    chart: Chart,
    values_file: Path | None,
    reporter: Reporter,
    checked: bool,
) -> dict[str, Any]:
    """The hub's values with the shared profiles copied into its list (when `base` found some to copy), and the
    warnings: what was copied, a later file's list that replaces ours, and (`checked` false: no cluster.yaml was
    given) a list elsewhere that ours may replace."""
    keys = profile_keys(chart)
    target = values_file.name if values_file is not None else "these values"
    if shared.inherited:
        ours = get_path(public, *keys)
        profiles = merged_list(shared.inherited, ours if isinstance(ours, list) else [])
        public = with_inherited(public, _with_lead(profiles, shared.lead), keys)
        reporter.warn(
            f"{target}: copied the profiles of {shared.source} ({', '.join(profile_names(shared.inherited))}) into "
            f"its profileList with the image-building profile (Helm replaces lists whole); later edits of those "
            f"profiles in {shared.source} no longer reach this hub"
        )
    for later in shared.later:
        reporter.warn(
            f"{later} is listed after {target} in cluster.yaml and sets a profileList, which replaces this hub's "
            f"whole list: the image-building profile is not offered; move it into {later}'s list, or list "
            f"{later} before {target}"
        )
    if not checked and not sets(existing, keys):
        where = "set a profileList" if values_file is None else "sets a profileList"
        if chart == "z2jh":
            hint = "the profiles of a values file given to helm before it are no longer offered; merge them in"
        else:
            hint = (
                "the profiles of a file listed before it in cluster.yaml (such as common.values.yaml) are no "
                "longer offered on this hub; pass --cluster-config so that provision checks the hub's files"
            )
        reporter.warn(f"{target} {where}, and Helm replaces lists whole: {hint}")
    return public


def profile_keys(chart: Chart) -> tuple[str, ...]:
    """Where a hub's values file holds the profile list: under `basehub:` for daskhub hubs (facts §6.3); a z2jh
    hub's file holds the jupyterhub chart's own values."""
    return {"daskhub": ("basehub", *PROFILE_LIST), "basehub": PROFILE_LIST, "z2jh": PROFILE_LIST[1:]}[chart]


def sets(doc: Any, keys: Sequence[str]) -> bool:
    """Whether the document sets the key at all (an empty or null list hides an earlier one too)."""
    parent = get_path(doc, *keys[:-1])
    return isinstance(parent, Mapping) and keys[-1] in parent


def read(cluster_config: Path, hub: str, values_file: Path, chart: Chart) -> SharedProfiles:
    """The profiles `hub` inherits from the files listed before `values_file` in `cluster_config`, and the files
    listed after it that set a profile list. A values file not listed yet is placed where provision will list it:
    after the plain files, before the first encrypted one (clusterrepo.plan_registration).

    Files that are missing, unreadable or jsonnet are passed over: cluster.yaml is checked before (clusterrepo) and
    `provision doctor` reports the rest. Raises UsageError when the inherited list is in an encrypted file: its
    entries are ciphertext, which cannot be copied into a plain values file.
    """
    folder = cluster_config.parent
    config = clusterfiles.load(cluster_config, cluster_config.name).doc or {}
    hubs = config.get("hubs")
    entry = (
        next((h for h in hubs if isinstance(h, Mapping) and h.get("name") == hub), None)
        if isinstance(hubs, list)
        else None
    )
    paths = [clusterfiles.join(folder, raw) for raw in clusterfiles.listed(entry or {})]
    resolved = [p.resolve() for p in paths]
    own = values_file.resolve()
    if own in resolved:
        split = resolved.index(own)
        before, after = paths[:split], paths[split + 1 :]
    else:
        split = next((i for i, p in enumerate(paths) if p.name.startswith("enc-")), len(paths))
        before, after = paths[:split], paths[split:]

    keys = profile_keys(chart)
    merged: dict[Any, Any] = {}
    source: clusterfiles.ValuesFile | None = None
    for file in _readable(before, folder):
        assert file.doc is not None
        if sets(file.doc, keys):
            source = file
        merged = clusterfiles.merge(merged, file.doc)
    profiles = get_path(merged, *keys)
    inherited = tuple(profiles) if isinstance(profiles, list) else ()
    if source is not None and inherited and (source.encrypted or source.secret_by_name):
        raise UsageError(
            f"{source.rel}, listed before {values_file.name} in cluster.yaml, is encrypted and sets the profileList "
            f"this hub gets; a profileList in {values_file.name} would replace it (Helm replaces lists whole), and "
            "provision cannot copy encrypted profiles into a plain file. Move the profiles into a plain values "
            "file, or add the image-building profile to that list by hand (provision profile prints it)"
        )
    later = tuple(f.rel for f in _readable(after, folder) if sets(f.doc, keys))
    if source is None or not inherited:
        return SharedProfiles(later=later)
    commented = _commented(source.path, keys, inherited)
    if commented is None:
        return SharedProfiles(inherited, source.rel, later)
    lead = commented.ca.comment[1] if commented.ca.comment else None
    return SharedProfiles(tuple(commented), source.rel, later, lead=lead or None)


def _readable(paths: list[Path], folder: Path) -> list[clusterfiles.ValuesFile]:
    files = []
    for path in paths:
        if path.suffix == ".jsonnet" or not path.is_file():
            continue
        file = clusterfiles.load(path, Path(os.path.relpath(path, folder)).as_posix())
        if file.doc is not None:
            files.append(file)
    return files


def _commented(path: Path, keys: Sequence[str], inherited: Sequence[Any]) -> Any:
    """The profile list of the file that sets it, read again for a round trip so that the copies keep their
    comments; None (copy the plain data) when that reading differs from the one Helm's merge was computed on, or
    uses a `<<:` merge key (its anchor stays behind in the shared file)."""
    try:
        text = read_text(path)
        doc, _ = clusterrepo.load(text, path=path) if text is not None else (None, None)
    except ProvisionError:  # read as plain YAML already: a file that changed since, or is over the size limit
        return None
    profiles = get_path(doc, *keys)
    if not isinstance(profiles, list) or clusterrepo.plain(profiles) != clusterrepo.plain(list(inherited)):
        return None
    if any(getattr(node, "merge", None) for node in _nodes(profiles)):
        return None
    if profiles and hasattr(profiles[-1], "lc"):
        _trim_trailing_comment(profiles[-1])
    return profiles


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ()
    for child in children:
        yield from _nodes(child)


def _comment_slots(node: Any) -> Iterator[tuple[list[Any], int]]:
    """(holder, index) of every comment token of `node` and its children, in ruamel's comment attributes."""

    def walk(holder: list[Any]) -> Iterator[tuple[list[Any], int]]:
        for index, item in enumerate(holder):
            if isinstance(item, list):
                yield from walk(item)
            elif item is not None and hasattr(item, "reset"):
                yield holder, index

    for each in _nodes(node):
        ca = getattr(each, "ca", None)
        if ca is not None:
            yield from walk([ca.comment, *ca.items.values(), ca.end])


def _trim_trailing_comment(entry: Any) -> None:
    """Drop, from the comment after the last profile's last line, the lines that are not this profile's: ruamel
    attaches the comments between a list and the next key (`# storage settings`) to the list's last value."""
    slots = [(holder, index) for holder, index in _comment_slots(entry) if holder[index].start_mark is not None]
    if not slots:
        return
    holder, index = max(slots, key=lambda slot: slot[0][slot[1]].start_mark.line)
    token = holder[index]
    first, *rest = token.value.split("\n")
    kept = [first]
    for line in rest:
        stripped = line.lstrip()
        if stripped and not (stripped.startswith("#") and len(line) - len(stripped) >= entry.lc.col):
            break
        kept.append(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    if kept == [""]:  # nothing of this profile's: the token goes (from every slot holding it)
        for other, at in list(_comment_slots(entry)):
            if other[at] is token:
                other[at] = None
    else:
        token.value = "\n".join(kept) + "\n"


def commented_copy(value: Any) -> Any:
    """A deep copy that keeps ruamel's comments. ruamel marks a comment before a nested mapping as written while
    loading and un-marks it when it writes that mapping, but copies the mark on each side separately
    (`copy_attributes`), so without the reset below a copied `choices:` mapping would lose its first comment."""
    out = copy.deepcopy(value)
    for holder, index in _comment_slots(out):
        holder[index].reset()
    return out


def _with_lead(profiles: list[Any], lead: Any) -> Any:
    """`profiles` as a ruamel sequence with the comment lines of the shared list before its first entry."""
    if lead is None:
        return profiles
    from ruamel.yaml.comments import CommentedSeq  # lazy: keeps start-up fast

    seq = CommentedSeq(profiles)
    seq.ca.comment = [None, commented_copy(lead)]
    return seq


def with_inherited(doc: Any, profiles: Sequence[Any], keys: Sequence[str]) -> Any:
    """A copy of `doc` (a values document, or None) whose profile list is `profiles`, as if copied into it."""
    out: Any = commented_copy(doc) if isinstance(doc, MutableMapping) else {}
    node = out
    for key in keys[:-1]:
        if not isinstance(node.get(key), MutableMapping):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = commented_copy(profiles if isinstance(profiles, list) else list(profiles))
    return out


def merged_list(inherited: Sequence[Any], ours: Sequence[Any]) -> list[Any]:
    """The inherited profiles in their order, each of ours merged into the one with its slug, or appended."""
    out: list[Any] = commented_copy(list(inherited))
    for entry in ours:
        match = next(
            (p for p in out if isinstance(p, MutableMapping) and isinstance(entry, Mapping)
             and "slug" in entry and p.get("slug") == entry["slug"]),
            None,
        )  # fmt: skip
        if match is None:
            out.append(commented_copy(entry))
        else:
            clusterrepo.deep_merge(match, entry)
    return out


def profile_names(profiles: Sequence[Any]) -> list[str]:
    """How KubeSpawner tells profiles apart: the slug, else the display name."""
    found = []
    for profile in profiles:
        if isinstance(profile, Mapping):
            name = profile.get("slug") or profile.get("display_name")
            if name:
                found.append(str(name))
    return found
