"""Quay API v1 client: organizations, robots, teams and team members (facts: ../shared/facts/quay-api.md)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from urllib3.util.retry import Retry

from provision import __version__, answers, httpretry
from provision.errors import ProvisionError
from provision.registries.quay.models import Organization, Repository, Robot, TeamMember, User

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = (5.0, 30.0)
TOKEN_HINT = "create an OAuth token with the scopes org:admin and user:admin and pass it in QUAY_TOKEN or --token-file"


class QuayError(ProvisionError):
    """A Quay API call failed; carries the HTTP status, Quay's error_type, and the method and path."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        method: str | None = None,
        path: str | None = None,
        done: tuple[str, ...] = (),
        hint: str | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(message, done=done, hint=hint)
        self.status = status
        self.error_type = error_type
        self.method = method
        self.path = path
        self.scope = scope  # the token scope the call needs, when Quay refused it for want of a scope


def error_message(response: requests.Response) -> tuple[str, str | None]:
    """Quay's error text and error_type from any of its body shapes (problem+json, message, error, v2, HTML)."""
    try:
        body = response.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", response.text or "")
        text = " ".join(text.split())[:120]
        reason = response.reason or f"HTTP {response.status_code}"
        return (f"{reason} (non-JSON answer: {text!r})" if text else reason), None
    if isinstance(body, str):
        return body, None
    if isinstance(body, dict):
        for key in ("message", "error_message", "detail", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key], body.get("error_type")
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
            return str(errors[0]["message"]), None
    return response.reason or f"HTTP {response.status_code}", None


class QuayClient:
    """One authenticated session to a Quay server's /api/v1.

    Retry policy (a urllib3 Retry, default `default_retry()`): connection errors, timeouts, 429 and 5xx are
    retried with capped exponential backoff and jitter, honouring Retry-After. Reads and the idempotent team PUT
    are simply re-sent. Writes whose repetition is not harmless (creating an organization or a robot, adding a
    member: a second PUT re-sends an invitation, regenerating a token) are re-sent only after reading the state
    again shows that the first attempt did not land.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        deadline: httpretry.Deadline | None = None,
    ) -> None:
        if not httpretry.header_safe(token):
            # The CLI refuses such tokens with their source; this keeps library callers from a traceback that
            # would quote the header, token included.
            raise QuayError("the Quay token contains characters an HTTP header cannot carry", hint=TOKEN_HINT)
        self.api_url = api_url.rstrip("/")
        self._base = f"{self.api_url}/api/v1"
        self._timeout = timeout
        self._deadline = deadline
        self._retry = retry if retry is not None else httpretry.default_retry()
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "User-Agent": f"provision/{__version__}",
                "Accept": "application/json",
            }
        )
        self.request_count = 0

    def close(self) -> None:
        self._session.close()

    # --- transport -------------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        recover: Callable[[], T | None] | None = None,
    ) -> requests.Response | T:
        """Send one call with the retry policy; `recover` re-reads the state before a write is re-sent.

        Returns the response, or what `recover` found when an earlier attempt turned out to have landed.
        """
        self.request_count += 1
        try:
            return httpretry.send(
                self._session,
                method,
                self._base + path,
                retry=self._retry,
                timeout=self._timeout,
                recover=recover,
                deadline=self._deadline,
                params=params,
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
            )
        except httpretry.Unreachable as exc:
            hint = (
                "check that the server is up (and --api-url), or allow more time with --deadline"
                if exc.deadline is not None
                else "check --api-url and the network, then re-run the same command"
            )
            raise QuayError(
                f"cannot reach Quay at {self.api_url}: {method} {path}: {exc}", method=method, path=path, hint=hint
            ) from exc.error

    def _check(self, response: requests.Response, method: str, path: str) -> Any:
        """Return the decoded body of a 2xx answer; raise QuayError for anything else."""
        if 200 <= response.status_code < 300:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        message, error_type = error_message(response)
        hint = None
        scope = None
        text = f"Quay {method} {path} failed with HTTP {response.status_code}: {message}"
        if response.status_code == 403 and "CSRF" in message:
            # Quay falls back to anonymous auth when it cannot validate a token: writes then fail the CSRF check.
            message, hint = "Quay did not accept the token (invalid or expired)", TOKEN_HINT
            text = f"Quay {method} {path} failed with HTTP {response.status_code}: {message}"
        elif response.status_code == 403 and error_type == "insufficient_scope":
            scope = scope_for(method, path)
            parts = path.split("/")
            namespace = parts[2] if len(parts) > 2 and parts[2] else None
            text = (
                f"Quay refused {method} {path} (HTTP 403 insufficient_scope): this call needs the token scope "
                f"{scope}, which the token lacks" + (f" (or you do not administer {namespace!r})" if namespace else "")
            )
            hint = scope_hint(scope)
        raise QuayError(
            text,
            status=response.status_code,
            error_type=error_type,
            method=method,
            path=path,
            hint=hint,
            scope=scope,
        )

    def _found(self, method: str, path: str) -> bool:
        """Send a call whose 404 means "no such thing": False for 404, True for success; QuayError otherwise."""
        response = self._request(method, path)
        assert isinstance(response, requests.Response)
        if response.status_code == 404:
            return False
        self._check(response, method, path)
        return True

    def _model(self, build: Callable[[Any], T], body: Any, method: str, path: str) -> T:
        return answers.parse(build, body, server=f"Quay at {self.api_url}", call=f"{method} /api/v1{path}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        assert isinstance(response, requests.Response)
        return self._check(response, method, path)

    # --- for the kind's other API modules (autoprune.py): the same transport, retries and error texts ----------

    def send(self, method: str, path: str, *, body: Any = None, recover: Callable[[], Any] | None = None) -> Any:
        """One call: its decoded 2xx answer (QuayError otherwise), or what `recover` found when an earlier attempt
        turned out to have landed."""
        result = self._request(method, path, body=body, recover=recover)
        return self._check(result, method, path) if isinstance(result, requests.Response) else result

    def get_or_none(self, path: str) -> Any:
        """A GET whose 404 means "no such thing" (None), else its decoded answer."""
        response = self._request("GET", path)
        assert isinstance(response, requests.Response)
        return None if response.status_code == 404 else self._check(response, "GET", path)

    # --- reads -----------------------------------------------------------------------------------------------

    def get_user(self) -> User:
        """The token's user. Raises QuayError when the token is invalid, expired or has no user scope."""
        try:
            return self._model(User.from_dict, self._call("GET", "/user/"), "GET", "/user/")
        except QuayError as exc:
            if exc.status == 401:
                raise QuayError(
                    "Quay did not accept the token: it is invalid, expired, or lacks the user:admin scope",
                    status=401,
                    error_type=exc.error_type,
                    method="GET",
                    path="/user/",
                    hint=TOKEN_HINT,
                ) from exc
            raise

    def get_org(self, org: str) -> Organization | None:
        """The organization, or None when no organization has that name (it may still be a user's)."""
        path = f"/organization/{_seg(org)}"
        response = self._request("GET", path)
        assert isinstance(response, requests.Response)
        if response.status_code == 404:
            return None
        return self._model(Organization.from_dict, self._check(response, "GET", path), "GET", path)

    def get_robot(self, org: str, short: str) -> Robot | None:
        """The robot with its token, or None when it does not exist (Quay answers 400, not 404)."""
        path = f"/organization/{_seg(org)}/robots/{_seg(short)}"
        response = self._request("GET", path)
        assert isinstance(response, requests.Response)
        if response.status_code in (400, 404) and "could not find robot" in error_message(response)[0].lower():
            return None
        return self._model(Robot.from_dict, self._check(response, "GET", path), "GET", path)

    def user_exists(self, name: str) -> bool:
        """Whether a Quay user of that name exists (GET /users/{name}: 404 for unknown names, orgs and robots)."""
        return self._found("GET", f"/users/{_seg(name)}")

    def list_team_members(self, org: str, team: str) -> list[TeamMember] | None:
        """Members of a team including pending invitations, or None when the team does not exist."""
        path = f"/organization/{_seg(org)}/team/{_seg(team)}/members"
        response = self._request("GET", path, params={"includePending": "true"})
        assert isinstance(response, requests.Response)
        if response.status_code == 404:
            return None
        data = self._check(response, "GET", path)

        def members(body: dict[str, Any]) -> list[TeamMember]:
            return [TeamMember.from_dict(m) for m in body.get("members") or [] if isinstance(m, dict)]

        return self._model(members, data, "GET", path)

    # --- writes ----------------------------------------------------------------------------------------------

    def create_org(self, org: str, *, email: str | None) -> None:
        """Create an organization. Raises QuayError with a way out for each refusal quay.io is known for."""
        path = "/organization/"  # the trailing slash is required: without it Quay answers 308
        body: dict[str, str] = {"name": org}
        if email:
            body["email"] = email

        def landed() -> Organization | None:
            found = self.get_org(org)
            return found if found is not None and found.is_admin else None  # someone else's is not our landing

        result = self._request("POST", path, body=body, recover=landed)
        if not isinstance(result, requests.Response):
            return
        try:
            self._check(result, "POST", path)
        except QuayError as exc:
            if "already exists" in str(exc).lower() or (exc.status == 400 and _known_org_refusal(exc) is None):
                # A concurrent run may have created it between our read and this write: if it is ours now, go on.
                # Quay checks the name, then inserts: two creates in between both pass the check, and the loser's
                # insert fails with the database's own text (SQLite: "UNIQUE constraint failed: user.username").
                found = self.get_org(org)
                if found is not None and found.is_admin:
                    log.info("organization %s was created meanwhile (by another run?); it is yours, going on", org)
                    return
            raise _org_refusal(exc, org) from exc

    def create_robot(self, org: str, short: str, *, description: str) -> Robot:
        """Create a robot account (no repository permissions) and return it with its token."""
        path = f"/organization/{_seg(org)}/robots/{_seg(short)}"
        result = self._request(
            "PUT", path, body={"description": description}, recover=lambda: self.get_robot(org, short)
        )
        if isinstance(result, Robot):
            return result
        assert isinstance(result, requests.Response)
        try:
            return self._model(Robot.from_dict, self._check(result, "PUT", path), "PUT", path)
        except QuayError as exc:
            if "existing robot" in str(exc).lower():
                # Created meanwhile (another run): reuse it, never regenerate implicitly.
                robot = self.get_robot(org, short)
                if robot is not None:
                    return robot
            if "disabled" in str(exc).lower():
                exc.hint = "this Quay server does not allow robot accounts; ask its administrators to allow them"
            raise

    def regenerate_robot_token(self, org: str, short: str, *, old_token: str) -> Robot:
        """Give the robot a new token; the old one stops working."""
        path = f"/organization/{_seg(org)}/robots/{_seg(short)}/regenerate"

        def rotated() -> Robot | None:
            robot = self.get_robot(org, short)
            return robot if robot is not None and robot.token != old_token else None

        result = self._request("POST", path, recover=rotated)
        if isinstance(result, Robot):
            return result
        assert isinstance(result, requests.Response)
        return self._model(Robot.from_dict, self._check(result, "POST", path), "POST", path)

    def put_team(self, org: str, team: str, *, role: str, description: str = "") -> None:
        """Create the team, or set its role (an idempotent PUT)."""
        path = f"/organization/{_seg(org)}/team/{_seg(team)}"
        self._call("PUT", path, body={"role": role, "description": description})

    def add_team_member(self, org: str, team: str, name: str) -> TeamMember:
        """Add a user or robot to a team. Users outside the organization are invited (`invited` is True).

        Callers check the member list first: repeating this for a pending user sends another invitation.
        """
        path = f"/organization/{_seg(org)}/team/{_seg(team)}/members/{_seg(name)}"

        def landed() -> TeamMember | None:
            return next((m for m in self.list_team_members(org, team) or () if m.name == name), None)

        result = self._request("PUT", path, recover=landed)
        if isinstance(result, TeamMember):
            return result
        assert isinstance(result, requests.Response)
        try:
            return self._model(TeamMember.from_dict, self._check(result, "PUT", path), "PUT", path)
        except QuayError as exc:
            if "already a member" in str(exc):
                return TeamMember(name=name, is_robot="+" in name, invited=False)
            if "unknown user" in str(exc).lower():
                exc.hint = f"re-run with the right user name instead of {name!r} (an existing Quay user, not an e-mail)"
            raise

    # --- removal (provision remove quay) ----------------------------------------------------------------------

    def delete_robot(self, org: str, short: str) -> bool:
        """Delete a robot with its team memberships and permissions. Returns False when it was already gone.

        Quay answers a missing robot with 400 "Could not find robot" (not 404): that is the idempotent case.
        """
        path = f"/organization/{_seg(org)}/robots/{_seg(short)}"
        response = self._request("DELETE", path)
        assert isinstance(response, requests.Response)
        if response.status_code in (400, 404) and "could not find robot" in error_message(response)[0].lower():
            return False
        self._check(response, "DELETE", path)
        return True

    def list_repositories(self, org: str, *, prefix: str = "") -> list[Repository]:
        """The organization's image repositories whose name starts with `prefix`, every page.

        Quay pages with an opaque `next_page` token (answer key and query parameter of the same name); it filters
        by namespace but not by name, so the prefix is applied here. Needs the repo:read scope.
        """
        found: list[Repository] = []
        params = {"namespace": org}
        while True:
            data = self._call("GET", "/repository", params=params)
            for item in data.get("repositories") or () if isinstance(data, dict) else ():
                if isinstance(item, dict) and str(item.get("name", "")).startswith(prefix):
                    found.append(Repository.from_dict(item, namespace=org))
            token = data.get("next_page") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                return found
            params = {"namespace": org, "next_page": token}

    def delete_repository(self, org: str, name: str) -> bool:
        """Delete a repository and its images (Quay marks it for garbage collection at once). Returns False when
        it was already gone. Needs the repo:admin scope."""
        # The repository path keeps its slash: Quay's route is repository/<namespace>/<name>.
        return self._found("DELETE", f"/repository/{_seg(org)}/{_seg(name)}")


def scope_for(method: str, path: str) -> str:
    """The OAuth scope a call of this client needs (facts: quay-api.md §3; path as under /api/v1)."""
    if path.startswith("/user/"):
        return "user:read"
    if path.startswith("/repository"):
        if method == "GET":
            return "repo:read"
        return "repo:admin"  # deletion, visibility
    if path == "/organization/" and method == "POST":
        return "user:admin"
    if path.startswith("/organization/") and path.endswith("/permissions"):
        return "user:admin"  # a robot's repository permissions
    return "org:admin"  # robots, teams, members, prototypes, deleting the organization


def scope_hint(scope: str) -> str:
    """The way out of a refusal for want of `scope`: a token that has it (running again with the same token fails
    the same way)."""
    needed = ["org:admin", "user:admin"] + ([scope] if scope not in ("org:admin", "user:admin", "user:read") else [])
    return (
        f"create an OAuth token with the scopes {', '.join(needed)} and pass it in QUAY_TOKEN or --token-file; "
        "with it, the same command continues from where this one stopped"
    )


def _seg(value: str) -> str:
    return quote(value, safe="+")


_ORG_REFUSALS = (
    "are you a bot", "email address is required", "invalid email", "email has already been used", "already exists",
    "not available", "invalid namespace",
)  # fmt: skip


def _known_org_refusal(exc: QuayError) -> str | None:
    """The refusal of Quay's own checks that `exc` is (lower case), or None for anything else (a database error)."""
    lower = str(exc).lower()
    return next((text for text in _ORG_REFUSALS if text in lower), None)


def _org_refusal(exc: QuayError, org: str) -> QuayError:
    """Turn quay.io's known refusals to create an organization into a precise message and a way out."""
    text = str(exc)
    lower = text.lower()
    if "are you a bot" in lower:
        exc.message = f"Quay refused to create organization {org!r} through the API (reCAPTCHA: 'Are you a bot?')"
        exc.hint = "create the organization in the Quay web UI, then re-run this command: it continues from there"
    elif "email address is required" in lower:
        exc.hint = "re-run with --email and an address for the organization"
    elif "invalid email" in lower:
        exc.message = f"Quay refused the e-mail address for organization {org!r} as invalid"
        exc.hint = "re-run with a valid --email address (name@domain.example); the same address fails again"
    elif "email has already been used" in lower:
        exc.message = f"Quay refused the e-mail address for organization {org!r}: it is already used by an account"
        exc.hint = (
            "re-run with an --email address no Quay user uses (quay.io refuses your own account's address); "
            "the same address fails again"
        )
    elif "already exists" in lower:
        exc.message = f"the name {org!r} is taken by a user account or by an organization you do not administer"
        exc.hint = "re-run with another --org (the same name fails again)"
    elif "not available" in lower:
        exc.message = f"the name {org!r} is reserved by a recently deleted organization"
        exc.hint = "re-run with another --org, or wait until Quay has purged the deleted organization"
    elif exc.status == 403 and exc.error_type == "insufficient_scope":
        exc.message = f"Quay refused to create organization {org!r}: the token lacks the user:admin scope"
        exc.hint = TOKEN_HINT + " (or create the organization in the web UI and re-run)"
    return exc
