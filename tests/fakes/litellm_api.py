"""A fake LiteLLM proxy: virtual keys (``/key/list``, ``/key/info``, ``/key/{key}/regenerate``).

Regenerate behaves as provider-formats.md §4.2 describes: same row, new secret and new
``token`` (its SHA-256); the old secret stops working at once (no grace period). A virtual
key may call ``GET /v1/models`` (the cheap authenticated call rotation verifies with).
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import secrets
from datetime import UTC, datetime, timedelta

from tests.fakes import Answer, FakeApi, Request, int_param


def seed(count: int, rng: random.Random, now: datetime) -> tuple[list[dict[str, object]], dict[str, str]]:
    """``count`` virtual keys as LiteLLM_VerificationToken rows, and hash -> plaintext."""
    rows: list[dict[str, object]] = []
    values: dict[str, str] = {}
    for i in range(count):
        value = "sk-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-")
                                for _ in range(22))
        token = hashlib.sha256(value.encode()).hexdigest()
        values[token] = value
        rows.append({
            "token": token, "key_name": f"sk-...{value[-4:]}",
            "key_alias": f"svc-{i}-{'prod' if i % 2 else 'dev'}" if i % 5 else None,
            "spend": round(i * 1.25, 2), "max_budget": 100.0 if i % 3 == 0 else None,
            "budget_duration": "30d" if i % 3 == 0 else None,
            "expires": (now - timedelta(days=2) if i == 4 else now + timedelta(days=90)).isoformat()
            if i % 4 == 0 else None,
            "models": ["gpt-4o-mini", "claude-sonnet"] if i % 2 else [],
            "user_id": f"user-{i % 3}" if i % 3 else None,
            "team_id": f"team-{i % 4}" if i % 2 == 0 else None,
            "organization_id": None, "blocked": i == 7,
            "created_at": (now - timedelta(days=i + 10)).replace(tzinfo=None).isoformat(),
            "updated_at": (now - timedelta(days=i)).isoformat(),
            "last_active": (now - timedelta(hours=i)).isoformat() if i % 2 else None,
            "metadata": {"owner-team": "ml", "tags": ["x"]} if i % 6 == 0 else {},
            "auto_rotate": i % 5 == 1, "rotation_interval": "30d" if i % 5 == 1 else None,
            "key_rotation_at": (now + timedelta(days=5)).isoformat() if i % 5 == 1 else None,
            "last_rotation_at": (now - timedelta(days=25)).isoformat() if i % 5 == 1 else None,
        })
    return rows, values


class FakeLiteLLMApi(FakeApi):
    """Serves virtual keys to ``Authorization: Bearer <master_key>``.

    ``hashes_only`` mimics a proxy that ignores ``return_full_object`` and lists hashes.
    """

    def __init__(self, master_key: str, rows: list[dict[str, object]], values: dict[str, str]) -> None:
        super().__init__()
        self.master_key = master_key
        self.rows = rows
        self.values = values
        self.hashes_only = False
        #: Status answered to regenerate requests instead of regenerating (403: not premium).
        self.refuse_regenerate: int | None = None
        #: Regenerate, then answer 502 instead of the new key (an answer lost on the way).
        self.lose_regenerate_answers = 0
        self.models = ["gpt-4o-mini", "claude-sonnet"]
        self._seed = copy.deepcopy((rows, values))

    def reset(self) -> None:
        """Also undo what earlier tests changed: regenerated keys."""
        super().reset()
        self.rows, self.values = copy.deepcopy(self._seed)
        self.refuse_regenerate, self.lose_regenerate_answers = None, 0

    def _live_row(self, value: str) -> dict[str, object] | None:
        token = hashlib.sha256(value.encode()).hexdigest()
        row = next((r for r in self.rows if r["token"] == token), None)
        return row if row is not None and self.values.get(token) == value and not row.get("blocked") else None

    def authorized(self, request: Request) -> Answer | None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if request.path == "/v1/models" and self._live_row(given) is not None:
            return None  # any live virtual key may list the models it can use
        if not secrets.compare_digest(given, self.master_key):
            return Answer(401, {"error": {"message": "Authentication Error, Invalid proxy server token passed.",
                                          "type": "auth_error", "param": "None", "code": "401"}})
        return None

    def route(self, request: Request) -> Answer:
        if request.path == "/v1/models":
            return Answer(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})
        regen = re.fullmatch(r"/key/(.+)/regenerate", request.path)
        if regen is not None and request.method == "POST":
            return self._regenerate(regen.group(1))
        if request.path == "/key/list":
            alias = request.query.get("key_alias")
            rows = [r for r in self.rows if alias is None or r.get("key_alias") == alias]
            page = int_param(request.query, "page", 1, 1, 10**6)
            size = int_param(request.query, "size", 10, 1, 100)
            if page is None or size is None:
                return Answer(422, {"detail": "page/size out of range"})
            chunk = rows[(page - 1) * size:page * size]
            full = request.query.get("return_full_object") == "true" and not self.hashes_only
            return Answer(200, {"keys": chunk if full else [r["token"] for r in chunk],
                                "total_count": len(rows), "current_page": page,
                                "total_pages": -(-len(rows) // size)})
        if request.path == "/key/info":
            key = request.query.get("key", "")
            row = next((r for r in self.rows if r["token"] == key), None)
            if row is None:
                return Answer(404, {"error": {"message": "key not found"}})
            return Answer(200, {"key": key, "info": {k: v for k, v in row.items() if k != "token"}})
        return Answer(404, {"detail": "Not Found"})

    def _regenerate(self, key: str) -> Answer:
        """``POST /key/{key}/regenerate``: ``key`` is the plaintext or its hash."""
        token = hashlib.sha256(key.encode()).hexdigest() if key.startswith("sk-") else key
        row = next((r for r in self.rows if r["token"] == token), None)
        if row is None:
            return Answer(404, {"error": {"message": "key not found"}})
        if self.refuse_regenerate is not None:
            return Answer(self.refuse_regenerate, {"error": {
                "message": "Regenerating Virtual Keys is an Enterprise feature"}})
        value = "sk-" + secrets.token_urlsafe(16)
        new_token = hashlib.sha256(value.encode()).hexdigest()
        del self.values[token]
        self.values[new_token] = value
        row.update(token=new_token, key_name=f"sk-...{value[-4:]}",
                   last_rotation_at=datetime.now(UTC).isoformat(),
                   rotation_count=int(str(row.get("rotation_count") or 0)) + 1)
        if self.lose_regenerate_answers > 0:
            self.lose_regenerate_answers -= 1
            return Answer(502, {"error": {"message": "upstream connect error"}})
        body = {k: v for k, v in row.items() if k != "token"}
        return Answer(200, {**body, "key": value, "token_id": new_token})

    def value_of(self, alias: str) -> str:
        """The current secret of the row with this alias (what a consumer should hold)."""
        row = next(r for r in self.rows if r.get("key_alias") == alias)
        return self.values[str(row["token"])]
