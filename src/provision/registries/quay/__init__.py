"""Quay (quay.io or self-hosted): an organization, a robot in a team, the robot's token; private repositories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from provision.registries.base import (
    PermissionProbe,
    Problem,
    RegistryKind,
    Retention,
    RetentionQuery,
    Verdict,
    host_of,
)

if TYPE_CHECKING:
    from provision.hubconfig import HubRegistry
    from provision.registries.base import PruneAccess, Pruner


class Quay(RegistryKind):
    name = "quay"
    title = "Quay"
    pull_secret = "required"
    # Never ask Quay for push on a name that does not exist: it would create that repository.
    probe_actions = ("pull",)

    def recognises(self, host: str, username: str) -> bool:
        return host == "quay.io" or host.startswith("quay.") or "+" in username  # Quay robots are `org+name`

    def permission(self, registry: HubRegistry, probe: PermissionProbe) -> Verdict:
        repository = self.probe_repository(registry)
        granted = probe.client.granted_actions(repository, list(self.probe_actions))
        if granted and "pull" in granted:
            return Verdict("pass", f"org-wide pull on {repository}: the robot is in an admin team (owners)")
        return Verdict(
            "could-not-check",
            "no org-wide pull: a creator-team robot (may create and push its own repositories) or no access; Quay "
            "creates a repository when asked for push, so push is not probed",
        )

    # --- doctor ---

    def recognises_host(self, host: str) -> bool:
        return host == "quay.io"  # a self-hosted Quay is checked as a plain registry (base.recognises_host)

    def missing_pull_secret(self) -> Problem:
        return Problem("error", "missing-image-pull-secret", "quay.io makes pushed repositories private, so user "
                       "pods cannot pull built images without jupyterhub.imagePullSecret (create: true, registry, "
                       "username, password)")  # fmt: skip

    # --- prune ---

    def pruner(self, registry: HubRegistry, access: PruneAccess) -> Pruner | None:
        """Through Quay's API (a tag at a time, empty repositories deleted), with an OAuth token: the robot cannot
        call the API. Raises UsageError, before any request, without a token."""
        from provision.registries.quay.prune import QuayPruner, api_token

        return QuayPruner(registry, access, token=api_token(access))

    # --- retention ---

    def retention_token(self, environ: Mapping[str, str]) -> str | None:
        """The organization's auto-prune policy is read with an org:admin token (QUAY_TOKEN, as provision quay)."""
        return environ.get("QUAY_TOKEN") or None

    def retention(self, query: RetentionQuery) -> Retention:
        """The organization's auto-prune policies (registries/quay/autoprune.py); "unknown" without a token."""
        if not query.token or query.registry is None:
            return Retention("unknown", "reading the organization's auto-prune policy needs an org admin token "
                             "(QUAY_TOKEN)")  # fmt: skip
        from provision.registries.quay.policy_view import read_retention

        api_url = query.api_url or f"https://{host_of(query.registry.server)}"
        return read_retention(api_url, query.token, self.repository_path(query.registry).split("/")[0], query)

    def retention_scope(self, registry: HubRegistry) -> str | None:
        """An auto-prune policy is the organization's: every hub pushing there shares it."""
        return f"{host_of(registry.server)}/{self.repository_path(registry).split('/')[0]}"


KIND = Quay()
