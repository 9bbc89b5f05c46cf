"""A real local HTTP webhook receiver for notify tests (http.server in a thread)."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    """What the receiver got, and the answers it gives (status, Retry-After) in order."""

    port: int = 0
    answers: list[tuple[int, str | None]] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering (timeouts)

    def url(self, path: str = "/hooks/T0K3N-secret-path") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.received]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append((self.path, dict(self.headers), body))
            if hook.delay:
                time.sleep(hook.delay)
            status, retry_after = hook.answers.pop(0) if hook.answers else (200, None)
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
