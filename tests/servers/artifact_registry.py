"""A Google stand-in for tests: ``FakeGoogle`` serves the OAuth2 token endpoint and Artifact Registry on 127.0.0.1.

Two parts of Google, enough for ``provision.registries.artifact_registry.client`` to run the real google-auth and
google-cloud-artifact-registry
libraries against it:

- ``POST /token``, the service-account flow of RFC 7523: the form carries a JWT that the client signed with the
  key's private key. The server *verifies* the RS256 signature with the public key registered for that key id,
  checks ``iss``, ``aud`` (Google's token endpoint, which google-auth signs whatever the key's ``token_uri``
  says; or this server's own URI), ``exp``/``iat`` and ``scope``, and issues an opaque access token.
  An unknown, disabled or deleted key gets Google's answer: 400 ``invalid_grant`` / ``Invalid JWT Signature.``.
- ``POST /v1/projects/{p}/locations/{l}/repositories/{r}:testIamPermissions``: needs ``Authorization: Bearer``
  with a token issued above (else 401 UNAUTHENTICATED); an unknown repository is 404 NOT_FOUND; otherwise it
  answers ``{"permissions": [...]}`` with the asked permissions the caller holds (the key is left out when none
  are held, as protobuf JSON does), from ``grants[(service_account_email, repository_name)]``.

Tests make the key with ``make_service_account_key(server)``: a realistic JSON key whose ``token_uri`` is this
server, so the client reaches it through the same seam as production (the key's own ``token_uri``). Standard
library plus ``cryptography`` (a dependency of google-auth).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers.base import LoopbackHandler, LoopbackServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
UPLOAD = "artifactregistry.repositories.uploadArtifacts"
DOWNLOAD = "artifactregistry.repositories.downloadArtifacts"
WRITER = frozenset({UPLOAD, DOWNLOAD, "artifactregistry.repositories.get"})  # roles/artifactregistry.writer, in part
READER = frozenset({DOWNLOAD, "artifactregistry.repositories.get"})
_TEST_IAM = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/repositories/[^/:]+):testIamPermissions$")
_MAX_LIFETIME = 3600  # Google refuses assertions valid for longer than an hour
_CLOCK_SKEW = 300
# google-auth always signs `aud` = Google's token endpoint, whatever the key's token_uri says (service_account.py
# _GOOGLE_OAUTH2_TOKEN_ENDPOINT); Google also takes its older endpoint URLs. This server takes those and its own.
GOOGLE_AUDIENCES = frozenset(
    {
        "https://oauth2.googleapis.com/token",
        "https://www.googleapis.com/oauth2/v4/token",
        "https://accounts.google.com/o/oauth2/token",
    }
)
_MALFORMED = "Invalid JWT: Token must be a short-lived token and in a reasonable format"
_TIMEFRAME = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."


@dataclass
class _Key:
    email: str
    public_key: rsa.RSAPublicKey
    enabled: bool = True


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # percent-decoded, without the query
    query: str
    status: int
    caller: str | None  # service account of the bearer token, for the API
    content_type: str | None
    body: Any  # the JSON body of an API call; None for /token (its form carries the signed assertion)


@dataclass(frozen=True)
class _Error:
    code: int
    status: str
    message: str


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class FakeGoogle(LoopbackServer):
    """Token endpoint + Artifact Registry testIamPermissions, state under one lock, real HTTP/1.1 on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.requests: list[LoggedRequest] = []
        self.grants: dict[tuple[str, str], set[str]] = {}
        self.issued_tokens: dict[str, str] = {}  # access token -> service account email
        self._keys: dict[str, _Key] = {}  # private_key_id -> key
        self._repositories: set[str] = set()
        self._errors: list[_Error] = []  # answered, in order, by the next testIamPermissions calls

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # --- seeding state

    def register_key(self, key_id: str, email: str, public_key: rsa.RSAPublicKey) -> None:
        with self._lock:
            self._keys[key_id] = _Key(email, public_key)

    def disable_key(self, email: str) -> None:
        """Disable every key of this service account: the token endpoint refuses them from now on."""
        with self._lock:
            found = [key for key in self._keys.values() if key.email == email]
            if not found:
                raise ValueError(f"no key registered for {email}")
            for key in found:
                key.enabled = False

    def add_repository(self, project: str, location: str, repository: str) -> str:
        """Create a repository; returns its resource name."""
        name = f"projects/{project}/locations/{location}/repositories/{repository}"
        with self._lock:
            self._repositories.add(name)
        return name

    def grant(self, email: str, repository_name: str, permissions: Iterable[str]) -> None:
        with self._lock:
            if repository_name not in self._repositories:
                raise ValueError(f"unknown repository {repository_name}; call add_repository first")
            self.grants.setdefault((email, repository_name), set()).update(permissions)

    def fail_next(self, code: int, status: str, message: str) -> None:
        """Answer the next testIamPermissions call with this Google error instead of handling it."""
        with self._lock:
            self._errors.append(_Error(code, status, message))

    def paths(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return [(r.method, r.path, r.status) for r in self.requests]

    # --- handlers: (status, JSON body, caller)

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        def refuse(error: str, description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": error, "error_description": description}

        if form.get("grant_type") != [JWT_BEARER]:
            return refuse("unsupported_grant_type", "Invalid grant_type: " + ",".join(form.get("grant_type", [])))
        assertion = (form.get("assertion") or [""])[0]
        parts = assertion.split(".")
        if len(parts) != 3:
            return refuse("invalid_request", _MALFORMED)
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return refuse("invalid_request", _MALFORMED)
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            return refuse("invalid_request", "Invalid JWT: unsupported header")
        with self._lock:
            key = self._keys.get(str(header.get("kid")))
        # Google says "Invalid JWT Signature." for a deleted or disabled key as for a forged signature.
        if key is None or not key.enabled:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        try:
            key.public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != key.email:
            return refuse("invalid_grant", "Invalid JWT: iss does not match the key's service account")
        if claims.get("aud") not in GOOGLE_AUDIENCES | {self.token_uri}:
            return refuse("invalid_grant", "Invalid JWT: Failed audience check.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            return refuse("invalid_grant", "Invalid JWT: iat and exp are required")
        if iat > now + _CLOCK_SKEW or exp < now - _CLOCK_SKEW or exp - iat > _MAX_LIFETIME:
            return refuse("invalid_grant", _TIMEFRAME)
        if not str(claims.get("scope", "")).split():
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self.issued_tokens[token] = key.email
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _test_iam_permissions(
        self, name: str, authorization: str | None, body: bytes
    ) -> tuple[int, dict[str, Any], str | None]:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            caller = self.issued_tokens.get(token) if scheme == "Bearer" else None
        if caller is None:
            message = (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential."
            )
            return 401, _google_error(401, "UNAUTHENTICATED", message), None
        with self._lock:
            if self._errors:
                error = self._errors.pop(0)
                return error.code, _google_error(error.code, error.status, error.message), caller
            known = name in self._repositories
            granted = set(self.grants.get((caller, name), set()))
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), caller
        asked = request.get("permissions") if isinstance(request, dict) else None
        if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
            return 400, _google_error(400, "INVALID_ARGUMENT", "permissions must be a list of strings"), caller
        if not known:
            return 404, _google_error(404, "NOT_FOUND", f"Requested entity was not found: {name}"), caller
        held = [p for p in asked if p in granted]
        return 200, ({"permissions": held} if held else {}), caller


class _Handler(LoopbackHandler):
    def do_POST(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        path = unquote(split.path)
        body = self.read_body()
        caller: str | None = None
        logged_body: Any = None
        if path == "/token":
            form = parse_qs(body.decode("utf-8", "replace"))
            status, payload = fake._token(form)
        elif match := _TEST_IAM.match(path):
            status, payload, caller = fake._test_iam_permissions(
                match.group(1), self.headers.get("Authorization"), body
            )
            try:
                logged_body = json.loads(body or b"null")
            except ValueError:
                logged_body = body.decode("utf-8", "replace")
        else:
            status = 404
            payload = _google_error(404, "NOT_FOUND", f"The requested URL {quote(path)} was not found on this server.")
        fake._log(
            LoggedRequest("POST", path, split.query, status, caller, self.headers.get("Content-Type"), logged_body)
        )
        self._send(status, payload)

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        self.server.fake._log(LoggedRequest("GET", unquote(split.path), split.query, 404, None, None, None))
        self._send(404, _google_error(404, "NOT_FOUND", "not found"))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        self.send_json(status, payload, content_type="application/json; charset=UTF-8")


def make_service_account_key(
    server: FakeGoogle,
    *,
    email: str = "hub-registry-sa@proj.iam.gserviceaccount.com",
    project: str = "proj",
) -> str:
    """A JSON key as the IAM API issues it (multi-line text), its public half registered in `server`.

    The RSA key is fresh each call (2048 bits, as Google's); `token_uri` points at `server`.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = secrets.token_hex(20)
    server.register_key(key_id, email, private_key.public_key())
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21 - 10**20) + 10**20),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": server.token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + quote(email),
        "universe_domain": "googleapis.com",
    }
    return json.dumps(info, indent=2) + "\n"
