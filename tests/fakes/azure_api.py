"""A fake Azure Key Vault secrets REST API (7.x) over TLS, with the bearer challenge.

Follows https://learn.microsoft.com/rest/api/keyvault/secrets (see the reference, section
5.3): ``GET /secrets`` pages with ``maxresults`` and an absolute ``nextLink``;
``GET /secrets/{name}/`` returns the current version with its value. Times are unix
seconds. A request without a token gets the 401 ``WWW-Authenticate`` challenge the SDK
expects before it asks its credential for a token. The SDK refuses plain http, so the fake
serves TLS with a throwaway self-signed certificate (:func:`self_signed`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import re
import ssl
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from keyguard.fakes import fake_key
from tests.fakes import Answer, FakeApi, Request, int_param

CHALLENGE = ('Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
             'resource="https://vault.azure.net"')


@dataclass(frozen=True, slots=True)
class SeededVaultSecret:
    """One secret's current version."""

    name: str
    value: str
    created: datetime
    updated: datetime
    enabled: bool = True
    expires: datetime | None = None
    not_before: datetime | None = None
    tags: dict[str, str] | None = None
    content_type: str | None = None
    managed: bool = False

    def attributes(self) -> dict[str, object]:
        """The ``attributes`` object (unix seconds)."""
        attrs: dict[str, object] = {"enabled": self.enabled, "created": int(self.created.timestamp()),
                                    "updated": int(self.updated.timestamp()),
                                    "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
        if self.expires:
            attrs["exp"] = int(self.expires.timestamp())
        if self.not_before:
            attrs["nbf"] = int(self.not_before.timestamp())
        return attrs


def seed(count: int, rng: random.Random, now: datetime) -> list[SeededVaultSecret]:
    """Secrets with tags, expiry (past and future), disabled ones and a managed one."""
    kinds = ["openai-project", "anthropic-api", "slack-bot", "sendgrid-api"]
    base = now.replace(microsecond=0)
    return [SeededVaultSecret(
        name=f"kv-secret-{i:02d}", value=fake_key(kinds[i % len(kinds)], rng),
        created=base - timedelta(days=200 + i), updated=base - timedelta(days=i),
        enabled=i % 9 != 4,
        expires=(base + timedelta(days=i)) if i % 5 == 1 else ((base - timedelta(days=1)) if i % 5 == 2 else None),
        not_before=base - timedelta(days=300) if i % 11 == 0 else None,
        tags={"env": "prod", "owner": "payments"} if i % 3 == 0 else None,
        content_type="text/plain" if i % 2 else None, managed=i == 7,
    ) for i in range(count)]


def self_signed(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (its PEM file, for REQUESTS_CA_BUNDLE) and a server context."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fake-vault.pem", directory / "fake-vault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


class FakeAzureVaultApi(FakeApi):
    """Serves the seeded secrets to ``Authorization: Bearer <token>``."""

    def __init__(self, token: str, secrets: list[SeededVaultSecret]) -> None:
        super().__init__()
        self.token = token
        self.secrets = secrets
        self.deny_values = False

    def authorized(self, request: Request) -> Answer | None:
        auth = request.headers.get("authorization")
        if auth is None:
            return Answer(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
                          {"WWW-Authenticate": CHALLENGE})
        if auth != f"Bearer {self.token}":
            return Answer(401, {"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}},
                          {"WWW-Authenticate": CHALLENGE})
        return None

    def route(self, request: Request) -> Answer:
        if "api-version" not in request.query:
            return Answer(400, {"error": {"code": "BadParameter", "message": "api-version required"}})
        if request.path == "/secrets":
            size = int_param(request.query, "maxresults", 25, 1, 25)
            if size is None:
                return Answer(400, {"error": {"code": "BadParameter", "message": "maxresults 1-25"}})
            start = int(request.query.get("$skiptoken") or 0)
            chunk = self.secrets[start:start + size]
            body: dict[str, object] = {"value": [self._item(s) for s in chunk], "nextLink": None}
            if start + size < len(self.secrets):
                query = urllib.parse.urlencode({"api-version": request.query["api-version"],
                                                "maxresults": size, "$skiptoken": start + size})
                body["nextLink"] = f"{self.url}/secrets?{query}"
            return Answer(200, body)
        if m := re.fullmatch(r"/secrets/([^/]+)/?", request.path):
            secret = next((s for s in self.secrets if s.name == m.group(1)), None)
            if secret is None:
                return Answer(404, {"error": {"code": "SecretNotFound", "message": "not found"}})
            if self.deny_values:
                return Answer(403, {"error": {"code": "Forbidden", "message": "Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"}})
            if not secret.enabled:
                return Answer(403, {"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret."}})
            return Answer(200, {**self._item(secret), "value": secret.value,
                                "id": f"{self.url}/secrets/{secret.name}/0123456789abcdef"})
        return Answer(404, {"error": {"code": "NotFound", "message": "no route"}})

    def _item(self, secret: SeededVaultSecret) -> dict[str, object]:
        item: dict[str, object] = {"id": f"{self.url}/secrets/{secret.name}", "attributes": secret.attributes()}
        if secret.tags:
            item["tags"] = secret.tags
        if secret.content_type:
            item["contentType"] = secret.content_type
        if secret.managed:
            item["managed"] = True
        return item
