"""Pure parts of the registry client: WWW-Authenticate parsing and JWT access claims."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from provision.registry import Challenge, RegistryClient, RegistryError, jwt_access, parse_www_authenticate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:a/b:pull,push",
                },
            ),
        ),
        (
            'Bearer realm="https://quay.io/v2/auth", service="quay.io"',
            Challenge("bearer", {"realm": "https://quay.io/v2/auth", "service": "quay.io"}),
        ),
        (
            "Bearer realm=http://127.0.0.1:1/token,service=test",
            Challenge("bearer", {"realm": "http://127.0.0.1:1/token", "service": "test"}),
        ),
        ('Basic realm="a \\"quoted\\" realm"', Challenge("basic", {"realm": 'a "quoted" realm'})),
        ("", None),
        (None, None),
    ],
)
def test_parse_www_authenticate(header: str | None, expected: Challenge | None) -> None:
    assert parse_www_authenticate(header) == expected


def _jwt(payload: object) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2ln"


def test_jwt_access() -> None:
    access = [{"type": "repository", "name": "hubs/x", "actions": ["pull"]}]
    assert jwt_access(_jwt({"sub": "u", "access": access})) == access
    assert jwt_access(_jwt({"sub": "u"})) is None
    assert jwt_access("opaque-token") is None
    assert jwt_access("a.!!!.c") is None


def _self_signed_localhost(folder: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return str(cert_path), str(key_path)


def test_an_https_registry_never_sends_credentials_to_an_http_realm(tmp_path: Any, monkeypatch: Any) -> None:
    """A TLS registry on loopback (self-signed) names a plain-HTTP token service: no request reaches it."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Capture(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization") or "")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    realm_server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    realm = f"http://127.0.0.1:{realm_server.server_address[1]}/token"

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="registry"')
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    cert, key = _self_signed_localhost(tmp_path)
    registry_server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    registry_server.socket = context.wrap_socket(registry_server.socket, server_side=True)
    for server in (realm_server, registry_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # requests trusts the test's certificate
    try:
        client = RegistryClient(f"https://127.0.0.1:{registry_server.server_address[1]}", username="u",
                                password="secret-pw")  # fmt: skip
        with pytest.raises(RegistryError, match="not HTTPS: the registry credentials would cross the network"):
            client.check_credentials()
    finally:
        for server in (realm_server, registry_server):
            server.shutdown()
            server.server_close()
    assert seen == []
