"""A small fake LiteLLM proxy for canary tests: /key/generate, /key/info, /key/delete.

It keeps what the real proxy keeps (the sha256 ``token`` of each key, never the key) and
checks the master key on every call, over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeProxy:
    """Virtual keys by token hash; ``use(key)`` records activity as a real request would."""

    def __init__(self, master_key: str) -> None:
        self.master_key = master_key
        self.keys: dict[str, dict[str, Any]] = {}
        self.url = ""

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

    @contextmanager
    def running(self) -> Iterator[FakeProxy]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                answer: object
                if self.headers.get("authorization") != f"Bearer {proxy.master_key}":
                    status, answer = 401, {"error": {"message": "Authentication Error"}}
                else:
                    status, answer = proxy.answer(self.command, parts.path,
                                                  dict(urllib.parse.parse_qsl(parts.query)), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
