"""What verify reads: a hub's registry values (its values files and decrypted secrets, 2i2c's layout or a plain
Zero to JupyterHub hub's release files), checked for the types verify reads them as, into a VerifyRequest."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import clusterrepo, registries, sops
from provision.console import Reporter
from provision.errors import UsageError
from provision.hubconfig import Z2JH_RELEASES, HubRegistry
from provision.hubconfig import get_path as _get


@dataclass(frozen=True)
class PullSecret:
    registry: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class VerifyRequest:
    registry: HubRegistry
    pull_secret: PullSecret | None = None
    registry_url: str | None = None  # talk to this v2 endpoint instead (a mirror, a port-forward, tests)
    ar_endpoint: str | None = None  # Artifact Registry API endpoint (default Google's)
    from_values: bool = True  # False when given by flags: no values, so nothing to say about a pull secret
    # BinderHub's own login (config.DockerRegistry), with which it asks whether an image exists; None: not known
    # (flags, or a caller without values), so not checked.
    lookup: PullSecret | None = None
    # A plain Zero to JupyterHub hub: each release's files read (its keys are top-level there, so messages name
    # them as written, with the file); None: one hub document, keys under the chart's key (`jupyterhub.…`).
    release_files: Mapping[str, Sequence[str]] | None = None

    def key(self, release: str, key: str) -> str:
        """A key verify reads, named as the user's files spell it: `jupyterhub.imagePullSecret` in a hub's values,
        `imagePullSecret (in the jupyterhub release's file staging.values.yaml)` for a z2jh hub."""
        if self.release_files is None:
            return f"{release}.{key}"
        files = self.release_files.get(release) or ()
        where = f"file{'s' if len(files) > 1 else ''} {' or '.join(files)}" if files else "values"
        return f"{key} (in the {release} release's {where})"


def kind_of(server: str, username: str) -> str:
    """The name of the registry kind a hub pushes to (registries.recognise)."""
    return registries.recognise(server, username).name


MAPPING, TEXT = "a mapping", "a string"
_BINDERHUB_KEYS = ("binderhub-service", "buildPodsRegistryCredentials")
_CONFIG = ("binderhub-service", "config")
# Every key verify reads from a hub's values (below `basehub:` when wrapped), and what it must be. A null is as if
# the key were not there (Helm drops it too); any other type is a usage error naming the file and the key.
READ_KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("binderhub-service",), MAPPING),
    (_BINDERHUB_KEYS, MAPPING),
    *(((*_BINDERHUB_KEYS, key), TEXT) for key in ("server", "username", "password")),
    (_CONFIG, MAPPING),
    ((*_CONFIG, "BinderHub"), MAPPING),
    ((*_CONFIG, "BinderHub", "image_prefix"), TEXT),
    ((*_CONFIG, "DockerRegistry"), MAPPING),
    *(((*_CONFIG, "DockerRegistry", key), TEXT) for key in ("url", "username", "password")),
    (("jupyterhub",), MAPPING),
    (("jupyterhub", "imagePullSecret"), MAPPING),
    *((("jupyterhub", "imagePullSecret", key), TEXT) for key in ("registry", "username", "password")),
)


def _type_of(value: Any) -> str:
    """What a YAML value is, in words (never the value: it may be a secret)."""
    if isinstance(value, Mapping):
        return MAPPING
    if isinstance(value, str):
        return TEXT
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def check_keys(
    view: Mapping[Any, Any],
    *,
    where: str,
    prefix: tuple[str, ...] = (),
    keys: Sequence[tuple[tuple[str, ...], str]] = READ_KEYS,
) -> None:
    """Every key of `keys` present in `view` has the type verify reads it as. Raises UsageError naming `where` and
    the key's path in it (`prefix` first: the `basehub` wrapper, as written in the file)."""
    for path, expected in keys:
        node: Any = view
        for depth, key in enumerate(path):
            if not isinstance(node, Mapping) or node.get(key) is None:
                break  # absent (or null), or under a level already refused
            node = node[key]
            if depth == len(path) - 1 and _type_of(node) != expected:
                dotted = ".".join((*prefix, *path))
                raise UsageError(
                    f"{where}: {dotted} is {_type_of(node)}, where {expected} is expected",
                    hint="fix that key (provision doctor explains what a hub's registry values look like)",
                )


def hub_view(
    doc: Mapping[Any, Any], *, where: str, wrapped: bool | None = None
) -> tuple[Mapping[Any, Any], tuple[str, ...]]:
    """A hub's values below `basehub:` (`wrapped`: True for a daskhub hub, None: when that key is there) and that
    prefix, its keys checked (check_keys). Raises UsageError."""
    inner = doc.get("basehub")
    prefix: tuple[str, ...]
    if wrapped is False or (wrapped is None and inner is None):
        view, prefix = doc, ()
    elif inner is None or isinstance(inner, Mapping):
        view, prefix = inner or {}, ("basehub",)
    else:
        raise UsageError(f"{where}: basehub is {_type_of(inner)}, where {MAPPING} is expected")
    check_keys(view, where=where, prefix=prefix)
    return view, prefix


def from_values(public: Mapping[str, Any], secret: Mapping[str, Any]) -> tuple[HubRegistry, PullSecret | None]:
    """The registry and pull secret a hub's values describe (`basehub:`-wrapped or not). Raises UsageError."""
    for label, doc in (("values", public), ("secret values", secret)):
        if not isinstance(doc, Mapping):
            raise UsageError(f"the {label} are not a YAML mapping at the top level")
    public = hub_view(public, where="the values")[0]
    secret = hub_view(secret, where="the secret values")[0]
    creds = {**(_get(public, "binderhub-service", "buildPodsRegistryCredentials") or {}),
             **(_get(secret, "binderhub-service", "buildPodsRegistryCredentials") or {})}  # fmt: skip
    url = _get(public, "binderhub-service", "config", "DockerRegistry", "url")
    prefix = _get(public, "binderhub-service", "config", "BinderHub", "image_prefix")
    missing = [k for k in ("server", "username", "password") if not isinstance(creds.get(k), str) or not creds[k]]
    if missing or not isinstance(prefix, str):
        what = [f"buildPodsRegistryCredentials.{k}" for k in missing] + (
            [] if isinstance(prefix, str) else ["image_prefix"]
        )
        raise UsageError(
            f"the values lack binderhub-service {', '.join(what)}",
            hint="pass the hub's values and its secrets (--secret-file, or --secret-stdin); provision doctor explains "
            "what is missing",
        )
    server, username = creds["server"], creds["username"]
    hub_registry = HubRegistry(
        kind=kind_of(server, username),
        server=server,
        username=username,
        image_prefix=prefix,
        password=creds["password"],
        api_url=url if isinstance(url, str) and url != server else None,
    )
    pull = _get(secret, "jupyterhub", "imagePullSecret") or _get(public, "jupyterhub", "imagePullSecret")
    pull_secret = None
    if isinstance(pull, Mapping) and pull.get("create"):
        pull_secret = PullSecret(
            str(pull.get("registry") or ""), str(pull.get("username") or ""), str(pull.get("password") or "")
        )
    return hub_registry, pull_secret


def lookup_from_values(public: Mapping[str, Any], secret: Mapping[str, Any]) -> PullSecret:
    """BinderHub's `config.DockerRegistry` url (as `registry`), username and password, merged, `basehub:`-wrapped or
    not; empty strings for what the values do not set."""
    public = hub_view(public, where="the values")[0]
    secret = hub_view(secret, where="the secret values")[0]
    path = ("binderhub-service", "config", "DockerRegistry")
    login = {**(_get(public, *path) or {}), **(_get(secret, *path) or {})}
    return PullSecret(*(str(login.get(k) or "") for k in ("url", "username", "password")))


# Top-level keys that only one chart's schema allows (each schema refuses keys it does not know), so a document's
# keys tell which Helm release's values it holds, whatever its file is called. Keys every chart has (enabled,
# global, custom, ingress, rbac, nameOverride, fullnameOverride) tell nothing, and verify reads none of them.
RELEASE_KEYS: dict[str, frozenset[str]] = {
    "jupyterhub": frozenset({"cull", "debug", "httpRoute", "hub", "imagePullSecret", "imagePullSecrets",
                             "prePuller", "proxy", "scheduling", "singleuser"}),
    "binderhub-service": frozenset({
        "affinity", "buildPodsDockerConfig", "buildPodsRegistryCredentials", "config", "dockerApi", "extraConfig",
        "extraCredentials", "extraEnv", "extraVolumeMounts", "extraVolumes", "image", "networkPolicy",
        "nodeSelector", "podAnnotations", "podLabels", "podSecurityContext", "replicas", "resources",
        "securityContext", "service", "serviceAccount", "tolerations",
    }),
    "dask-gateway": frozenset({"gateway", "controller", "traefik"}),
}  # fmt: skip
HUB_KEYS = frozenset({"basehub", *Z2JH_RELEASES})  # a basehub/daskhub hub's values: each chart under its own key
BINDERHUB = Z2JH_RELEASES[1]


def release_of(doc: Mapping[Any, Any], *, where: str) -> str | None:
    """What a values document holds, by its top-level keys: "hub" (2i2c's basehub/daskhub layout, the charts under
    `jupyterhub:`, `binderhub-service:`), one z2jh release's values ("jupyterhub", "binderhub-service",
    "dask-gateway"), or None (only keys every chart has). Raises UsageError for one document with two charts' keys.
    """
    keys = {str(key) for key in doc}
    if keys & HUB_KEYS:
        return "hub"
    found = {release: sorted(keys & own) for release, own in RELEASE_KEYS.items() if keys & own}
    if len(found) > 1:
        mixed = " and ".join(f"the {release} chart's ({', '.join(own)})" for release, own in found.items())
        raise UsageError(
            f"{where} mixes top-level keys of {mixed}",
            hint="each Helm release takes its own values document: one file (or `---` document) per chart, as "
            "provision --chart z2jh writes them",
        )
    return next(iter(found), None)


@dataclass(frozen=True)
class ValuesDocument:
    """One document read for verify: where it came from, what it holds (release_of), its values."""

    source: str
    release: str | None
    values: Mapping[Any, Any] = field(repr=False)

    def as_hub(self) -> Mapping[Any, Any]:
        """In the hub layout from_values reads: a release's values under its chart's key, `basehub:` unwrapped."""
        if self.release == "hub":
            inner = self.values.get("basehub")
            return inner if isinstance(inner, Mapping) else self.values
        return {self.release: self.values} if self.release else {}

    def check_keys(self) -> None:
        """The keys verify reads have the types it reads them as (READ_KEYS), shown as written in the document.
        Raises UsageError naming the document and the key."""
        if self.release == "hub":
            hub_view(self.values, where=self.source)
        elif self.release:
            own = [(path[1:], kind) for path, kind in READ_KEYS if path[0] == self.release and len(path) > 1]
            check_keys(self.values, where=self.source, keys=own)

    def describe(self) -> str:
        if self.release == "hub":
            return "a hub's values (jupyterhub:, binderhub-service: keys)"
        return f"the {self.release} chart's values" if self.release else "no key verify reads"


def read_documents(text: str, *, path: Path, label: str, encrypted_hint: str) -> list[ValuesDocument]:
    """The documents of one input (a file, or stdin), each classified by release_of. Raises UsageError for a
    document still sops-encrypted, ClusterRepoError for YAML that does not parse."""
    docs = clusterrepo.load_documents(text, path=path)
    out = []
    for number, doc in enumerate(docs, 1):
        where = f"{label} (document {number})" if len(docs) > 1 else label
        if isinstance(doc.get("sops"), Mapping) and "mac" in doc["sops"]:
            raise UsageError(f"{where} is sops-encrypted", hint=encrypted_hint)
        document = ValuesDocument(where, release_of(doc, where=where), doc)
        document.check_keys()
        out.append(document)
    return out


def merged_hub(docs: Sequence[ValuesDocument]) -> dict[Any, Any]:
    """The documents in the hub layout, merged in order as Helm merges its -f files (later wins)."""
    from provision.hubfiles.cluster import merge

    merged: dict[Any, Any] = {}
    for doc in docs:
        merged = merge(merged, doc.as_hub())
    return merged


def release_sibling(path: Path, release: str) -> Path | None:
    """The file of another z2jh release beside `path`, named as provision writes them (hubfiles/releases.py):
    staging.values.yaml ↔ staging.binderhub-service.values.yaml, enc-staging.secret.values.yaml ↔
    enc-staging.binderhub-service.secret.values.yaml. None when that is `path` itself."""
    from provision.hubfiles.releases import release_base, release_file

    sibling = release_file(release_base(path)[0], release)
    return None if sibling == path else sibling


@dataclass
class _Reading:
    """The documents read so far for one side (values or secrets), and the files they came from."""

    option: str
    given: Sequence[Path]
    read: Callable[[Path], list[ValuesDocument]]
    docs: list[ValuesDocument] = field(default_factory=list)
    looked_for: list[tuple[str, Path, Path]] = field(default_factory=list)  # (release, sibling, given file beside)

    def has(self, release: str) -> bool:
        return any(d.release == release or (d.release == "hub" and release in d.as_hub()) for d in self.docs)

    def add_siblings(self, reporter: Reporter | None) -> None:
        """For a z2jh hub: each release's file not given is looked for beside the given ones."""
        for release in Z2JH_RELEASES[:2]:
            if self.has(release):
                continue
            for path in self.given:
                sibling = release_sibling(path, release)
                if sibling is None or sibling in self.given:
                    continue
                self.looked_for.append((release, sibling, path))
                if sibling.is_file():
                    found = self.read(sibling)
                    self.docs += found
                    if reporter is not None:
                        held = ", ".join(d.describe() for d in found) or "nothing"
                        reporter.info(f"{self.option}: {sibling} (found beside {path.name}) holds {held}")
                    break


def request_from_files(
    values_files: Sequence[Path],
    *,
    secret_files: Sequence[Path] = (),
    secret_text: str | None = None,
    sops_bin: str | None = None,
    registry_url: str | None = None,
    ar_endpoint: str | None = None,
    reporter: Reporter | None = None,
) -> VerifyRequest:
    """Read a hub's values and secrets (decrypted with sops into memory, or given as text).

    Each file (or stdin) may hold one document or a stream of them. Documents are told apart by their keys
    (release_of): 2i2c's one-document hub values, or a plain Zero to JupyterHub hub's one document per Helm
    release. For the latter, a release's file that was not given is looked for beside the given ones
    (release_sibling); without binderhub-service's values (or, when secrets are given, its secrets) nothing can be
    checked: UsageError.
    """
    from provision.files import read_text

    def read_values(path: Path) -> list[ValuesDocument]:
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text (byte {exc.start})"
            raise UsageError(f"--values-file {str(path)!r} cannot be read: {reason}") from None
        if text is None:
            raise _missing("--values-file", path)
        return read_documents(text, path=path, label=path.name,
                              encrypted_hint="give encrypted files with --secret-file")  # fmt: skip

    client: sops.Sops | None = None

    def read_secret(path: Path) -> list[ValuesDocument]:
        nonlocal client
        if not path.is_file():
            raise _missing("--secret-file", path)
        client = client or sops.Sops(sops.find_binary(sops_bin))
        return read_documents(client.decrypt(path), path=path, label=path.name, encrypted_hint="")

    public = _Reading("--values-file", values_files, read_values)
    secret = _Reading("--secret-file", secret_files, read_secret)
    for reading in (public, secret):
        for path in reading.given:
            reading.docs += reading.read(path)
    if secret_text is not None:
        secret.option = "--secret-stdin"
        secret.docs += read_documents(
            secret_text, path=Path("<stdin>"), label="stdin (--secret-stdin)",
            encrypted_hint="pipe the decrypted secrets (sops decrypt FILE), or give the file with --secret-file",
        )  # fmt: skip
    if any(d.release in RELEASE_KEYS for d in public.docs + secret.docs):
        public.add_siblings(reporter)
        secret.add_siblings(reporter)
        _require_binderhub(public, "values")
        if secret.given or secret_text is not None:
            _require_binderhub(secret, "secrets")
    hub_public, hub_secret = merged_hub(public.docs), merged_hub(secret.docs)
    hub_registry, pull_secret = from_values(hub_public, hub_secret)
    lookup = lookup_from_values(hub_public, hub_secret)
    release_files = None
    if any(d.release in RELEASE_KEYS for d in public.docs + secret.docs):
        release_files = {r: [d.source for d in public.docs + secret.docs if d.release == r] for r in RELEASE_KEYS}
    return VerifyRequest(hub_registry, pull_secret, registry_url, ar_endpoint, lookup=lookup,
                         release_files=release_files)  # fmt: skip


def _missing(option: str, path: Path) -> UsageError:
    """A given file that does not exist; when another z2jh release's file is there, the hint names it (a release
    with nothing to set gets no file: on Artifact Registry, no secrets for the jupyterhub chart)."""
    others = [s for r in Z2JH_RELEASES[:2] if (s := release_sibling(path, r)) is not None and s.is_file()]
    hint = (f"{' and '.join(map(str, others))} exists: give it instead (provision writes no file for a release "
            "with nothing to set)") if others else None  # fmt: skip
    return UsageError(f"{option} {str(path)!r} does not exist", hint=hint)


def _require_binderhub(reading: _Reading, what: str) -> None:
    """A z2jh hub's binderhub-service release must be among the documents: its values name the registry and its
    secrets hold the password. Raises UsageError saying what was read and where the file was looked for."""
    if reading.has(BINDERHUB):
        return
    held = "; ".join(f"{d.source} holds {d.describe()}" for d in reading.docs) or f"no {what} were given"
    looked = "".join(
        f"; there is no {sibling.name} beside {given.name} ({sibling} does not exist)"
        for release, sibling, given in reading.looked_for
        if release == BINDERHUB and not sibling.is_file()
    )
    if reading.option == "--secret-stdin":
        hint = ("pipe both releases' secrets as one YAML stream (as provision --chart z2jh prints them), or give "
                "the encrypted files with --secret-file (the other release's file is found beside it)")  # fmt: skip
    else:
        hint = (f"give the binderhub-service release's {what} file (the one Helm installs that release with) with "
                f"another {reading.option}")  # fmt: skip
    raise UsageError(f"no {what} for the {BINDERHUB} release: {held}{looked}", hint=hint)
