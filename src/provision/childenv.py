"""The environment handed to child processes (sops, terraform): provision's own API credentials stay behind.

sops and terraform never need the Quay token or the Docker Hub login, and a child (or a plugin, a credential
helper, a local-exec provisioner it runs) that logs or forwards its environment would otherwise carry them on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Every variable provision reads a registry API credential from (cli/quay.py, cli/dockerhub.py, cli/remove.py).
CREDENTIAL_VARIABLES = frozenset({"QUAY_TOKEN", "DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"})


def without_credentials(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default: this process's environment) without provision's API credentials."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in CREDENTIAL_VARIABLES}
