"""Artifact Registry through terraform: a repository, a service account and its JSON key per hub; IAM permissions
instead of token scopes, so the permission check asks Google (testIamPermissions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ProvisionError
from provision.registries.base import PermissionProbe, RegistryKind, Verdict, host_of

if TYPE_CHECKING:
    from provision.hubconfig import HubRegistry


class DeadlineWhileAsking(ProvisionError):
    """The command's deadline passed while Google was asked (`pending` says what was)."""

    def __init__(self, pending: str, *, seconds: float) -> None:
        super().__init__(pending)
        self.pending = pending
        self.seconds = seconds


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


KIND = ArtifactRegistry()
