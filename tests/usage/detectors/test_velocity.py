"""Velocity detector: spikes, night plateaus, ramps and limit-dodging rotation, and the
legitimate patterns (business hours in several time zones, 24/7 batch, bursty CI, feature
launches, travellers, multi-key teams) that must stay silent."""

import dataclasses
import math
import random
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from keyguard.config import UsageConfig
from keyguard.errors import ConfigError
from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import DetectorSettings, velocity
from keyguard.usage.detectors import _timeseries as ts
from keyguard.usage.detectors.velocity import VelocityParams
from keyguard.usage.settings import load_settings
from keyguard.usage.store import Window
from tests.usage.detectors.common import START
from tests.usage.detectors.common import scan as scan_all

DAYS = 28


def scan(events: list[UsageEvent], window: Window | None = None,
         settings: DetectorSettings | None = None) -> list[Alert]:
    return scan_all(sorted(events, key=lambda e: e.time), window, settings, only="velocity")


def at(day: float, hour: float = 0) -> datetime:
    return START + timedelta(days=day, hours=hour)


def bucket(key: str, when: datetime, requests: int, *, account: str | None = None,
           tokens: int = 800, ip: str = "3.3.3.3") -> UsageEvent:
    """One gateway row carrying an hour's requests (spread over the hour's first minutes)."""
    return UsageEvent(time=when, key_id=key, source_format="litellm", key_alias=f"{key}-alias",
                      source_ip=ip, country="US", user_agent="python-httpx",
                      requests=requests, input_tokens=tokens * requests // 2,
                      output_tokens=tokens * requests // 2, account=account,
                      origin=f"spend.jsonl:{int(when.timestamp())}")


def noisy(rng: random.Random, rate: float, human: float = 0.3) -> int:
    """A Poisson-like count with extra human variation (rate +- 30 % by default)."""
    return max(0, round(rng.gauss(rate, human * rate + math.sqrt(rate))))


def business(key: str, days: int = DAYS, *, utc_offset: int = -5, rate: float = 30,
             seed: int = 1, first_day: int = 0, account: str | None = None,
             hours: Iterable[int] = range(9, 18), human: bool = True) -> list[UsageEvent]:
    """Weekday office hours in a time zone (local 09-17): a person's diurnal curve with
    noise, or (``human=False``) a service paced at a flat rate while the office is open."""
    rng = random.Random(seed)
    out: list[UsageEvent] = []
    for day in range(first_day, first_day + days):
        for local in hours:
            when = at(day, local - utc_offset)
            local_day = when + timedelta(hours=utc_offset)
            if local_day.weekday() >= 5:
                continue
            shape = 1.0 - 0.4 * abs(local - 13) / 4 if human else 1.0  # busiest early afternoon
            if (n := noisy(rng, rate * shape, 0.3 if human else 0.0)) > 0:
                out.append(bucket(key, when + timedelta(minutes=rng.randrange(30)), n,
                                  account=account))
    return out


def batch(key: str, days: int = DAYS, rate: float = 40, seed: int = 2) -> list[UsageEvent]:
    """A 24/7 batch job: a near-constant rate every hour of every day."""
    rng = random.Random(seed)
    return [bucket(key, at(day, hour), max(1, round(rng.gauss(rate, math.sqrt(rate)))))
            for day in range(days) for hour in range(24)]


def ci(key: str, days: int = DAYS, seed: int = 3) -> list[UsageEvent]:
    """CI: short bursts every 2-6 hours, day and night, each from a fresh runner IP."""
    rng = random.Random(seed)
    out: list[UsageEvent] = []
    when = at(0, 1)
    while when < at(days):
        ip = f"20.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        out.append(bucket(key, when, rng.randrange(40, 160), ip=ip))
        when += timedelta(hours=rng.uniform(2, 6))
    return out


def kinds(alerts: list[Alert]) -> list[tuple[str, object]]:
    return [(a.subject, a.evidence["reason"]) for a in alerts]


# -- robust statistics ----------------------------------------------------------------------

def test_timeseries_helpers() -> None:
    assert ts.median([]) == 0.0
    assert ts.median([5, 1, 3]) == 3
    assert ts.median([4, 1, 3, 2]) == 2.5
    assert ts.mad([1, 2, 3, 4, 100]) == 1
    assert ts.robust_scale([0, 0, 0]) == 1.0  # never zero: sqrt(max(median, 1))
    assert ts.robust_scale([100, 100, 100]) == pytest.approx(10.0)
    assert ts.kth_largest([1, 9, 5], 2) == 5
    assert ts.kth_largest([7], 2) == 7
    assert ts.variation([10, 10, 10]) == 0
    assert ts.variation([0, 0]) == math.inf
    assert ts.runs([5, 1, 2, 4, 9]) == [[1, 2], [4, 5], [9]]
    monday_3am = ts.hour_of(at(7, 3))
    assert ts.hour_of_week(monday_3am) == 3
    assert ts.slot_name(monday_3am + 24) == "Tue 03:00 UTC"
    assert ts.hour_start(monday_3am) == at(7, 3)


# -- legitimate patterns stay silent, scanned at once or day by day ---------------------------

LEGIT = {
    "business-us": lambda: business("us"),
    "business-de": lambda: business("de", utc_offset=1, seed=4),
    "business-jp": lambda: business("jp", utc_offset=9, seed=5),
    "batch-247": lambda: batch("batch"),
    "bursty-ci": lambda: ci("ci"),
    "small-key": lambda: business("small", rate=2, seed=6),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legitimate_pattern_is_silent_in_one_scan(name: str) -> None:
    assert scan(LEGIT[name]()) == []


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legitimate_pattern_is_silent_in_daily_runs(name: str) -> None:
    events = LEGIT[name]()
    for day in range(8, DAYS):
        window = Window(at(day), at(day + 1) - timedelta(microseconds=1))
        assert scan([e for e in events if e.time < at(day + 1)], window) == [], day


def test_feature_launch_step_up_is_not_an_alert() -> None:
    # traffic triples from day 21 and stays there: a step, not a spike or a ramp
    events = business("app", 21) + business("app", 14, rate=90, seed=7, first_day=21)
    assert scan(events) == []


def test_model_migration_doubling_tokens_is_not_an_alert() -> None:
    events = business("app", 21)
    events += [bucket(e.key_id, e.time, e.requests, tokens=2400)
               for e in business("app", 14, seed=8, first_day=21)]
    assert scan(events) == []


def test_traveller_working_their_usual_day_from_another_time_zone_is_silent() -> None:
    # a person's key: New York office hours for four weeks, then a week in Tokyo
    events = business("dev", 28, rate=25) + business("dev", 7, utc_offset=9, rate=25, seed=9,
                                                     first_day=28)
    assert scan(events) == []


def test_multi_key_team_working_in_several_time_zones_is_not_rotation() -> None:
    # one team, three services, each busy in its own office hours: turns, every day, always
    events = (business("svc-us", 35, account="team-a", seed=11)
              + business("svc-de", 35, utc_offset=1, account="team-a", seed=12)
              + business("svc-jp", 35, utc_offset=9, account="team-a", seed=13))
    assert scan(events) == []


# -- spike ----------------------------------------------------------------------------------

def test_spike_far_above_the_slot_and_the_usual_peak_alerts_once_per_run() -> None:
    events = business("k")
    events += [bucket("k", at(DAYS + 1, 3 + h), 1500, ip="203.0.113.9") for h in range(2)]
    alerts = scan(events + business("k", 3, first_day=DAYS))
    assert kinds(alerts) == [("k", "spike")]
    alert = alerts[0]
    ev = alert.evidence
    assert alert.severity == Severity.HIGH
    assert (ev["metric"], ev["hours"], ev["total_requests"]) == ("requests", 2, 3000)
    assert ev["baseline"] == "hour-of-week"
    assert ev["slot"] == "Tue 03:00 UTC"
    assert ev["baseline_median"] == 0
    assert float(ev["ratio"]) >= 8 * 4 / 2  # far above the key's second-highest hour
    assert ev["source_ips"] == "203.0.113.9"
    assert alert.first_seen == at(DAYS + 1, 3)
    assert alert.message.startswith("Key k: 3000 requests in 2 hour(s) from 2026-02-03T03:00")


def test_spike_in_tokens_alone_is_reported_as_a_token_spike() -> None:
    events = business("k")
    events.append(bucket("k", at(DAYS + 1, 15), 40, tokens=60_000))  # usual rate, huge prompts
    alerts = scan(events)
    assert [(a.evidence["reason"], a.evidence["metric"]) for a in alerts] == [("spike", "tokens")]
    assert alerts[0].evidence["total_tokens"] == 40 * 60_000


def test_spike_inside_the_learning_period_is_not_judged() -> None:
    events = [*business("k", 5), bucket("k", at(3, 3), 5000)]
    assert scan(events) == []


def test_moderate_burst_below_the_factor_is_noise() -> None:
    events = [*business("k"), bucket("k", at(DAYS + 1, 15), 90)]  # about 2x the usual peak
    assert scan(events) == []


def test_spike_is_judged_on_earlier_history_only() -> None:
    # the same 03:00 spike on three Tuesdays: only the first is a surprise
    events = business("k", 42)
    events += [bucket("k", at(d, 3), 1500) for d in (29, 36)]
    alerts = scan(events)
    assert [a.first_seen for a in alerts] == [at(29, 3)]


def test_spike_parameters_come_from_settings() -> None:
    events = [*business("k"), bucket("k", at(DAYS + 1, 15), 200)]
    assert scan(events) == []
    strict = DetectorSettings(params={"velocity": VelocityParams(spike_factor=2.0)})
    assert kinds(scan(events, settings=strict)) == [("k", "spike")]


# -- plateau --------------------------------------------------------------------------------

def night(key: str, day: int, hours: int, rate: int, first_hour: int = 1) -> list[UsageEvent]:
    rng = random.Random(day)
    return [bucket(key, at(day, first_hour + h), rate + rng.randrange(-3, 4), ip="198.51.100.7")
            for h in range(hours)]


def test_flat_night_harvesting_is_a_plateau() -> None:
    # 01:00-11:00 UTC = 20:00-06:00 EST: longer than the owner's 9-hour day
    events = business("k") + night("k", DAYS + 2, 10, 40)
    alerts = scan(events)
    assert kinds(alerts) == [("k", "plateau")]
    ev = alerts[0].evidence
    assert ev["hours"] == 10
    assert 37 <= float(ev["mean_rate"]) <= 43
    assert float(ev["variation"]) < 0.1
    assert ev["baseline_median"] == 0
    assert alerts[0].severity == Severity.MEDIUM
    assert "10 consecutive hours" in alerts[0].message


def test_night_plateau_faster_than_a_busy_working_hour_alerts_even_when_short() -> None:
    alerts = scan(business("k") + night("k", DAYS + 2, 6, 90))
    assert [(a.evidence["reason"], a.evidence["hours"]) for a in alerts] == [("plateau", 6)]


def test_night_run_flatter_than_the_owners_day_alerts_even_at_the_usual_rate() -> None:
    # 6 machine-flat hours at the person's usual rate: their own days are never that flat
    alerts = scan(business("k") + night("k", DAYS + 2, 6, 30))
    assert [(a.evidence["reason"], a.evidence["hours"]) for a in alerts] == [("plateau", 6)]


def test_night_run_like_the_owners_own_flat_day_needs_the_guard_off() -> None:
    # a service paced at 30/h through office hours, then 6 such hours at night: the same
    # shape, rate and length as its usual day moved to another time zone
    events = business("k", human=False) + night("k", DAYS + 2, 6, 30)
    assert scan(events) == []
    unguarded = DetectorSettings(params={"velocity": VelocityParams(plateau_shift_guard=False)})
    assert kinds(scan(events, settings=unguarded)) == [("k", "plateau")]


def test_long_plateau_is_high() -> None:
    events = business("k") + night("k", DAYS + 2, 13, 40, first_hour=0)
    alerts = scan(events)
    assert [(a.evidence["reason"], a.severity) for a in alerts] == [("plateau", Severity.HIGH)]


def test_short_or_uneven_night_use_is_not_a_plateau() -> None:
    short = business("k") + night("k", DAYS + 2, 4, 90)
    assert scan(short) == []
    rng = random.Random(5)
    uneven = business("k") + [bucket("k", at(DAYS + 2, 1 + h), rng.choice([25, 45, 90, 30]))
                              for h in range(12)]
    assert [a.evidence["reason"] for a in scan(uneven)] != ["plateau"]


def test_plateau_continuing_from_an_earlier_run_is_not_repeated() -> None:
    events = business("k") + night("k", DAYS + 2, 12, 90, first_hour=0)
    first = Window(at(DAYS), at(DAYS + 2, 6) - timedelta(microseconds=1))
    second = Window(at(DAYS + 2, 6), at(DAYS + 3))
    assert kinds(scan([e for e in events if e.time <= first.end], first)) == [("k", "plateau")]
    assert scan(events, second) == []


# -- ramp -----------------------------------------------------------------------------------

def test_steady_multi_day_climb_is_a_ramp() -> None:
    events = batch("k", 21, rate=10)
    for i, day in enumerate(range(21, 27)):
        events += [bucket("k", at(day, h), round(10 * 1.5 ** (i + 1))) for h in range(24)]
    alerts = scan(events)
    assert kinds(alerts) == [("k", "ramp")]
    ev = alerts[0].evidence
    assert float(ev["ratio"]) >= 3
    # first seen on day 24 (days 20-24: 240 -> 1215); merged while it kept climbing to day 26
    assert ev["days"] == 7
    assert str(ev["daily_requests"]).split(", ")[1:3] == [str(24 * 15), str(24 * 22)]
    assert alerts[0].severity == Severity.HIGH


def test_slow_growth_below_the_factor_is_not_a_ramp() -> None:
    events = batch("k", 21, rate=10)
    for i, day in enumerate(range(21, 26)):
        events += [bucket("k", at(day, h), round(10 * 1.1 ** (i + 1))) for h in range(24)]
    assert scan(events) == []


# -- rotation -------------------------------------------------------------------------------

def team_history(days: int = 21) -> list[UsageEvent]:
    """Three keys of team-x, each a modest US office service, concurrent (not in turns)."""
    return [e for i, k in enumerate(("tx-1", "tx-2", "tx-3"))
            for e in business(k, days, rate=10, seed=20 + i, account="team-x")]


def turns(day: int, block: int = 2, rate: int = 60) -> list[UsageEvent]:
    """24 h of requests handed key to key every ``block`` hours, each key under its limit."""
    keys = ("tx-1", "tx-2", "tx-3")
    return [bucket(keys[(h // block) % 3], at(day, h), rate, account="team-x",
                   ip="192.0.2.44") for h in range(24)]


def test_keys_used_in_turns_above_any_single_key_alert_each_member() -> None:
    events = team_history() + turns(22)
    alerts = [a for a in scan(events) if a.evidence["reason"] == "rotation"]
    assert sorted(a.subject for a in alerts) == ["tx-1", "tx-2", "tx-3"]
    ev = alerts[0].evidence
    assert ev["owner"] == "team-x"
    assert ev["keys"] == "tx-1, tx-2, tx-3"
    assert ev["handoffs"] == 11
    assert ev["owner_requests"] == 24 * 60
    assert float(ev["ratio"]) >= 2.5
    assert all(a.evidence["key_requests"] == 8 * 60 for a in alerts)
    assert "used in turns" in alerts[0].message
    assert "tx-2, tx-3" in next(a.message for a in alerts if a.subject == "tx-1")


def test_turns_handed_over_mid_hour_across_midnight_are_rotation() -> None:
    # four keys, 90-minute turns from 19:00 UTC for 20 h, one request a minute, while the
    # team's ordinary office traffic goes on: hand-off hours hold two keys, never more
    keys = [f"tx-{i}" for i in range(1, 5)]
    history = [e for i, k in enumerate(keys)
               for e in business(k, 21, rate=4, seed=30 + i, account="team-x")]
    attack = [bucket(keys[(m // 90) % 4], at(22, 19) + timedelta(minutes=m), 1,
                     account="team-x", ip="192.0.2.44") for m in range(20 * 60)]
    office = [e for i, k in enumerate(keys)
              for e in business(k, 2, rate=4, seed=40 + i, first_day=22, account="team-x")]
    every = scan(history + attack + office)
    alerts = [a for a in every if a.evidence["reason"] == "rotation"]
    assert sorted(a.subject for a in alerts) == keys
    assert len(every) == len(alerts)  # each key's own spikes are the same turns, not repeated
    assert int(alerts[0].evidence["handoffs"]) >= 12
    # sparse office traffic looks like turns by chance now and then, but seldom
    ev = alerts[0].evidence
    assert int(ev["turn_days_before"]) <= 0.1 * int(ev["active_days_before"])


def test_similar_services_side_by_side_are_not_turns() -> None:
    # five services of one team in one office: together five times any one of them, and
    # now and then only one or two carry a fifth of an hour's requests, but none holds it
    keys = [f"svc-{i}" for i in range(5)]
    events = [e for i, k in enumerate(keys)
              for e in business(k, 35, rate=6, seed=50 + i, account="team-s", human=False)]
    assert scan(events) == []


def test_turns_without_extra_volume_are_not_rotation() -> None:
    # the same hand-offs at the team's usual daily volume: nobody dodges anything
    events = team_history() + turns(22, rate=8)
    assert [a for a in scan(events) if a.evidence["reason"] == "rotation"] == []


def test_rotation_needs_a_learned_owner() -> None:
    assert [a for a in scan(team_history(3) + turns(4))
            if a.evidence["reason"] == "rotation"] == []


# -- contract -------------------------------------------------------------------------------

def test_unattributed_events_are_not_judged() -> None:
    events = [*business("(unattributed)"), bucket("(unattributed)", at(DAYS + 1, 3), 5000)]
    assert scan(events) == []


def test_every_alert_names_its_numbers() -> None:
    events = [*business("k"), bucket("k", at(DAYS + 1, 3), 1500), *night("k", DAYS + 3, 10, 40)]
    alerts = scan(events)
    assert sorted(a.evidence["reason"] for a in alerts) == ["plateau", "spike"]
    for alert in alerts:
        assert alert.rule_id == "velocity"
        assert alert.key_alias == "k-alias"
        assert alert.message.endswith(".")
        assert {"reason", "metric", "ratio", "history_days", "history_events"} <= set(alert.evidence)
        assert alert.first_seen is not None
        assert alert.last_seen is not None


def test_every_parameter_is_documented_with_its_toml_name() -> None:
    doc = velocity.__doc__ or ""
    for param in dataclasses.fields(VelocityParams):
        assert f"``{param.name.replace('_', '-')}``" in doc, param.name


def test_parameters_come_from_keyguard_toml() -> None:
    usage = UsageConfig(detectors={"velocity": {"spike-factor": 2.0, "plateau-shift-guard": False}})
    settings = load_settings(usage, "keyguard.toml")
    params = settings.params_for("velocity", VelocityParams)
    assert (params.spike_factor, params.plateau_shift_guard) == (2.0, False)
    with pytest.raises(ConfigError, match="spike-factr"):
        load_settings(UsageConfig(detectors={"velocity": {"spike-factr": 2}}), "keyguard.toml")


def test_a_few_hand_offs_are_a_team_working_shifts_not_rotation() -> None:
    """Offices, travellers and CI hand work over a few times a day; dodging limits takes many."""
    events = team_history() + turns(22, block=4)  # 5 hand-offs in 24 h: alerted before
    assert [a for a in scan(events) if a.evidence["reason"] == "rotation"] == []
