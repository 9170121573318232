"""A hub's retention on Quay, as fleet verify reports it: its organization's auto-prune policies, read with an org
admin token (registries/quay/autoprune.py). Read only; a policy applies to every repository of the organization."""

from __future__ import annotations

from provision.errors import ProvisionError
from provision.registries.base import CLIENT_SIDE, Retention, RetentionQuery
from provision.registries.quay import autoprune
from provision.registries.quay.client import QuayClient


def read_retention(api_url: str, token: str, org: str, query: RetentionQuery) -> Retention:
    """server-side with the policies in words, none (no policy, or the server has no auto-prune), or unknown
    (the API refused or failed: its reason)."""
    source = f"Quay at {api_url}"
    client = QuayClient(api_url, token, deadline=query.deadline)
    try:
        if query.limiter is not None:
            with query.limiter.request(api_url):
                policies = autoprune.list_org_policies(client, org)
        else:
            policies = autoprune.list_org_policies(client, org)
    except ProvisionError as exc:
        return Retention("unknown", f"the auto-prune policies of {org} could not be read: {exc.message}", source)
    finally:
        client.close()
    if policies is None:
        return Retention("none", f"this Quay has no auto-prune (FEATURE_AUTO_PRUNE off); {CLIENT_SIDE}", source)
    if not policies:
        return Retention("none", f"{org} has no auto-prune policy: provision quay --keep-tags or "
                         f"--prune-older-than sets one, or {CLIENT_SIDE}", source)  # fmt: skip
    return Retention("server-side", f"auto-prune of {org}: " + "; ".join(p.describe() for p in policies), source)
