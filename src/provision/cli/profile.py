"""provision profile: the fancy-profiles image-building profile, for a hub whose registry already exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from provision.cli.common import handled, make_reporter
from provision.cli.layout import Place, place
from provision.cli.options import (
    HUB_FILES,
    ChartOption,
    ClusterConfig,
    CopySharedProfiles,
    Debug,
    DefaultImage,
    DryRun,
    Images,
    ImagesFile,
    Quiet,
    ValuesFile,
    Verbose,
    files_request,
)


@dataclass(frozen=True)
class _Files:
    """The file options of `profile`, as cli/layout.place reads and fills them (no secret file: a profile holds
    no secret)."""

    values_file: Path | None
    cluster_config: Path | None
    secret_file: Path | None = None


def profile(
    where: Place = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Hub name (needed with --cluster-config).", rich_help_panel=HUB_FILES)
    ] = None,
    image: Images = None,
    images_file: ImagesFile = None,
    default_image: DefaultImage = None,
    values_file: ValuesFile = None,
    cluster_config: ClusterConfig = None,
    copy_shared_profiles: CopySharedProfiles = False,
    chart: ChartOption = None,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Add the image-building profile (build your own image, plus --image choices) to a hub's values.

    Without --values-file the profile's values are printed on stdout (they hold no secret).
    """
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    with handled(reporter, debug=debug):
        from provision.console import emit
        from provision.hubfiles import preflight
        from provision.hubfiles import write as hubfiles
        from provision.verbs.deliver import ProfileRequest, hub_options, profile_from

        placed = place(where, cluster=None, hub=hub, options=_Files(values_file, cluster_config), reporter=reporter)
        hub, values_file, cluster_config = placed.hub, placed.options.values_file, placed.options.cluster_config
        files = files_request(
            values_file=values_file,
            secret_file=None,
            cluster_config=cluster_config,
            hub=hub,
            copy_shared_profiles=copy_shared_profiles,
        )
        hubfiles.validate(files)
        preflight.check_hub_files(files)
        options = hub_options(
            files,
            chart=chart.value if chart else None,
            dask_gateway=False,
            profile=profile_from(ProfileRequest(tuple(image or ()), images_file, True, default_image)),
            reporter=reporter,
        )
        published = hubfiles.publish_profile(options, files, reporter=reporter, dry_run=dry_run)
        if dry_run:
            reporter.always("dry run: nothing was changed")
        elif values_file is None:
            emit(published.documents(published.public))
