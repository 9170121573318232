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


def push_image(
    registry_url: str, repository: str, tags: tuple[str, ...], *, created_days_ago: float, content: str = "",
    auth: tuple[str, str] | None = None,
) -> str:  # fmt: skip
    """Push a tiny image (a config blob with `created`, one layer) under each tag through the v2 API; returns its
    digest. The same `content` and age give the same digest (so two pushes make one image with several tags)."""
    import hashlib
    import json
    from datetime import UTC, datetime, timedelta
    from urllib.parse import urljoin

    import requests

    def sha(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    base = registry_url.rstrip("/")
    created = (datetime(2026, 1, 1, tzinfo=UTC) if created_days_ago is None else
               datetime.now(UTC).replace(microsecond=0) - timedelta(days=created_days_ago))  # fmt: skip
    layer = f"layer of {repository} {content}".encode()
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": created.isoformat().replace("+00:00", "Z"),
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()  # fmt: skip
    with requests.Session() as session:
        session.auth = auth
        for blob in (config, layer):
            started = session.post(f"{base}/v2/{repository}/blobs/uploads/", timeout=10)
            assert started.status_code == 202, started.text
            location = urljoin(f"{base}/", started.headers["Location"])
            done = session.put(f"{location}{'&' if '?' in location else '?'}digest={sha(blob)}", data=blob,
                               headers={"Content-Type": "application/octet-stream"}, timeout=10)  # fmt: skip
            assert done.status_code == 201, done.text
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": sha(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                        "digest": sha(layer)}],
        }).encode()  # fmt: skip
        for tag in tags:
            put = session.put(f"{base}/v2/{repository}/manifests/{tag}", data=manifest,
                              headers={"Content-Type": MANIFEST_V2}, timeout=10)  # fmt: skip
            assert put.status_code == 201, put.text
    return sha(manifest)


def tags_of(registry_url: str, repository: str, *, auth: tuple[str, str] | None = None) -> list[str]:
    import requests

    answer = requests.get(f"{registry_url}/v2/{repository}/tags/list", auth=auth, timeout=10)
    return sorted(answer.json().get("tags") or []) if answer.status_code == 200 else []


MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
