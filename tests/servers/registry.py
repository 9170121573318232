"""A real Docker registry for tests: CNCF Distribution 2.8 on 127.0.0.1, plus a token issuer and a tiny v2 client.

``DistributionRegistry`` runs the ``docker-registry`` binary of Debian's package (``scripts/install-docker-registry``)
with a config of its own: no auth, ``auth.htpasswd`` (the scheme of a self-hosted registry behind basic auth), or
``auth.token`` pointing at a ``TokenIssuer``. The issuer speaks the Docker registry token protocol
(https://distribution.github.io/distribution/spec/auth/token/) the way Quay, Docker Hub and Artifact Registry do:
HTTP Basic credentials in, an RS256 JWT out, with the requested actions *down-scoped* to what the user may do rather
than refused. So the registry itself decides, as in production, that a read-only robot cannot push.

The JWT header carries the signing certificate as an ``x5c`` chain. Distribution 2.8 (``registry/auth/token/
token.go``, ``VerifySigningKey``) tries ``x5c`` first and verifies the leaf against the ``rootcertbundle`` with
``x509.Certificate.Verify``; a self-signed certificate that is itself in the bundle is a valid one-element chain.
That path is the same in distribution 3, whereas the ``kid`` alternative changed format (a libtrust fingerprint in
2.8, an RFC 7638 thumbprint in 3.x), so ``x5c`` keeps this fixture independent of the registry's version.

``push_and_pull`` is a minimal v2 client that uses only a docker client config (as binderhub-service renders it for
build pods) to push a two-blob image and read it back: what a build pod's ``docker push`` needs from the
credentials under test, without a docker daemon. Tests hand these servers' URLs to the code under test instead of
mocking ``requests`` or ``subprocess``.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urljoin, urlsplit

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.servers.base import LocalService, LoopbackHandler, LoopbackServer

DEFAULT_BINARY = "/usr/bin/docker-registry"
INSTALL_HINT = "run scripts/install-docker-registry (scripts/test does)"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
_CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_START_TIMEOUT = 15.0
_HTTP_TIMEOUT = 10.0
_TOKEN_LIFETIME = 300
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


# --- the registry -----------------------------------------------------------------------------------------


class DistributionRegistry(LocalService):
    """``docker-registry serve`` on a free 127.0.0.1 port with filesystem storage in a temporary directory.

    ``htpasswd`` (user -> password) turns on basic auth, ``token`` turns on bearer tokens from that (started)
    issuer; with neither the registry is open. ``binary`` defaults to ``$DOCKER_REGISTRY_BIN`` or
    ``/usr/bin/docker-registry``; a missing binary fails the test (never skips it).
    """

    def __init__(
        self,
        *,
        htpasswd: dict[str, str] | None = None,
        token: TokenIssuer | None = None,
        binary: str | None = None,
        delete_enabled: bool = True,
    ) -> None:
        if htpasswd is not None and token is not None:
            raise ValueError("choose htpasswd or token auth, not both")
        self.htpasswd = htpasswd
        self.token = token
        self.binary = binary or os.environ.get("DOCKER_REGISTRY_BIN") or DEFAULT_BINARY
        self.delete_enabled = delete_enabled  # storage.delete.enabled: manifests may be deleted by digest
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # --- lifecycle

    def start(self) -> DistributionRegistry:
        if self._process is not None:
            raise RuntimeError("DistributionRegistry is already running")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            pytest.fail(f"docker-registry (distribution 2.8) not found at {self.binary}: {INSTALL_HINT}")
        self._dir = Path(tempfile.mkdtemp(prefix="test-registry-"))
        try:
            # A free port is picked before the process binds it; another process may take it in between.
            for _attempt in range(3):
                if self._launch():
                    return self
            raise RuntimeError(f"docker-registry could not bind a free port:\n{self.output()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        directory, self._dir = self._dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def storage_bytes(self) -> int:
        """Bytes the registry's filesystem storage holds now (blobs, manifests, links)."""
        assert self._dir is not None
        return sum(p.stat().st_size for p in (self._dir / "storage").rglob("*") if p.is_file())

    def garbage_collect(self) -> None:
        """`docker-registry garbage-collect` on this registry's storage: blobs no manifest references any more are
        deleted (the space a deletion by digest frees comes back only then)."""
        assert self._dir is not None
        subprocess.run([self.binary, "garbage-collect", "--delete-untagged", str(self._dir / "config.yml")],
                       check=True, capture_output=True, timeout=60, env=_without_registry_env())  # fmt: skip

    def output(self) -> str:
        """What the registry wrote to stdout and stderr so far (errors only: ``log.level: error``)."""
        if self._dir is None or not (self._dir / "output.log").exists():
            return ""
        return (self._dir / "output.log").read_text(errors="replace")

    # --- internals

    def _launch(self) -> bool:
        """Start the process on a new port; True once ``/v2/`` answers, False if the port was taken."""
        assert self._dir is not None
        self._port = _free_port()
        config = self._dir / "config.yml"
        config.write_text(json.dumps(self._config(), indent=2) + "\n")  # JSON is YAML
        # A copy of the environment without REGISTRY_* variables, which would override the config file.
        env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
        with open(self._dir / "output.log", "wb") as log:  # a file, not a pipe: nothing has to drain it
            self._process = subprocess.Popen(
                [self.binary, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                if "address already in use" in self.output():
                    return False
                raise RuntimeError(f"docker-registry exited with code {code} during start:\n{self.output()}")
            if _answers(f"{self.url}/v2/"):
                return True
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"docker-registry did not answer GET {self.url}/v2/ within {_START_TIMEOUT:.0f} s:\n{self.output()}"
                )
            time.sleep(0.01)

    def _config(self) -> dict[str, Any]:
        assert self._dir is not None
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self._dir / "storage")},
                "delete": {"enabled": self.delete_enabled},
                "maintenance": {"uploadpurging": {"enabled": False}},  # a background job the tests do not need
            },
            # A fixed secret silences the "no secret configured" warning and keeps upload state valid.
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.htpasswd is not None:
            lines = [f"{user}:{_bcrypt(password)}\n" for user, password in self.htpasswd.items()]
            (self._dir / "htpasswd").write_text("".join(lines))
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(self._dir / "htpasswd")}}
        elif self.token is not None:
            (self._dir / "token-ca.pem").write_bytes(self.token.certificate_pem)
            config["auth"] = {
                "token": {
                    "realm": f"{self.token.url}/token",
                    "service": self.token.service,
                    "issuer": self.token.name,
                    "rootcertbundle": str(self._dir / "token-ca.pem"),
                }
            }
        return config


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1).close()
    except requests.RequestException:  # refused while starting, or accepted but not yet answering
        return False
    return True


def _bcrypt(password: str) -> str:
    # Cost 5 (bcrypt's minimum is 4): distribution checks the hash on every request, and tests make many.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()


# --- the token issuer -------------------------------------------------------------------------------------


class TokenRequest(NamedTuple):
    path: str
    query: str
    user: str | None  # None unless the credentials were valid
    status: int


class _Answer(NamedTuple):
    status: int
    body: dict[str, Any]
    user: str | None = None
    challenge: str | None = None


class TokenIssuer(LoopbackServer):
    """The Docker registry token protocol: ``GET /token?service=S&scope=repository:NAME:ACTIONS`` with Basic auth.

    ``grants`` maps a user to ``(repository glob, actions)`` pairs (``fnmatch``, so ``*`` also matches ``/``).
    The granted actions are the requested ones that some matching glob allows; like real issuers it never refuses
    a scope, it hands out less. No scope: a token with ``access: []``, i.e. a pure credential check (as Quay).
    Wrong or missing credentials: 401; ``service`` other than ours: 400. ``requests`` logs every call.
    """

    def __init__(
        self,
        users: dict[str, str],
        grants: dict[str, list[tuple[str, set[str]]]],
        *,
        name: str = "test-issuer",
        service: str = "test-registry",
    ) -> None:
        super().__init__(_IssuerHandler)
        self.users = users
        self.grants = grants
        self.name = name
        self.service = service
        self.requests: list[TokenRequest] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._certificate = _self_signed(self._key, name)

    @property
    def certificate_pem(self) -> bytes:
        """The self-signed certificate of the signing key: the registry's ``rootcertbundle``."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    # --- policy and tokens

    def granted_actions(self, user: str, repository: str, requested: Iterable[str]) -> list[str]:
        """The requested actions (in request order, without repeats) that a grant of ``user`` allows."""
        allowed: set[str] = set()
        for pattern, actions in self.grants.get(user, []):
            if fnmatch.fnmatchcase(repository, pattern):
                allowed |= actions
        return [action for action in dict.fromkeys(requested) if action in allowed]

    def issue(self, user: str, scopes: Iterable[str]) -> str:
        """A signed JWT for ``user`` with the down-scoped ``access`` claim for these scope strings."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")  # a name may hold ":" (host:port/repo); actions never do
            requested = [a for a in actions.split(",") if a]
            granted = self.granted_actions(user, name, requested) if kind == "repository" else []
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.name,
            "sub": user,
            "aud": self.service,  # a string: distribution 2.8 unmarshals aud into a Go string
            "exp": now + _TOKEN_LIFETIME,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        der = self._certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(_compact(header))}.{_b64url(_compact(claims))}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    # --- HTTP

    def _handle(self, path: str, query: str, authorization: str) -> _Answer:
        if path != "/token":
            return _Answer(404, _errors("NOT_FOUND", f"no such endpoint: {path}"))
        user = self._authenticate(authorization)
        if user is None:
            body = _errors("UNAUTHORIZED", "authentication required: wrong or missing credentials")
            return _Answer(401, body, challenge='Basic realm="token"')
        params = parse_qs(query)
        service = params.get("service", [""])[0]
        if service != self.service:
            body = _errors("INVALID_REQUEST", f"unknown service {service!r}; this issuer serves {self.service!r}")
            return _Answer(400, body, user)
        scopes = [scope for value in params.get("scope", []) for scope in value.split()]  # repeated or spaced
        token = self.issue(user, scopes)
        issued_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body = {"token": token, "access_token": token, "expires_in": _TOKEN_LIFETIME, "issued_at": issued_at}
        return _Answer(200, body, user)

    def _authenticate(self, authorization: str) -> str | None:
        credentials = basic_credentials(authorization)
        if credentials is None:
            return None
        user, password = credentials
        return user if self.password_ok(user, password) else None

    def password_ok(self, user: str, password: str) -> bool:
        """Whether ``password`` is the user's (a subclass may accept several per user)."""
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(password.encode(), expected.encode())


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(user, password) of a ``Basic`` Authorization header, or None when it is not one."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (user, password) if sep else None


def _self_signed(key: rsa.RSAPrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


class _IssuerHandler(LoopbackHandler):
    def do_GET(self) -> None:
        self.read_body()  # unused, but drained so the next request on this connection parses
        issuer = self.server.fake
        split = urlsplit(self.path)
        answer = issuer._handle(split.path, split.query, self.headers.get("Authorization", ""))
        # Log before answering, so a test that has its response also finds the entry.
        issuer._log(TokenRequest(split.path, split.query, answer.user, answer.status))
        challenge = (("WWW-Authenticate", answer.challenge),) if answer.challenge else ()
        self.send_json(answer.status, answer.body, challenge)


# --- docker client config and a minimal v2 client ---------------------------------------------------------


def docker_config_auth(server: str, username: str, password: str) -> dict[str, Any]:
    """The build pods' docker config as binderhub-service renders it: the server key verbatim, one ``auth``."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {server: {"auth": auth}}}


def push_and_pull(registry_url: str, repository: str, docker_config: dict[str, Any]) -> str:
    """Push a two-blob image as ``<repository>:probe`` with the docker config's credentials, then read it back.

    Credentials are looked up as the docker client does. The ``GET /v2/`` challenge decides the scheme: Basic
    sends them as they are, Bearer trades them at the realm for a ``pull,push`` token. Returns the manifest digest.
    Raises AssertionError (with method, URL, status and body) on the first unexpected answer.
    """
    base = registry_url.rstrip("/")
    credentials = _credentials_for(docker_config, base)
    layer, diff_id = _probe_layer()
    image_config = _compact(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    )
    with requests.Session() as session:
        _authorize(session, base, repository, credentials)
        config_digest = _upload_blob(session, base, repository, image_config)
        layer_digest = _upload_blob(session, base, repository, layer)
        manifest = _compact(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {"mediaType": _CONFIG_V1, "size": len(image_config), "digest": config_digest},
                "layers": [{"mediaType": _LAYER_GZIP, "size": len(layer), "digest": layer_digest}],
            }
        )
        digest = _sha256(manifest)
        url = f"{base}/v2/{repository}/manifests/probe"
        response = session.put(url, data=manifest, headers={"Content-Type": MANIFEST_V2}, timeout=_HTTP_TIMEOUT)
        _expect(response, 201, "push manifest")
        _expect_equal(response.headers.get("Docker-Content-Digest"), digest, "digest of the pushed manifest")
        response = session.get(url, headers={"Accept": MANIFEST_V2}, timeout=_HTTP_TIMEOUT)
        _expect(response, 200, "pull manifest")
        _expect_equal(response.headers.get("Docker-Content-Digest"), digest, "Docker-Content-Digest on pull")
        _expect_equal(_sha256(response.content), digest, "digest of the pulled manifest body")
        response = session.get(f"{base}/v2/{repository}/blobs/{layer_digest}", timeout=_HTTP_TIMEOUT)
        _expect(response, 200, "pull layer blob")
        _expect_equal(_sha256(response.content), layer_digest, "digest of the pulled layer")
    return digest


def _credentials_for(docker_config: dict[str, Any], registry_url: str) -> tuple[str, str] | None:
    """The docker client's lookup: the exact key, else a key whose host (scheme and path stripped) matches."""
    auths: dict[str, Any] = docker_config.get("auths") or {}
    host = urlsplit(registry_url).netloc
    entry = auths.get(registry_url) or auths.get(host)
    if entry is None:
        entry = next((value for key, value in auths.items() if _hostname(key) == host), None)
    if entry is None:
        return None
    if entry.get("auth"):
        username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return username, password
    if "username" in entry:
        return entry["username"], entry.get("password", "")
    return None


def _hostname(key: str) -> str:
    """docker/cli ``ConvertToHostname``: drop ``http://``/``https://`` and anything after the first ``/``."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def _authorize(session: requests.Session, base: str, repository: str, credentials: tuple[str, str] | None) -> None:
    """Follow the ``GET /v2/`` challenge and leave the session ready to push and pull ``repository``."""
    response = session.get(f"{base}/v2/", timeout=_HTTP_TIMEOUT)
    if response.status_code == 200:
        return
    _expect(response, 401, "GET /v2/ (expected 200, or a 401 challenge)")
    challenge = response.headers.get("WWW-Authenticate", "")
    scheme, _, rest = challenge.partition(" ")
    params = dict(_CHALLENGE_PARAM.findall(rest))
    if scheme.lower() not in ("basic", "bearer"):
        raise AssertionError(f"GET {base}/v2/: unsupported challenge {challenge!r}")
    if credentials is None and scheme.lower() == "basic":
        raise AssertionError(f"{base} asks for basic auth but the docker config has no entry for it")
    if scheme.lower() == "basic":
        session.auth = credentials
    else:
        query = {"service": params.get("service", ""), "scope": f"repository:{repository}:pull,push"}
        realm = params.get("realm", "")
        token_response = requests.get(realm, params=query, auth=credentials, timeout=_HTTP_TIMEOUT)
        _expect(token_response, 200, "get a token")
        body = token_response.json()
        session.headers["Authorization"] = f"Bearer {body.get('token') or body.get('access_token')}"
    response = session.get(f"{base}/v2/", timeout=_HTTP_TIMEOUT)
    _expect(response, 200, f"GET /v2/ with {scheme} credentials")


def _upload_blob(session: requests.Session, base: str, repository: str, blob: bytes) -> str:
    """A monolithic upload: POST opens the session, PUT ``<location>&digest=`` sends the bytes. Returns the digest."""
    digest = _sha256(blob)
    response = session.post(f"{base}/v2/{repository}/blobs/uploads/", timeout=_HTTP_TIMEOUT)
    _expect(response, 202, "start blob upload")
    location = urljoin(f"{base}/", response.headers["Location"])
    separator = "&" if "?" in location else "?"
    response = session.put(
        f"{location}{separator}digest={digest}",
        data=blob,
        headers={"Content-Type": "application/octet-stream"},
        timeout=_HTTP_TIMEOUT,
    )
    _expect(response, 201, "finish blob upload")
    _expect_equal(response.headers.get("Docker-Content-Digest"), digest, "digest of the uploaded blob")
    return digest


def _probe_layer() -> tuple[bytes, str]:
    """A gzipped tar with one small file, byte-for-byte stable; returns it and its diff_id (uncompressed digest)."""
    content = b"pushed by tests/servers/registry.py\n"
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("probe.txt")
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    raw = tar_bytes.getvalue()
    return gzip.compress(raw, mtime=0), _sha256(raw)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code == status:
        return
    challenge = response.headers.get("WWW-Authenticate")
    detail = f" (WWW-Authenticate: {challenge})" if challenge else ""
    raise AssertionError(
        f"{what}: {response.request.method} {response.url} answered {response.status_code}{detail}, expected"
        f" {status}: {response.text[:500]}"
    )


def _expect_equal(actual: str | None, expected: str, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")


def _without_registry_env() -> dict[str, str]:
    """The environment without REGISTRY_* variables, which would override the config file."""
    return {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
