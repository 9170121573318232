"""A stateful Quay API v1 stand-in for tests: ``FakeQuay`` serves real HTTP on 127.0.0.1.

It reproduces the part of Quay that ``provision`` uses (token preflight, organizations, robot accounts,
teams and team members) with the status codes and error bodies of ``shared/facts/quay-api.md``, odd ones
included: a missing robot is a 400 ``{"message": ...}`` and not a 404; an unknown token makes every write
fail the CSRF check (403) while GETs run anonymously; ``POST /organization`` without the slash is a 308;
re-inviting a pending user adds a second invite; a deleted org name stays reserved. Organization auto-prune
policies (issue 20) follow endpoints/api/policy.py: ``auto_prune=False`` (FEATURE_AUTO_PRUNE off) unregisters their
routes (404 as any unknown URL), ``several_prune_policies=False`` (Quay < 3.13) refuses any second one. Faults
(an HTTP status, nginx's HTML 429, a connection reset before or after the request is handled, a delay) can be
injected per method and path.

Tests point the real client at ``FakeQuay.url`` instead of mocking ``requests``, so sessions, retries,
timeouts and error parsing run through the same seam as in production. Standard library only.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, ClassVar
from urllib.parse import SplitResult, parse_qs, unquote
from uuid import uuid4

from tests.servers.base import Delay as Delay
from tests.servers.base import FakeApi, FakeApiHandler, Reply, Response, json_response, route_pattern
from tests.servers.base import Interleave as Interleave
from tests.servers.base import LoggedRequest as LoggedRequest
from tests.servers.base import ResetAfter as ResetAfter
from tests.servers.base import ResetBefore as ResetBefore
from tests.servers.base import Status as Status

# util/validation.py and data/model/team.py apply it with re.match, so a trailing "\n" passes as in Quay.
_NAME_RE = re.compile(r"^([a-z0-9]+(?:[._-][a-z0-9]+)*)$")
_EMAIL_RE = re.compile(r"[^@]+@[^@]+\.[^@]+")
_ROLES = ("member", "creator", "admin")  # team roles, weakest first
_NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
_NGINX_429 = (
    "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n"
    "<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_ROBOT = "/api/v1/organization/{orgname}/robots/{robot_shortname}"
_TEAM = "/api/v1/organization/{orgname}/team/{teamname}"
# (method, path template as in the discovery document, handler FakeQuay._route_<name>)
_ROUTE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("GET", "/api/v1/user/", "get_user"),
    ("GET", "/api/v1/users/{username}", "get_public_user"),
    ("POST", "/api/v1/organization/", "create_org"),
    ("GET", "/api/v1/organization/{orgname}", "get_org"),
    ("DELETE", "/api/v1/organization/{orgname}", "delete_org"),
    ("GET", "/api/v1/organization/{orgname}/members/{membername}", "get_org_member"),
    ("PUT", _ROBOT, "create_robot"),
    ("GET", _ROBOT, "get_robot"),
    ("DELETE", _ROBOT, "delete_robot"),
    ("POST", _ROBOT + "/regenerate", "regenerate_robot"),
    ("PUT", _TEAM, "put_team"),
    ("GET", _TEAM + "/members", "list_team_members"),
    ("PUT", _TEAM + "/members/{membername}", "put_team_member"),
    # Repositories: {repository} is "namespace/name" (Quay's apirepopath converter keeps the slash).
    ("GET", "/api/v1/repository", "list_repositories"),
    ("DELETE", "/api/v1/repository/{repository}", "delete_repository"),
    # Tags (issue 20, endpoints/api/tag.py): the live tags and, unless onlyActiveTags, the time machine's dead ones.
    ("GET", "/api/v1/repository/{repository}/tag/", "list_tags"),
    ("DELETE", "/api/v1/repository/{repository}/tag/{tag}", "delete_tag"),
)


def _route_regex(template: str) -> re.Pattern[str]:
    if "{repository}" in template:  # one parameter spanning two segments, as Quay's apirepopath
        pattern = route_pattern(template).pattern
        return re.compile(pattern.replace("(?P<repository>[^/]+)", "(?P<repository>[^/]+/[^/]+)"))
    return route_pattern(template)


# --- auto-prune policies (issue 20): served only while FakeQuay.auto_prune (FEATURE_AUTO_PRUNE) is on ---
_PRUNE_POLICY = "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}"
_AUTOPRUNE_ROUTE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("GET", "/api/v1/organization/{orgname}/autoprunepolicy/", "autoprune_list"),
    ("POST", "/api/v1/organization/{orgname}/autoprunepolicy/", "autoprune_create"),
    ("GET", _PRUNE_POLICY, "autoprune_get"),
    ("PUT", _PRUNE_POLICY, "autoprune_update"),
    ("DELETE", _PRUNE_POLICY, "autoprune_delete"),
)
_AUTOPRUNE_ROUTES = frozenset(name for _, _, name in _AUTOPRUNE_ROUTE_TABLE)
_ALL_ROUTES = _ROUTE_TABLE + _AUTOPRUNE_ROUTE_TABLE
_COMPILED = [(method, _route_regex(template), name) for method, template, name in _ALL_ROUTES]
# util/timedeltastring.py: an int and one unit; "m" is minutes, "y" 365 days.
_TIMEDELTA_RE = re.compile(r"^(\d+)([smhdwy])$")


# --- faults -----------------------------------------------------------------------------------------------


# Status, ResetBefore, ResetAfter, Delay and LoggedRequest are shared by the fakes: they live in tests.servers.base
# and are re-exported here ("import X as X"), so tests import them from this module. A Status without a body
# answers with a shape-A problem body.


@dataclass(frozen=True)
class Html429:
    """nginx ``limit_req``: status 429 with an HTML page; the request is not handled."""

    retry_after: str | None = None


Fault = Status | Html429 | ResetBefore | ResetAfter | Delay


# --- state ------------------------------------------------------------------------------------------------


@dataclass
class _Token:
    user: str
    scopes: frozenset[str]


@dataclass
class _Robot:
    token: str
    created: str  # RFC 2822, as Quay's format_date
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Team:
    role: str
    description: str = ""
    members: list[str] = field(default_factory=list)  # accepted: users and robots "org+short"
    invites: list[str] = field(default_factory=list)  # one entry per TeamMemberInvite row (duplicates kept)


@dataclass
class _Tag:
    """One row of Quay's tag table: live while `end_ts` is None (or to come); a deleted tag ends now and stays
    listed (the time machine) unless the list asks for active tags only."""

    name: str
    start_ts: int  # push (or retag) time, epoch seconds
    digest: str
    size: int
    end_ts: int | None = None

    def alive(self, now: float) -> bool:
        return self.end_ts is None or self.end_ts > now


@dataclass
class _Org:
    email: str | None
    robots: dict[str, _Robot] = field(default_factory=dict)
    teams: dict[str, _Team] = field(default_factory=dict)
    repositories: dict[str, bool] = field(default_factory=dict)  # name -> is_public, in creation order
    tags: dict[str, list[_Tag]] = field(default_factory=dict)  # repository name -> its tag history


@dataclass(frozen=True)
class _Call:
    user: str | None  # None: anonymous (no token or an unknown one)
    scopes: frozenset[str]
    params: dict[str, str]
    query: dict[str, str]
    body: Any


def _message(text: str) -> Reply:
    """Shape B: an uncaught DataModelException, turned into a 400 by Quay's app-wide handler."""
    return Reply(json_response(400, {"message": text}))


def _new_token() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(64))


def _name_problem(name: str, *, length_text: str = "Namespace") -> str | None:
    if not _NAME_RE.match(name):
        return "Namespace must match expression " + _NAME_RE.pattern
    if not 2 <= len(name) <= 255:
        return f"{length_text} must be between 2 and 255 characters in length"
    return None


def _member_view(name: str, *, invited: bool) -> dict[str, Any]:
    return {"name": name, "kind": "user", "is_robot": "+" in name, "avatar": {}, "invited": invited}


def _truthy(value: str) -> bool:  # util/parsing.py truthy_bool
    return value not in {"false", "False", "0", "FALSE", "", "null"}


# --- the server -------------------------------------------------------------------------------------------


class FakeQuay(FakeApi):
    """Quay API v1 (orgs, robots, teams) with in-memory state under one lock, plus fault injection."""

    ROUTES: ClassVar[list[tuple[str, str]]] = [(method, template) for method, template, _ in _ALL_ROUTES]

    def __init__(
        self,
        *,
        latency: float = 0.0,
        mailing: bool = True,
        recaptcha: bool = False,
        require_email: bool = False,
        robots_disabled: bool = False,
        repositories_page_size: int = 100,
        auto_prune: bool = True,
        several_prune_policies: bool = True,
    ) -> None:
        super().__init__(_Handler, latency=latency)
        # FEATURE_AUTO_PRUNE: off, the policy routes are not registered (404 as any unknown URL). Quay < 3.13
        # (several_prune_policies False) refuses any second policy of an organization; 3.13 only exact duplicates.
        self.auto_prune = auto_prune
        self.several_prune_policies = several_prune_policies
        self._prune_policies: dict[str, dict[str, dict[str, Any]]] = {}  # org -> uuid -> policy view
        self.repositories_page_size = repositories_page_size  # Quay pages repository lists (100 a page)
        self.mailing = mailing
        self.recaptcha = recaptcha
        self.require_email = require_email
        self.robots_disabled = robots_disabled
        self._users: dict[str, str] = {}  # user name -> email
        self._tokens: dict[str, _Token] = {}
        self._orgs: dict[str, _Org] = {}
        self._reserved: set[str] = set()
        self._used_emails: set[str] = set()
        # Seconds between the name check and the insert of POST /organization/ (0: one atomic step); see
        # _create_org_racing.
        self.org_create_window = 0.0
        self._org_checks: dict[str, int] = {}
        self.in_flight = 0  # requests being served now (latency included), and the most at once
        self.peak_in_flight = 0

    # --- seeding state

    def add_user(self, name: str, *, email: str | None = None) -> None:
        with self._lock:
            self._users[name] = email or f"{name}@example.com"

    def add_token(self, token: str, *, user: str, scopes: set[str] | frozenset[str]) -> None:
        with self._lock:
            if user not in self._users:
                raise ValueError(f"unknown user {user!r}; call add_user first")
            self._tokens[token] = _Token(user, frozenset(scopes))

    def add_admin(self, token: str, *, name: str = "admin") -> None:
        """A user with a token holding the two scopes provision needs (org:admin and user:admin)."""
        self.add_user(name, email=f"{name}@example.org")
        self.add_token(token, user=name, scopes={"org:admin", "user:admin"})

    def add_org(self, name: str, *, admin: str, email: str | None = None) -> None:
        with self._lock:
            if admin not in self._users:
                raise ValueError(f"unknown user {admin!r}; call add_user first")
            self._orgs[name] = _Org(email, teams={"owners": _Team("admin", members=[admin])})

    def add_robot(self, org: str, short: str, *, token: str | None = None) -> str:
        with self._lock:
            robot = _Robot(token or _new_token(), formatdate())
            self._seeded_org(org).robots[short] = robot
            return robot.token

    def add_team(self, org: str, team: str, *, role: str) -> None:
        with self._lock:
            teams = self._seeded_org(org).teams
            if team in teams:
                teams[team].role = role
            else:
                teams[team] = _Team(role)

    def add_team_member(self, org: str, team: str, name: str, *, pending: bool = False) -> None:
        with self._lock:
            found = self._seeded_org(org).teams[team]
            if pending:
                found.invites.append(name)
            elif name not in found.members:
                found.members.append(name)

    def add_repository(self, org: str, name: str, *, public: bool = False) -> None:
        """A repository, as a push by the robot creates it (private unless `public`)."""
        with self._lock:
            self._seeded_org(org).repositories[name] = public

    def add_tag(
        self, org: str, repository: str, tag: str, *, pushed_days_ago: float, size: int = 1000,
        digest: str | None = None,
    ) -> None:  # fmt: skip
        """A tag as a push makes it (the repository too, private, if it is new); pushing a tag again moves it: the
        old row ends then (dead) and a new one starts."""
        now = time.time()
        with self._lock:
            found = self._seeded_org(org)
            found.repositories.setdefault(repository, False)
            history = found.tags.setdefault(repository, [])
            for old in history:
                if old.name == tag and old.alive(now):
                    old.end_ts = int(now)
            pushed = int(now - pushed_days_ago * 86400)
            history.append(_Tag(tag, pushed, digest or f"sha256:{uuid4().hex}{uuid4().hex}", size))

    def live_tags(self, org: str) -> dict[str, list[str]]:
        """Each repository of the organization and the names of its live tags, sorted."""
        now = time.time()
        with self._lock:
            found = self._orgs.get(org)
            if found is None:
                return {}
            history = found.tags
            return {name: sorted(t.name for t in history.get(name, []) if t.alive(now)) for name in found.repositories}

    def reserve_name(self, name: str) -> None:
        with self._lock:
            self._reserved.add(name)

    def mark_email_used(self, email: str) -> None:
        with self._lock:
            self._used_emails.add(email)

    def _seeded_org(self, name: str) -> _Org:
        if name not in self._orgs:
            raise ValueError(f"unknown organization {name!r}; call add_org first")
        return self._orgs[name]

    # --- reading state

    def org_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._orgs

    def robot_token(self, org: str, short: str) -> str | None:
        with self._lock:
            robot = self._orgs[org].robots.get(short) if org in self._orgs else None
            return robot.token if robot else None

    def repositories(self, org: str) -> list[str]:
        with self._lock:
            return list(self._orgs[org].repositories) if org in self._orgs else []

    def team_role(self, org: str, team: str) -> str | None:
        found = self._find_team(org, team)
        return found.role if found else None

    def team_members(self, org: str, team: str) -> list[str]:
        found = self._find_team(org, team)
        return list(found.members) if found else []

    def pending_invites(self, org: str, team: str) -> list[str]:
        found = self._find_team(org, team)
        return list(found.invites) if found else []

    def _find_team(self, org: str, team: str) -> _Team | None:
        with self._lock:
            return self._orgs[org].teams.get(team) if org in self._orgs else None

    def add_prune_policy(
        self, org: str, method: str, value: int | str, *, tag_pattern: str | None = None, matches: bool = True
    ) -> str:
        """An organization auto-prune policy, as the web UI creates one; returns its uuid."""
        with self._lock:
            self._seeded_org(org)
            uuid = str(uuid4())
            self._prune_policies.setdefault(org, {})[uuid] = {
                "uuid": uuid, "method": method, "value": value, "tagPattern": tag_pattern, "tagPatternMatches": matches,
            }  # fmt: skip
            return uuid

    def prune_policies(self, org: str) -> list[dict[str, Any]]:
        """The organization's auto-prune policies as GET lists them (copies)."""
        with self._lock:
            return self._policy_views(org)

    # --- faults

    def _error_response(self, status: int, phrase: str) -> Response:
        return self._problem(status, phrase.lower().replace(" ", "_"), phrase).response

    @staticmethod
    def _own_fault_response(fault: Html429) -> Response:
        retry = (("Retry-After", fault.retry_after),) if fault.retry_after is not None else ()
        return Response(429, _NGINX_429.encode(), (("Content-Type", "text/html"), *retry))

    # --- request handling (called by _Handler)

    def _resolve(self, method: str, raw_path: str, query: str) -> tuple[str, dict[str, str]] | Response:
        """Route a request to (handler name, decoded path parameters), or answer like werkzeug."""
        served = [route for route in _COMPILED if self.auto_prune or route[2] not in _AUTOPRUNE_ROUTES]
        for route_method, pattern, name in served:
            if route_method == method and (match := pattern.fullmatch(raw_path)):
                return name, {key: unquote(value) for key, value in match.groupdict().items()}
        if any(pattern.fullmatch(raw_path + "/") for _, pattern, _ in served):
            # strict_slashes redirect; requests follows a 308 keeping the method and the body.
            location = f"{self.url}{raw_path}/" + (f"?{query}" if query else "")
            return Response(308, b"", (("Location", location),))
        return json_response(404, {"message": _NOT_FOUND_TEXT})  # also a method this fake does not serve

    def _handle(self, method: str, raw_path: str, query: str, authorization: str, body: bytes) -> Response:
        route = self._resolve(method, raw_path, query)
        if isinstance(route, Response):
            return route
        name, params = route
        scheme, _, credential = authorization.partition(" ")
        with self._lock:
            token = self._tokens.get(credential.strip()) if scheme.lower() == "bearer" else None
            if token is None and method not in ("GET", "HEAD"):
                # auth/decorators.py: an unverifiable token falls back to cookie auth: the CSRF check fails.
                return json_response(403, {"error": "CSRF token was invalid or missing."})
            try:
                data = json.loads(body) if body.strip() else None
            except ValueError:
                return self._problem(400, "invalid_request", "Invalid JSON body").response
            call = _Call(
                user=token.user if token else None,
                scopes=token.scopes if token else frozenset(),
                params=params,
                query={key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()},
                body=data,
            )
            if name != "create_org" or not self.org_create_window:
                return self._call_route(name, call)
        return self._create_org_racing(call)

    def _create_org_racing(self, call: _Call) -> Response:
        """POST /organization/ as Quay runs it against its database: the name is checked, then inserted some time
        later (`org_create_window` seconds here; a few round trips on a real Quay). Two creates of one name inside
        that window both pass the check; the second insert fails on the unique user.username index and Quay
        answers its DataModelException: 400 shape B with the database's text (SQLite's, as the observed Quay)."""
        with self._lock:
            try:
                name, email = self._check_new_org(call)
            except Reply as reply:
                return reply.response
            self._org_checks[name] = self._org_checks.get(name, 0) + 1
        end = time.monotonic() + self.org_create_window
        while time.monotonic() < end:  # the window ends early once a second create of the name is inside it too
            with self._lock:
                if self._org_checks.get(name, 0) >= 2:
                    break
            time.sleep(0.01)
        with self._lock:
            if name in self._users or name in self._orgs:
                return json_response(400, {"message": "UNIQUE constraint failed: user.username"})
            self._orgs[name] = _Org(email, teams={"owners": _Team("admin", members=[call.user or ""])})
            return json_response(201, "Created")

    def _problem(self, status: int, error_type: str, text: str, **extra: Any) -> Reply:
        """Shape A: Quay's ApiException body (endpoints/exception.py)."""
        body = {
            "detail": text,
            "error_message": text,
            "error_type": error_type,
            "title": error_type,
            "type": f"{self.url}/api/v1/error/{error_type}",
            "status": status,
            **extra,
        }
        return Reply(json_response(status, body))

    def _invalid(self, text: str) -> Reply:
        return self._problem(400, "invalid_request", text)

    def _not_found(self) -> Reply:
        return self._problem(404, "not_found", "Not Found")

    def _unauthorized(self, call: _Call) -> Reply:
        if call.user is None:
            return self._problem(401, "invalid_token", "Requires authentication")
        return self._problem(403, "insufficient_scope", "Unauthorized")

    def _role_in(self, user: str, org: str) -> str | None:
        roles = [team.role for team in self._orgs[org].teams.values() if user in team.members]
        return max(roles, key=_ROLES.index) if roles else None

    def _effective_role(self, call: _Call, org: str) -> str | None:
        """The caller's team role in org, capped by the token's scopes (SCOPE_MAX_TEAM_ROLES in Quay)."""
        role = self._role_in(call.user, org) if call.user and org in self._orgs else None
        if role is None or "org:admin" in call.scopes:
            return role
        if "repo:create" in call.scopes:
            return "member" if role == "member" else "creator"
        return None

    def _require_admin(self, call: _Call, org: str) -> _Org:
        # A missing org fails the permission check too: 403, not 404 (the ambiguity of facts §7).
        if self._effective_role(call, org) != "admin":
            raise self._unauthorized(call)
        return self._orgs[org]

    def _account_exists(self, name: str) -> bool:
        """model.user.get_user: a user or a robot, never an org."""
        namespace, plus, short = name.partition("+")
        if plus:
            return namespace in self._orgs and short in self._orgs[namespace].robots
        return name in self._users

    def _robot(self, org: _Org, short: str) -> _Robot:
        if short not in org.robots:
            raise _message("Could not find robot with specified username")
        return org.robots[short]

    @staticmethod
    def _robot_view(org: str, short: str, robot: _Robot, *, metadata: bool) -> dict[str, Any]:
        view = {
            "name": f"{org}+{short}",
            "created": robot.created,
            "last_accessed": None,
            "description": robot.description,
            "token": robot.token,
        }
        return {**view, "unstructured_metadata": robot.metadata} if metadata else view

    def _object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise self._invalid("Missing JSON body")
        return body

    # --- routes: one method per entry of _ROUTE_TABLE

    def _route_get_user(self, call: _Call) -> Response:
        if call.user is None or not call.scopes & {"user:read", "user:admin"}:
            raise self._problem(401, "invalid_token", "Requires authentication", session_required=False)
        user_admin = "user:admin" in call.scopes  # email and is_org_admin need UserAdminPermission
        organizations = []
        for name in self._orgs:
            if self._role_in(call.user, name) is None:
                continue
            role = self._effective_role(call, name)
            org_view: dict[str, Any] = {
                "name": name,
                "avatar": {},
                "can_create_repo": role in ("creator", "admin"),
            }
            if user_admin:
                org_view.update(is_org_admin=role == "admin", preferred_namespace=False)
            organizations.append(org_view)
        view: dict[str, Any] = {"anonymous": False, "username": call.user, "avatar": {}}
        if user_admin:
            view.update(email=self._users[call.user], can_create_repo=True, is_me=True, verified=True)
        view["organizations"] = organizations
        return json_response(200, view)

    def _route_get_public_user(self, call: _Call) -> Response:
        # endpoints/api/user.py Users.get: a public profile; robots, orgs and unknown names are flask's 404 (shape D).
        name = call.params["username"]
        if name not in self._users:
            return json_response(404, {"message": _NOT_FOUND_TEXT})
        return json_response(200, {"username": name, "avatar": {}, "super_user": False})

    def _route_create_org(self, call: _Call) -> Response:
        name, email = self._check_new_org(call)
        self._orgs[name] = _Org(email, teams={"owners": _Team("admin", members=[call.user or ""])})
        return json_response(201, "Created")

    def _check_new_org(self, call: _Call) -> tuple[str, str | None]:
        """The checks of a create, in the order of endpoints/api/organization.py NewOrg.post, then
        data/model/organization.py; raises the refusal. Returns the name and e-mail."""
        if call.user is None or "user:admin" not in call.scopes:
            raise self._unauthorized(call)
        body = self._object(call.body)
        name, email = body.get("name"), body.get("email")
        if not isinstance(name, str):
            raise self._invalid(
                "'name' is a required property" if name is None else f"{name!r} is not of type 'string'"
            )
        if name in self._users or name in self._orgs:
            raise self._invalid("A user or organization with this name already exists")
        if self.require_email and not email:
            raise self._invalid("Email address is required")
        if self.recaptcha:
            raise Reply(json_response(400, {"message": "Are you a bot? If not, please revalidate the captcha."}))
        problem = _name_problem(name)
        if problem:
            raise self._invalid(f"Invalid namespace {name}: {problem}")
        if name in self._reserved:
            raise self._invalid("Username is not available")
        if email:
            if not isinstance(email, str) or len(email) > 254 or not _EMAIL_RE.fullmatch(email):
                raise self._invalid("Invalid email address")
            if email in self._used_emails or email in self._users.values():
                raise self._invalid(f"Email has already been used: {email}")
        return name, email if isinstance(email, str) else None

    def _route_get_org(self, call: _Call) -> Response:
        name = call.params["orgname"]
        org = self._orgs.get(name)
        if org is None:
            raise self._not_found()
        role = self._effective_role(call, name)
        is_admin = role == "admin"
        view: dict[str, Any] = {
            "name": name,
            "email": (org.email or "") if is_admin else "",
            "avatar": {},
            "is_admin": is_admin,
            "is_member": role is not None,
        }
        if role is not None:
            view["teams"] = {
                team_name: {
                    "name": team_name,
                    "description": team.description,
                    "role": team.role,
                    "avatar": {},
                    "can_view": is_admin or call.user in team.members,
                    "repo_count": 0,
                    "member_count": len(team.members),
                    "is_synced": False,
                }
                for team_name, team in org.teams.items()
            }
            view["ordered_teams"] = list(org.teams)
        if is_admin:
            view.update(invoice_email=False, invoice_email_address=None, tag_expiration_s=1209600)
            view["is_free_account"] = True
        return json_response(200, view)

    def _route_delete_org(self, call: _Call) -> Response:
        name = call.params["orgname"]
        self._require_admin(call, name)
        del self._orgs[name]
        self._reserved.add(name)  # HEAD keeps the name until the namespace GC worker purges it
        return Response(204)

    def _route_get_org_member(self, call: _Call) -> Response:
        org_name, member = call.params["orgname"], call.params["membername"]
        org = self._require_admin(call, org_name)
        if not self._account_exists(member):
            raise self._not_found()
        teams = [team_name for team_name, team in org.teams.items() if member in team.members]
        if not teams and not member.startswith(f"{org_name}+"):
            raise self._not_found()  # robots of the org are members even without a team
        view = {
            "name": member,
            "kind": "robot" if "+" in member else "user",
            "avatar": {},
            "teams": [{"name": team_name, "avatar": {}} for team_name in teams],
            "repositories": [],
        }
        return json_response(200, view)

    def _route_create_robot(self, call: _Call) -> Response:
        org_name, short = call.params["orgname"], call.params["robot_shortname"]
        org = self._require_admin(call, org_name)
        if self.robots_disabled:
            raise self._invalid("Robot accounts have been disabled. Please contact your administrator.")
        problem = _name_problem(short)
        if problem:
            raise self._invalid(f"The name for the robot '{short}' is invalid: {problem}")
        if short in org.robots:
            raise self._invalid(f"Existing robot with name: {org_name}+{short}")
        body = call.body if isinstance(call.body, dict) else {}
        robot = _Robot(
            _new_token(),
            formatdate(),
            description=body.get("description") or "",
            metadata=body.get("unstructured_metadata") or {},
        )
        org.robots[short] = robot
        return json_response(201, self._robot_view(org_name, short, robot, metadata=True))

    def _route_get_robot(self, call: _Call) -> Response:
        org_name, short = call.params["orgname"], call.params["robot_shortname"]
        robot = self._robot(self._require_admin(call, org_name), short)
        return json_response(200, self._robot_view(org_name, short, robot, metadata=True))

    def _route_delete_robot(self, call: _Call) -> Response:
        org_name, short = call.params["orgname"], call.params["robot_shortname"]
        org = self._require_admin(call, org_name)
        self._robot(org, short)
        del org.robots[short]
        for team in org.teams.values():  # memberships go with the robot
            team.members = [m for m in team.members if m != f"{org_name}+{short}"]
        return Response(204)

    def _route_regenerate_robot(self, call: _Call) -> Response:
        org_name, short = call.params["orgname"], call.params["robot_shortname"]
        robot = self._robot(self._require_admin(call, org_name), short)
        robot.token = _new_token()
        return json_response(200, self._robot_view(org_name, short, robot, metadata=False))

    def _route_put_team(self, call: _Call) -> Response:
        org_name, team_name = call.params["orgname"], call.params["teamname"]
        org = self._require_admin(call, org_name)
        body = self._object(call.body)
        if "role" not in body:
            raise self._invalid("'role' is a required property")
        if body["role"] not in _ROLES:
            raise self._invalid(f"{body['role']!r} is not one of {list(_ROLES)!r}")
        team = org.teams.get(team_name)
        new_team = team is None
        if team is None:
            problem = _name_problem(team_name, length_text="Team")
            if problem:
                raise _message(f"Invalid team name {team_name}: {problem}")
            team = org.teams[team_name] = _Team(body["role"], body.get("description", ""))
        else:
            if "description" in body:
                team.description = body["description"]
            if team.role == "admin" and body["role"] != "admin":
                admin_teams = {n for n, t in org.teams.items() if t.role == "admin" and call.user in t.members}
                if admin_teams <= {team_name}:
                    raise _message(
                        f"Cannot remove admin from team '{team_name}' because calling user "
                        f"would no longer have admin on org '{org_name}'"
                    )
            team.role = body["role"]
        view = {
            "name": team_name,
            "description": team.description,
            "can_view": True,
            "role": team.role,
            "avatar": {},
            "new_team": new_team,
        }
        return json_response(200, view)

    def _route_list_team_members(self, call: _Call) -> Response:
        org_name, team_name = call.params["orgname"], call.params["teamname"]
        role = self._effective_role(call, org_name)
        team = self._orgs[org_name].teams.get(team_name) if role is not None else None
        is_admin = role == "admin"
        if not is_admin and (team is None or call.user not in team.members):  # ViewTeamPermission
            raise self._unauthorized(call)
        if team is None:
            raise self._not_found()
        members = [_member_view(name, invited=False) for name in team.members]
        if is_admin and _truthy(call.query.get("includePending", "false")):
            members += [_member_view(name, invited=True) for name in team.invites]
        return json_response(200, {"name": team_name, "members": members, "can_edit": is_admin})

    def _route_put_team_member(self, call: _Call) -> Response:
        params = call.params
        org_name, team_name, member = params["orgname"], params["teamname"], params["membername"]
        org = self._require_admin(call, org_name)
        team = org.teams.get(team_name)
        if team is None:
            raise self._not_found()
        if not self._account_exists(member):
            raise self._invalid("Unknown user")
        # data/model/team.py add_or_invite_to_team; invites need FEATURE_MAILING (and REQUIRE_TEAM_INVITE).
        invite = False
        if self.mailing and "+" in member:
            if not member.startswith(f"{org_name}+"):
                raise _message("Cannot add the specified robot to this team, as it is not a member of the organization")
        elif self.mailing:
            invite = not any(member in t.members for t in org.teams.values())
        if invite:
            team.invites.append(member)  # no uniqueness constraint: a repeated PUT invites again
        elif member in team.members:
            raise _message(f"User {member} is already a member of team {team_name}")
        else:
            team.members.append(member)
        return json_response(200, _member_view(member, invited=invite))

    def _route_list_repositories(self, call: _Call) -> Response:
        # endpoints/api/repository.py RepositoryList.get: scope repo:read (implied by repo:write and repo:admin);
        # namespace, starred or public is required; pages carry an opaque next_page token.
        if call.user is None or not call.scopes & {"repo:read", "repo:write", "repo:admin"}:
            raise self._unauthorized(call)
        namespace = call.query.get("namespace")
        if not namespace:
            raise self._invalid("namespace, starred or public are required for this API call")
        org = self._orgs.get(namespace)
        visible: list[tuple[str, bool]] = []
        if org is not None:
            member = self._role_in(call.user, namespace) is not None
            visible = [(name, public) for name, public in org.repositories.items() if public or member]
        start = int(call.query.get("next_page") or 0)
        page = visible[start : start + self.repositories_page_size]
        views = [
            {"namespace": namespace, "name": name, "description": "", "is_public": public, "kind": "image",
             "state": "NORMAL", "is_starred": False}
            for name, public in page
        ]  # fmt: skip
        body: dict[str, Any] = {"repositories": views}
        if start + self.repositories_page_size < len(visible):
            body["next_page"] = str(start + self.repositories_page_size)  # real Quay: an encrypted token
        return json_response(200, body)

    def _route_delete_repository(self, call: _Call) -> Response:
        # require_repo_admin: org admins administer every repository of the org; the scope repo:admin is needed.
        namespace, _, name = call.params["repository"].partition("/")
        if call.user is None or "repo:admin" not in call.scopes:
            raise self._unauthorized(call)
        if namespace not in self._orgs or self._role_in(call.user, namespace) != "admin":
            raise self._unauthorized(call)
        org = self._orgs[namespace]
        if name not in org.repositories:
            raise self._not_found()
        del org.repositories[name]
        org.tags.pop(name, None)
        return Response(204)

    def _repository_for(self, call: _Call, *, write: bool) -> tuple[_Org, str]:
        """require_repo_read / require_repo_write: the scope, then the permission (public repositories are
        readable by all; org admins read and write every repository, other members read), then the lookup."""
        namespace, _, name = call.params["repository"].partition("/")
        scopes = {"repo:write", "repo:admin"} if write else {"repo:read", "repo:write", "repo:admin"}
        org = self._orgs.get(namespace)
        if call.user is not None and not call.scopes & scopes:
            raise self._unauthorized(call)
        role = self._role_in(call.user, namespace) if call.user and org is not None else None
        public = org is not None and org.repositories.get(name) is True
        allowed = role == "admin" if write else role is not None or public
        if not allowed:
            raise self._unauthorized(call)
        if org is None or name not in org.repositories:
            raise self._not_found()
        return org, name

    def _route_list_tags(self, call: _Call) -> Response:
        # endpoints/api/tag.py ListRepositoryTags.get: limit (default 50, at most 100), page from 1, newest first;
        # onlyActiveTags defaults to false: the full tag history, dead tags included.
        org, name = self._repository_for(call, write=False)
        try:
            limit = min(100, max(1, int(call.query.get("limit") or 50)))
            page = max(1, int(call.query.get("page") or 1))
        except ValueError:
            raise self._invalid("limit and page must be integers") from None
        now = time.time()
        history = org.tags.get(name, [])
        if _truthy(call.query.get("onlyActiveTags", "false")):
            history = [t for t in history if t.alive(now)]
        ordered = sorted(history, key=lambda t: (-t.start_ts, t.name))
        chunk = ordered[(page - 1) * limit : page * limit + 1]  # one more than a page tells has_additional
        views = [_tag_view(tag) for tag in chunk[:limit]]
        return json_response(200, {"tags": views, "page": page, "has_additional": len(chunk) > limit})

    def _route_delete_tag(self, call: _Call) -> Response:
        # RepositoryTag.delete: the live tag ends now (204); a missing or already dead tag is 404.
        org, name = self._repository_for(call, write=True)
        now = time.time()
        live = [t for t in org.tags.get(name, []) if t.name == call.params["tag"] and t.alive(now)]
        if not live:
            raise self._not_found()
        for tag in live:
            tag.end_ts = int(now)
        return Response(204)

    # --- routes: auto-prune policies (issue 20; endpoints/api/policy.py and data/model/autoprune.py) -------------

    def _route_autoprune_list(self, call: _Call) -> Response:
        org_name = call.params["orgname"]
        self._require_admin(call, org_name)
        return json_response(200, {"policies": self._policy_views(org_name)})

    def _route_autoprune_create(self, call: _Call) -> Response:
        org_name = call.params["orgname"]
        if org_name not in self._orgs:
            raise self._not_found()  # the namespace lookup fails before the permission check answers
        self._require_admin(call, org_name)
        config = self._prune_config(call.body)
        existing = self._prune_policies.setdefault(org_name, {})
        if existing and not self.several_prune_policies:
            raise self._invalid("Policy for this namespace already exists, delete existing to create new policy")
        if any(_same_policy(policy, config) for policy in existing.values()):
            raise self._invalid(
                "Existing policy with same values for this namespace, duplicate policies are not permitted"
            )
        uuid = str(uuid4())
        existing[uuid] = {"uuid": uuid, **config}
        return json_response(201, {"uuid": uuid})

    def _route_autoprune_get(self, call: _Call) -> Response:
        return json_response(200, dict(self._prune_policy(call)))

    def _route_autoprune_update(self, call: _Call) -> Response:
        policy = self._prune_policy(call)
        config = self._prune_config(call.body)
        others = [p for uuid, p in self._prune_policies[call.params["orgname"]].items() if uuid != policy["uuid"]]
        if any(_same_policy(other, config) for other in others):
            raise self._invalid(
                "Existing policy with same values for this namespace, duplicate policies are not permitted"
            )
        policy.update(config)
        return Response(204)

    def _route_autoprune_delete(self, call: _Call) -> Response:
        policy = self._prune_policy(call)
        del self._prune_policies[call.params["orgname"]][policy["uuid"]]
        return json_response(200, {"uuid": policy["uuid"]})

    def _policy_views(self, org: str) -> list[dict[str, Any]]:
        return [dict(policy) for policy in self._prune_policies.get(org, {}).values()]

    def _prune_policy(self, call: _Call) -> dict[str, Any]:
        org_name, uuid = call.params["orgname"], call.params["policy_uuid"]
        self._require_admin(call, org_name)
        policy = self._prune_policies.get(org_name, {}).get(uuid)
        if policy is None:
            raise self._not_found()
        return policy

    def _prune_config(self, body: Any) -> dict[str, Any]:
        """The checks of AutoPrunePolicyConfig and assert_valid_namespace_autoprune_policy; the stored config."""
        body = self._object(body)
        for required in ("method", "value"):
            if required not in body:
                raise self._invalid(f"'{required}' is a required property")
        method, value = body["method"], body["value"]
        if method not in ("number_of_tags", "creation_date"):
            raise self._invalid("Invalid method provided")
        if method == "number_of_tags":
            valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
        else:
            valid = isinstance(value, str) and _TIMEDELTA_RE.match(value) is not None
        if not valid:
            raise self._invalid("Invalid value given for method type")
        pattern = body.get("tagPattern")
        if pattern is not None:
            pattern = str(pattern).strip()
            if not pattern:
                raise self._invalid("tag_pattern cannot be empty")
        return {"method": method, "value": value, "tagPattern": pattern,
                "tagPatternMatches": bool(body.get("tagPatternMatches", True))}  # fmt: skip


def _tag_view(tag: _Tag) -> dict[str, Any]:
    """endpoints/api/tag.py _tag_dict: times in epoch seconds, last_modified and expiration as RFC 2822 dates."""
    view: dict[str, Any] = {"name": tag.name, "reversion": False, "start_ts": tag.start_ts,
                            "manifest_digest": tag.digest, "is_manifest_list": False, "size": tag.size,
                            "last_modified": formatdate(tag.start_ts)}  # fmt: skip
    if tag.end_ts is not None:
        view.update(end_ts=tag.end_ts, expiration=formatdate(tag.end_ts))
    return view


def _same_policy(policy: dict[str, Any], config: dict[str, Any]) -> bool:
    """check_existing_policy: the same method, value, tag pattern and tagPatternMatches."""
    keys = ("method", "value", "tagPattern", "tagPatternMatches")
    return all(policy.get(key) == config.get(key) for key in keys)


# --- HTTP plumbing ----------------------------------------------------------------------------------------


class _Handler(FakeApiHandler):
    def do_GET(self) -> None:
        fake = self.server.fake
        with fake._lock:
            fake.in_flight += 1
            fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
        try:
            self.serve()
        finally:
            with fake._lock:
                fake.in_flight -= 1

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def call_fake(self, method: str, split: SplitResult, body: bytes) -> Response:
        authorization = self.headers.get("Authorization", "")
        return self.server.fake._handle(method, split.path, split.query, authorization, body)
