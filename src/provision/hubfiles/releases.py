"""A plain Zero to JupyterHub hub's files per Helm release: the hub's own file for the jupyterhub release, and a
sibling named after each other release (staging.values.yaml → staging.binderhub-service.values.yaml)."""

from __future__ import annotations

from pathlib import Path

from provision.hubconfig import Z2JH_RELEASES


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


def release_base(path: Path) -> tuple[Path, str | None]:
    """The hub's file that `path` is a release's sibling of (release_file backwards), and that release; `path`
    itself and None when it is not named like a sibling."""
    for release in Z2JH_RELEASES[1:]:
        candidate = path.with_name(path.name.replace(f".{release}", "", 1))
        if candidate != path and release_file(candidate, release) == path:
            return candidate, release
    return path, None
