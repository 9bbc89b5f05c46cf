"""Geography detector: new countries after learning, impossible travel, allow-lists."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import DetectorSettings
from keyguard.usage.store import Window
from tests.usage.detectors.common import IPS, START, office_traffic, use
from tests.usage.detectors.common import scan as scan_all


def scan(events: list[UsageEvent], window: Window | None = None,
         settings: DetectorSettings | None = None) -> list[Alert]:
    return scan_all(events, window, settings, only="geography")


# -- geography -----------------------------------------------------------------------------

def test_new_country_after_learning_alerts_with_evidence() -> None:
    attack = [use("k", START + timedelta(days=21, hours=h), "BR") for h in (2, 3)]
    alerts = scan(office_traffic("k", 21) + attack)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.rule_id, alert.severity, alert.subject) == ("geography", Severity.HIGH, "k")
    assert alert.evidence["country"] == "BR"
    assert alert.evidence["reasons"] == "new-country"
    assert alert.evidence["established_countries"] == "DE, US"
    assert alert.evidence["events"] == 2
    assert alert.evidence["history_events"] == 15 * 8
    assert alert.first_seen == attack[0].time
    assert alert.message.startswith("Key k: first use from BR after 20.7 days and 120 events")


def test_new_country_inside_learning_period_does_not_alert() -> None:
    early = [use("k", START + timedelta(days=2, hours=2), "BR")]
    later = office_traffic("k", 28)
    assert scan(sorted(early + later, key=lambda e: e.time)) == []


def test_learning_needs_enough_events_not_only_days() -> None:
    sparse = [use("k", START + timedelta(days=d, hours=15), "US") for d in range(0, 30, 3)]
    attack = use("k", START + timedelta(days=31), "BR")
    assert scan([*sparse, attack]) == []  # 10 events < 20: still learning
    alerts = scan([*sparse, attack], settings=DetectorSettings(learning_min_events=5))
    assert [a.evidence["country"] for a in alerts] == ["BR"]


def test_established_multi_country_key_does_not_alert() -> None:
    # weeks of US and DE use, then more of the same with both offices within the hour
    events = office_traffic("k", 35)
    overlap = [use("k", START + timedelta(days=36, hours=14), "DE"),
               use("k", START + timedelta(days=36, hours=14, minutes=10), "US")]
    assert scan(events + overlap) == []


def test_judged_on_earlier_history_only() -> None:
    # BR appears after learning and is used daily afterwards: the first BR use still alerts,
    # because a later "established" pattern must not excuse it.
    events = office_traffic("k", 14)
    events += [use("k", START + timedelta(days=d, hours=20), "BR") for d in range(14, 40)]
    alerts = scan(events)
    assert [(a.evidence["country"], a.first_seen) for a in alerts] == [
        ("BR", START + timedelta(days=14, hours=20))]
    assert alerts[0].evidence["events"] == 26


def test_daily_run_does_not_repeat_an_alerted_country() -> None:
    events = [*office_traffic("k", 14), use("k", START + timedelta(days=14, hours=20), "BR")]
    next_day = use("k", START + timedelta(days=15, hours=20), "BR")
    window = Window(START + timedelta(days=15), START + timedelta(days=16))
    assert scan([*events, next_day], window) == []


def test_impossible_travel_names_both_countries_and_the_gap() -> None:
    events = office_traffic("k", 14, countries=("US",))
    # DE office is allow-listed (no new-country alert) but 20 minutes after a US use
    events.append(use("k", START + timedelta(days=14, hours=14, minutes=25), "DE"))
    events.append(use("k", START + timedelta(days=14, hours=14, minutes=5), "US"))
    events.sort(key=lambda e: e.time)
    alerts = scan(events, settings=DetectorSettings(allow_countries=("US", "DE")))
    assert len(alerts) == 1
    evidence = alerts[0].evidence
    assert evidence["reasons"] == "impossible-travel"
    assert (evidence["country"], evidence["travel_from"]) == ("DE", "US")
    assert evidence["travel_gap_minutes"] == pytest.approx(20.0)
    assert "20 min apart from a use in US" in alerts[0].message


def test_travel_slower_than_the_threshold_is_not_impossible() -> None:
    events = office_traffic("k", 14, countries=("US",))
    events.append(use("k", START + timedelta(days=14, hours=19), "DE"))  # 2 h after US
    assert scan(events, settings=DetectorSettings(allow_countries=("US", "DE"))) == []


def test_impossible_travel_adds_to_a_new_country_alert() -> None:
    events = office_traffic("k", 14, countries=("US",))
    events.append(use("k", START + timedelta(days=14, hours=14, minutes=15), "BR"))
    events.append(use("k", START + timedelta(days=14, hours=14, minutes=5), "US"))
    events.sort(key=lambda e: e.time)
    alerts = scan(events)
    assert [a.evidence["reasons"] for a in alerts] == ["new-country, impossible-travel"]


def test_allow_list_silences_new_countries_inside_it_and_flags_the_rest() -> None:
    events = [*office_traffic("k", 21), use("k", START + timedelta(days=22, hours=10), "FR"), use("k", START + timedelta(days=23, hours=3), "BR")]
    alerts = scan(events, settings=DetectorSettings(allow_countries=("US", "DE", "FR")))
    assert [(a.evidence["country"], a.evidence["reasons"]) for a in alerts] == [
        ("BR", "outside-allow-list, new-country")]
    assert "outside the allowed countries (DE, FR, US)" in alerts[0].message


def test_allow_list_is_policy_even_while_learning() -> None:
    events = office_traffic("k", 3)  # learning: US and DE
    alerts = scan(events, settings=DetectorSettings(allow_countries=("US",)))
    assert [(a.evidence["country"], a.evidence["reasons"]) for a in alerts] == [
        ("DE", "outside-allow-list")]
    assert alerts[0].evidence["events"] == 3 * 4


def test_unattributed_and_unlocated_events_are_not_judged() -> None:
    events = [*office_traffic("(unattributed)", 14), use("(unattributed)", START + timedelta(days=15), "BR"), UsageEvent(time=START + timedelta(days=15), key_id="k", source_format="litellm")]
    assert scan(events) == []


# -- equivalence with the plain walk over every event (the SQL profile is an optimisation) --

def reference(history: list[UsageEvent], window: Window, settings: DetectorSettings,
              travel: timedelta) -> dict[str, tuple[list[str], int]]:
    """The detector's rules applied event by event: country -> (reasons, events in window)."""
    allow = set(settings.allow_countries)
    first, seen = history[0].time, set()
    flagged: dict[str, tuple[list[str], int]] = {}
    previous: UsageEvent | None = None
    for n_before, event in enumerate(history):
        country = event.country
        if country is None:
            continue
        if window.contains(event.time):
            learned = (event.time - first >= timedelta(days=settings.learning_days)
                       and n_before >= settings.learning_min_events)
            reasons = []
            if allow and country not in allow:
                reasons.append("outside-allow-list")
            if learned and country not in seen and country not in allow:
                reasons.append("new-country")
            if reasons and country not in flagged:
                flagged[country] = (reasons, 0)
            if (learned and previous is not None and previous.country not in (None, country)
                    and event.time - previous.time < travel):
                def established(c: str) -> bool:
                    return c in seen and c not in flagged
                target = (country if not established(country) else previous.country
                          if not established(previous.country) else None)
                if target is not None:
                    got = flagged.setdefault(target, ([], 0))
                    if "impossible-travel" not in got[0]:
                        got[0].append("impossible-travel")
            if country in flagged:
                flagged[country] = (flagged[country][0], flagged[country][1] + 1)
        seen.add(country)
        previous = event
    return {c: v for c, v in flagged.items() if v[1]}


@given(steps=st.lists(st.tuples(st.integers(1, 8) | st.integers(1, 600), st.sampled_from(["US", "DE", "BR", None])),
                      min_size=1, max_size=60),
       window_from=st.integers(0, 59), allow=st.sampled_from([(), ("US",), ("US", "DE")]))
@settings(max_examples=150, deadline=None)
def test_profile_walk_matches_the_event_by_event_rules(
        steps: list[tuple[int, str | None]], window_from: int, allow: tuple[str, ...]) -> None:
    when, history = START, []
    for i, (minutes, country) in enumerate(steps):
        when += timedelta(minutes=minutes * 7)  # up to ~3 days apart: learning ends mid-way
        history.append(UsageEvent(time=when, key_id="k", source_format="litellm",
                                  country=country, source_ip=IPS[country] if country else None,
                                  origin=f"f:{i}"))
    window = Window(history[min(window_from, len(history) - 1)].time, history[-1].time)
    settings_ = DetectorSettings(allow_countries=allow, learning_days=2, learning_min_events=5)
    expected = reference(history, window, settings_, timedelta(hours=1))
    alerts = scan(history, window, settings_)
    got = {str(a.evidence["country"]): (str(a.evidence["reasons"]).split(", "),
                                         int(a.evidence["events"])) for a in alerts}
    assert got == expected
