"""Write a hub's values: merge the public values into `<hub>.values.yaml`, the secrets into the sops-encrypted
`enc-<hub>.secret.values.yaml` (plaintext only in memory), and list both in the hub's entry of `cluster.yaml`.

Every edit is computed first, then written (hubfiles/edits.py); this module decides what to write: the chart, the
profile list a hub inherits, the checks before any remote write, the values for each release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from provision import clusterrepo, files, sops
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.files import read_text
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
    secret_values,
)
from provision.hubfiles import shared_profiles as sharedprofiles
from provision.hubfiles.edits import FilesPlan, FilesRequest, apply_files, plan_files, show_plan
from provision.hubfiles.releases import release_file
from provision.hubfiles.secret_file import SecretState, read_secret

CHART_OF_HELM_CHART: dict[str, Chart] = {"basehub": "basehub", "daskhub": "daskhub"}


def validate(req: FilesRequest) -> str | None:
    """Check paths and the sops binary before any side effect. Returns the sops binary (None if not needed)."""
    for option, path in (("--values-file", req.values_file), ("--secret-file", req.secret_file),
                         ("--cluster-config", req.cluster_config)):  # fmt: skip
        if path is not None:
            files.link_target(path, label=option)  # a dangling link is refused (a link is edited where it points)
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


def chart_for(
    req: FilesRequest, explicit: str | None, *, cluster: str | None = None, reporter: Reporter | None = None
) -> Chart:
    """The chart: --chart; else the hub's helm_chart in --cluster-config; else in the cluster.yaml beside
    --values-file or --secret-file (2i2c's layout), or, for `cluster`, in config/clusters/<cluster>/cluster.yaml
    under the current folder (a run from the root of the infrastructure repository, printing to stdout); else
    basehub. A daskhub hub's values go under `basehub:`, so the chart found (or assumed) is told on stderr."""
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
    beside = [f.parent / "cluster.yaml" for f in (req.values_file, req.secret_file) if f is not None]
    named = [Path("config", "clusters", cluster, "cluster.yaml")] if cluster else []
    looked: list[str] = []
    for path in dict.fromkeys([*beside, *named]):
        if req.hub is None or not path.is_file():
            continue
        try:
            helm_chart = clusterrepo.hub_chart(path, req.hub)
        except ProvisionError as exc:  # not this hub's cluster, or not readable: the option decides, not this file
            looked.append(f"{path}: {exc.message}")
            continue
        listed = CHART_OF_HELM_CHART.get(helm_chart or "basehub")
        if reporter is not None:
            if listed is None:
                reporter.warn(f"hub {req.hub!r} in {path} has helm_chart {helm_chart!r}: chart basehub assumed")
            else:
                reporter.info(f"chart {listed}, from {path} (hub {req.hub!r}'s helm_chart)")
        return listed or "basehub"
    if reporter is not None and (req.writes_anything or cluster):
        places = (["beside the hub's files"] if beside else []) + [f"at {path}" for path in named]
        found = f" ({'; '.join(looked)})" if looked else ""
        reporter.warn(
            f"chart basehub assumed: no --chart, and no cluster.yaml {' or '.join(places)} lists hub "
            f"{req.hub!r}{found}. For a daskhub hub pass --chart daskhub (its values go under basehub:), for a "
            "plain Zero to JupyterHub one --chart z2jh"
        )
    return "basehub"


def existing_values(req: FilesRequest) -> Any:
    """The current --values-file document (None when there is none): a profile is merged into it."""
    text = read_text(req.values_file) if req.values_file is not None else None
    if req.values_file is None or text is None or not text.strip():
        return None
    return clusterrepo.load(text, path=req.values_file)[0]


def check_profile(req: FilesRequest, options: HubOptions) -> None:
    """Refuse, before any change, a profile that would render no image choice or name a default that is none, or
    that would hide the profiles of a shared values file (profile_base). Raises UsageError (ClusterRepoError when
    the values file cannot be read)."""
    if options.profile is not None:
        existing, _ = profile_base(req, options)
        profile_values(options.profile, chart=options.chart, existing=existing)


def profile_base(req: FilesRequest, options: HubOptions) -> tuple[Any, sharedprofiles.SharedProfiles]:
    """The document the image-building profile is merged into (the values file, with the profiles of a shared file
    copied in when --copy-shared-profiles says so), and those profiles. Raises UsageError when a profile written
    into the values file would hide a shared file's profiles (see sharedprofiles.base)."""
    existing = existing_values(req)
    if options.profile is None:
        return existing, sharedprofiles.SharedProfiles()
    return sharedprofiles.base(
        existing,
        chart=options.chart,
        values_file=req.values_file,
        cluster_config=req.cluster_config,
        hub=req.hub,
        copy=req.copy_shared_profiles,
    )


def _with_shared_profiles(
    render: Callable[[Any], dict[str, Any]], req: FilesRequest, options: HubOptions, reporter: Reporter
) -> dict[str, Any]:
    """`render(existing)`, with the shared profiles copied into its list when profile_base says so; stderr says
    what was copied, and which profile list replaces another."""
    existing, shared = profile_base(req, options)
    public = render(existing)
    if options.profile is None:
        return public
    return sharedprofiles.finish(
        public, shared, existing, chart=options.chart, values_file=req.values_file, reporter=reporter,
        checked=req.cluster_config is not None,
    )  # fmt: skip


def release_requests(req: FilesRequest, chart: Chart) -> list[tuple[str | None, FilesRequest]]:
    """The files of each Helm release: for z2jh one request per release (siblings of the hub's files, see
    release_file), else the request itself."""
    if chart != "z2jh":
        return [(None, req)]
    return [
        (
            release,
            replace(
                req,
                values_file=release_file(req.values_file, release) if req.values_file else None,
                secret_file=release_file(req.secret_file, release) if req.secret_file else None,
            ),
        )
        for release in Z2JH_RELEASES
    ]


# Stands in for the registry not yet created or read when the pre-flight checks the files: only the shape of the
# values matters there (every key provision may write, the pull secret included), never these strings.
SHAPE_REGISTRY = HubRegistry(
    "registry", "registry.invalid", "user", "registry.invalid/prefix-", password="placeholder",
    api_url="https://registry.invalid", pull_secret_registry="registry.invalid",
)  # fmt: skip


def preflight(
    req: FilesRequest, *, sops_binary: str | None, chart: Chart = "basehub", options: HubOptions | None = None
) -> SecretState | None:
    """Every local check that can fail, before the command's first remote write: the values file and cluster.yaml
    parse (and can be written back byte for byte), the secret file decrypts, a new one has a creation rule, and
    the values provision will merge fit what the files hold (no scalar where a mapping goes, no alias shared with
    another key: see clusterrepo.deep_merge). For z2jh, the other releases' files too (their state is read again
    when they are written).

    Returns the secret file's state (its plaintext stays in memory for the merge after the remote work).
    """
    import copy

    options = options or HubOptions(chart=chart)
    public = dict(releases(public_values(SHAPE_REGISTRY, options, existing=existing_values(req)), chart))
    secret = dict(releases(secret_values(SHAPE_REGISTRY, options), chart))
    state: SecretState | None = None
    for release, part in release_requests(req, chart):
        if part.values_file is not None:
            clusterrepo.plan_values_edit(part.values_file, public.get(release) or {})
        if part.secret_file is not None and (release is None or secret.get(release)):
            assert sops_binary is not None
            part_state = read_secret(part.secret_file, sops.Sops(sops_binary), shape=secret.get(release) or None)
            clusterrepo.deep_merge(copy.deepcopy(part_state.doc), secret.get(release) or {}, source=part.secret_file)
            if part.secret_file == req.secret_file:
                state = part_state
    if req.cluster_config is not None and req.hub is not None:
        listed = [p for p in (req.values_file, req.secret_file) if p is not None]
        clusterrepo.plan_registration(req.cluster_config, req.hub, listed)
    if req.secret_file is not None and state is None:
        assert sops_binary is not None
        state = read_secret(req.secret_file, sops.Sops(sops_binary))
    return state


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
    state: SecretState | None = None,
    reporter: Reporter,
    dry_run: bool,
) -> Published:
    """Render the hub's values and write the files asked for (all of them, or none). Returns what to print.

    `state`: the secret file as `preflight` read it (read now when not given).
    """
    public = _with_shared_profiles(
        lambda existing: public_values(registry, options, existing=existing), req, options, reporter
    )
    secret = secret_values(registry, options)
    if req.secret_file is not None and state is None:
        state = preflight(req, sops_binary=sops_binary)
    return _publish(public, secret, req, sops_binary, state, reporter, chart=options.chart, dry_run=dry_run)


def publish_profile(options: HubOptions, req: FilesRequest, *, reporter: Reporter, dry_run: bool) -> Published:
    """Only the image-building profile, for a hub whose registry already exists (no secrets)."""
    assert options.profile is not None
    profile = options.profile
    public = _with_shared_profiles(
        lambda existing: profile_values(profile, chart=options.chart, existing=existing), req, options, reporter
    )
    return _publish(public, {}, req, None, None, reporter, chart=options.chart, dry_run=dry_run)


def _publish(
    public: dict[str, Any],
    secret: dict[str, Any],
    req: FilesRequest,
    sops_binary: str | None,
    state: SecretState | None,
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
        folders = files.folders([req.values_file, req.secret_file, req.cluster_config])  # a link's target's too
        with files.locked(folders if not dry_run else ()):
            # One set of files per Helm release (z2jh: the jupyterhub and binderhub-service charts), planned
            # together so that they are all written or none.
            public_docs, secret_docs = dict(releases(public, chart)), dict(releases(secret, chart))
            parts: list[FilesPlan] = []
            for release, release_req in release_requests(req, chart):
                release_public, release_secret = public_docs.get(release), secret_docs.get(release)
                # A z2jh release with nothing to set (no pull secret: no secret for the jupyterhub chart) gets no file.
                release_req = replace(
                    release_req,
                    values_file=release_req.values_file if release_public else None,
                    secret_file=release_req.secret_file if release_secret else None,
                )
                release_state = state if state is not None and state.path == release_req.secret_file else None
                if release_req.secret_file is not None and release_state is None:
                    assert sops_binary is not None
                    release_state = read_secret(release_req.secret_file, sops.Sops(sops_binary))
                part = plan_files(
                    release_req,
                    public=release_public or {},
                    secret=release_secret if release_req.secret_file else None,
                    state=release_state,
                    sops_binary=sops_binary,
                    encrypt=not dry_run,
                )
                show_plan(part, reporter, dry_run=dry_run)  # each part names its own encrypted file's key paths
                parts.append(part)
            plan = FilesPlan(*(tuple(x for part in parts for x in getattr(part, f.name)) for f in fields(FilesPlan)))
            if not dry_run:
                written = apply_files(plan, reporter)
    return Published(public, secret, written, secret_in_file=req.secret_file is not None, chart=chart)
