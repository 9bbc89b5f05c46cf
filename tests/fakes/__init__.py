"""Local HTTP fakes of provider admin APIs, following ../shared/reference/provider-formats.md.

Each fake is a real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, port 0) that keyguard
talks to exactly as it talks to the provider: same paths, headers, pagination and error
shapes. :class:`FakeApi` holds what every fake shares: the credential check, a request log,
and switches that make the next answers a 429 with ``retry-after`` or a 5xx, so retry
behaviour is tested over the wire rather than by patching.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the fake saw it (headers lower-cased)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""  # the raw request body (POST endpoints parse it themselves)


@dataclass(slots=True)
class Answer:
    """What the fake sends back."""

    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeApi:
    """Base of every fake: serve :meth:`route`, after the auth check and injected faults."""

    def __init__(self) -> None:
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._throttle = 0
        self._retry_after: str | None = None
        self._errors: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._tls = False

    # -- switches ---------------------------------------------------------------------------

    def throttle(self, times: int, retry_after: str | None = "1") -> None:
        """Answer the next ``times`` requests with 429 (and this ``retry-after``, if any)."""
        with self._lock:
            self._throttle, self._retry_after = times, retry_after

    def fail(self, *statuses: int) -> None:
        """Answer the next requests with these 5xx statuses, one each."""
        with self._lock:
            self._errors.extend(statuses)

    def reset(self) -> None:
        """Clear switches and the request log (fixtures share one server per session)."""
        with self._lock:
            self.log.clear()
            self._throttle, self._errors = 0, []

    # -- subclass API -----------------------------------------------------------------------

    def authorized(self, request: Request) -> Answer | None:
        """Return None when the request carries the right credential, else the error answer."""
        raise NotImplementedError

    def route(self, request: Request) -> Answer:
        """Answer an authorized request."""
        raise NotImplementedError

    # -- server -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running server (``http://127.0.0.1:PORT``, https with TLS)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    @contextmanager
    def running(self, tls: ssl.SSLContext | None = None) -> Iterator[FakeApi]:
        """Serve on 127.0.0.1 on a free port until the block ends (over TLS when given)."""
        api = self
        self._tls = tls is not None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # NOTE: headers and body go out in two writes; without NODELAY, Nagle plus the
            # client's delayed ACK cost ~40 ms per keep-alive request.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                api._handle(self)

            def do_POST(self) -> None:
                api._handle(self)

            def do_DELETE(self) -> None:
                api._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                return  # quiet: pytest captures nothing useful from access logs

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        thread = threading.Thread(target=server.serve_forever, name=type(self).__name__, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(handler.command, parts.path, dict(urllib.parse.parse_qsl(parts.query)),
                          {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.log.append(request)
            answer = self._injected()
        if answer is None:
            answer = self.authorized(request) or self.route(request)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _injected(self) -> Answer | None:
        if self._throttle > 0:
            self._throttle -= 1
            headers = {"retry-after": self._retry_after} if self._retry_after is not None else {}
            return Answer(429, {"error": {"type": "rate_limit_error", "message": "slow down"}}, headers)
        if self._errors:
            return Answer(self._errors.pop(0), {"error": {"type": "api_error", "message": "oops"}})
        return None


def page_after(items: list[dict[str, object]], after: str | None, limit: int,
               key: str = "id") -> tuple[list[dict[str, object]], bool]:
    """Cursor pagination as the Anthropic and OpenAI list endpoints do it."""
    start = 0
    if after:
        ids = [str(i[key]) for i in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = items[start:start + limit]
    return chunk, start + limit < len(items)


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int | None:
    """A bounded integer query parameter; None when it is out of range (the API answers 400)."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None
