"""--notify: webhook parsing, payloads, retries, and the sent-alert ledger, against real HTTP."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keyguard.errors import ConfigError, UsageError
from keyguard.secret import Secret
from keyguard.usage.notify import (
    BATCH,
    HttpPoster,
    NotifyError,
    Webhook,
    deliver,
    parse_webhook,
    payload,
    pending,
)
from keyguard.usage.store import UsageStore
from tests.usage.webhook_server import webhook_server

NOW = datetime(2026, 3, 10, 6, tzinfo=UTC)


def alert(n: int, **kw: Any) -> dict[str, Any]:
    return {"id": f"ua1:{n:020x}", "key": f"key_{n}", "key_alias": None, "type": "geography",
            "severity": "high", "start": "2026-03-09T14:05:00Z", "end": "2026-03-09T15:05:00Z",
            "summary": f"Key key_{n}: first use from BR.", "evidence": {"country": "BR"}, **kw}


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def poster(sleeps: Sleeps, **kw: Any) -> HttpPoster:
    return HttpPoster(timeout=kw.pop("timeout", 5.0), backoff=0.5, sleep=sleeps, **kw)


# -- parsing -------------------------------------------------------------------------------


def test_plain_urls_choose_the_payload_style_by_host() -> None:
    assert parse_webhook("https://hooks.slack.com/services/T1/B2/x").style == "slack"
    assert parse_webhook("https://chat.example.com/hooks/abc/slack").style == "slack"
    hook = parse_webhook("https://alerts.example.com/keyguard?token=abc")
    assert (hook.style, hook.host) == ("json", "alerts.example.com")
    assert "abc" not in repr(hook)


def test_env_reference_resolves_and_keyring_without_backend_is_a_config_error(
        no_keyring: None) -> None:
    hook = parse_webhook("env:HOOK", env={"HOOK": "https://hooks.slack.com/services/T/B/s"})
    assert hook.host == "hooks.slack.com"
    with pytest.raises(ConfigError, match="keyring:slack"):
        parse_webhook("keyring:slack")


@pytest.mark.parametrize("value", ["ftp://files.example.com/T0K3N", "T0K3N-literal",
                                   "https:///T0K3N", "http://[::1/T0K3N",
                                   "http://host:port/T0K3N", "http://host/T0K3N\x00x",
                                   "http://host/T0K3N path"])
def test_bad_urls_are_usage_errors_that_never_quote_the_value(value: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_webhook(value, env={})
    assert "T0K3N" not in str(info.value)


def test_an_invalid_url_at_post_time_never_shows_it() -> None:
    hook = Webhook(Secret("http://127.0.0.1:1/T0K3N\nx"), "127.0.0.1", "json")
    with pytest.raises(NotifyError) as info:
        HttpPoster(retries=0, sleep=Sleeps())(hook, b"{}")
    assert "T0K3N" not in str(info.value)


def test_env_reference_to_a_non_url_never_quotes_it() -> None:
    with pytest.raises(UsageError) as info:
        parse_webhook("env:HOOK", env={"HOOK": "T0K3N"})
    assert "T0K3N" not in str(info.value)


# -- payloads -------------------------------------------------------------------------------


def test_slack_payload_has_text_and_escaped_blocks() -> None:
    import json

    body = json.loads(payload("slack", [alert(1, key_alias="<!channel> & co")]))
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("keyguard: 1 new usage alert(s)")
    section = body["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; co" in section
    assert "<!channel>" not in section
    assert "ua1:" in section


def test_generic_payload_carries_the_report_alert_objects() -> None:
    import json

    body = json.loads(payload("json", [alert(1), alert(2)]))
    assert body["source"] == "keyguard"
    assert body["schema_version"] == 1
    assert [a["id"] for a in body["alerts"]] == [alert(1)["id"], alert(2)["id"]]
    assert "key_2" in body["text"]


# -- HTTP ------------------------------------------------------------------------------------


def test_post_sends_json_once_on_success() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        poster(sleeps)(parse_webhook(server.url()), b'{"text": "hi"}')
    [(path, headers, body)] = server.received
    assert path == "/hooks/T0K3N-secret-path"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["User-Agent"].startswith("keyguard/")
    assert body == b'{"text": "hi"}'
    assert sleeps.calls == []


def test_5xx_is_retried_with_exponential_backoff_and_429_honours_retry_after() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        server.answers = [(503, None), (429, "2"), (500, None)]
        poster(sleeps)(parse_webhook(server.url()), b"{}")
    assert len(server.received) == 4
    assert sleeps.calls == [0.5, 2.0, 2.0]


def test_retry_after_is_capped() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        server.answers = [(429, "3600")]
        poster(sleeps, max_wait=5.0)(parse_webhook(server.url()), b"{}")
    assert sleeps.calls == [5.0]


def test_persistent_failure_names_the_host_only() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        server.answers = [(500, None)] * 4
        hook = parse_webhook(server.url())
        with pytest.raises(NotifyError) as info:
            poster(sleeps, retries=3)(hook, b"{}")
    assert len(server.received) == 4
    assert str(info.value) == "127.0.0.1: HTTP 500 after 4 attempt(s)"


def test_client_errors_and_redirects_are_not_retried() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        server.answers = [(404, None), (302, None)]
        hook = parse_webhook(server.url())
        with pytest.raises(NotifyError, match="HTTP 404"):
            poster(sleeps)(hook, b"{}")
        with pytest.raises(NotifyError, match="HTTP 302 \\(redirects are not followed\\)"):
            poster(sleeps)(hook, b"{}")
    assert len(server.received) == 2
    assert sleeps.calls == []


def test_connection_refused_and_timeouts_are_retried_then_fail() -> None:
    sleeps = Sleeps()
    with webhook_server() as server:
        url = server.url()
    hook = parse_webhook(url)  # the server is gone: connection refused
    with pytest.raises(NotifyError) as info:
        poster(sleeps, retries=1)(hook, b"{}")
    assert len(sleeps.calls) == 1
    assert str(info.value) == "127.0.0.1: Connection refused after 2 attempt(s)"
    with webhook_server() as server:
        server.delay = 1.0
        with pytest.raises(NotifyError, match="timed out after 2 attempt"):
            poster(Sleeps(), retries=1, timeout=0.2)(parse_webhook(server.url()), b"{}")


# -- ledger ---------------------------------------------------------------------------------


def test_alerts_are_sent_once_and_a_rescan_does_not_resend() -> None:
    with webhook_server() as server, UsageStore() as store:
        hook = parse_webhook(server.url())
        first = deliver(store, hook, [alert(1), alert(2)], NOW)
        again = deliver(store, hook, [alert(2), alert(3)], NOW)
    assert (first.queued, first.sent, first.pending, first.error) == (2, 2, 0, None)
    assert (again.queued, again.sent, again.pending) == (1, 1, 0)
    sent = [a["id"] for body in server.bodies() for a in body["alerts"]]
    assert sent == [alert(1)["id"], alert(2)["id"], alert(3)["id"]]


def test_failed_alerts_stay_queued_and_the_next_run_sends_them(tmp_path: Path) -> None:
    path = tmp_path / "usage.duckdb"
    with webhook_server() as server:
        hook = parse_webhook(server.url())
        server.answers = [(500, None)] * 2
        with UsageStore(path) as store:
            failed = deliver(store, hook, [alert(1)], NOW,
                             post=HttpPoster(retries=1, backoff=0, sleep=Sleeps()))
            store.commit()
        assert (failed.sent, failed.pending) == (0, 1)
        assert failed.error == "127.0.0.1: HTTP 500 after 2 attempt(s)"
        with UsageStore(path) as store:
            assert [a["id"] for a in pending(store)] == [alert(1)["id"]]
            retried = deliver(store, hook, [], NOW)
            store.commit()
        assert (retried.queued, retried.sent, retried.pending) == (0, 1, 0)
    assert len(server.received) == 3


def test_the_ledger_commits_with_the_run_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "usage.duckdb"
    with webhook_server() as server:
        hook = parse_webhook(server.url())
        with UsageStore(path) as store:
            deliver(store, hook, [alert(1)], NOW)
            # no commit: the run crashed before its report was written
        with UsageStore(path) as store:
            assert deliver(store, hook, [alert(1)], NOW).sent == 1
            store.commit()
        with UsageStore(path) as store:
            assert deliver(store, hook, [alert(1)], NOW).sent == 0
    assert len(server.received) == 2  # at least once: the crashed run's post is repeated


def test_batches_and_a_failed_batch_stops_the_rest() -> None:
    alerts = [alert(n) for n in range(2 * BATCH + 5)]
    with webhook_server() as server, UsageStore() as store:
        hook = parse_webhook(server.url())
        server.answers = [(200, None), (400, None)]
        result = deliver(store, hook, alerts, NOW, post=HttpPoster(retries=0, sleep=Sleeps()))
        assert (result.sent, result.pending) == (BATCH, BATCH + 5)
        assert result.error == "127.0.0.1: HTTP 400"
        rest = deliver(store, hook, [], NOW)
    assert (rest.sent, rest.pending) == (BATCH + 5, 0)
    assert [len(b["alerts"]) for b in server.bodies()] == [BATCH, BATCH, BATCH, 5]


def test_custom_poster_receives_the_webhook_and_body() -> None:
    seen: list[tuple[Webhook, bytes]] = []
    hook = Webhook(Secret("https://x.example/T0K3N"), "x.example", "json")
    with UsageStore() as store:
        deliver(store, hook, [alert(1)], NOW, post=lambda h, b: seen.append((h, b)))
    assert seen[0][0] is hook
    assert b"ua1:" in seen[0][1]
