"""JSON-over-HTTPS plumbing for the provider admin-API sources (anthropic, openai, litellm).

The standard library is enough for read-only GETs, and keeping httpx/requests out keeps
``pip install keyguard`` small. What this module adds over ``urllib.request``:

* bounded retries: a 429 waits for ``retry-after`` (seconds or HTTP date); a 5xx, a read
  timeout or a connection reset mid-answer backs off exponentially; never more than
  ``max_retries`` times and never longer than ``max_retry_wait`` seconds per wait, so an
  API that always throttles gives a failure, not a hang;
* one-line :class:`ApiError` messages with a hint (401/403 say which setting to check);
* the credential stays a :class:`~keyguard.secret.Secret` until the header is built, and
  any text echoed back by the server is scrubbed of it before it reaches a message.

The leading underscore keeps this module out of the SOURCES registry.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from keyguard.config import ProviderApiConfig
from keyguard.credentials import resolve
from keyguard.errors import ConfigError
from keyguard.fingerprint import Fingerprinter
from keyguard.model import Fingerprint
from keyguard.secret import Secret

#: JSON value as parsed by :func:`json.loads`; sources narrow it with the helpers below.
Json = object

#: First wait after a 5xx (or a 429 without retry-after), doubled per attempt, in seconds.
BACKOFF_S = 0.5
#: Statuses worth another try: the server says so (429) or had a transient fault.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Characters of server-provided error text kept in a message.
_MAX_DETAIL = 160


class ApiError(Exception):
    """A request that failed for good: one line, a hint, never the credential."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one provider API lives and how to authenticate to it."""

    base_url: str
    #: Header name -> value; a Secret value is revealed only when the request is built.
    headers: Mapping[str, str | Secret]
    #: What to check when the API answers 401/403 (names the variable or setting).
    auth_hint: str


def credential(ref: str | None, env_var: str, setting: str) -> Secret:
    """Resolve the admin credential: the configured reference, else ``env:<env_var>``.

    Raises:
        ApiError: nothing configured, or the reference does not resolve; the message
            names both the variable and the setting so either can be fixed.

    """
    if ref is None and not os.environ.get(env_var, "").strip():
        raise ApiError(f"no admin credential: {env_var} is not set",
                       f"export {env_var}, or set {setting} = \"keyring:NAME\" "
                       "(stored with `keyguard auth set NAME`)")
    try:
        return resolve(ref if ref is not None else f"env:{env_var}")
    except ConfigError as exc:
        raise ApiError(f"{setting}: {exc.message}", exc.hint) from None


def bearer(key: Secret) -> Secret:
    """The ``Authorization`` value for a bearer credential, still wrapped."""
    return Secret(f"Bearer {key.reveal()}")


def base_url(configured: str | None, env_var: str, default: str) -> str:
    """Pick the API base URL: config, then the provider's variable, then the public one."""
    url = configured or os.environ.get(env_var, "").strip() or default
    return url.rstrip("/")


class JsonClient:
    """GET JSON documents from one API with bounded retries; one instance per source run."""

    def __init__(self, endpoint: Endpoint, cfg: ProviderApiConfig,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._endpoint = endpoint
        self._timeout = float(cfg.timeout) if cfg.timeout > 0 else None
        self._max_retries = cfg.max_retries
        self._max_wait = float(cfg.max_retry_wait)
        self._sleep = sleep
        self.requests = 0  # how many HTTP requests were sent, retries included

    def get(self, path: str, params: Mapping[str, str | int | bool | None] | None = None) -> Json:
        """GET ``path`` (relative to the base URL) and return the parsed JSON body.

        Raises:
            ApiError: the API refused, kept failing past the retry budget, was unreachable,
                or answered something that is not JSON.

        """
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self._endpoint.base_url}{path}"
        if query:
            url = f"{url}?{urllib.parse.urlencode(query)}"
        what = f"GET {path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(url, what)
            except _Retryable as retry:
                if attempt > self._max_retries:
                    raise ApiError(f"{what}: {retry.reason}, still failing after {attempt} attempts",
                                   retry.hint, retry.status) from None
                wait = retry_wait(retry.wait, attempt)
                if wait > self._max_wait:
                    raise ApiError(f"{what}: {retry.reason}; the API asks to retry after "
                                   f"{wait:.0f}s, more than max-retry-wait ({self._max_wait:.0f}s)",
                                   "try again later", retry.status) from None
                self._sleep(wait)

    def _once(self, url: str, what: str) -> Json:
        headers = {"accept": "application/json", "user-agent": "keyguard"}
        for name, value in self._endpoint.headers.items():
            headers[name] = value.reveal() if isinstance(value, Secret) else value
        request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310
        self.requests += 1
        try:
            # NOTE: the scheme comes from config/env (https by default; http for a local
            # gateway or a test fake), never from data the API returned.
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = self._detail(exc)
            if status in _RETRY_STATUSES:
                wait = retry_after(exc.headers.get("retry-after")) if status == 429 else None
                reason = "rate limited (429)" if status == 429 else f"server error {status}"
                raise _Retryable(reason, status, wait) from None
            if status in (401, 403):
                verb = "rejected the credential" if status == 401 else "denied access"
                raise ApiError(f"{what}: the API {verb} (HTTP {status}{detail})",
                               self._endpoint.auth_hint, status) from None
            raise ApiError(f"{what}: HTTP {status}{detail}", "", status) from None
        except urllib.error.URLError as exc:  # no connection at all: retrying will not help
            raise ApiError(f"{what}: cannot reach {_origin(self._endpoint.base_url)} "
                           f"({_short(str(exc.reason))})",
                           "check the base URL and the network") from None
        # NOTE: the connection was made but the answer never came or broke off (a read
        # timeout, a reset, a truncated body): transient like a 5xx, and a GET is safe to repeat.
        except TimeoutError:
            raise _Retryable(f"no answer within {self._timeout or 0:g}s", None, None,
                             "try again later, or raise timeout or max-retries") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})", None, None,
                             "check the network and try again") from None
        try:
            parsed: Json = json.loads(body)
            return parsed
        except ValueError:
            raise ApiError(f"{what}: the answer is not JSON",
                           "check the base URL points at the API, not a web page") from None

    def _detail(self, exc: urllib.error.HTTPError) -> str:
        """The server's own error message, short and scrubbed of the credential."""
        try:
            raw = exc.read(4096).decode("utf-8", "replace")
        except OSError:
            return ""
        text = raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            err = parsed.get("error", parsed.get("detail", parsed.get("message")))
            if isinstance(err, dict):
                err = err.get("message", err.get("type"))
            text = str(err) if err is not None else ""
        elif "<" in raw:  # an HTML error page says nothing useful
            text = ""
        for value in self._endpoint.headers.values():
            if isinstance(value, Secret) and value:
                secret = value.reveal()
                for token in {secret, *secret.split()}:
                    if len(token) >= 8:
                        text = text.replace(token, "***")
        text = _short(text)
        return f": {text}" if text else ""


class _Retryable(Exception):
    def __init__(self, reason: str, status: int | None, wait: float | None,
                 hint: str = "try again later, or raise max-retries") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait
        self.hint = hint


def retry_wait(asked: float | None, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): what a 429 asked, else the doubling backoff.

    Shared by this client and the rotators' (``rotation/rotators/_provider.py``), which
    both refuse to wait longer than ``max-retry-wait``.
    """
    return asked if asked is not None else BACKOFF_S * 2 ** (attempt - 1)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``retry-after`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # NOTE: a wall-clock read below cli/: retry-after dates are relative to the server's
    # clock at answer time, so the run's fixed `now` would be wrong here.
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _param(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL - 3] + "..."


# -- narrowing parsed JSON ------------------------------------------------------------------


def obj(value: Json) -> Mapping[str, Json]:
    """``value`` if it is a JSON object, else an empty one (schemas are open: never crash)."""
    return value if isinstance(value, dict) else {}


def items(value: Json, key: str) -> list[Mapping[str, Json]]:
    """The objects in list ``value[key]``; anything else in the list is skipped."""
    found = obj(value).get(key)
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def text(value: Json, key: str) -> str | None:
    """``value[key]`` when it is a non-empty string."""
    found = obj(value).get(key)
    return found if isinstance(found, str) and found else None


def rfc3339(value: Json) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction) to aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    raw = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = raw.partition(".")
    if dot:  # Python 3.11 accepts at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        raw = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def unix(value: Json) -> datetime | None:
    """Parse unix seconds to aware UTC; null, 0 and junk are "unknown"."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def link_hint(hint: str | None, fingerprinter: Fingerprinter, details: list[str]) -> tuple[Fingerprint, ...]:
    """Keep a provider's key hint only as a keyed fingerprint (plus its last 4 characters).

    ``hint`` is the provider's partial view of a key (Anthropic ``partial_key_hint``, OpenAI
    ``redacted_value``). Its fingerprint equals the one :func:`keyguard.classify.links_of`
    computes from a stored full value, which joins the two without keyguard ever keeping
    a prefix of the key.
    """
    if not hint:
        return ()
    details.append(f"hint=…{hint[-4:]}")
    return (fingerprinter.fingerprint(Secret(hint)),)
