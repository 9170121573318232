"""Write a hub's values: merge the public values into `<hub>.values.yaml`, the secrets into the sops-encrypted
`enc-<hub>.secret.values.yaml` (plaintext only in memory), and list both in the hub's entry of `cluster.yaml`.

Every edit is computed first (plan), then written; a failure while writing puts back what was already written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from provision import clusterrepo, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.files import FileEdit, read_text
from provision.hubconfig import (
    CHARTS,
    Z2JH_NOTES,
    Z2JH_RELEASES,
    Chart,
    HubOptions,
    HubRegistry,
    profile_values,
    public_values,
    releases,
    secret_key_paths,
    secret_values,
)

CHART_OF_HELM_CHART: dict[str, Chart] = {"basehub": "basehub", "daskhub": "daskhub"}


@dataclass(frozen=True)
class FilesRequest:
    values_file: Path | None = None
    secret_file: Path | None = None
    cluster_config: Path | None = None
    hub: str | None = None
    sops_bin: str | None = None

    @property
    def writes_anything(self) -> bool:
        return any((self.values_file, self.secret_file, self.cluster_config))


@dataclass(frozen=True)
class FilesPlan:
    edits: tuple[FileEdit, ...] = ()
    replaced: tuple[str, ...] = ()  # "file: dotted.path" of values that change (never the values)
    secret_paths: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def validate(req: FilesRequest) -> str | None:
    """Check paths and the sops binary before any side effect. Returns the sops binary (None if not needed)."""
    if req.cluster_config is not None:
        if req.hub is None:
            raise UsageError("--cluster-config needs --hub: the hub whose helm_chart_values_files to update")
        if not req.cluster_config.is_file():
            raise UsageError(f"--cluster-config {str(req.cluster_config)!r} does not exist")
        if req.values_file is None and req.secret_file is None:
            raise UsageError("--cluster-config registers the files written by --values-file or --secret-file")
    for option, path in (("--values-file", req.values_file), ("--secret-file", req.secret_file)):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{option} {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if req.secret_file is not None and not req.secret_file.name.startswith("enc-"):
        raise UsageError(
            f"--secret-file {req.secret_file.name!r} should be named enc-<hub>.secret.values.yaml: the 2i2c "
            "layout git-ignores other *secret* files and the deployer decrypts only files named like this"
        )
    return sops.find_binary(req.sops_bin) if req.secret_file is not None else None


def chart_for(req: FilesRequest, explicit: str | None) -> Chart:
    """The chart: --chart, else the hub's helm_chart in cluster.yaml, else basehub."""
    if explicit == "z2jh" and req.cluster_config is not None:
        raise UsageError(
            "--cluster-config lists files for 2i2c's deployer, which installs one chart per hub; with --chart z2jh "
            "each release (jupyterhub, binderhub-service) gets its own values file: drop --cluster-config"
        )
    if explicit is not None:
        for chart in CHARTS:
            if explicit == chart:
                return chart
        raise UsageError(f"invalid --chart {explicit!r}: choose basehub, daskhub or z2jh")
    if req.cluster_config is not None and req.hub is not None:
        helm_chart = clusterrepo.hub_chart(req.cluster_config, req.hub)
        if helm_chart in CHART_OF_HELM_CHART:
            return CHART_OF_HELM_CHART[helm_chart]
    return "basehub"


def existing_values(req: FilesRequest) -> Any:
    """The current --values-file document (None when there is none): a profile is merged into it."""
    text = read_text(req.values_file) if req.values_file is not None else None
    if req.values_file is None or text is None or not text.strip():
        return None
    return clusterrepo.load(text, path=req.values_file)[0]


def check_profile(req: FilesRequest, options: HubOptions) -> None:
    """Refuse, before any change, a profile that would render no image choice or name a default that is none.
    Raises UsageError (ClusterRepoError when the values file cannot be read)."""
    if options.profile is not None:
        profile_values(options.profile, chart=options.chart, existing=existing_values(req))


def release_file(path: Path, release: str | None) -> Path:
    """The file for a release's values: `path` itself for the hub (jupyterhub) release or a one-chart hub, else
    a sibling named after the release: staging.values.yaml → staging.binderhub-service.values.yaml,
    enc-staging.secret.values.yaml → enc-staging.binderhub-service.secret.values.yaml."""
    if release is None or release == Z2JH_RELEASES[0]:
        return path
    for suffix in (".secret.values.yaml", ".values.yaml", ".yaml", ".yml", ""):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            stem = path.name[: len(path.name) - len(suffix)]
            return path.with_name(f"{stem}.{release}{suffix}")
    return path.with_name(f"{path.name}.{release}")  # pragma: no cover - the "" suffix always matches


def plan_files(
    req: FilesRequest,
    *,
    public: dict[str, Any],
    secret: dict[str, Any] | None,
    sops_binary: str | None,
    encrypt: bool = True,
) -> FilesPlan:
    """Compute every edit without writing anything. `encrypt=False` (dry runs) skips the final encryption."""
    edits: list[FileEdit] = []
    replaced: list[str] = []
    notes: list[str] = []
    if req.values_file is not None:
        edit, report = clusterrepo.plan_values_edit(req.values_file, public)
        edits.append(edit)
        replaced += [f"{req.values_file.name}: {p}" for p in report.replaced]
        notes += [
            f"{req.values_file.name}: {p} was a YAML anchor; its aliases keep the old value (check the diff)"
            for p in report.anchored
        ]
    secret_paths: list[str] = []
    if req.secret_file is not None and secret is not None:
        assert sops_binary is not None
        secret_edit, secret_replaced = _plan_secret(req.secret_file, secret, sops.Sops(sops_binary), encrypt=encrypt)
        secret_paths = secret_key_paths(secret)
        replaced += [f"{req.secret_file.name}: {p}" for p in secret_replaced]
        if secret_edit is not None:
            edits.append(secret_edit)
        elif not encrypt:
            notes.append(f"{req.secret_file}: would encrypt {', '.join(secret_paths)} (sops, not run in a dry run)")
    if req.cluster_config is not None and req.hub is not None:
        listed = [p for p in (req.values_file, req.secret_file) if p is not None]
        edits.append(clusterrepo.plan_registration(req.cluster_config, req.hub, listed))
    return FilesPlan(tuple(edits), tuple(replaced), tuple(secret_paths), tuple(notes))


def _plan_secret(
    path: Path, secret: dict[str, Any], client: sops.Sops, *, encrypt: bool
) -> tuple[FileEdit | None, list[str]]:
    """Decrypt (in memory), deep-merge, encrypt through stdin. Returns the ciphertext edit and replaced paths."""
    original = read_text(path)
    if not encrypt:
        return None, []  # dry run: no decryption, no keys needed; the plan names the paths it would set
    if original is None:
        doc, style = clusterrepo.load("", path=path)
    else:
        # Nested secrets (OAuth client secrets ...) stay: the merge is deep, unlike the deployer's top-level update.
        doc, style = clusterrepo.load(client.decrypt(path), path=path)
    report = clusterrepo.deep_merge(doc, secret)
    if not report.changed:
        return FileEdit(path, original, original or ""), []
    ciphertext = client.encrypt(clusterrepo.dump(doc, style), filename=path)
    return FileEdit(path, original, ciphertext), report.replaced


def show_plan(plan: FilesPlan, reporter: Reporter, *, dry_run: bool) -> None:
    """Diffs of the plain files; for the encrypted file only key paths (its diff would be ciphertext)."""
    for edit in plan.edits:
        if not edit.changed:
            reporter.info(f"{edit.path}: already up to date")
        elif edit.path.name.startswith("enc-"):
            verb = "would encrypt" if dry_run else "encrypting"
            reporter.always(f"{edit.path}: {verb} {', '.join(plan.secret_paths)}")
        else:
            reporter.always(edit.diff().rstrip())
    for note in plan.notes:
        reporter.always(note)
    if plan.replaced:
        reporter.warn("values replaced (by key path): " + "; ".join(plan.replaced))


def apply_files(plan: FilesPlan, reporter: Reporter) -> tuple[str, ...]:
    """Write every changed file; if one write fails, put back those already written. Returns what was written."""
    written: list[FileEdit] = []
    try:
        for edit in plan.edits:
            if edit.changed:
                edit.apply()
                written.append(edit)
                reporter.info(f"wrote {edit.path}")
    except OSError as exc:
        for edit in reversed(written):
            edit.restore()
        raise ProvisionError(
            f"cannot write {exc.filename}: {exc.strerror}; the files written before were put back",
            hint="fix the cause and re-run the same command",
        ) from None
    return tuple(str(e.path) for e in written)


@dataclass(frozen=True)
class Published:
    public: dict[str, Any]
    secret: dict[str, Any] = field(repr=False)
    written: tuple[str, ...] = ()
    secret_in_file: bool = False
    chart: Chart = "basehub"

    def documents(self, doc: dict[str, Any]) -> str:
        """`public` or `secret` as YAML for Helm: for z2jh a stream of one document per release."""
        from provision.console import to_yaml_stream

        return to_yaml_stream(releases(doc, self.chart))


def publish(
    registry: HubRegistry,
    options: HubOptions,
    req: FilesRequest,
    *,
    sops_binary: str | None,
    reporter: Reporter,
    dry_run: bool,
) -> Published:
    """Render the hub's values and write the files asked for (all of them, or none). Returns what to print."""
    public = public_values(registry, options, existing=existing_values(req))
    secret = secret_values(registry, options)
    return _publish(public, secret, req, sops_binary, reporter, chart=options.chart, dry_run=dry_run)


def publish_profile(options: HubOptions, req: FilesRequest, *, reporter: Reporter, dry_run: bool) -> Published:
    """Only the image-building profile, for a hub whose registry already exists (no secrets)."""
    assert options.profile is not None
    public = profile_values(options.profile, chart=options.chart, existing=existing_values(req))
    return _publish(public, {}, req, None, reporter, chart=options.chart, dry_run=dry_run)


def _publish(
    public: dict[str, Any],
    secret: dict[str, Any],
    req: FilesRequest,
    sops_binary: str | None,
    reporter: Reporter,
    *,
    chart: Chart,
    dry_run: bool,
) -> Published:
    if chart == "z2jh":
        for note in Z2JH_NOTES:
            reporter.warn(note)
    if req.values_file is None:
        from provision.console import to_yaml_stream

        reporter.always("")
        reporter.always(
            "public values (one document per release: jupyterhub, then binderhub-service):"
            if chart == "z2jh"
            else "public values (for <hub>.values.yaml):"
        )
        reporter.always(to_yaml_stream(releases(public, chart)).rstrip())
    written: tuple[str, ...] = ()
    if req.writes_anything:
        # One set of files per Helm release (z2jh: the jupyterhub and binderhub-service charts), planned together
        # so that they are all written or none.
        public_docs, secret_docs = dict(releases(public, chart)), dict(releases(secret, chart))
        parts: list[FilesPlan] = []
        for release in dict.fromkeys([*public_docs, *secret_docs]):
            release_public, release_secret = public_docs.get(release, {}), secret_docs.get(release, {})
            release_req = replace(
                req,
                values_file=_release_path(req.values_file, release, release_public),
                secret_file=_release_path(req.secret_file, release, release_secret),
            )
            parts.append(
                plan_files(
                    release_req,
                    public=release_public,
                    secret=release_secret if release_req.secret_file else None,
                    sops_binary=sops_binary,
                    encrypt=not dry_run,
                )
            )
        for part in parts:  # each part names the secret paths of its own encrypted file
            show_plan(part, reporter, dry_run=dry_run)
        plan = FilesPlan(*(tuple(x for part in parts for x in getattr(part, f.name)) for f in fields(FilesPlan)))
        if not dry_run:
            written = apply_files(plan, reporter)
    return Published(public, secret, written, secret_in_file=req.secret_file is not None, chart=chart)


def _release_path(path: Path | None, release: str | None, doc: dict[str, Any]) -> Path | None:
    # A z2jh release with nothing to set (no pull secret: no secret for the jupyterhub chart) gets no file.
    if path is None or (release is not None and not doc):
        return None
    return release_file(path, release)
