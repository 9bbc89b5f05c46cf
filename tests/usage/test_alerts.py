"""Stable alert ids, report type names and the --min-severity cut."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keyguard.model import Alert, Severity
from keyguard.usage.alerts import alert_id, at_least, detector_id, report_type, sort_key

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
GEO = Alert(rule_id="geography", severity=Severity.HIGH, subject="key_a", message="m",
            evidence={"country": "BR", "events": 3, "reasons": "new-country"},
            first_seen=START, last_seen=START + timedelta(hours=1))


def test_id_is_versioned_and_hex() -> None:
    assert re.fullmatch(r"ua1:[0-9a-f]{20}", alert_id(GEO))


def test_same_anomaly_seen_by_a_rescan_keeps_its_id() -> None:
    # a --since rescan sees more events of the same anomaly, later, with more reasons
    rescan = replace(GEO, message="other words", last_seen=START + timedelta(days=1),
                     first_seen=START.replace(hour=0, minute=1),
                     evidence={**GEO.evidence, "events": 40,
                               "reasons": "new-country, impossible-travel"})
    assert alert_id(rescan) == alert_id(GEO)


def test_id_changes_with_what_identifies_the_anomaly() -> None:
    base = alert_id(GEO)
    assert alert_id(replace(GEO, evidence={**GEO.evidence, "country": "CN"})) != base
    assert alert_id(replace(GEO, subject="key_b")) != base
    assert alert_id(replace(GEO, first_seen=START + timedelta(days=1))) != base
    assert alert_id(replace(GEO, rule_id="velocity")) != base


def test_velocity_reasons_are_distinct_alerts_on_one_key() -> None:
    spike = replace(GEO, rule_id="velocity", evidence={"reason": "spike", "metric": "tokens"})
    plateau = replace(spike, evidence={"reason": "plateau", "metric": "requests"})
    assert alert_id(spike) != alert_id(plateau)


def test_type_spellings() -> None:
    assert report_type("prompt-mix") == "prompt_mix"
    assert detector_id("prompt_mix") == detector_id(" prompt-mix ") == "prompt-mix"
    # the id hashes the report spelling, so both detector spellings agree
    assert alert_id(replace(GEO, rule_id="prompt-mix")) == alert_id(replace(GEO, rule_id="prompt_mix"))


def test_min_severity_keeps_at_or_above_and_counts_the_rest() -> None:
    alerts = [replace(GEO, severity=s) for s in Severity]
    cut = at_least(alerts, Severity.HIGH)
    assert [a.severity for a in cut.shown] == [Severity.HIGH, Severity.CRITICAL]
    assert cut.below == 3
    assert at_least(alerts, Severity.INFO).below == 0


def test_sort_most_severe_then_key_then_start() -> None:
    a = replace(GEO, subject="b", severity=Severity.CRITICAL)
    b = replace(GEO, subject="a")
    c = replace(GEO, subject="a", first_seen=START - timedelta(hours=1))
    assert sorted([b, a, c], key=sort_key) == [a, c, b]


def test_prompt_mix_and_coordination_ids_ignore_volatile_evidence() -> None:
    mix = replace(GEO, rule_id="prompt-mix", evidence={"day_requests": 40})
    more = replace(mix, evidence={"day_requests": 90, "trap_requests": 2})
    assert alert_id(mix) == alert_id(more)
    group = replace(GEO, rule_id="coordination", evidence={"group_id": "cg-1", "members": 4})
    grown = replace(group, evidence={"group_id": "cg-2", "members": 6})
    assert alert_id(group) == alert_id(grown)
    assert alert_id(group) != alert_id(mix)
