"""Canary detector: any use of a canary key is a critical alert."""

from datetime import timedelta

from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import DetectorSettings
from keyguard.usage.store import Window
from tests.usage.detectors.common import IPS, START, office_traffic, use
from tests.usage.detectors.common import scan as scan_all


def scan(events: list[UsageEvent], window: Window | None = None,
         settings: DetectorSettings | None = None) -> list[Alert]:
    return scan_all(events, window, settings, only="canary")


# -- canary --------------------------------------------------------------------------------

def test_canary_use_is_critical_with_when_and_where() -> None:
    events = [*office_traffic("key-live", 3),
              use("key-decoy", START + timedelta(days=2, hours=3), "BR", alias="decoy-env"),
              use("key-decoy", START + timedelta(days=2, hours=4), "BR", alias="decoy-env")]
    settings = DetectorSettings(canaries=("decoy-env",))
    alerts = [a for a in scan(events, settings=settings) if a.rule_id == "canary"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.severity is Severity.CRITICAL
    assert alert.subject == "key-decoy"
    assert alert.key_alias == "decoy-env"
    assert alert.evidence["matched_on"] == "key_alias"
    assert alert.evidence["events"] == 2
    assert alert.evidence["source_ips"] == IPS["BR"]
    assert alert.evidence["countries"] == "BR"
    assert alert.evidence["first_seen"] == "2026-01-07T03:00:00Z"
    assert alert.last_seen == START + timedelta(days=2, hours=4)
    assert "Canary key decoy-env was used 2 time(s)" in alert.message


def test_canary_matches_a_principal_arn_too() -> None:
    arn = "arn:aws:iam::123456789012:user/decoy"
    event = UsageEvent(time=START, key_id="AKIAEXAMPLEDECOY0001", source_format="cloudtrail",
                       principal=arn, source_host="AWS Internal", action="ListBuckets")
    alerts = scan([event], settings=DetectorSettings(canaries=(arn,)))
    assert [(a.subject, a.evidence["matched_on"], a.evidence["source_ips"]) for a in alerts] == [
        ("AKIAEXAMPLEDECOY0001", "principal", "AWS Internal")]
    assert alerts[0].evidence["actions"] == "ListBuckets"


def test_no_canary_alert_without_canary_use() -> None:
    events = office_traffic("key-live", 3)
    settings = DetectorSettings(canaries=("key-decoy", "decoy-env"))
    assert [a for a in scan(events, settings=settings) if a.rule_id == "canary"] == []


def test_canary_outside_the_window_is_not_reported_again() -> None:
    events = [*office_traffic("key-live", 3), use("key-decoy", START + timedelta(hours=1), "BR")]
    window = Window(START + timedelta(days=1), START + timedelta(days=3))
    alerts = scan(events, window, DetectorSettings(canaries=("key-decoy",)))
    assert [a for a in alerts if a.rule_id == "canary"] == []
