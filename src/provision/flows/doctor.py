"""provision doctor: static, offline checks of the image-building config of hubs in the 2i2c layout.

Each hub's `helm_chart_values_files` are read in the order `cluster.yaml` lists them and merged as Helm merges values
files (maps key by key, later files win, lists replaced) before any rule looks at them. sops-encrypted files are read
as plain YAML: key names stay readable and an `ENC[...]` value counts as a present value of the type sops recorded,
so nothing is decrypted. Findings name keys and files, never values. Rules follow ../shared/facts/hub-config.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from provision import names
from provision.console import Reporter
from provision.errors import UsageError
from provision.hubconfig import get_path as _get

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
CLUSTER_FILE = "cluster.yaml"
NO_HUB = "-"  # the hub of a finding about a file that no hub, or several hubs, use
SUPPORT = "support"  # cluster.yaml's `support:` chart also lists values files
# basehub's own subcharts: on a daskhub hub the parent chart ignores them unless they sit under `basehub:`.
BASEHUB_KEYS = ("jupyterhub", "binderhub-service", "dask-gateway")
# These charts' defaults set binderhub-service.config.BinderHub.use_registry: true (facts §2.1), so hubs may omit it.
BASEHUB_CHARTS = ("basehub", "daskhub")
ENC = re.compile(r"ENC\[[A-Z0-9_]+,data:.*,type:(\w+)\]", re.S)
# A stand-in such as `<set-in-encrypted-values>`, meant to be overridden by an encrypted file (projectpythia).
PLACEHOLDER = re.compile(r"<[^<>\n]*>")
# Key names (lower-case, without `_` and `-`) whose values are credentials. "password" also matches any name ending
# in it (adminPassword). Bare "token" is left out: too many non-secret keys use it.
SECRET_NAMES = frozenset(
    {
        "password",
        "apitoken",
        "clientsecret",
        "secrettoken",
        "cookiesecret",
        "secretkey",
        "secretaccesskey",
        "accesstoken",
        "privatekey",
        "apikey",
    }
)
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
ARTIFACT_REGISTRY_HOST = re.compile(r"[a-z0-9-]+-docker\.pkg\.dev")
GCR_HOST = re.compile(r"([a-z]+\.)?gcr\.io")
RegistryKind = Literal["artifact-registry", "quay", "dockerhub", "gcr", "other"]
PREFIX_KEY = ("binderhub-service", "config", "BinderHub", "image_prefix")


@dataclass(frozen=True)
class Finding:
    """One problem: `file` is where the key is or should be (relative to the path examined), `key` a dotted path
    (empty when the finding is about the whole file). The message never holds a secret value."""

    severity: Severity
    code: str
    cluster: str
    hub: str
    file: str
    key: str
    message: str


@dataclass(frozen=True)
class HubChecked:
    cluster: str
    hub: str
    chart: str
    cluster_file: str


@dataclass(frozen=True)
class DoctorResult:
    """The hubs examined, in cluster.yaml order, and the findings, grouped by cluster and hub, errors first."""

    path: str
    hubs: tuple[HubChecked, ...]
    findings: tuple[Finding, ...]

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def has_errors(self) -> bool:
        return self.count("error") > 0

    def summary(self) -> str:
        e, w, i = (self.count(s) for s in SEVERITIES)
        return (
            f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}, {i} info "
            f"in {len(self.hubs)} hub{'s' * (len(self.hubs) != 1)}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "summary": {
                "errors": self.count("error"),
                "warnings": self.count("warning"),
                "info": self.count("info"),
                "hubs": len(self.hubs),
            },
            "hubs": [asdict(h) for h in self.hubs],
            "findings": [asdict(f) for f in self.findings],
        }


def run(path: Path, *, reporter: Reporter | None = None) -> DoctorResult:
    """Check every hub of every `cluster.yaml` at or under `path` (a cluster folder, any folder above one, or a
    cluster.yaml). Reads files only. Raises UsageError when there is no cluster.yaml to check."""
    if path.is_file():
        if path.name != CLUSTER_FILE:
            raise UsageError(f"{str(path)!r} is not a cluster.yaml: pass a cluster folder or a folder above some")
        root, configs = path.parent, [path]
    else:
        root, configs = path, list(find_cluster_files(path))
    if not configs:
        raise UsageError(
            f"no {CLUSTER_FILE} at or under {str(path)!r}: pass a cluster folder of the 2i2c layout "
            "(config/clusters/<cluster>) or a folder above some"
        )
    doctor = _Doctor(root)
    for index, config in enumerate(configs, start=1):
        if reporter is not None:
            reporter.debug(f"{index}/{len(configs)}: {doctor.rel(config)}")
        doctor.check_cluster(config, index=index)
    doctor.check_shared_prefixes()
    return doctor.result(str(path))


def find_cluster_files(path: Path) -> Iterator[Path]:
    """Every cluster.yaml under `path`, in a stable order, skipping hidden folders (.git) and node_modules."""
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        if CLUSTER_FILE in filenames:
            yield Path(dirpath) / CLUSTER_FILE


# ---------------------------------------------------------------------------------------------------------------
# Reading files


@dataclass
class _File:
    path: Path
    rel: str
    doc: dict[Any, Any] | None = None  # None when the file cannot be used
    error: str | None = None
    template: bool = False  # a Jinja template (config/clusters/templates), not a cluster

    @property
    def encrypted(self) -> bool:
        return self.doc is not None and isinstance(self.doc.get("sops"), Mapping)

    @property
    def secret_by_name(self) -> bool:
        return "secret" in self.path.name


def _load(path: Path, rel: str) -> _File:
    from ruamel.yaml import YAML  # lazy: keeps start-up fast
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return _File(path, rel, error="is not UTF-8 text")
    except OSError as exc:
        return _File(path, rel, error=f"cannot be read ({exc.strerror})")
    # Never str(exc): ruamel quotes the offending line, and a duplicate-key error quotes both values.
    try:
        doc = YAML(typ="safe", pure=True).load(text)  # anchors, aliases and `<<:` merges are resolved here
    except DuplicateKeyError as exc:
        name = re.match(r'found duplicate key "(.*?)" with value', exc.problem or "")
        what = f"the key {name.group(1)!r}" if name else "a key"
        return _File(path, rel, error=f"is not valid YAML: {what} appears twice in one mapping{_line(exc)}")
    except MarkedYAMLError as exc:
        return _File(path, rel, error=f"is not valid YAML: {exc.problem}{_line(exc)}", template="{{" in text)
    except YAMLError:
        return _File(path, rel, error="is not valid YAML", template="{{" in text)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return _File(path, rel, error="is not a YAML mapping at the top level")
    return _File(path, rel, doc=doc)


def _line(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


# ---------------------------------------------------------------------------------------------------------------
# Values


def _has(doc: Any, keys: Sequence[str]) -> bool:
    for key in keys:
        if not isinstance(doc, Mapping) or key not in doc:
            return False
        doc = doc[key]
    return True


def _enc_type(value: Any) -> str | None:
    """The type sops recorded for an encrypted value (str, int, bool...), or None for a plaintext value."""
    match = ENC.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def _text(value: Any) -> str | None:
    """A readable, non-empty, non-placeholder string; None for anything else (including encrypted values)."""
    if not isinstance(value, str) or _enc_type(value) is not None:
        return None
    value = value.strip()
    return value if value and not PLACEHOLDER.fullmatch(value) else None


def _string_problem(value: Any) -> str | None:
    """Why `value` is not a usable string (missing, a placeholder, another type), or None when it is one."""
    enc = _enc_type(value)
    if enc is not None:
        return None if enc == "str" else f"is not a string (sops recorded type {enc})"
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is missing"
    if isinstance(value, str):
        return "is still a placeholder" if PLACEHOLDER.fullmatch(value.strip()) else None
    return f"is not a string (a {type(value).__name__})"


def _merge(base: Mapping[Any, Any], new: Mapping[Any, Any]) -> dict[Any, Any]:
    """Helm's merge of two values files: maps key by key, later wins, lists replaced. Builds new maps only, so
    objects shared through YAML aliases are never modified."""
    out = dict(base)
    for key, value in new.items():
        both_maps = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = _merge(out[key], value) if both_maps else value
    return out


def _secret_name(key: Any) -> bool:
    name = re.sub(r"[_-]", "", str(key).lower())
    return name in SECRET_NAMES or name.endswith("password")


def _plaintext_secrets(doc: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of credential-named keys whose value is readable (not ENC[...], not empty, not a placeholder)."""
    items: Any = doc.items() if isinstance(doc, Mapping) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(doc, list) else f"{path}.{key}" if path else str(key)
        if isinstance(value, (Mapping, list)):
            yield from _plaintext_secrets(value, where)
        elif not isinstance(doc, list) and _secret_name(key):
            if _text(value) is not None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                yield where


# ---------------------------------------------------------------------------------------------------------------
# Registries (facts §7)


def _host(url: str) -> str:
    rest = url.strip().split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


def _same_registry(a: str, b: str) -> bool:
    def norm(host: str) -> str:
        return "docker.io" if host in DOCKER_HUB_HOSTS else host

    return norm(_host(a)) == norm(_host(b))


def _kind(host: str) -> RegistryKind:
    if ARTIFACT_REGISTRY_HOST.fullmatch(host):
        return "artifact-registry"
    if GCR_HOST.fullmatch(host):
        return "gcr"
    if host == "quay.io":
        return "quay"
    if host in DOCKER_HUB_HOSTS:
        return "dockerhub"
    return "other"


def _looks_like_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


# ---------------------------------------------------------------------------------------------------------------
# The checks


@dataclass(frozen=True)
class _Cluster:
    name: str
    folder: Path
    config_rel: str
    provider: str
    gcp_project: str | None
    index: int


@dataclass(frozen=True)
class _Prefix:
    cluster: str
    hub: str
    prefix: str
    file: str
    key: str


class _Doctor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[Path, _File] = {}
        self.checked: set[Path] = set()  # files whose own checks ran (a file may be listed from two clusters)
        self.findings: list[Finding] = []
        self.hubs: list[HubChecked] = []
        self.prefixes: list[_Prefix] = []
        self.order: dict[tuple[str, str], tuple[int, int]] = {}

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def load(self, path: Path) -> _File:
        if path not in self.files:
            self.files[path] = _load(path, self.rel(path))
        return self.files[path]

    def add(self, severity: Severity, code: str, cluster: str, hub: str, file: str, key: str, message: str) -> None:
        self.findings.append(Finding(severity, code, cluster, hub, file, key, message))

    def result(self, path: str) -> DoctorResult:
        def order(f: Finding) -> tuple[Any, ...]:
            cluster_index, hub_index = self.order.get((f.cluster, f.hub), (10**9, 10**9))
            return (cluster_index, hub_index, SEVERITIES.index(f.severity), f.file, f.key, f.code)

        return DoctorResult(path, tuple(self.hubs), tuple(sorted(self.findings, key=order)))

    def check_cluster(self, config: Path, *, index: int) -> None:
        folder = config.parent
        loaded = self.load(config)
        name = folder.name
        if loaded.doc is None:
            self.order[(name, NO_HUB)] = (index, 10**6)
            if loaded.template:
                message = f"{CLUSTER_FILE} is a Jinja template ({{{{ }}}}), not a cluster: skipped"
                self.add("info", "template-skipped", name, NO_HUB, loaded.rel, "", message)
            else:
                self.add("error", "invalid-yaml", name, NO_HUB, loaded.rel, "", f"{CLUSTER_FILE} {loaded.error}")
            return
        doc = loaded.doc
        name = str(doc.get("name") or name)
        project = _get(doc, "gcp", "project")
        cluster = _Cluster(
            name, folder, loaded.rel, str(doc.get("provider") or ""), str(project) if project else None, index
        )
        self.order[(name, NO_HUB)] = (index, 10**6)

        entries = doc.get("hubs")
        hubs = (
            [h for h in entries if isinstance(h, Mapping) and isinstance(h.get("name"), str)]
            if isinstance(entries, list)
            else []
        )
        listed: dict[Path, list[str]] = {}
        support_files = _get(doc, SUPPORT, "helm_chart_values_files")
        for raw in support_files if isinstance(support_files, list) else ():
            listed.setdefault(_join(folder, raw), []).append(SUPPORT)
        for entry in hubs:
            for raw in _listed(entry):
                listed.setdefault(_join(folder, raw), []).append(str(entry["name"]))
        hub_names = [str(h["name"]) for h in hubs]

        # File by file: what does not need the merged view (syntax, plaintext secrets, unlisted files).
        in_folder = {_join(folder, p.name) for p in folder.glob("*.values.yaml")}
        for path in sorted(set(listed) | in_folder):
            listers = listed.get(path, [])
            if path in in_folder:
                self.check_listed(path, cluster=name, hub_names=hub_names, listers=listers)
            if path.suffix == ".jsonnet" or not path.is_file() or path in self.checked:
                continue
            self.checked.add(path)
            # A file's own findings go to the one hub that uses it; a shared file's go to the cluster ("-").
            users = [h for h in listers if h != SUPPORT]
            owner = users[0] if len(listers) == 1 and users else None if listers else _owner(path.name, hub_names)
            self.check_file(self.load(path), cluster=name, hub=owner or NO_HUB, users=users)

        for hub_index, entry in enumerate(hubs):
            self.check_hub(cluster, entry, hub_index)

    def check_file(self, file: _File, *, cluster: str, hub: str, users: list[str]) -> None:
        shared = f" (used by hubs {', '.join(users)})" if len(users) > 1 else ""
        if file.doc is None:
            self.add("error", "invalid-yaml", cluster, hub, file.rel, "", f"{file.path.name} {file.error}{shared}")
            return
        if file.secret_by_name and not file.encrypted:
            self.add(
                "error",
                "unencrypted-secret-file",
                cluster,
                hub,
                file.rel,
                "",
                f"{file.path.name} has `secret` in its name, so the deployer decrypts it with sops, but it has no "
                f"top-level sops: metadata: it is plaintext in git and the deploy fails; encrypt it with sops{shared}",
            )
        for key in _plaintext_secrets({k: v for k, v in file.doc.items() if k != "sops"}):
            where = "a sops file that left this value unencrypted" if file.encrypted else "an unencrypted file"
            self.add(
                "error",
                "plaintext-secret",
                cluster,
                hub,
                file.rel,
                key,
                f"a credential is in plaintext in {where}: move it to an encrypted enc-*.secret.values.yaml file "
                f"and rotate it, since git history keeps it{shared}",
            )

    def check_listed(self, path: Path, *, cluster: str, hub_names: list[str], listers: list[str]) -> None:
        rel = self.rel(path)
        owner = _owner(path.name, hub_names)
        if owner is not None and owner not in listers:
            self.add(
                "warning",
                "unlisted-values-file",
                cluster,
                owner,
                rel,
                "",
                f"{path.name} is not listed in hub {owner}'s helm_chart_values_files, so the deployer never "
                "uses it; add it to the list in cluster.yaml (encrypted files last) or delete it",
            )
        elif not listers:
            self.add(
                "warning",
                "unlisted-values-file",
                cluster,
                NO_HUB,
                rel,
                "",
                f"{path.name} is not listed in any hub's helm_chart_values_files, so the deployer never uses it; "
                "list it in cluster.yaml or delete it",
            )

    def check_hub(self, cluster: _Cluster, entry: Mapping[str, Any], hub_index: int) -> None:
        name = str(entry["name"])
        chart = str(entry.get("helm_chart") or "")
        self.hubs.append(HubChecked(cluster.name, name, chart or "-", cluster.config_rel))
        self.order[(cluster.name, name)] = (cluster.index, hub_index)
        files: list[_File] = []
        listed_rel: list[str] = []
        for raw in _listed(entry):
            path = _join(cluster.folder, raw)
            listed_rel.append(self.rel(path))
            if not path.is_file():
                self.add(
                    "error",
                    "missing-values-file",
                    cluster.name,
                    name,
                    cluster.config_rel,
                    f"hubs[name={name}].helm_chart_values_files",
                    f"lists {raw}, which does not exist: the deploy fails; create it or remove it from the list",
                )
            elif path.suffix == ".jsonnet":
                self.add(
                    "info",
                    "jsonnet-not-evaluated",
                    cluster.name,
                    name,
                    self.rel(path),
                    "",
                    f"{path.name} is jsonnet and was not evaluated: keys it sets are not seen by these checks",
                )
            else:
                loaded = self.load(path)
                if loaded.doc is not None:
                    files.append(loaded)
        _Hub(self, cluster, name, chart, files, listed_rel).check()

    def check_shared_prefixes(self) -> None:
        by_prefix: dict[str, list[_Prefix]] = {}
        for p in self.prefixes:
            by_prefix.setdefault(p.prefix, []).append(p)
        for prefix, users in by_prefix.items():
            for p in users if len(users) > 1 else ():
                others = ", ".join(f"{o.cluster}/{o.hub}" for o in users if o is not p)
                self.add(
                    "info",
                    "shared-image-prefix",
                    p.cluster,
                    p.hub,
                    p.file,
                    p.key,
                    f"image_prefix {prefix!r} is also used by {others}: their images share repository names "
                    "(fine when intended; else give each hub its own <cluster>-<hub>- prefix)",
                )


def _listed(entry: Mapping[str, Any]) -> list[str]:
    files = entry.get("helm_chart_values_files")
    return [str(f) for f in files] if isinstance(files, list) else []


def _join(folder: Path, name: Any) -> Path:
    return Path(os.path.normpath(folder / str(name)))


def _owner(filename: str, hub_names: list[str]) -> str | None:
    """The hub a file belongs to by its name: `<hub>.values.yaml` or `enc-<hub>.secret.values.yaml`."""
    for hub in hub_names:
        if filename in (f"{hub}.values.yaml", f"enc-{hub}.secret.values.yaml"):
            return hub
    return None


class _Hub:
    """The rules for one hub, on the merged values of its files."""

    def __init__(
        self, doctor: _Doctor, cluster: _Cluster, name: str, chart: str, files: list[_File], listed: list[str]
    ) -> None:
        self.doctor = doctor
        self.cluster = cluster
        self.name = name
        self.chart = chart
        self.files = files
        self.listed = listed
        self.daskhub = chart == "daskhub"
        self.base: tuple[str, ...] = ("basehub",) if self.daskhub else ()
        merged: dict[Any, Any] = {}
        for file in files:
            assert file.doc is not None
            merged = _merge(merged, file.doc)
        view = merged.get("basehub") if self.daskhub else merged
        self.values: Mapping[Any, Any] = view if isinstance(view, Mapping) else {}

    # -- helpers ---------------------------------------------------------------------------------------------

    def get(self, *keys: str) -> Any:
        return _get(self.values, *keys)

    def key(self, *keys: str) -> str:
        return ".".join((*self.base, *keys))

    def locate(self, keys: Sequence[str], *, secret: bool = False) -> str:
        """The file where a key is, or should be: the last file that sets it; else the last that sets its closest
        parent; else the hub's own file. Secrets belong in encrypted files only."""
        full = (*self.base, *keys)
        candidates = [f for f in self.files if (f.encrypted or f.secret_by_name) == secret]
        if not secret:
            for file in reversed(self.files):
                if file.doc is not None and _has(file.doc, full):
                    return file.rel
        for depth in range(len(full), len(self.base), -1):
            for file in reversed(candidates):
                if file.doc is not None and _has(file.doc, full[:depth]):
                    return file.rel
        own = self.own(secret=secret)
        return own if own in self.listed or not candidates else candidates[-1].rel

    def own(self, *, secret: bool = False) -> str:
        """The hub's own file: `<hub>.values.yaml`, or `enc-<hub>.secret.values.yaml` for secrets."""
        name = f"enc-{self.name}.secret.values.yaml" if secret else f"{self.name}.values.yaml"
        return self.doctor.rel(self.cluster.folder / name)

    def add(
        self,
        severity: Severity,
        code: str,
        keys: Sequence[str],
        message: str,
        *,
        secret: bool = False,
        key: str | None = None,
        file: str | None = None,
    ) -> None:
        self.doctor.add(
            severity,
            code,
            self.cluster.name,
            self.name,
            file if file is not None else self.locate(keys, secret=secret),
            key if key is not None else self.key(*keys),
            message,
        )

    # -- rules ----------------------------------------------------------------------------------------------

    def check(self) -> None:
        if self.daskhub:
            self.check_basehub_wrapper()
        binder = self.get("binderhub-service", "enabled") is True
        self.check_profiles(binder=binder)
        prefix = self.get(*PREFIX_KEY)
        if _text(prefix) is not None:
            where = self.locate(PREFIX_KEY)
            self.doctor.prefixes.append(
                _Prefix(self.cluster.name, self.name, str(prefix).strip(), where, self.key(*PREFIX_KEY))
            )
            if not binder:
                self.add(
                    "info",
                    "image-prefix-without-binderhub",
                    PREFIX_KEY,
                    "image_prefix is set but binderhub-service is not enabled, so nothing builds images here",
                )
        if binder:
            self.check_registry(prefix)

    def check_basehub_wrapper(self) -> None:
        for file in self.files:
            assert file.doc is not None
            for top in BASEHUB_KEYS:
                if top in file.doc:
                    self.add(
                        "error",
                        "not-under-basehub",
                        (),
                        f"this hub uses the daskhub chart, which ignores a top-level {top}: key; "
                        f"move it under basehub: ({self.base[0]}.{top})",
                        key=top,
                        file=file.rel,
                    )

    def check_profiles(self, *, binder: bool) -> None:
        profiles = self.get("jupyterhub", "singleuser", "profileList")
        where = ("jupyterhub", "singleuser", "profileList")
        building = False
        profiles = profiles if isinstance(profiles, list) else []
        defaults = [p for p in profiles if isinstance(p, Mapping) and p.get("default")]
        if len(defaults) > 1:
            self.add(
                "warning",
                "several-default-profiles",
                where,
                f"{len(defaults)} profiles are marked default: KubeSpawner starts the first one when none is chosen, "
                "while fancy-profiles may preselect another; keep default: true on one profile",
            )
        for index, profile in enumerate(profiles):
            options = _get(profile, "profile_options")
            if not isinstance(options, Mapping):
                continue
            slug = profile.get("slug")
            label = f"[slug={slug}]" if isinstance(slug, str) and slug else f"[{index}]"
            for option_key, option in options.items():
                self.check_choices(option, key=f"{self.key(*where)}{label}.profile_options.{option_key}")
                if _get(option, "dynamic_image_building", "enabled") is not True:
                    continue
                building = True
                path = f"{self.key(*where)}{label}.profile_options.{option_key}"
                if _get(option, "unlisted_choice", "enabled") is not True:
                    self.add(
                        "error",
                        "build-without-unlisted-choice",
                        where,
                        "dynamic_image_building is enabled without unlisted_choice.enabled: true, so fancy-profiles "
                        "never shows the build UI; enable unlisted_choice on this option",
                        key=f"{path}.unlisted_choice.enabled",
                    )
                if option_key != "image":
                    self.add(
                        "warning",
                        "build-option-not-image",
                        where,
                        f"the option key is {option_key!r}, but fancy-profiles offers image building only on an "
                        "option named image; rename it",
                        key=path,
                    )
        if building and not binder:
            self.add(
                "warning",
                "build-without-binderhub",
                ("binderhub-service", "enabled"),
                "a profile enables dynamic_image_building but binderhub-service is not enabled, so builds fail; "
                "enable binderhub-service or drop dynamic_image_building",
            )

    def check_choices(self, option: Any, *, key: str) -> None:
        """A profile option must offer choices with one default (charts.md §4)."""
        where = ("jupyterhub", "singleuser", "profileList")
        choices = _get(option, "choices")
        if not isinstance(choices, Mapping) or not choices:
            self.add(
                "error",
                "option-without-choices",
                where,
                "this profile option has no choices: fancy-profiles cannot draw the form (TypeError) and KubeSpawner "
                "refuses to start a server when no value is sent (no default choice); add choices with one default "
                "(provision profile --image SLUG=IMAGE:TAG)",
                key=f"{key}.choices",
            )
            return
        marked = [str(k) for k, v in choices.items() if isinstance(v, Mapping) and v.get("default")]
        if len(marked) > 1:
            self.add(
                "warning",
                "several-default-choices",
                where,
                f"{len(marked)} choices are marked default ({', '.join(marked)}): KubeSpawner uses the first when no "
                "value is sent, the form may show another; keep default: true on one",
                key=f"{key}.choices",
            )

    def check_registry(self, prefix: Any) -> None:
        bh = ("binderhub-service",)
        config = (*bh, "config")
        registry = self.get(*config, "DockerRegistry")
        creds_key = (*bh, "buildPodsRegistryCredentials")
        creds = self.get(*creds_key)
        server, url = _text(_get(creds, "server")), _text(_get(registry, "url"))
        push = server or url
        kind = _kind(_host(push)) if push else None

        use_registry = self.get(*config, "BinderHub", "use_registry")
        if use_registry is not True and (use_registry is not None or self.chart not in BASEHUB_CHARTS):
            self.add(
                "error",
                "use-registry-not-true",
                (*config, "BinderHub", "use_registry"),
                "use_registry is not true: build pods get no push credentials and BinderHub never checks the "
                "registry; set it to true",
            )

        if not isinstance(registry, Mapping) or not registry:
            self.add(
                "error",
                "missing-docker-registry",
                (*config, "DockerRegistry"),
                "binderhub-service is enabled without config.DockerRegistry, so BinderHub cannot see images already "
                "pushed and rebuilds on every launch; set url and username here and password in an encrypted file",
            )
        else:
            for field_name in ("url", "username", "password"):
                problem = _string_problem(registry.get(field_name))
                if problem is None or (field_name == "url" and kind == "dockerhub" and registry.get("url") is None):
                    continue  # BinderHub's default url is Docker Hub's
                self.add(
                    "error",
                    "incomplete-docker-registry",
                    (*config, "DockerRegistry", field_name),
                    f"config.DockerRegistry.{field_name} {problem}: BinderHub's image-exists check fails and it "
                    "rebuilds images; set it" + (" in an encrypted file" if field_name == "password" else ""),
                    secret=field_name == "password",
                )
        if url and server and not _same_registry(url, server):
            self.add(
                "warning",
                "registry-url-mismatch",
                (*config, "DockerRegistry", "url"),
                f"config.DockerRegistry.url points at {_host(url)} but build pods push to {_host(server)}: "
                "BinderHub looks for images where they are not and rebuilds them",
            )

        if not isinstance(creds, Mapping) or not creds:
            self.add(
                "error",
                "incomplete-build-credentials",
                creds_key,
                "buildPodsRegistryCredentials is not set: build pods cannot push; set server and username here "
                "and password in an encrypted file (the chart schema needs all three strings)",
            )
        else:
            for field_name in ("server", "username", "password"):
                problem = _string_problem(creds.get(field_name))
                if problem is not None:
                    self.add(
                        "error",
                        "incomplete-build-credentials",
                        (*creds_key, field_name),
                        f"buildPodsRegistryCredentials.{field_name} {problem}; the chart schema requires server, "
                        "username and password as strings and build pods cannot push without them",
                        secret=field_name == "password",
                    )

        if _string_problem(prefix) == "is missing":
            self.add(
                "error",
                "missing-image-prefix",
                PREFIX_KEY,
                "binderhub-service is enabled without config.BinderHub.image_prefix, so built images have no "
                "registry to go to; set it to this hub's prefix in its own values file",
                file=self.own(),  # per hub, even when shared files set the rest (facts §6.2)
            )
        if push is None or kind is None:
            return  # the server is encrypted or unset: the registry cannot be identified
        prefix_text = _text(prefix)
        username = _text(_get(creds, "username")) or _text(_get(registry, "username"))
        project = self.check_prefix(prefix_text, push, kind, username=username) if prefix_text else None
        if kind != "gcr":
            self.check_pull_secrets(push, kind, project=project)

    def check_prefix(self, prefix: str, push: str, kind: RegistryKind, *, username: str | None) -> str | None:
        """Check the prefix against the push server; returns the Artifact Registry project it names, if any."""
        host = _host(push)
        parts = prefix.split("/")
        if kind == "gcr":
            self.add(
                "error",
                "registry-shut-down",
                ("binderhub-service", "buildPodsRegistryCredentials", "server"),
                f"{host} is Google Container Registry, which no longer accepts pushes (shut down in 2025); "
                "move to Artifact Registry",
            )
            return None
        if kind == "artifact-registry":
            # <region>-docker.pkg.dev/<project>/<repository>/ ; Artifact Registry also allows a name prefix after it.
            fits = len(parts) >= 4 and parts[0].lower() == host and bool(parts[1]) and bool(parts[2])
            expected = f"{host}/<project>/<repository>/"
        elif kind == "dockerhub":
            fits = len(parts) >= 2 and bool(parts[0]) and not _looks_like_host(parts[0])
            expected = "<namespace>/<name-prefix>- with no registry host"
        else:
            fits = len(parts) >= 3 and parts[0].lower() == host and bool(parts[1])
            expected = f"{host}/<org>/<name-prefix>-"
        if not fits:
            self.add(
                "error",
                "image-prefix-mismatch",
                PREFIX_KEY,
                f"image_prefix {prefix!r} does not fit the registry the build pods push to ({host}); expected "
                f"{expected}",
            )
        elif kind == "dockerhub" and not names.binderhub_reads_as_docker_hub(f"{prefix}image"):
            self.add(
                "error",
                "dockerhub-prefix-misread",
                PREFIX_KEY,
                f"BinderHub does not read image names under {prefix!r} as Docker Hub ones (it needs "
                f"<namespace>/<name>, the namespace being {names.DOCKER_HUB_NAMESPACE_RULE.split(':')[0]}): it looks "
                "for built images elsewhere and rebuilds them on every launch; use such a namespace",
            )
        elif kind in ("quay", "other") and username and "+" in username and username.split("+", 1)[0] != parts[1]:
            self.add(
                "error",
                "robot-org-mismatch",
                PREFIX_KEY,
                f"image_prefix is in the organization {parts[1]!r} but the robot account belongs to "
                f"{username.split('+', 1)[0]!r}, which cannot push there; use one organization for both",
            )
        return parts[1] if kind == "artifact-registry" and fits else None

    def check_pull_secrets(self, push: str, kind: RegistryKind, *, project: str | None) -> None:
        if kind == "artifact-registry":
            # The GKE node service account reads Artifact Registry in its own project only (facts §3).
            private = self.cluster.provider != "gcp" or (
                self.cluster.gcp_project is not None and project is not None and project != self.cluster.gcp_project
            )
        else:
            private = True
        secret_key = ("jupyterhub", "imagePullSecret")
        pull = self.get(*secret_key)
        create = _get(pull, "create")
        active = create is True or _enc_type(create) is not None  # an encrypted `create` cannot be read; trust it
        if private and not active:
            quay = kind == "quay"
            self.add(
                "error" if quay else "warning",
                "missing-image-pull-secret",
                secret_key,
                (
                    "quay.io makes pushed repositories private, so user pods cannot pull built images without "
                    "jupyterhub.imagePullSecret (create: true, registry, username, password)"
                    if quay
                    else "built images live in a registry this cluster cannot read by default; set "
                    "jupyterhub.imagePullSecret (create: true, registry, username, password) unless the "
                    "repositories are public"
                ),
                secret=True,
            )
        if active:
            for field_name in ("registry", "username", "password"):
                problem = _string_problem(_get(pull, field_name))
                if problem is not None:
                    self.add(
                        "error",
                        "incomplete-image-pull-secret",
                        (*secret_key, field_name),
                        f"imagePullSecret.create is true but {field_name} {problem}; the jupyterhub chart schema "
                        "requires registry, username and password",
                        secret=field_name == "password",
                    )
        pull_registry = _text(_get(pull, "registry"))
        if pull_registry is not None and not _same_registry(pull_registry, push):
            self.add(
                "warning",
                "pull-secret-registry-mismatch",
                (*secret_key, "registry"),
                f"imagePullSecret.registry is {_host(pull_registry)} but images are pushed to {_host(push)}: "
                "the pull secret does not apply to them",
            )
        dask = self.get("dask-gateway", "enabled")
        dask_on = dask is not False if self.daskhub else dask is True  # daskhub turns dask-gateway on by default
        pull_secrets = self.get("dask-gateway", "gateway", "backend", "imagePullSecrets")
        if private and dask_on and not (isinstance(pull_secrets, list) and pull_secrets):
            self.add(
                "warning",
                "missing-dask-pull-secret",
                ("dask-gateway", "gateway", "backend", "imagePullSecrets"),
                "dask-gateway runs here but its schedulers and workers get no pull secret for the private registry; "
                "set dask-gateway.gateway.backend.imagePullSecrets: [{name: image-pull-secret}]",
            )
