"""Matching usage events to canaries (mirrors the usage canary detector), pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyguard.canary import Canary, CanaryKind
from keyguard.canary.check import usage_alerts
from keyguard.model import Severity, UsageEvent
from keyguard.usage.alerts import alert_id

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
AWS = Canary("cn-aws", CanaryKind.AWS, "sync-svc", "AKIAQQQQQQQQQQQQQQQ1", T0,
             principal="arn:aws:iam::123456789012:user/sync-svc")
LLM = Canary("cn-llm", CanaryKind.LITELLM, "reporting-batch", "ab" * 32, T0)


def event(minutes: int, **fields: str) -> UsageEvent:
    base: dict[str, str] = {"key_id": "AKIAOTHEROTHEROTHER1"}
    base.update(fields)
    return UsageEvent(time=T0 + timedelta(minutes=minutes), source_format="cloudtrail",
                      source_ip="203.0.113.7", origin=f"t.json:{minutes}", **base)  # type: ignore[arg-type]


def test_key_id_principal_and_alias_each_match() -> None:
    events = [
        event(5, key_id="ASIATEMPORARYSESSION", principal=AWS.principal or ""),  # STS session
        event(1, key_id=AWS.identifier),
        event(2, key_id="some-other-hash", key_alias="reporting-batch"),
        event(3),  # an ordinary key: no alert
    ]
    found = {c.id: a for c, a in usage_alerts([AWS, LLM], events)}
    assert set(found) == {"cn-aws", "cn-llm"}
    aws = found["cn-aws"]
    assert aws.severity is Severity.CRITICAL
    assert aws.subject == AWS.identifier
    assert aws.evidence["events"] == 2
    assert aws.first_seen == T0 + timedelta(minutes=1)  # sorted by time, not by file order
    assert aws.last_seen == T0 + timedelta(minutes=5)
    assert aws.evidence["first_origin"] == "t.json:1"
    assert found["cn-llm"].key_alias == "reporting-batch"


def test_nothing_matches_nothing_alerts() -> None:
    assert usage_alerts([AWS, LLM], [event(1), event(2)]) == []
    assert usage_alerts([], [event(1, key_id=AWS.identifier)]) == []


def test_alert_ids_are_stable_per_canary_and_day() -> None:
    [(_, first)] = usage_alerts([AWS], [event(1, key_id=AWS.identifier)])
    [(_, later)] = usage_alerts([AWS], [event(90, key_id=AWS.identifier)])
    [(_, next_day)] = usage_alerts([AWS], [event(60 * 24, key_id=AWS.identifier)])
    assert alert_id(first) == alert_id(later)
    assert alert_id(first) != alert_id(next_day)
