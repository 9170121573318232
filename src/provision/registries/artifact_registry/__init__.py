"""Artifact Registry through terraform: a repository, a service account and its JSON key per hub; IAM permissions
instead of token scopes, so the permission check asks Google (testIamPermissions)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from provision.errors import ProvisionError
from provision.registries.base import (
    DeadlineWhileAsking,
    HubFacts,
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


HOST = re.compile(r"[a-z0-9-]+-docker\.pkg\.dev")  # <region>-docker.pkg.dev


class ArtifactRegistry(RegistryKind):
    name = "artifact-registry"
    title = "Artifact Registry"

    def recognises(self, host: str, username: str) -> bool:
        return host.endswith("-docker.pkg.dev")

    def prefix_problem(self, registry: HubRegistry) -> str | None:
        parts = registry.image_prefix.rstrip("/").split("/")
        host = host_of(registry.server)
        if parts[0] == host and len(parts) == 3 and registry.image_prefix.endswith("/"):
            return None
        return f"expected {host}/<project>/<repository>/"

    def probe_scopes(self, registry: HubRegistry) -> tuple[str, ...]:
        return ()  # permissions come from testIamPermissions, not from a token's scope

    def permission(self, registry: HubRegistry, probe: PermissionProbe) -> Verdict:
        from provision.registries.artifact_registry import client as gcp

        try:
            repo = gcp.RepositoryRef.from_image_prefix(registry.image_prefix)
            held = gcp.test_permissions(registry.password, repo, api_endpoint=probe.ar_endpoint,
                                        limiter=probe.limiter, deadline=probe.deadline)  # fmt: skip
        except gcp.GcpDeadline as exc:
            raise DeadlineWhileAsking(exc.pending, seconds=exc.seconds) from None
        except ProvisionError as exc:
            return Verdict("could-not-check", str(exc))
        missing = {gcp.UPLOAD, gcp.DOWNLOAD} - held
        if missing:
            return Verdict("fail", f"missing on {repo.name}: {', '.join(sorted(missing))}")
        return Verdict("pass", f"testIamPermissions on {repo.name}")

    # --- doctor ---

    def recognises_host(self, host: str) -> bool:
        return HOST.fullmatch(host) is not None

    def prefix_fits(self, facts: HubFacts) -> bool:
        # <region>-docker.pkg.dev/<project>/<repository>/ ; Artifact Registry also allows a name prefix after it.
        parts = (facts.prefix or "").split("/")
        return len(parts) >= 4 and parts[0].lower() == facts.host and bool(parts[1]) and bool(parts[2])

    def prefix_expected(self, facts: HubFacts) -> str:
        return f"{facts.host}/<project>/<repository>/"

    def prefix_problems(self, facts: HubFacts) -> list[Problem]:
        return []  # no robots: a service account's key

    def nodes_can_pull(self, facts: HubFacts) -> bool:
        """A GKE node's service account reads Artifact Registry in its own project only (facts §3); a project not
        known (not in cluster.yaml, or the prefix does not name one) is taken for the cluster's."""
        project = facts.prefix.split("/")[1] if facts.prefix and self.prefix_fits(facts) else None
        return facts.provider == "gcp" and (facts.gcp_project is None or project in (None, facts.gcp_project))

    def missing_password_note(self) -> str:
        """The likely cause: the Google organization forbids the service account key that is the password."""
        from provision.terraform.runner import key_policy_note

        return (". Neither password of this hub holds a service account's JSON key, which Artifact Registry takes "
                "as password. " + key_policy_note())  # fmt: skip

    # --- retention ---

    def retention_in_files(self, query: RetentionQuery) -> Retention | None:
        """The hub's entry of `registry_retention` in its cluster's tfvars (artifact_registry/retention.py)."""
        from provision.registries.artifact_registry.retention import from_tfvars

        return from_tfvars(query.repository, query.cluster, query.hub)

    def retention(self, query: RetentionQuery) -> Retention:
        found = self.retention_in_files(query)
        if found is not None:
            return found
        return Retention("unknown", "no terraform/gcp/projects/<cluster>.tfvars to read the cleanup policies from")


KIND = ArtifactRegistry()
