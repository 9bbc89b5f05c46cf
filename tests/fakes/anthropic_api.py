"""A fake Anthropic Admin API: list, read and update API keys (both schemas), plus ``/v1/models``.

There is no create endpoint, as in the real Admin API: tests add a key the way a person
does in the Console (:meth:`FakeAnthropicApi.console_create`). ``GET /v1/models`` answers a
standard key that is active (the cheap call rotation verifies a new key with).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyguard.fakes import fake_key
from tests.fakes import Answer, FakeApi, Request, int_param, page_after

API_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class SeededKey:
    """One key the fake lists, with the secret value a store copy would hold."""

    id: str
    name: str
    value: str  # never sent by the API; tests use it to check nothing leaks
    status: str
    created: datetime
    creator: str | None
    workspace: str | None  # None = default workspace
    generation: str  # "classic" or "newer"
    expires: datetime | None = None
    principal: str | None = None

    @property
    def hint(self) -> str:
        """The ``partial_key_hint``: first 16 and last 4 characters."""
        return f"{self.value[:16]}...{self.value[-4:]}"

    def to_json(self) -> dict[str, object]:
        """The key object in its schema generation."""
        body: dict[str, object] = {
            "type": "api_key", "id": self.id, "name": self.name,
            "created_at": self.created.isoformat().replace("+00:00", "Z"),
            "created_by": {"id": self.creator, "type": "user"} if self.creator else None,
            "partial_key_hint": self.hint, "status": self.status,
        }
        if self.generation == "classic":
            body["workspace_id"] = self.workspace
            return body
        body["workspace_id"] = self.workspace  # deprecated but still sent
        body["expires_at"] = self.expires.isoformat().replace("+00:00", "Z") if self.expires else None
        if self.principal and self.workspace is None:
            body["scope"] = {"type": "organization"}
        else:
            body["scope"] = {"type": "workspace", "workspace_id": self.workspace or "wrkspc_default0"}
        if self.principal:
            kind = "user_actor" if self.principal.startswith("user_") else "service_account_actor"
            field = "user_id" if kind == "user_actor" else "service_account_id"
            body["principal"] = {"type": kind, field: self.principal}
        else:
            body["principal"] = None
        return body


def seed_keys(count: int, rng: random.Random, now: datetime) -> list[SeededKey]:
    """``count`` keys: half classic, half newer, every status, some expiring."""
    statuses = ["active", "active", "active", "inactive", "archived", "expired"]
    keys: list[SeededKey] = []
    for i in range(count):
        generation = "classic" if i % 2 == 0 else "newer"
        status = statuses[i % len(statuses)]
        if generation == "classic" and status == "expired":
            status = "active"  # the classic schema has no expired status
        workspace = None if i % 5 == 0 else f"wrkspc_{i:04d}"
        expires = None
        if generation == "newer" and i % 3 != 0:
            expires = now + timedelta(days=30) if status != "expired" else now - timedelta(days=1)
        keys.append(SeededKey(
            id=f"apikey_{i:06d}{rng.randrange(16**8):08x}", name=f"key-{i}-{'prod' if i % 4 else 'dev'}",
            value=fake_key("anthropic-api", rng), status=status,
            created=(now - timedelta(days=rng.randrange(1, 400))).replace(microsecond=123456),
            creator=None if i % 7 == 3 else f"user_{i % 5:04d}", workspace=workspace,
            generation=generation, expires=expires,
            principal=(f"svac_{i:04d}" if i % 4 == 1 else f"user_{i:04d}") if generation == "newer" and i % 3 == 1 else None,
        ))
    return keys


class FakeAnthropicApi(FakeApi):
    """Serves the seeded keys to requests carrying ``admin_key`` in ``x-api-key``."""

    def __init__(self, admin_key: str, keys: list[SeededKey]) -> None:
        super().__init__()
        self.admin_key = admin_key
        self.keys = keys
        self._seed = list(keys)
        #: Refuse every key on /v1/models (a new key revoked before it is verified).
        self.refuse_models = False

    def reset(self) -> None:
        """Also undo what earlier tests changed: keys created, updated or archived."""
        super().reset()
        self.keys = list(self._seed)
        self.refuse_models = False

    def console_create(self, value: str, name: str, workspace: str | None,
                       generation: str = "classic") -> SeededKey:
        """Add an active key, as a person creating one in the Console would."""
        key = SeededKey(id=f"apikey_new{len(self.keys):06d}", name=name, value=value,
                        status="active", created=now_utc(), creator="user_0000",
                        workspace=workspace, generation=generation)
        self.keys.append(key)
        return key

    def status_of(self, key_id: str) -> str:
        """The current status of one key."""
        return next(k.status for k in self.keys if k.id == key_id)

    def authorized(self, request: Request) -> Answer | None:
        if request.path == "/v1/models" and request.method == "GET":
            given = request.headers.get("x-api-key")
            if not self.refuse_models and any(k.value == given and k.status == "active"
                                              for k in self.keys):
                return None
            return Answer(401, {"type": "error", "error": {"type": "authentication_error",
                                                           "message": "invalid x-api-key"}})
        if request.headers.get("x-api-key") != self.admin_key:
            return Answer(401, {"type": "error", "error": {"type": "authentication_error",
                                                           "message": "invalid x-api-key"}})
        if request.headers.get("anthropic-version") != API_VERSION:
            return Answer(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                           "message": "anthropic-version required"}})
        return None

    def route(self, request: Request) -> Answer:
        if request.path == "/v1/models":
            return Answer(200, {"data": [{"type": "model", "id": "claude-sonnet-4-5",
                                          "display_name": "Claude Sonnet 4.5"}],
                                "has_more": False, "first_id": "claude-sonnet-4-5",
                                "last_id": "claude-sonnet-4-5"})
        one = re.fullmatch(r"/v1/organizations/api_keys/([^/]+)", request.path)
        if one is not None:
            return self._one(request, one.group(1))
        if request.method != "GET" or request.path != "/v1/organizations/api_keys":
            return Answer(404, {"type": "error", "error": {"type": "not_found_error", "message": "no route"}})
        limit = int_param(request.query, "limit", 20, 1, 1000)
        if limit is None:
            return Answer(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                           "message": "limit out of range"}})
        data = [k.to_json() for k in self.keys]
        chunk, more = page_after(data, request.query.get("after_id"), limit)
        return Answer(200, {"data": chunk, "has_more": more,
                            "first_id": chunk[0]["id"] if chunk else None,
                            "last_id": chunk[-1]["id"] if chunk else None})


    def _one(self, request: Request, key_id: str) -> Answer:
        """``GET`` (read) or ``POST`` (update name/status) one key."""
        at = next((n for n, k in enumerate(self.keys) if k.id == key_id), None)
        if at is None:
            return Answer(404, {"type": "error", "error": {"type": "not_found_error",
                                                           "message": f"no api key {key_id}"}})
        if request.method == "POST":
            body = json.loads(request.body or b"{}")
            status = body.get("status", self.keys[at].status)
            if status not in ("active", "inactive", "archived") or (
                    self.keys[at].status == "archived" and status != "archived"):
                return Answer(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": f"cannot set status {status}"}})
            self.keys[at] = dataclasses.replace(self.keys[at], status=status,
                                                name=body.get("name", self.keys[at].name))
        return Answer(200, self.keys[at].to_json())


def now_utc() -> datetime:
    """The seed clock (tests pass the same value to the source)."""
    return datetime.now(UTC).replace(microsecond=0)
