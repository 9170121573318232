"""provision quay's retention: the organization's auto-prune policy, read, planned and applied with the rest of the run.

BinderHub pushes an image for every repository and ref launched and never deletes one. Quay can prune server-side
(facts: ../shared/facts/retention.md §1): a policy keeps the N newest tags of EACH repository (`--keep-tags`), or
prunes tags older than an age (`--prune-older-than`, sent as `<n>d`: Quay reads `m` as minutes). A policy belongs to
the organization, so in an organization other hubs push to it prunes their images too: that needs the explicit
opt-in `--retention-for-whole-org`, checked before any request.

provision manages one policy: the organization's policy on every tag (no tag pattern). It keeps it when it already
prunes the same way, else updates it (the one of the same method first), else creates it; policies with a tag
pattern are someone else's and are left as they are. Without the options nothing about policies is read or done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.console import Reporter
from provision.errors import UsageError
from provision.plan import Change, Plan
from provision.registries.quay import autoprune
from provision.registries.quay.autoprune import PrunePolicy
from provision.registries.quay.client import QuayClient, QuayError

OPT_IN = "--retention-for-whole-org"
KINDS = ("create_prune_policy", "update_prune_policy")
MAX_DAYS = 36500  # a hundred years: anything longer is a typo, not a policy
CLIENT_SIDE = "prune the hub's images from the client side with `provision prune`"
PRUNE_ALTERNATIVE = (
    f"{CLIENT_SIDE} instead, or ask the server's administrators to turn on FEATURE_AUTO_PRUNE (Quay 3.10 or later)"
)


@dataclass(frozen=True)
class Retention:
    """What `provision quay` was asked about retention: at most one of keep_tags and older_than_days."""

    keep_tags: int | None = None
    older_than_days: int | None = None
    whole_org: bool = False  # the user said the policy may apply to every hub of the organization

    @property
    def requested(self) -> bool:
        return self.keep_tags is not None or self.older_than_days is not None

    def policy(self) -> PrunePolicy:
        if self.keep_tags is not None:
            return PrunePolicy(autoprune.KEEP_NEWEST, self.keep_tags)
        assert self.older_than_days is not None
        return PrunePolicy(autoprune.OLDER_THAN, autoprune.days(self.older_than_days))


@dataclass(frozen=True)
class PolicyState:
    """The organization's policies as read: `read` False when nothing could be read (no token), `available` False
    when the server has no auto-prune routes (404)."""

    policies: tuple[PrunePolicy, ...] = ()
    read: bool = False
    available: bool = True


def validate(retention: Retention, *, shared_org: bool) -> None:
    """The options alone, before any request (UsageError)."""
    if retention.keep_tags is not None and retention.older_than_days is not None:
        raise UsageError(
            "--keep-tags and --prune-older-than cannot be combined: provision manages one auto-prune policy per "
            "organization, and a Quay policy has one method (Quay before 3.13 holds one policy per organization); "
            "choose one"
        )
    if retention.keep_tags is not None and retention.keep_tags < 1:
        raise UsageError(f"invalid --keep-tags {retention.keep_tags}: expected a whole number of tags, 1 or more")
    days = retention.older_than_days
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise UsageError(f"invalid --prune-older-than {days}: expected a whole number of days from 1 to {MAX_DAYS}")
    if retention.whole_org and not retention.requested:
        raise UsageError(f"{OPT_IN} needs --keep-tags or --prune-older-than: it only confirms their reach")
    if shared_org and retention.requested and not retention.whole_org:
        raise UsageError(_whole_org_text("with --shared-org it holds other hubs' images"))


def refuse_unannounced_sharing(
    retention: Retention, *, org: str, host: str, hub: str | None, configs: list[Path], reporter: Reporter
) -> None:
    """A policy prunes every repository of the organization: when other hubs of the cluster.yaml push there, refuse
    before any request unless the user opted in. Only plain values files can be read (an encrypted one is not)."""
    if not retention.requested or hub is None:
        return
    for config in configs:
        others = hubs_pushing_to(config, hub, org=org, host=host)
        if others and not retention.whole_org:
            raise UsageError(_whole_org_text(f"the hubs {', '.join(others)} of {config} also push to {org!r}"))
        if others:
            reporter.info(f"{OPT_IN}: the auto-prune policy of {org} also prunes the images of {', '.join(others)}")


def hubs_pushing_to(cluster_config: Path, hub: str, *, org: str, host: str) -> list[str]:
    """Other hubs of cluster.yaml whose plain values files push into `org`: by image_prefix or robot name."""
    from provision.hubfiles.cluster import other_hubs_values

    return sorted({name for name, values in other_hubs_values(cluster_config, hub) if _pushes_to(values, org, host)})


def _pushes_to(values: Any, org: str, host: str) -> bool:
    from provision.hubfiles.cluster import binderhub_sections

    for chart in binderhub_sections(values):
        config = chart.get("config")
        binderhub = config.get("BinderHub") if isinstance(config, dict) else None
        prefix = binderhub.get("image_prefix") if isinstance(binderhub, dict) else None
        creds = chart.get("buildPodsRegistryCredentials")
        username = creds.get("username") if isinstance(creds, dict) else None
        if str(prefix or "").lower().startswith(f"{host}/{org}/".lower()) or str(username or "").startswith(f"{org}+"):
            return True
    return False


def _whole_org_text(why: str) -> str:
    return (
        f"an auto-prune policy applies to every repository of the organization, and {why}: their images would be "
        f"pruned by the same rule. Nothing was changed. Add {OPT_IN} to apply it to the whole organization "
        "deliberately, or leave out --keep-tags/--prune-older-than and prune this hub's images alone with "
        "`provision prune`"
    )


def read(client: QuayClient, org: str, *, org_exists: bool) -> PolicyState:
    """The organization's policies. For an organization not created yet the route is still probed: a Quay with the
    feature answers 403 (no such organization to administer), one without it 404."""
    try:
        policies = autoprune.list_org_policies(client, org)
    except QuayError as exc:
        if org_exists or exc.status != 403:
            raise
        return PolicyState(read=True)
    if policies is None:
        return PolicyState(read=True, available=False)
    return PolicyState(tuple(policies), read=True)


def unavailable_text(api_url: str, org: str) -> str:
    return (
        f"Quay at {api_url} has no auto-prune policies: GET /api/v1/organization/{org}/autoprunepolicy/ answered 404 "
        "(the server runs without FEATURE_AUTO_PRUNE, or is older than Quay 3.10). Nothing was changed. Leave out "
        f"--keep-tags/--prune-older-than to set up the hub alone, and {PRUNE_ALTERNATIVE}"
    )


def plan(retention: Retention, org: str, state: PolicyState) -> Plan:
    """Create, update or keep the organization's policy on every tag; the other policies are listed, untouched."""
    wanted = retention.policy()
    subject = f"auto-prune policy of {org}"
    if not state.available:
        return Plan(notes=(f"this Quay has no auto-prune policies (404): a real run stops before any change; "
                           f"{PRUNE_ALTERNATIVE}",))  # fmt: skip
    others = tuple(f"auto-prune policy {p.uuid} of {org} ({p.describe()}): has a tag pattern, left as it is"
                   for p in state.policies if not p.every_tag)  # fmt: skip
    candidates = [p for p in state.policies if p.every_tag]
    if any(p.same_rule(wanted) for p in candidates):
        return Plan(present=(f"keep {subject} ({wanted.describe()}): already in place", *others))
    target = next((p for p in candidates if p.method == wanted.method), candidates[0] if candidates else None)
    if target is None:
        change = Change("create_prune_policy", "create", subject, wanted.describe())
    else:
        detail = f"{target.describe()} -> {wanted.describe()}"
        change = Change("update_prune_policy", "update", subject, detail, args=(target.uuid,))
    return Plan(changes=(change,), present=others)


def apply(client: QuayClient, org: str, retention: Retention, change: Change) -> None:
    """One planned change. Quay before 3.13 holds one policy per organization: its refusal is named."""
    wanted = retention.policy()
    try:
        if change.kind == "create_prune_policy":
            autoprune.create_org_policy(client, org, wanted)
        else:
            (uuid,) = change.args
            autoprune.update_org_policy(client, org, uuid, wanted)
    except QuayError as exc:
        if exc.status == 400 and "already exists" in str(exc).lower():
            exc.message = (
                f"Quay refused a second auto-prune policy for {org}: this server (before Quay 3.13) holds one policy "
                "per organization, and the one it has carries a tag pattern, which provision leaves alone"
            )
            exc.hint = (
                f"delete that policy in the organization's settings (Auto-Prune Policies) and run the same command "
                f"again, or leave out --keep-tags/--prune-older-than and {CLIENT_SIDE}"
            )
        raise


def summary(retention: Retention, plan: Plan) -> dict[str, str]:
    """For `--format json`: the policy wanted and what the run does about it (create, update or keep)."""
    change = next((c for c in plan.changes if c.kind in KINDS), None)
    unavailable = any("no auto-prune policies" in note for note in plan.notes)
    action = "unavailable" if unavailable else change.action if change is not None else "keep"
    return {"auto_prune_policy": retention.policy().describe(), "action": action}
