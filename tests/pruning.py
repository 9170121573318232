"""Shared by the prune tests: a hub's values file naming its registry and the images its values protect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provision.console import Reporter
from provision.hostlimit import HostLimiter
from provision.verbs import prune
from provision.verbs.prune_rules import Rules


def write_values(
    folder: Path, *, server: str, username: str, password: str, prefix: str, url: str | None = None,
    singleuser: str | None = None, choices: tuple[str, ...] = (), name: str = "hub.values.yaml",
) -> Path:  # fmt: skip
    """A basehub hub's values with the registry credentials in plain text (tests only; real hubs keep the password
    in the sops file), `singleuser` as singleuser.image, `choices` as fancy-profiles image choices."""
    config: dict[str, Any] = {"BinderHub": {"image_prefix": prefix}}
    if url:
        config["DockerRegistry"] = {"url": url}
    jupyterhub: dict[str, Any] = {"singleuser": {"profileList": [{
        "display_name": "Choose", "profile_options": {"image": {"display_name": "Image", "choices": {
            f"c{i}": {"display_name": image, "kubespawner_override": {"image": image}}
            for i, image in enumerate(choices)
        }}},
    }]}}  # fmt: skip
    if singleuser:
        image, _, tag = singleuser.rpartition(":")
        jupyterhub["singleuser"]["image"] = {"name": image, "tag": tag}
    doc = {
        "jupyterhub": jupyterhub,
        "binderhub-service": {
            "enabled": True,
            "config": config,
            "buildPodsRegistryCredentials": {"server": server, "username": username, "password": password},
        },
    }
    path = folder / name
    path.write_text(yaml.safe_dump(doc))
    return path


def run(
    values: Path, rules: Rules, *, api_url: str | None = None, registry_url: str | None = None,
    dry_run: bool = False, deadline: float = 30.0, limiter: HostLimiter | None = None, jobs: int = 4,
    answer: bool | None = None,
) -> prune.PruneResult:  # fmt: skip
    """provision prune through its verb; `answer`: what the user answers (None: --yes)."""
    request = prune.PruneRequest((values,), rules, api_url=api_url, registry_url=registry_url, dry_run=dry_run,
                                 deadline=deadline, jobs=jobs, yes=answer is None)  # fmt: skip
    asked: list[str] = []

    def confirm(question: str, word: str | None) -> bool:
        asked.append(question)
        return bool(answer)

    return prune.run(request, reporter=Reporter(quiet=True), confirm=confirm, limiter=limiter)
