"""A small fake LiteLLM proxy for canary tests: /key/generate, /key/info, /key/delete.

It keeps what the real proxy keeps (the sha256 ``token`` of each key, never the key) and
checks the master key on every call, over real HTTP on 127.0.0.1 (the shared FakeApi server).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from tests.fakes import Answer, FakeApi, Request


class FakeProxy(FakeApi):
    """Virtual keys by token hash; ``use(key)`` records activity as a real request would."""

    def __init__(self, master_key: str) -> None:
        super().__init__()
        self.master_key = master_key
        self.keys: dict[str, dict[str, Any]] = {}

    def use(self, key: str) -> None:
        """What the proxy records when a request authenticates with ``key``."""
        row = self.keys[hashlib.sha256(key.encode()).hexdigest()]
        row["last_active"] = "2026-11-27T20:00:00+00:00"

    def answer(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any]) -> tuple[int, object]:
        if method == "POST" and path == "/key/generate":
            key = "sk-" + secrets.token_urlsafe(16)
            token = hashlib.sha256(key.encode()).hexdigest()
            self.keys[token] = {"key_alias": body.get("key_alias"), "spend": 0.0,
                                "max_budget": body.get("max_budget"),
                                "models": body.get("models"), "last_active": None}
            return 200, {"key": key, "token_id": token, "key_alias": body.get("key_alias")}
        if method == "POST" and path == "/key/delete":
            gone = [k for k in body.get("keys", []) if self.keys.pop(k, None) is not None]
            if not gone:
                return 404, {"error": {"message": "key not found"}}
            return 200, {"deleted_keys": gone}
        if method == "GET" and path == "/key/info":
            row = self.keys.get(query.get("key", ""))
            if row is None:
                return 404, {"error": {"message": "key not found"}}
            return 200, {"key": query["key"], "info": row}
        return 404, {"detail": "Not Found"}

    def authorized(self, request: Request) -> Answer | None:
        """The master key on every call, as the proxy's admin endpoints require."""
        if request.headers.get("authorization") != f"Bearer {self.master_key}":
            return Answer(401, {"error": {"message": "Authentication Error"}})
        return None

    def route(self, request: Request) -> Answer:
        """Dispatch to :meth:`answer` with the JSON body parsed."""
        body = json.loads(request.body) if request.body else {}
        status, answer = self.answer(request.method, request.path, dict(request.query), body)
        return Answer(status, answer)
