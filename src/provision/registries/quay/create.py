"""provision quay: validate → read the organization, robot and teams → plan → apply → HubRegistry."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from urllib3.util.retry import Retry

from provision import endpoints, httpretry, names
from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.plan import Change, Plan
from provision.registries.base import Rotated
from provision.registries.quay import retention
from provision.registries.quay.client import TOKEN_HINT, QuayClient, QuayError
from provision.registries.quay.models import Organization, Robot, TeamMember

if TYPE_CHECKING:
    from provision.hubfiles.edits import FilesRequest

TeamChoice = Literal["owners", "creator"]
# owners is Quay's built-in admin team; creator may create and push new repositories and nothing else.
TEAM_ROLES: dict[str, str] = {"owners": "admin", "creator": "creator"}
MEMBERS_TEAM = "owners"  # engineers administer the organization
RESUME_HINT = "re-run the same command: steps already done are detected and skipped"
# Quay's own check (util/validation.py): one @, a dotted domain, at most 254 characters.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class QuayRequest:
    org: str
    api_url: str = "https://quay.io"
    robot: str = "image_builder"
    cluster: str | None = None
    hub: str | None = None
    members: tuple[str, ...] = ()
    team: TeamChoice = "owners"
    email: str | None = None
    shared_org: bool = False
    rotate: bool = False
    token: str | None = field(default=None, repr=False)
    allow_http: bool = False
    retention: retention.Retention = retention.Retention()  # the organization's auto-prune policy (none asked)

    @property
    def robot_full(self) -> str:
        return f"{self.org}+{self.robot}"

    @property
    def host(self) -> str:
        return urlsplit(self.api_url).netloc

    @property
    def image_prefix(self) -> str:
        repo = "-".join(part for part in (self.cluster, self.hub) if part)
        return f"{self.host}/{self.org}/{repo}-" if repo else f"{self.host}/{self.org}/"


@dataclass(frozen=True)
class QuayState:
    """What the read-only calls found. `org is None` means the organization does not exist."""

    username: str
    org: Organization | None
    robot: Robot | None
    members: dict[str, list[TeamMember] | None]  # team -> members incl. pending; None: team missing
    prune: retention.PolicyState | None = None  # the auto-prune policies, read only when retention is asked


@dataclass(frozen=True)
class QuayResult:
    plan: Plan
    applied: tuple[str, ...]
    member_report: tuple[str, ...]
    registry: HubRegistry  # password is empty on a dry run
    retention: dict[str, str] | None = None  # the auto-prune policy and what the run does about it (if asked)


def refuse_shared_rotation(req: QuayRequest, files: FilesRequest, *, reporter: Reporter) -> None:
    """`--rotate` regenerates the robot's one token: every other hub of the cluster.yaml that pushes as this robot
    (a --shared-org hub) would get 401 until its secret file holds the new token. Refused before any change,
    naming them; the same cluster.yaml lookup as `remove quay` (--cluster-config, else beside the hub's files)."""
    from provision.hubfiles.cluster import other_hubs_using

    if not req.rotate or req.hub is None:
        return
    for config in cluster_configs(files):
        others = other_hubs_using(config, req.hub, req.robot_full)
        if others:
            raise UsageError(
                f"--rotate would regenerate the token of {req.robot_full}, which the hubs {', '.join(others)} of "
                f"{config} also push with: their builds would fail (401) until their secret files hold the new "
                "token, so nothing was changed. Rotate it deliberately with --rotate-shared (and --cluster-config), "
                "which writes the new token into each of those hubs' secret files too, or give each hub its own "
                "robot (--robot)"
            )
        reporter.info(f"--rotate: no other hub of {config} pushes as {req.robot_full}")


def cluster_configs(files: FilesRequest) -> list[Path]:
    """The cluster.yaml files that list the hub's neighbours: --cluster-config, else the one beside its files."""
    beside = [f.parent / "cluster.yaml" for f in (files.values_file, files.secret_file) if f is not None]
    configs = [files.cluster_config] if files.cluster_config is not None else [p for p in beside if p.is_file()]
    return list(dict.fromkeys(configs))


def validate(req: QuayRequest, *, removing: bool = False) -> None:
    """Check every name and combination before any request. Raises UsageError.

    `removing`: an organization BinderHub cannot use is still accepted, so that its hub can be taken down."""
    url = urlsplit(req.api_url)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        raise UsageError(f"invalid --api-url {req.api_url!r}: expected https://HOST[:PORT] of a Quay server")
    endpoints.check_cleartext(req.api_url, option="--api-url", allow_http=req.allow_http)
    names.quay_name("organization name", req.org)
    if not removing:
        names.kept_by_binderhub("organization name", req.org)
    names.quay_robot(req.org, req.robot)
    for member in req.members:
        names.quay_name("member user name", member)
    if req.cluster is not None and req.hub is None:
        raise UsageError("--cluster needs --hub: the image prefix is <org>/<cluster>-<hub>-")
    if req.cluster is not None:
        names.hub_name("cluster name", req.cluster)
    if req.hub is not None:
        names.hub_name("hub name", req.hub)
    if req.email is not None and (len(req.email) > 254 or EMAIL.fullmatch(req.email) is None):
        raise UsageError(f"invalid --email {req.email!r}: expected an address like name@domain.example")
    if req.team not in TEAM_ROLES:
        raise UsageError(f"invalid --team {req.team!r}: choose owners or creator")
    if req.shared_org and req.members:
        raise UsageError("--member cannot be used with --shared-org, which only looks up the existing organization")
    if req.shared_org and req.rotate:
        raise UsageError(
            "--rotate cannot be used with --shared-org: a new token breaks every hub that shares the robot; "
            "run without --shared-org to rotate it deliberately, then update all those hubs"
        )
    retention.validate(req.retention, shared_org=req.shared_org)


def registry_for(req: QuayRequest, token: str) -> HubRegistry:
    """The hub's registry: quay pushes private repositories, so pods need a pull secret."""
    server = f"{urlsplit(req.api_url).scheme}://{req.host}"
    return HubRegistry(
        kind="quay",
        server=server,
        username=req.robot_full,
        password=token,
        image_prefix=req.image_prefix,
        pull_secret_registry=req.host,
    )


def read_state(client: QuayClient, req: QuayRequest, reporter: Reporter) -> QuayState:
    """Read-only calls: the token's user, the organization, the robot, the teams' members."""
    with reporter.step("check the token (GET /api/v1/user/)"):
        user = client.get_user()
    reporter.info(f"authenticated as {user.username}")
    org = client.get_org(req.org)
    if org is None:
        if req.shared_org:
            raise QuayError(
                f"organization {req.org!r} does not exist on {req.host}",
                hint="--shared-org only reuses an existing organization and robot; run without it to create them",
            )
        _check_members_exist(client, req, set())
        return QuayState(user.username, None, None, {})
    if not org.is_admin and req.org in user.organizations and not org.is_member:
        # Quay caps the caller's roles by the token's scopes, but GET /user/ lists memberships uncapped.
        raise QuayError(
            f"the token lacks the org:admin scope: {user.username} belongs to {req.org!r} but the token may not "
            "act as a member",
            hint=TOKEN_HINT,
        )
    if not org.is_admin:
        raise QuayError(
            f"{user.username} is not an administrator of the organization {req.org!r}",
            hint="ask an owner of the organization to add you to its owners team, or choose another --org",
        )
    try:
        robot = client.get_robot(req.org, req.robot)
    except QuayError as exc:
        if exc.status == 403:
            # The org exists and we administer it, so a 403 can only mean a missing scope.
            raise QuayError(
                "the token lacks the org:admin scope (Quay answered 403 for a robot of an organization you administer)",
                status=403,
                hint=TOKEN_HINT,
            ) from exc
        raise
    if req.shared_org:
        if robot is None:
            raise QuayError(
                f"robot {req.robot_full} does not exist",
                hint="--shared-org only reuses an existing robot; run without --shared-org to create it",
            )
        return QuayState(user.username, org, robot, {})
    teams = [req.team] + ([MEMBERS_TEAM] if req.members and req.team != MEMBERS_TEAM else [])
    members = {team: client.list_team_members(req.org, team) if team in org.teams else None for team in teams}
    _check_members_exist(client, req, {m.name for m in members.get(MEMBERS_TEAM) or ()})
    return QuayState(user.username, org, robot, members)


def _check_members_exist(client: QuayClient, req: QuayRequest, listed: set[str]) -> None:
    """Every --member not yet in the team must be a Quay user: found out before any change (and in a dry run),
    not half-way through."""
    missing = [name for name in req.members if name not in listed and not client.user_exists(name)]
    if missing:
        raise QuayError(
            f"no Quay user named {', '.join(repr(m) for m in missing)}",
            hint="re-run with the right --member names (Quay user names, not e-mail addresses); nothing was changed",
        )


def plan_changes(req: QuayRequest, state: QuayState | None) -> Plan:
    """What must change to reach the requested state; `state is None` when it could not be read (no token)."""
    plan = _plan_hub(req, state)
    if not req.retention.requested:
        return plan
    policies = retention.plan(req.retention, req.org, (state.prune if state else None) or retention.PolicyState())
    return Plan(plan.changes + policies.changes, plan.present + policies.present, plan.notes + policies.notes)


def _plan_hub(req: QuayRequest, state: QuayState | None) -> Plan:
    """The organization, robot, teams and members."""
    if req.shared_org:
        if state is None:
            return Plan(notes=("without a token nothing is read; a real run only looks up the org and robot",))
        return Plan(present=(f"organization {req.org}", f"robot {req.robot_full}"))
    changes: list[Change] = []
    present: list[str] = []
    notes = ["no Quay token: nothing was read, so this plan assumes nothing exists yet"] if state is None else []
    for step in (_plan_org_and_robot, _plan_teams, _plan_members):
        step(req, state, changes, present)
    return Plan(changes=tuple(changes), present=tuple(present), notes=tuple(notes))


def _plan_org_and_robot(req: QuayRequest, state: QuayState | None, changes: list[Change], present: list[str]) -> None:
    if state is None or state.org is None:
        changes.append(Change("create_org", "create", f"organization {req.org}", f"on {req.host}"))
    else:
        present.append(f"organization {req.org}")
    robot = None if state is None else state.robot
    if robot is None:
        changes.append(Change("create_robot", "create", f"robot {req.robot_full}", "no repository permissions"))
        return
    present.append(f"robot {req.robot_full}")
    if req.rotate:
        stops = "the old token stops working"
        changes.append(Change("rotate", "regenerate", f"token of robot {req.robot_full}", stops))


def _plan_teams(req: QuayRequest, state: QuayState | None, changes: list[Change], present: list[str]) -> None:
    org_missing = state is None or state.org is None
    for team in dict.fromkeys([req.team] + ([MEMBERS_TEAM] if req.members else [])):
        role = TEAM_ROLES[team]
        existing_role = None if state is None or state.org is None else state.org.teams.get(team)
        # A new organization comes with its owners team (Quay creates it with the organization).
        if existing_role is None and not (org_missing and team == "owners"):
            changes.append(Change("put_team", "create", f"team {team}", f"role {role}", args=(team,)))
        elif existing_role is not None and existing_role != role:
            changes.append(
                Change("put_team", "set role of", f"team {team}", f"{existing_role} -> {role}", args=(team,))
            )
        elif existing_role is not None:
            present.append(f"team {team} (role {role})")


def _plan_members(req: QuayRequest, state: QuayState | None, changes: list[Change], present: list[str]) -> None:
    if _listed(state, req.team, req.robot_full) is None:
        changes.append(Change("add_member", "add", f"robot {req.robot_full} to team {req.team}",
                              args=(req.team, req.robot_full)))  # fmt: skip
    else:
        present.append(f"robot {req.robot_full} in team {req.team}")
    for member in req.members:
        entry = _listed(state, MEMBERS_TEAM, member)
        if entry is None:
            changes.append(Change("add_member", "add or invite", f"{member} to team {MEMBERS_TEAM}",
                                  args=(MEMBERS_TEAM, member)))  # fmt: skip
        else:
            # For a pending invitation another PUT would send a second invitation e-mail.
            present.append(_member_status(entry, MEMBERS_TEAM))


def _listed(state: QuayState | None, team: str, name: str) -> TeamMember | None:
    found = None if state is None else state.members.get(team)
    return next((m for m in found or () if m.name == name), None)


def _member_status(member: TeamMember, team: str) -> str:
    if member.invited:
        return f"{member.name}: already invited to team {team} (pending; not invited again)"
    return f"{member.name}: already a member of team {team}"


def run(
    req: QuayRequest,
    *,
    reporter: Reporter,
    dry_run: bool = False,
    retry: Retry | None = None,
    timeout: tuple[float, float] | None = None,
    deadline: float = httpretry.DEFAULT_DEADLINE,
) -> QuayResult:
    """Provision (or, with dry_run, only plan) the organization, robot and teams of one hub.

    Raises UsageError for bad input and QuayError (with what was done and how to resume) for API failures.
    """
    validate(req)
    if req.token is None:
        if not dry_run:
            raise UsageError("no Quay token: set QUAY_TOKEN or pass --token-file (scopes org:admin and user:admin)")
        plan = plan_changes(req, None)
        reporter.plan(plan, title="dry run")
        return QuayResult(plan, (), (), registry_for(req, ""), _retention_summary(req, plan))

    reporter.add_secret(req.token)
    client = QuayClient(
        req.api_url,
        req.token,
        retry=retry,
        deadline=httpretry.Deadline(deadline),
        **({"timeout": timeout} if timeout else {}),
    )
    try:
        state = read_state(client, req, reporter)
        if state.robot is not None:
            reporter.add_secret(state.robot.token)
        state = _read_policies(client, req, state, dry_run=dry_run)
        plan = plan_changes(req, state)
        reporter.plan(plan, title="dry run" if dry_run else "plan")
        if dry_run:
            return QuayResult(plan, (), (), registry_for(req, ""), _retention_summary(req, plan))
        return _apply(client, req, plan, state, reporter)
    finally:
        client.close()


def _read_policies(client: QuayClient, req: QuayRequest, state: QuayState, *, dry_run: bool) -> QuayState:
    """With retention asked, the organization's auto-prune policies; a server without them stops a real run here,
    before any change (a dry run notes it in its plan)."""
    if not req.retention.requested:
        return state
    prune = retention.read(client, req.org, org_exists=state.org is not None)
    if not prune.available and not dry_run:
        raise QuayError(retention.unavailable_text(req.api_url, req.org), status=404)
    return dataclasses.replace(state, prune=prune)


def _retention_summary(req: QuayRequest, plan: Plan) -> dict[str, str] | None:
    return retention.summary(req.retention, plan) if req.retention.requested else None


def _apply(client: QuayClient, req: QuayRequest, plan: Plan, state: QuayState, reporter: Reporter) -> QuayResult:
    robot = state.robot
    done: list[str] = []
    joined: dict[str, str] = {}
    try:
        for index, change in enumerate(plan.changes, start=1):
            with reporter.step(change.describe(), index=index, total=len(plan.changes)):
                if change.kind == "create_org":
                    client.create_org(req.org, email=req.email)
                elif change.kind == "create_robot":
                    robot = client.create_robot(req.org, req.robot, description=_robot_description(req))
                    reporter.add_secret(robot.token)
                elif change.kind == "rotate":
                    assert robot is not None
                    robot = _rotate(client, req, robot, reporter)
                elif change.kind == "put_team":
                    (team,) = change.args
                    client.put_team(req.org, team, role=TEAM_ROLES[team], description="managed by provision")
                elif change.kind == "add_member":
                    team, name = change.args
                    joined[name] = _add_member(client, req, team, name)
                elif change.kind in retention.KINDS:
                    retention.apply(client, req.org, req.retention, change)
                else:  # pragma: no cover - plan and apply are written together
                    raise AssertionError(change.kind)
            done.append(change.describe())
    except QuayError as exc:
        if exc.status == 403 and exc.error_type == "insufficient_scope" and change.kind != "create_org":
            # We administer the organization (read_state checked it, or we just created it): only the token's
            # scopes can be missing. Creating an organization needs user:admin; everything inside it org:admin.
            exc = QuayError(
                f"Quay refused to {change.describe()} (HTTP 403): the token lacks the org:admin scope "
                "(creating an organization needs only user:admin, robots and teams need org:admin)",
                status=403,
                error_type=exc.error_type,
                hint=f"{TOKEN_HINT}, then re-run: what is already done is reused",
            )
        raise exc.with_context(done=done, hint=RESUME_HINT) from None
    except ProvisionError as exc:
        raise exc.with_context(done=done, hint=RESUME_HINT) from None
    report = []
    for name in req.members:
        found = _listed(state, MEMBERS_TEAM, name)
        report.append(joined.get(name) or (_member_status(found, MEMBERS_TEAM) if found else f"{name}: unchanged"))
    if robot is None or not robot.token:
        raise QuayError(
            f"Quay did not return the token of robot {req.robot_full}",
            done=tuple(done),
            hint="only organization administrators can read robot tokens; check that you administer the organization",
        )
    return QuayResult(plan, tuple(done), tuple(report), registry_for(req, robot.token), _retention_summary(req, plan))


def _rotate(client: QuayClient, req: QuayRequest, robot: Robot, reporter: Reporter) -> Robot:
    """Regenerate the robot's token, then read it back: a concurrent rotation may have replaced ours, and the token
    to print is the one Quay holds, not the one our call returned."""
    rotated = client.regenerate_robot_token(req.org, req.robot, old_token=robot.token)
    reporter.add_secret(rotated.token)
    current = client.get_robot(req.org, req.robot)
    if current is None or not current.token:
        return rotated
    reporter.add_secret(current.token)
    if current.token != rotated.token:
        reporter.warn(
            f"the token of robot {req.robot_full} changed again right after this rotation (another run rotated it "
            "too): using the token Quay holds now"
        )
    return current


def _add_member(client: QuayClient, req: QuayRequest, team: str, name: str) -> str:
    """Add or invite one member, reading the team again first: another run may have invited them since this run
    read the state, and a second PUT for a pending user sends a second invitation."""
    if "+" not in name:
        found = next((m for m in client.list_team_members(req.org, team) or () if m.name == name), None)
        if found is not None:
            return _member_status(found, team) + " (meanwhile, by another run)"
    member = client.add_team_member(req.org, team, name)
    return f"{name}: {'invited to' if member.invited else 'added to'} team {team}"


def _robot_description(req: QuayRequest) -> str:
    target = f"{req.cluster}-{req.hub}" if req.cluster and req.hub else (req.hub or req.org)
    return f"BinderHub image pushes for {target} (created by provision)"


def rotated_credential(req: QuayRequest) -> Rotated:
    """What a rotation made live, and where it can be read again (for messages after the rotation)."""
    return Rotated(
        f"the new token of Quay robot {req.robot_full}",
        f"Quay shows it to administrators of {req.org} (robot {req.robot_full} on {req.host})",
        "the same `provision quay` command without --rotate (it reads the robot's token and writes it)",
    )
