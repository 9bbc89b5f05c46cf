"""A fake Secret Manager REST API (v1): list secrets, list versions, access a version.

Paths, field names and the ``{"error": {"code", "message", "status"}}`` shape follow
https://cloud.google.com/secret-manager/docs/reference/rest (see the reference, section 5.2).
Page tokens are opaque offsets.
"""

from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keyguard.fakes import fake_key
from tests.fakes import Answer, FakeApi, Request, int_param


def _rfc(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanosecond precision, as GCP sends


@dataclass(slots=True)
class SeededSecret:
    """One secret with its versions (newest last) and the value of each."""

    project: str
    id: str
    created: datetime
    labels: dict[str, str]
    versions: list[tuple[int, str, datetime, str]]  # (number, state, created, value)
    expires: datetime | None = None
    rotation: tuple[datetime, int] | None = None  # (next rotation, period seconds)
    user_managed: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    binary: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Resource name, ``projects/P/secrets/S``."""
        return f"projects/{self.project}/secrets/{self.id}"

    def to_json(self) -> dict[str, object]:
        """The Secret resource."""
        body: dict[str, object] = {"name": self.name, "createTime": _rfc(self.created),
                                   "labels": self.labels, "etag": '"abc"'}
        body["replication"] = ({"userManaged": {"replicas": [{"location": loc} for loc in self.user_managed]}}
                               if self.user_managed else {"automatic": {}})
        if self.expires:
            body["expireTime"] = _rfc(self.expires)
        if self.rotation:
            body["rotation"] = {"nextRotationTime": _rfc(self.rotation[0]),
                                "rotationPeriod": f"{self.rotation[1]}s"}
        if self.topics:
            body["topics"] = [{"name": t} for t in self.topics]
        return body

    def version_json(self, number: int, state: str, created: datetime) -> dict[str, object]:
        """One SecretVersion resource."""
        return {"name": f"{self.name}/versions/{number}", "createTime": _rfc(created), "state": state,
                "etag": '"v"'}


def seed(projects: tuple[str, ...], per_project: int, rng: random.Random, now: datetime) -> list[SeededSecret]:
    """Secrets with every feature: labels, expiry, rotation, replication, disabled versions."""
    kinds = ["anthropic-api", "openai-project", "github-classic-pat", "stripe-secret"]
    found: list[SeededSecret] = []
    for project in projects:
        for i in range(per_project):
            versions: list[tuple[int, str, datetime, str]] = []
            count = 1 + i % 3
            for n in range(1, count + 1):
                state = "ENABLED" if n == count or i % 4 else "DISABLED"
                if i % 7 == 6:
                    state = "DISABLED"  # no enabled version at all
                versions.append((n, state, now - timedelta(days=40 - 10 * n),
                                 fake_key(kinds[(i + n) % len(kinds)], rng)))
            found.append(SeededSecret(
                project=project, id=f"{project}-secret-{i:03d}",
                created=(now - timedelta(days=100 + i)).replace(microsecond=0),
                labels={"env": "prod" if i % 2 else "dev", "owner": f"team-{i % 3}"} if i % 5 else {},
                versions=versions,
                expires=now + timedelta(days=i) if i % 6 == 1 else (now - timedelta(hours=1) if i % 6 == 5 else None),
                rotation=(now + timedelta(days=3), 30 * 86400) if i % 4 == 2 else None,
                user_managed=("us-east1", "europe-west1") if i % 5 == 3 else (),
                topics=(f"projects/{project}/topics/rotate",) if i % 4 == 2 else (),
                binary=i == 8,
            ))
    return found


class FakeGcpApi(FakeApi):
    """Serves the seeded secrets to ``Authorization: Bearer <token>``."""

    def __init__(self, token: str, secrets: list[SeededSecret]) -> None:
        super().__init__()
        self.token = token
        self.secrets = secrets
        self.denied_projects: set[str] = set()

    def authorized(self, request: Request) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        return None

    def route(self, request: Request) -> Answer:
        size = int_param(request.query, "pageSize", 25, 1, 25000)
        if size is None:
            return _error(400, "INVALID_ARGUMENT", "bad pageSize")
        start = int(request.query.get("pageToken") or 0)
        if m := re.fullmatch(r"/v1/projects/([^/]+)/secrets", request.path):
            if m.group(1) in self.denied_projects:
                return _error(403, "PERMISSION_DENIED", "Permission 'secretmanager.secrets.list' denied")
            listed = [s.to_json() for s in self.secrets if s.project == m.group(1)]
            return _page("secrets", listed, start, size)
        if m := re.fullmatch(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions", request.path):
            secret = self._find(m.group(1), m.group(2))
            if secret is None:
                return _error(404, "NOT_FOUND", "Secret not found")
            listed = [secret.version_json(n, st, c) for n, st, c, _v in reversed(secret.versions)]
            return _page("versions", listed, start, size)
        if m := re.fullmatch(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access", request.path):
            secret = self._find(m.group(1), m.group(2))
            version = next((v for v in secret.versions if str(v[0]) == m.group(3)), None) if secret else None
            if secret is None or version is None:
                return _error(404, "NOT_FOUND", "Secret version not found")
            if version[1] != "ENABLED":
                return _error(400, "FAILED_PRECONDITION", "Secret version is in DISABLED state.")
            data = b"\xff\xfe\x00binary" if secret.binary else version[3].encode()
            return Answer(200, {"name": f"{secret.name}/versions/{version[0]}",
                                "payload": {"data": base64.b64encode(data).decode()}})
        return _error(404, "NOT_FOUND", f"no route {request.path}")

    def _find(self, project: str, secret_id: str) -> SeededSecret | None:
        return next((s for s in self.secrets if s.project == project and s.id == secret_id), None)


def _page(key: str, listed: list[dict[str, object]], start: int, size: int) -> Answer:
    body: dict[str, object] = {key: listed[start:start + size], "totalSize": len(listed)}
    if start + size < len(listed):
        body["nextPageToken"] = str(start + size)
    return Answer(200, body)


def _error(code: int, status: str, message: str) -> Answer:
    return Answer(code, {"error": {"code": code, "message": message, "status": status}})
