"""``--notify URL``: post new alerts to a Slack-compatible or generic JSON webhook, once each.

Why a ledger: ``keyguard usage scan`` runs daily from cron, and a webhook that repeats
yesterday's alerts every morning trains people to ignore it. Every alert to notify is
queued by its stable id (:func:`keyguard.usage.alerts.alert_id`) in a side table of the
usage store, :data:`LEDGER`, and marked sent once the webhook accepted it. The table is
written inside the run's transaction, so it commits together with the events the alerts
came from: after a crash either both or neither are recorded. An alert whose post failed
stays queued and is retried by the next run (with or without new events); an alert id
already in the ledger (a ``--since`` rescan) is not queued again. Delivery is therefore
at least once: a crash between a successful post and the commit resends that batch.

The URL is a secret (anyone holding a Slack webhook URL can post to the channel): it is
held in a :class:`~keyguard.secret.Secret`, may come from the OS keyring (``keyring:NAME``)
or the environment (``env:VAR``) via :func:`keyguard.credentials.resolve`, and only its
host ever appears in messages, logs and the report.

Payloads, one POST per batch of :data:`BATCH` alerts:

* Slack style (host ``hooks.slack.com`` or ``*.slack.com``, or a path ending in ``/slack``
  as Discord's and Mattermost's Slack-compatible endpoints use): ``{"text", "blocks"}``.
* Any other host: ``{"source": "keyguard", "schema_version", "text", "alerts": [...]}``
  where each alert is the JSON report's alert object (with ``id``); ``text`` is there too
  so Slack-compatible receivers on other hosts still show something.

HTTP: urllib (no extra dependency), a timeout per attempt, no redirects (the body is not
sent anywhere the user did not name), and up to ``retries`` extra attempts with
exponential backoff on 429, 5xx and connection errors, honouring ``Retry-After`` up to
``max_wait`` seconds. Any other status fails at once (a 404 will not heal by retrying).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from keyguard import __version__
from keyguard.errors import UsageError
from keyguard.secret import Secret
from keyguard.usage.render import SCHEMA_VERSION

if TYPE_CHECKING:
    from keyguard.usage.store import UsageStore

#: Side table of the usage store: one row per alert queued for notification.
LEDGER = "notify_ledger"
#: Alerts per webhook POST (Slack allows 50 blocks per message; each alert is one).
BATCH = 20
#: Longest summary put in one Slack block (Slack's limit is 3000 characters).
MAX_BLOCK_TEXT = 2900

Style = Literal["slack", "json"]
Sleep = Callable[[float], None]


class NotifyError(Exception):
    """A webhook POST failed for good; the message names the host only, never the URL."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where to post: the URL (secret), its host (printable) and the payload style."""

    url: Secret
    host: str
    style: Style


def parse_webhook(value: str, env: Mapping[str, str] | None = None,
                  option: str = "--notify") -> Webhook:
    """The webhook for ``--notify``: an http(s) URL, ``keyring:NAME`` or ``env:VAR``.

    ``option`` names the setting in error messages (rotation hooks pass their file entry).

    Raises:
        UsageError: not an http(s) URL with a host (the message never quotes the value).
        ConfigError: a reference that names nothing (from ``credentials.resolve``).

    """
    from keyguard.credentials import resolve

    text = value.strip()
    if text.startswith(("keyring:", "env:")):
        url = resolve(text, env)
    elif text.lower().startswith(("http://", "https://")):
        url = Secret(text)
    else:
        raise UsageError(f"{option}: expected an http(s) webhook URL, keyring:NAME or env:VAR",
                         "store the URL with `keyguard auth set NAME` and pass keyring:NAME")
    raw = url.reveal().strip()
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        _ = parts.port  # a non-numeric port raises here, not mid-run in urllib
    except ValueError:
        host = None
        parts = None
    printable = raw.isprintable() and not any(c.isspace() for c in raw)
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host \
            or not printable:
        raise UsageError(f"{option}: the webhook URL is not an http(s) URL with a host",
                         "check the stored value (it is never printed)")
    slack = host == "slack.com" or host.endswith(".slack.com") or \
        parts.path.rstrip("/").endswith("/slack")
    return Webhook(url, host, "slack" if slack else "json")


# -- ledger ---------------------------------------------------------------------------------


def _ensure(store: UsageStore) -> None:
    store.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER} (alert_id VARCHAR PRIMARY KEY, "
                  "payload VARCHAR NOT NULL, queued_at TIMESTAMP NOT NULL, "
                  "sent_at TIMESTAMP, attempts INTEGER NOT NULL DEFAULT 0)")


def queue(store: UsageStore, alerts: Sequence[Mapping[str, Any]], now: datetime) -> int:
    """Queue alert objects (each with an ``id``) not yet in the ledger; returns how many."""
    from keyguard.usage.store import naive

    _ensure(store)
    known = {row[0] for row in store.query(f"SELECT alert_id FROM {LEDGER}")}  # noqa: S608
    added = 0
    for alert in alerts:
        if alert["id"] in known:
            continue
        known.add(alert["id"])
        store.execute(f"INSERT INTO {LEDGER} (alert_id, payload, queued_at) VALUES (?, ?, ?)",  # noqa: S608
                      [alert["id"], json.dumps(alert, ensure_ascii=False), naive(now)])
        added += 1
    return added


def pending(store: UsageStore) -> list[dict[str, Any]]:
    """Queued alert objects not sent yet, oldest first."""
    _ensure(store)
    rows = store.query(f"SELECT payload FROM {LEDGER} WHERE sent_at IS NULL "  # noqa: S608
                       "ORDER BY queued_at, alert_id")
    return [json.loads(row[0]) for row in rows]


def _mark(store: UsageStore, ids: Sequence[str], now: datetime | None) -> None:
    from keyguard.usage.store import naive

    for alert_id in ids:
        if now is None:
            store.execute(f"UPDATE {LEDGER} SET attempts = attempts + 1 WHERE alert_id = ?",  # noqa: S608
                          [alert_id])
        else:
            store.execute(f"UPDATE {LEDGER} SET attempts = attempts + 1, sent_at = ? "  # noqa: S608
                          "WHERE alert_id = ?", [naive(now), alert_id])


# -- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one run's notification did: alerts newly queued, sent, still pending, the error."""

    host: str
    queued: int
    sent: int
    pending: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``stats.notify`` object of the JSON report."""
        return {"host": self.host, "queued": self.queued, "sent": self.sent,
                "pending": self.pending, "error": self.error}


Poster = Callable[[Webhook, bytes], None]


def deliver(store: UsageStore, hook: Webhook, alerts: Sequence[Mapping[str, Any]],
            now: datetime, post: Poster | None = None) -> Delivery:
    """Queue ``alerts`` (report alert objects), then post everything pending in batches.

    Stops at the first batch that fails: the rest stay queued for the next run.
    """
    send = post or HttpPoster()
    queued = queue(store, alerts, now)
    todo = pending(store)
    sent = 0
    error: str | None = None
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        ids = [a["id"] for a in batch]
        try:
            send(hook, payload(hook.style, batch))
        except NotifyError as exc:
            _mark(store, ids, None)
            error = str(exc)
            break
        _mark(store, ids, now)
        sent += len(batch)
    return Delivery(hook.host, queued, sent, len(todo) - sent, error)


def payload(style: Style, alerts: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON body for one batch in the webhook's style."""
    text = _text(alerts)
    body: dict[str, Any]
    if style == "slack":
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {
            "type": "mrkdwn", "text": _slack_escape(text.splitlines()[0])}}]
        blocks.extend({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _slack_alert(a)[:MAX_BLOCK_TEXT]}}
                      for a in alerts)
        body = {"text": text, "blocks": blocks}
    else:
        body = {"source": "keyguard", "schema_version": SCHEMA_VERSION, "text": text,
                "alerts": list(alerts)}
    return json.dumps(body, ensure_ascii=False).encode()


def _headline(alert: Mapping[str, Any]) -> str:
    alias = f" ({alert['key_alias']})" if alert.get("key_alias") else ""
    return f"[{alert['severity']}] {alert['type']} on key {alert['key']}{alias}"


def _text(alerts: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"keyguard: {len(alerts)} new usage alert(s)"]
    lines.extend(f"{_headline(a)}: {a['summary']}" for a in alerts)
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    """Slack mrkdwn control characters; a key alias must not become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_alert(alert: Mapping[str, Any]) -> str:
    return (f"*{_slack_escape(_headline(alert))}*\n{_slack_escape(str(alert['summary']))}\n"
            f"_{alert['start']} .. {alert['end']}, id {alert['id']}_")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the alert body goes only to the host the user named."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpPoster:
    """POST with a timeout and bounded retries (429/5xx/connection errors, with backoff)."""

    def __init__(self, timeout: float = 10.0, retries: int = 3, backoff: float = 1.0,
                 max_wait: float = 30.0, sleep: Sleep | None = None) -> None:
        import time

        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep: Sleep = sleep or time.sleep
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __call__(self, hook: Webhook, body: bytes,
                 headers: Mapping[str, str] | None = None) -> None:
        """Deliver ``body``; raises NotifyError (host only) once every attempt failed.

        ``headers`` are added to every attempt (rotation hooks sign the body with one).
        """
        import http.client

        problem = ""
        wait = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(self.max_wait, wait))
            wait = self.backoff * (2 ** attempt)
            request = urllib.request.Request(  # noqa: S310 - scheme checked in parse_webhook
                hook.url.reveal().strip(), data=body, method="POST",
                headers={"Content-Type": "application/json; charset=utf-8",
                         "User-Agent": f"keyguard/{__version__}", **(headers or {})})
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read()
                    return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    if 300 <= exc.code < 400:
                        problem += " (redirects are not followed)"
                    raise NotifyError(f"{hook.host}: {problem}") from None
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                if retry_after.strip().isdigit():
                    wait = float(retry_after.strip())
            except (http.client.InvalidURL, ValueError):
                # NOTE: InvalidURL's message quotes the URL: never show it, never retry.
                raise NotifyError(f"{hook.host}: the webhook URL is not valid") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                problem = _reason(exc)
        raise NotifyError(f"{hook.host}: {problem} after {self.retries + 1} attempt(s)")


def _reason(exc: BaseException) -> str:
    """What went wrong, from the error's type and errno text only.

    Exception messages of urllib and http.client may quote the URL (which is a secret),
    so they are never shown: ``Connection refused``, ``timed out``, ``RemoteDisconnected``.
    """
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return type(reason).__name__ if isinstance(reason, BaseException) else "connection failed"
