"""A stateful Docker Hub API ("2-beta") stand-in for tests: ``FakeDockerHub`` serves real HTTP on 127.0.0.1.

It reproduces the part of hub.docker.com that ``provision`` uses: ``POST /v2/auth/token`` (and the deprecated
``POST /v2/users/login``), personal access tokens (``/v2/access-tokens``) and organization access tokens
(``/v2/orgs/{name}/access-tokens``), following the API reference at docs.docker.com/reference/api/hub/latest and
``shared/facts/docker-hub.md``. The bearer a login issues remembers who it is (a user or an organization) and how it
was obtained ("password", "pat" or "oat"): a bearer from an OAT may not manage tokens. Docker does not document
every error, so some bodies and checks are inferred; each is marked "not documented" or "inferred" where it is made.
Faults (an HTTP status, Docker Hub's 429 with rate-limit headers, a connection reset before or after the request is
handled, a delay) can be injected per method and path.

Tests point the real client at ``FakeDockerHub.url`` instead of mocking ``requests``, so sessions, retries, timeouts
and error parsing run through the same seam as in production. Standard library only.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import SplitResult, parse_qs, unquote

from tests.servers.base import Delay as Delay
from tests.servers.base import FakeApi, FakeApiHandler, Reply, Response, json_response, route_pattern
from tests.servers.base import Interleave as Interleave
from tests.servers.base import LoggedRequest as LoggedRequest
from tests.servers.base import ResetAfter as ResetAfter
from tests.servers.base import ResetBefore as ResetBefore
from tests.servers.base import Status as Status
from tests.servers.dockerhub_repos import ROUTES as REPOSITORY_ROUTES
from tests.servers.dockerhub_repos import RepositoriesMixin, Repository

PAT_SCOPES = ("repo:admin", "repo:write", "repo:read", "repo:public_read")  # createAccessTokenRequest
RESOURCE_TYPES = ("TYPE_REPO", "TYPE_ORG")  # orgAccessTokenResource.type
PLANS = ("personal", "team", "business")
OAT_LIMITS = {"personal": 0, "team": 10, "business": 100}  # per org; expired and inactive tokens count
DEFAULT_PAGE_SIZE = 10  # both list operations declare page_size default 10
MAX_PAGE_SIZE = 100  # documented for the tags list ("Max of 100"); assumed here

BAD_CREDENTIALS = "Incorrect authentication credentials"  # PostUsersLoginErrorResponse example
NO_CREDENTIALS = "Authentication credentials were not provided."
OAT_BEARER_REFUSED = "token issued from organization access token is not allowed"
# Not documented: the wording is a guess; only "OATs need a Team or Business subscription" is documented.
PLAN_REFUSED = "Organization access tokens require a Docker Team or Business subscription"
OAT_LIMIT_REACHED = "Maximum number of organization access tokens reached"
PAT_LABEL_TAKEN = "A token with this label already exists"
OAT_LABEL_TAKEN = "An access token with this label already exists"

_PAT = "/v2/access-tokens/{uuid}"
_OATS = "/v2/orgs/{name}/access-tokens"
_OAT = "/v2/orgs/{org_name}/access-tokens/{access_token_id}"
# (method, path template as in the API reference, handler FakeDockerHub._route_<name>)
_ROUTE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v2/auth/token", "auth_token"),
    ("POST", "/v2/users/login", "users_login"),
    ("GET", "/v2/access-tokens", "list_pats"),
    ("POST", "/v2/access-tokens", "create_pat"),
    ("GET", _PAT, "get_pat"),
    ("PATCH", _PAT, "patch_pat"),
    ("DELETE", _PAT, "delete_pat"),
    ("GET", _OATS, "list_oats"),
    ("POST", _OATS, "create_oat"),
    ("GET", _OAT, "get_oat"),
    ("PATCH", _OAT, "patch_oat"),
    ("DELETE", _OAT, "delete_oat"),
    *REPOSITORY_ROUTES,
)
_PUBLIC = frozenset({"auth_token", "users_login"})  # "security: []": no bearer needed


_COMPILED = [(method, route_pattern(template), name) for method, template, name in _ROUTE_TABLE]


# --- faults -----------------------------------------------------------------------------------------------


# Status, ResetBefore, ResetAfter, Delay and LoggedRequest are shared by the fakes: they live in tests.servers.base
# and are re-exported here ("import X as X"), so tests import them from this module. A Status without a body
# answers with ``{"message": <reason phrase>}``.


@dataclass(frozen=True)
class RateLimited:
    """The Hub API rate limit: 429 JSON with Retry-After (seconds) and X-RateLimit-*; the request is not handled."""

    retry_after: str = "1"


Fault = Status | RateLimited | ResetBefore | ResetAfter | Delay


# --- state ------------------------------------------------------------------------------------------------


@dataclass
class _Pat:
    uuid: str
    secret: str
    label: str
    scopes: list[str]
    is_active: bool
    created_at: datetime
    expires_at: datetime | None
    creator_ip: str = "127.0.0.1"
    creator_ua: str = ""
    last_used: datetime | None = None


@dataclass
class _Oat:
    id: str
    secret: str
    label: str
    description: str
    resources: list[dict[str, Any]]
    created_by: str
    is_active: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = None


@dataclass
class _User:
    password: str | None
    pats: dict[str, _Pat] = field(default_factory=dict)  # uuid -> token, in creation order


@dataclass
class _Org:
    owners: list[str]
    plan: str
    oats: dict[str, _Oat] = field(default_factory=dict)  # id -> token, in creation order


@dataclass(frozen=True)
class _Bearer:
    subject: str  # user name, or org name for an OAT
    via: str  # "password", "pat" or "oat"
    scopes: tuple[str, ...] = ()  # a PAT's scopes, an OAT's resources' scopes (repository routes check them)


@dataclass(frozen=True)
class _Call:
    bearer: _Bearer | None
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    path: str  # raw (not decoded) path, for next/previous links
    client_ip: str
    user_agent: str


def _error(status: int, text: str) -> Reply:
    """The ``{"message": ...}`` body of the reference's 400/403/404 responses."""
    return Reply(json_response(status, {"message": text}))


def _bad_request(text: str) -> Reply:
    return _error(400, text)


def _detail(status: int, text: str) -> Reply:
    """The DRF-style ``{"detail": ...}`` body of authentication failures (PostUsersLoginErrorResponse)."""
    return Reply(json_response(status, {"detail": text, "message": text}))


def _now() -> datetime:
    return datetime.now(UTC)


def _secret(prefix: str) -> str:
    # The reference's example "dckr_oat_7awgM4jG5SQvxcvmNzhKj8PQjxo": a prefix and 27 alphanumerics.
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(27))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _access_token() -> str:
    """JWT-looking (header.payload.signature) but opaque: the payload is random, clients must not decode it."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64(secrets.token_bytes(96))}.{_b64(secrets.token_bytes(64))}"


def _pat_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None  # "2021-07-20T12:00:00.000000Z"


def _oat_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None  # "2022-05-20T00:54:18Z"


def _parse_time(value: object, name: str) -> datetime | None:
    """An optional date-time (null allowed); naive values are read as UTC. Raises a 400 for anything else."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _bad_request(f"{name} must be an RFC 3339 date-time") from None
    else:
        raise _bad_request(f"{name} must be an RFC 3339 date-time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _usable(is_active: bool, expires_at: datetime | None) -> bool:
    return is_active and (expires_at is None or expires_at > _now())


def _validate_resources(value: object, *, required: bool) -> list[dict[str, Any]] | None:
    """createOrgAccessTokenRequest.resources: minItems 1, each {type, path, scopes} (orgAccessTokenResource)."""
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value:
        raise _bad_request("resources must be a non-empty array")
    resources = []
    for item in value:
        if not isinstance(item, dict) or not {"type", "path", "scopes"} <= item.keys():
            raise _bad_request("each resource needs type, path and scopes")
        kind, path, scopes = item["type"], item["path"], item["scopes"]
        if kind not in RESOURCE_TYPES:
            raise _bad_request(f"invalid resource type {kind!r}: must be one of {', '.join(RESOURCE_TYPES)}")
        if not isinstance(path, str) or not path:
            raise _bad_request("resource path must be a non-empty string")
        # Inferred: the scope strings of the access-token reference all start with "scope-".
        if not isinstance(scopes, list) or not scopes:
            raise _bad_request("resource scopes must be a non-empty array")
        for scope in scopes:
            if not isinstance(scope, str) or not scope.startswith("scope-"):
                raise _bad_request(f"invalid scope {scope!r}")
        resources.append({"type": kind, "path": path, "scopes": list(scopes)})
    return resources


# --- the server -------------------------------------------------------------------------------------------


class FakeDockerHub(RepositoriesMixin, FakeApi):
    """Docker Hub API (login, PATs, OATs, repositories and tags: tests/servers/dockerhub_repos.py) with in-memory
    state under one lock, plus fault injection."""

    ROUTES: ClassVar[list[tuple[str, str]]] = [(method, template) for method, template, _ in _ROUTE_TABLE]
    # Docker Hub does not forbid two PATs with the same label. The 409 this switch enables is NOT documented: it
    # exists to exercise a client's "label taken" handling. Set it on an instance (hub.unique_labels = True).
    unique_labels: bool = False

    def __init__(self, *, latency: float = 0.0) -> None:
        super().__init__(_Handler, latency=latency)
        self._users: dict[str, _User] = {}
        self._orgs: dict[str, _Org] = {}
        self._bearers: dict[str, _Bearer] = {}  # access_token -> who and how
        self._repos: dict[tuple[str, str], Repository] = {}  # (namespace, name) -> its tags

    # --- seeding state

    def add_user(self, username: str, *, password: str | None = None) -> None:
        with self._lock:
            if username in self._orgs:
                raise ValueError(f"{username!r} is an organization")
            user = self._users.setdefault(username, _User(password))
            user.password = password

    def add_pat(
        self,
        username: str,
        *,
        label: str,
        scopes: list[str],
        token: str | None = None,
        is_active: bool = True,
        expires_at: datetime | str | None = None,
    ) -> str:
        """Seed a PAT (no validation, so odd states can be built); returns its secret."""
        with self._lock:
            user = self._seeded_user(username)
            pat = _Pat(
                uuid=str(uuid.uuid4()),
                secret=token or _secret("dckr_pat_"),
                label=label,
                scopes=list(scopes),
                is_active=is_active,
                created_at=_now(),
                expires_at=_parse_time(expires_at, "expires_at"),
            )
            user.pats[pat.uuid] = pat
            return pat.secret

    def add_org(self, name: str, *, owners: list[str], plan: str = "team") -> None:
        with self._lock:
            if plan not in PLANS:
                raise ValueError(f"unknown plan {plan!r}; one of {PLANS}")
            if name in self._users:
                raise ValueError(f"{name!r} is a user")
            for owner in owners:
                self._seeded_user(owner)
            self._orgs[name] = _Org(list(owners), plan)

    def add_oat(
        self,
        org: str,
        *,
        label: str,
        resources: list[dict[str, Any]],
        token: str | None = None,
        is_active: bool = True,
        expires_at: datetime | str | None = None,
        description: str = "",
    ) -> str:
        """Seed an OAT (neither the plan nor the limit is checked); returns its secret."""
        with self._lock:
            found = self._seeded_org(org)
            oat = _Oat(
                id=str(uuid.uuid4()),
                secret=token or _secret("dckr_oat_"),
                label=label,
                description=description,
                resources=[dict(r) for r in resources],
                created_by=found.owners[0] if found.owners else "",
                is_active=is_active,
                created_at=_now(),
                expires_at=_parse_time(expires_at, "expires_at"),
            )
            found.oats[oat.id] = oat
            return oat.secret

    def expire_access_tokens(self) -> None:
        """Forget every issued bearer, as if their 10-minute lifetime had passed: the next call is a 401."""
        with self._lock:
            self._bearers.clear()

    def _seeded_user(self, name: str) -> _User:
        if name not in self._users:
            raise ValueError(f"unknown user {name!r}; call add_user first")
        return self._users[name]

    def _seeded_org(self, name: str) -> _Org:
        if name not in self._orgs:
            raise ValueError(f"unknown organization {name!r}; call add_org first")
        return self._orgs[name]

    # --- reading state

    def pats(self, username: str) -> list[dict[str, Any]]:
        """The user's PATs as the API shows them after creation (secret redacted as "***")."""
        with self._lock:
            user = self._users.get(username)
            return [self._pat_view(pat, redact=True) for pat in user.pats.values()] if user else []

    def oats(self, org: str) -> list[dict[str, Any]]:
        """The org's OATs with description and resources, never the secret."""
        with self._lock:
            found = self._orgs.get(org)
            return [self._oat_view(oat, detail=True) for oat in found.oats.values()] if found else []

    def token_secret_valid(self, identifier: str, secret: str) -> bool:
        """Would ``POST /v2/auth/token`` with this identifier (user or org name) and secret succeed?"""
        with self._lock:
            return self._authenticate(identifier, secret, allow_oat=True, touch=False) is not None

    def bearer(self, access_token: str) -> tuple[str, str] | None:
        """(subject, via) of an issued bearer: the user or org name, and "password", "pat" or "oat"."""
        with self._lock:
            found = self._bearers.get(access_token)
            return (found.subject, found.via) if found else None

    # --- faults

    @staticmethod
    def _error_response(status: int, phrase: str) -> Response:
        return json_response(status, {"message": phrase.lower()})

    @staticmethod
    def _own_fault_response(fault: RateLimited) -> Response:
        # The reference: 429 with Retry-After in seconds (docker/docs#22916 fixed the old "X-Retry-After"), and
        # X-RateLimit-Limit / -Remaining / -Reset (a unix time). The limit value and the body are guesses.
        try:
            wait = float(fault.retry_after)
        except ValueError:
            wait = 0.0
        headers = (
            ("Retry-After", fault.retry_after),
            ("X-RateLimit-Limit", "180"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(int(time.time() + wait))),
        )
        return json_response(429, {"message": "rate limit exceeded"}, *headers)

    # --- request handling (called by _Handler)

    def _handle(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes, client_ip: str
    ) -> Response:
        route = next(
            ((name, match) for m, pattern, name in _COMPILED if m == method and (match := pattern.fullmatch(raw_path))),
            None,
        )
        if route is None:
            return json_response(404, {"message": "not found"})  # also a method this fake does not serve
        name, match = route
        params = {key: unquote(value) for key, value in match.groupdict().items()}
        scheme, _, credential = headers.get("Authorization", "").partition(" ")
        with self._lock:
            bearer = self._bearers.get(credential.strip()) if scheme.lower() == "bearer" else None
            if bearer is None and name not in _PUBLIC:
                return _detail(401, NO_CREDENTIALS).response
            try:
                data = json.loads(body) if body.strip() else None
            except ValueError:
                return _bad_request("request body is not valid JSON").response
            call = _Call(
                bearer=bearer,
                params=params,
                query={key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()},
                body=data,
                path=raw_path,
                client_ip=client_ip,
                user_agent=headers.get("User-Agent", ""),
            )
            return self._call_route(name, call)

    def _authenticate(self, identifier: object, secret: object, *, allow_oat: bool, touch: bool) -> _Bearer | None:
        """identifier = a user with its password or an active PAT, or an org with an active OAT."""
        if not isinstance(identifier, str) or not isinstance(secret, str) or not secret:
            return None
        user = self._users.get(identifier)
        if user is not None:
            if user.password is not None and secrets.compare_digest(user.password, secret):
                return _Bearer(identifier, "password")
            for pat in user.pats.values():
                if secrets.compare_digest(pat.secret, secret) and _usable(pat.is_active, pat.expires_at):
                    if touch:
                        pat.last_used = _now()
                    return _Bearer(identifier, "pat", tuple(pat.scopes))
        org = self._orgs.get(identifier)
        if org is not None and allow_oat:
            for oat in org.oats.values():
                if secrets.compare_digest(oat.secret, secret) and _usable(oat.is_active, oat.expires_at):
                    if touch:
                        oat.last_used_at = _now()
                    scopes = tuple(str(x) for r in oat.resources for x in r.get("scopes") or [])
                    return _Bearer(identifier, "oat", scopes)
        return None

    def _issue(self, bearer: _Bearer) -> str:
        token = _access_token()
        self._bearers[token] = bearer
        return token

    @staticmethod
    def _object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad_request("request body must be a JSON object")
        return body

    def _page(self, call: _Call, items: list[Any]) -> tuple[list[Any], str | None, str | None]:
        """page/page_size (defaults 1 and 10); next/previous are full URLs or null. A page past the end is empty."""
        numbers = []
        for key, default in (("page", 1), ("page_size", DEFAULT_PAGE_SIZE)):
            raw = call.query.get(key, str(default))
            if not raw.isdigit() or int(raw) < 1:
                raise _bad_request(f"{key} must be a positive integer")
            numbers.append(int(raw))
        page, size = numbers[0], min(numbers[1], MAX_PAGE_SIZE)
        start = (page - 1) * size
        base = self.url + call.path
        next_url = f"{base}?page={page + 1}&page_size={size}" if start + size < len(items) else None
        previous = f"{base}?page={page - 1}&page_size={size}" if page > 1 else None
        return items[start : start + size], next_url, previous

    # --- PAT helpers

    def _token_owner(self, call: _Call) -> _User:
        """PAT routes: a bearer from the user's password or one of its PATs, never from an OAT."""
        assert call.bearer is not None
        if call.bearer.via == "oat":
            raise Reply(json_response(403, {"detail": OAT_BEARER_REFUSED}))
        return self._users[call.bearer.subject]

    def _pat(self, user: _User, call: _Call) -> _Pat:
        pat = user.pats.get(call.params["uuid"])  # another user's uuid is simply not found
        if pat is None:
            raise _error(404, "access token not found")
        return pat

    @staticmethod
    def _pat_label(value: object) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 100:
            raise _bad_request("token_label must be a string of 1 to 100 characters")
        return value

    def _check_pat_label(self, user: _User, label: str, *, but: str | None = None) -> None:
        # NOT documented: Docker Hub allows duplicate PAT labels; only the unique_labels switch makes this a 409.
        if self.unique_labels and any(p.label == label and p.uuid != but for p in user.pats.values()):
            raise _error(409, PAT_LABEL_TAKEN)

    @staticmethod
    def _pat_view(pat: _Pat, *, redact: bool) -> dict[str, Any]:
        # accessToken: "Token value returned on creation. Later responses redact the value as ***."
        return {
            "uuid": pat.uuid,
            "client_id": "HUB",
            "creator_ip": pat.creator_ip,
            "creator_ua": pat.creator_ua,
            "created_at": _pat_time(pat.created_at),
            "last_used": _pat_time(pat.last_used),
            "generated_by": "manual",
            "is_active": pat.is_active,
            "token": "***" if redact else pat.secret,
            "token_label": pat.label,
            "scopes": list(pat.scopes),
            "expires_at": _pat_time(pat.expires_at),
        }

    # --- OAT helpers

    def _owned_org(self, call: _Call, name: str) -> _Org:
        """OAT routes: an owner authenticated with a password or a PAT, on a Team or Business org."""
        assert call.bearer is not None
        if call.bearer.via == "oat":
            raise Reply(json_response(403, {"detail": OAT_BEARER_REFUSED}))
        org = self._orgs.get(name)
        if org is None:
            raise _error(404, "organization not found")
        if call.bearer.subject not in org.owners:
            raise _error(403, "only organization owners can manage organization access tokens")
        if org.plan == "personal":
            raise _error(403, PLAN_REFUSED)
        return org

    @staticmethod
    def _oat(org: _Org, call: _Call) -> _Oat:
        oat = org.oats.get(call.params["access_token_id"])
        if oat is None:
            raise _error(404, "access token not found")
        return oat

    @staticmethod
    def _oat_label(value: object) -> str:
        if not isinstance(value, str) or not value:
            raise _bad_request("label must be a non-empty string")
        return value

    @staticmethod
    def _check_oat_label(org: _Org, label: str, *, but: str | None = None) -> None:
        # Inferred, not documented: OAT labels are unique within the org (the UI lists tokens by label).
        if any(o.label == label and o.id != but for o in org.oats.values()):
            raise _error(409, OAT_LABEL_TAKEN)

    @staticmethod
    def _oat_view(oat: _Oat, *, detail: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": oat.id,
            "label": oat.label,
            "created_by": oat.created_by,
            "is_active": oat.is_active,
            "created_at": _oat_time(oat.created_at),
            "expires_at": _oat_time(oat.expires_at),
            "last_used_at": _oat_time(oat.last_used_at),
        }
        if detail:  # getOrgAccessTokenResponse adds resources; description is echoed too
            view.update(description=oat.description, resources=[dict(r) for r in oat.resources])
        return view

    # --- routes: one method per entry of _ROUTE_TABLE

    def _route_auth_token(self, call: _Call) -> Response:
        # The reference lists only 200 and 401, so a malformed body is a 401 too.
        body = call.body if isinstance(call.body, dict) else {}
        bearer = self._authenticate(body.get("identifier"), body.get("secret"), allow_oat=True, touch=True)
        if bearer is None:
            raise _detail(401, BAD_CREDENTIALS)
        return json_response(200, {"access_token": self._issue(bearer)})

    def _route_users_login(self, call: _Call) -> Response:
        # Deprecated; "the password or personal access token (PAT)": no OATs here.
        body = call.body if isinstance(call.body, dict) else {}
        bearer = self._authenticate(body.get("username"), body.get("password"), allow_oat=False, touch=True)
        if bearer is None:
            raise Reply(json_response(401, {"detail": BAD_CREDENTIALS}))
        return json_response(200, {"token": self._issue(bearer)})

    def _route_list_pats(self, call: _Call) -> Response:
        user = self._token_owner(call)
        pats = list(user.pats.values())
        chunk, next_url, previous = self._page(call, pats)
        body = {
            "count": len(pats),
            "active_count": sum(1 for p in pats if p.is_active),
            "next": next_url,
            "previous": previous,
            "results": [self._pat_view(p, redact=True) for p in chunk],
        }
        return json_response(200, body)

    def _route_create_pat(self, call: _Call) -> Response:
        user = self._token_owner(call)
        body = self._object(call.body)
        if "token_label" not in body:
            raise _bad_request("token_label is required")
        label = self._pat_label(body["token_label"])
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not scopes:
            raise _bad_request("scopes is required: a non-empty array")
        for scope in scopes:
            if scope not in PAT_SCOPES:
                raise _bad_request(f"invalid scope {scope!r}: valid scopes are {', '.join(PAT_SCOPES)}")
        expires_at = _parse_time(body.get("expires_at"), "expires_at")
        if expires_at is not None and expires_at <= _now():
            raise _bad_request("expires_at must be in the future")  # not documented; assumed
        self._check_pat_label(user, label)
        pat = _Pat(
            uuid=str(uuid.uuid4()),
            secret=_secret("dckr_pat_"),
            label=label,
            scopes=list(scopes),
            is_active=True,
            created_at=_now(),
            expires_at=expires_at,
            creator_ip=call.client_ip,
            creator_ua=call.user_agent,
        )
        user.pats[pat.uuid] = pat
        return json_response(201, self._pat_view(pat, redact=False))

    def _route_get_pat(self, call: _Call) -> Response:
        user = self._token_owner(call)
        return json_response(200, self._pat_view(self._pat(user, call), redact=True))

    def _route_patch_pat(self, call: _Call) -> Response:
        user = self._token_owner(call)
        pat = self._pat(user, call)
        body = self._object(call.body)
        label = self._pat_label(body["token_label"]) if "token_label" in body else None
        if "is_active" in body and not isinstance(body["is_active"], bool):
            raise _bad_request("is_active must be a boolean")
        if label is not None:
            self._check_pat_label(user, label, but=pat.uuid)
            pat.label = label
        if "is_active" in body:
            pat.is_active = body["is_active"]
        return json_response(200, self._pat_view(pat, redact=True))

    def _route_delete_pat(self, call: _Call) -> Response:
        user = self._token_owner(call)
        del user.pats[self._pat(user, call).uuid]
        return Response(204)

    def _route_list_oats(self, call: _Call) -> Response:
        org = self._owned_org(call, call.params["name"])
        oats = list(org.oats.values())
        chunk, next_url, previous = self._page(call, oats)
        body = {
            "total": len(oats),
            "next": next_url,
            "previous": previous,
            "results": [self._oat_view(o, detail=False) for o in chunk],
        }
        return json_response(200, body)

    def _route_create_oat(self, call: _Call) -> Response:
        org = self._owned_org(call, call.params["name"])
        body = self._object(call.body)
        if "label" not in body:
            raise _bad_request("label is required")
        label = self._oat_label(body["label"])
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise _bad_request("description must be a string")
        resources = _validate_resources(body.get("resources"), required=True)
        assert resources is not None
        expires_at = _parse_time(body.get("expires_at"), "expires_at")
        # Documented: 10 (Team) / 100 (Business) per org, expired tokens included. The message is a guess.
        if len(org.oats) >= OAT_LIMITS[org.plan]:
            raise _bad_request(OAT_LIMIT_REACHED)
        self._check_oat_label(org, label)
        assert call.bearer is not None
        oat = _Oat(
            id=str(uuid.uuid4()),
            secret=_secret("dckr_oat_"),
            label=label,
            description=description,
            resources=resources,
            created_by=call.bearer.subject,
            is_active=True,
            created_at=_now(),
            expires_at=expires_at,
        )
        org.oats[oat.id] = oat
        return json_response(201, {**self._oat_view(oat, detail=True), "token": oat.secret})

    def _route_get_oat(self, call: _Call) -> Response:
        org = self._owned_org(call, call.params["org_name"])
        return json_response(200, self._oat_view(self._oat(org, call), detail=True))

    def _route_patch_oat(self, call: _Call) -> Response:
        # updateOrgAccessTokenRequest: label, description, resources, is_active, all optional.
        org = self._owned_org(call, call.params["org_name"])
        oat = self._oat(org, call)
        body = self._object(call.body)
        label = self._oat_label(body["label"]) if "label" in body else None
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad_request("description must be a string")
        resources = _validate_resources(body.get("resources"), required=False)
        if "is_active" in body and not isinstance(body["is_active"], bool):
            raise _bad_request("is_active must be a boolean")
        if label is not None:
            self._check_oat_label(org, label, but=oat.id)
            oat.label = label
        if description is not None:
            oat.description = description
        if resources is not None:
            oat.resources = resources
        if "is_active" in body:
            oat.is_active = body["is_active"]
        return json_response(200, self._oat_view(oat, detail=True))

    def _route_delete_oat(self, call: _Call) -> Response:
        org = self._owned_org(call, call.params["org_name"])
        del org.oats[self._oat(org, call).id]
        return Response(204)


# --- HTTP plumbing ----------------------------------------------------------------------------------------


class _Handler(FakeApiHandler):
    def do_GET(self) -> None:
        self.serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def call_fake(self, method: str, split: SplitResult, body: bytes) -> Response:
        headers = {name: self.headers.get(name, "") for name in ("Authorization", "User-Agent")}
        return self.server.fake._handle(method, split.path, split.query, headers, body, self.client_address[0])
