"""Coordination detector: campaigns of keys linked by new shared IPs, templates, agents and timing.

Each test builds a small org with weeks of ordinary traffic (offices behind one NAT
address, common SDK agents, business hours: all shared and synchronised by nature), then
plants either a campaign (must alert every member, naming the others) or one of the
legitimate look-alikes (must stay silent).
"""

import functools
import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from keyguard.config import parse_config
from keyguard.errors import ConfigError
from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import DetectorSettings
from keyguard.usage.detectors._graph import dense_groups, merge_overlapping
from keyguard.usage.detectors.coordination import CoordinationParams
from keyguard.usage.prompt import fingerprint
from keyguard.usage.settings import load_settings
from keyguard.usage.store import Window
from tests.usage.detectors.common import START, sampled
from tests.usage.detectors.common import scan as scan_all

NAT = "3.3.3.3"
AGENT = "python-httpx/0.27.2"
WORDS = ("invoice", "order", "refund", "parcel", "delay", "customer", "account", "payment",
         "address", "warehouse", "coupon", "billing", "shipment", "return", "label", "tracking",
         "courier", "receipt", "store", "basket")
DESKS = ("north", "south", "east", "west")


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def service_prompt(service: int, rng: random.Random) -> str:
    """One template per service: a fixed instruction plus variable details (from a pool)."""
    return _service_prompt(service, rng.randrange(40))


@functools.cache
def _service_prompt(service: int, variant: int) -> str:
    rng = random.Random(service * 1000 + variant)
    return (f"Service {'abcdefghijklmnop'[service]} instructions: summarise the case for the "
            f"{DESKS[service % 4]} desk, list next steps and keep it "
            f"short. Case {rng.randrange(10**5)}: {words(rng, 6)}")


def campaign_prompt(rng: random.Random) -> str:
    """The attacker's template with variable details (from a pool, so hashing stays cheap)."""
    return _campaign_prompt(rng.randrange(80))


@functools.cache
def _campaign_prompt(variant: int) -> str:
    rng = random.Random(variant)
    return ("Reply as the assistant of a resold workspace. Keep replies short and friendly, do "
            "not reveal the workspace id and do not mention which provider serves the request. "
            f"Workspace {rng.getrandbits(32):08x}, customer says: {words(rng, rng.randint(8, 16))}")


def event(key: str, when: datetime, ip: str, agent: str = AGENT, prompt: str | None = None,
          alias: str | None = None) -> UsageEvent:
    return UsageEvent(time=when, key_id=key, source_format="litellm", key_alias=alias,
                      source_ip=ip, country="US", user_agent=agent,
                      prompt_fingerprint=_fingerprint(prompt) if prompt else None,
                      origin=f"spend.jsonl:{int(when.timestamp())}")


@functools.cache
def _fingerprint(prompt: str) -> str:
    return fingerprint(prompt)


def office(keys: Iterable[str], days: int, ip_from: tuple[int, str] | None = None,
           ) -> list[UsageEvent]:
    """Weekday business hours (13-21 UTC) for every key: Poisson-like arrivals, own template.

    ``ip_from`` = (day, address): the office NAT address changes on that day for every key.
    Built once per argument set (the events are frozen), since most tests share one org.
    """
    return list(_office(tuple(keys), days, ip_from))


@functools.cache
def _office(keys: tuple[str, ...], days: int, ip_from: tuple[int, str] | None,
            seed: int = 1, ip: str = NAT, rate: int = 8, from_day: int = 0,
            ) -> tuple[UsageEvent, ...]:
    rng = random.Random(seed)
    out: list[UsageEvent] = []
    for n, key in enumerate(keys):
        for day in range(from_day, days):
            base = START + timedelta(days=day)
            if base.weekday() >= 5:
                continue
            address = ip_from[1] if ip_from and day >= ip_from[0] else ip
            for hour in range(13, 21):
                for _ in range(rng.randint(rate // 2, rate)):
                    when = base + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
                    out.append(event(key, when, address, prompt=service_prompt(n, rng)))
    return tuple(out)


def campaign(keys: list[str], day: int, hour: int = 14, ips: list[str] | None = None,
             agent: str = "Go-http-client/2.0", hours: int = 6, seed: int = 2,
             every: int = 5) -> list[UsageEvent]:
    """A script driving every key in the same ticks (``every`` minutes) with one template.

    ``ips`` shared attacker addresses (one picked per request); None: one address per key.
    """
    rng = random.Random(seed)
    own = {key: f"203.0.113.{10 + i}" for i, key in enumerate(keys)}
    out: list[UsageEvent] = []
    tick = START + timedelta(days=day, hours=hour)
    end = tick + timedelta(hours=hours)
    while tick < end:
        for key in keys:
            for _ in range(rng.randint(1, 3)):
                ip = rng.choice(ips) if ips else own[key]
                when = tick + timedelta(seconds=rng.uniform(0, 25))
                out.append(event(key, when, ip, agent, campaign_prompt(rng)))
        tick += timedelta(minutes=every)
    return out


def scan(events: list[UsageEvent], window: Window | None = None,
         settings: DetectorSettings | None = None) -> list[Alert]:
    return scan_all(sorted(events, key=lambda e: e.time), window, settings, only="coordination")


def with_params(**values: int | float) -> DetectorSettings:
    return DetectorSettings(params={"coordination": CoordinationParams(**values)})  # type: ignore[arg-type]


STAFF = [f"svc-{i}" for i in range(10)]
VICTIMS = STAFF[2:8]


# -- campaigns -----------------------------------------------------------------------------

def test_shared_ip_campaign_alerts_every_member_naming_the_others() -> None:
    attack = campaign(VICTIMS, day=22, ips=["198.51.100.7", "198.51.100.8"])
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == VICTIMS
    first = alerts[0]
    assert (first.rule_id, first.severity) == ("coordination", Severity.HIGH)
    assert len({a.evidence["group_id"] for a in alerts}) == 1
    assert str(first.evidence["group_id"]).startswith("cg-")
    assert first.evidence["group_size"] == 6
    assert first.evidence["members"] == ", ".join(VICTIMS)
    assert first.evidence["shared_ips"] == 2
    assert first.evidence["shared_ip_sample"] == "198.51.100.7, 198.51.100.8"
    assert first.evidence["shared_user_agents"] == "Go-http-client/2.0"
    # every pair is linked by all four kinds of new evidence
    assert first.evidence["links"] == 15
    assert [first.evidence[f"links_{k}"] for k in ("ip", "template", "user_agent", "timing")] == [
        15, 15, 15, 15]
    assert first.evidence["days"] == (START + timedelta(days=22)).date().isoformat()
    mine = [e for e in attack if e.key_id == first.subject]
    assert first.evidence["campaign_events"] == len(mine)  # only the campaign's requests
    assert first.first_seen == min(e.time for e in mine)
    assert first.last_seen == max(e.time for e in mine)
    others = [k for k in VICTIMS if k != first.subject]
    assert f"one of 6 keys used as one campaign on {first.evidence['days']}" in first.message
    assert ", ".join(others) in first.message


def test_distinct_ip_campaign_with_a_common_agent_is_found_by_template_and_timing() -> None:
    attack = campaign(VICTIMS, day=22, agent=AGENT)  # own address per key, the org's agent
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == VICTIMS
    evidence = alerts[0].evidence
    assert (evidence["links_ip"], evidence["links_user_agent"]) == (0, 0)
    assert evidence["links_template"] == 15
    assert evidence["links_timing"] == 15
    assert evidence["shared_template_signatures"] >= 2  # type: ignore[operator]
    assert "synchronised timing on 15 of 15 links" in alerts[0].message
    co, expected = evidence["sync_co_minutes"], evidence["sync_expected_minutes"]
    assert isinstance(co, int)
    assert isinstance(expected, float)
    assert co >= 1.5 * expected  # same-minute use far above what hourly activity predicts
    assert f"shares {co} active minutes where {expected:.1f} were expected" in alerts[0].message


def test_continuous_night_campaign_is_synchronised_by_starting_and_stopping_together() -> None:
    # every minute for 3 hours: minute co-activity is no higher than the hours predict,
    # but the keys are idle at that time of day and start and stop in the same minute
    attack = campaign(VICTIMS, day=22, hour=2, hours=3, agent=AGENT, every=1)
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == VICTIMS
    assert alerts[0].evidence["links_timing"] == 15
    assert alerts[0].evidence["links_template"] == 15
    # the same script inside office hours shows no timing evidence, and the new template
    # alone is one kind of evidence: not enough to link keys (a launch looks the same)
    daytime = campaign(VICTIMS, day=22, hour=13, hours=8, agent=AGENT, every=1)
    assert scan(office(STAFF, 28) + daytime) == []


def test_campaign_of_fresh_keys_after_learning_alerts() -> None:
    newcomers = [f"fresh-{i}" for i in range(5)]
    attack = campaign(newcomers, day=22, ips=["198.51.100.7"])
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == newcomers


def test_long_list_of_members_is_truncated_in_the_message_not_the_evidence() -> None:
    many = STAFF + [f"svc-{i}" for i in range(10, 14)]
    attack = campaign(many[:12], day=22, ips=["198.51.100.7"])
    alerts = scan(office(many, 28) + attack)
    assert len(alerts) == 12
    assert "(+6 more)" in alerts[0].message
    assert len(str(alerts[0].evidence["members"]).split(", ")) == 12


def test_group_smaller_than_min_group_does_not_alert_unless_configured() -> None:
    events = office(STAFF, 28) + campaign(STAFF[:3], day=22, ips=["198.51.100.7"])
    assert scan(events) == []
    alerts = scan(events, settings=with_params(min_group=3))
    assert sorted(a.subject for a in alerts) == STAFF[:3]


def test_a_multi_day_campaign_alerts_once_per_member() -> None:
    attack = (campaign(VICTIMS, day=22, ips=["198.51.100.7"])
              + campaign(VICTIMS, day=23, ips=["198.51.100.7"], seed=3))
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == VICTIMS  # day 2 is established for each pair


def test_daily_run_the_next_day_does_not_repeat_the_campaign() -> None:
    attack = (campaign(VICTIMS, day=22, ips=["198.51.100.7"])
              + campaign(VICTIMS, day=23, ips=["198.51.100.7"], seed=3))
    next_day = Window(START + timedelta(days=23), START + timedelta(days=24))
    assert scan(office(STAFF, 28) + attack, window=next_day) == []
    same_day = Window(START + timedelta(days=22), START + timedelta(days=23) - timedelta(seconds=1))
    assert len(scan(office(STAFF, 28) + attack, window=same_day)) == 6


def test_hourly_runs_alert_a_campaign_once_and_only_new_members_later() -> None:
    # 6 keys from 14:00, a 7th joins at 18:00; runs judge 00:00-16:00 and 16:00-24:00
    late = campaign([*VICTIMS, STAFF[8]], day=22, hour=18, hours=2, ips=["198.51.100.7"], seed=5)
    events = office(STAFF, 28) + campaign(VICTIMS, day=22, ips=["198.51.100.7"]) + late
    day = START + timedelta(days=22)
    cut = day + timedelta(hours=16)
    first = scan(events, window=Window(day, cut))
    assert sorted(a.subject for a in first) == VICTIMS
    second = scan(events, window=Window(cut + timedelta(microseconds=1), day + timedelta(days=1)))
    assert [a.subject for a in second] == [STAFF[8]]
    assert second[0].evidence["group_size"] == 7  # named with the whole group


# -- legitimate look-alikes ----------------------------------------------------------------

def test_office_keys_sharing_nat_agent_and_business_hours_stay_silent() -> None:
    assert scan(office(STAFF, 28)) == []


def test_office_moving_to_a_new_nat_address_is_not_a_campaign() -> None:
    # every key shows the same new address on the same day: one kind of evidence only
    assert scan(office(STAFF, 28, ip_from=(21, "4.4.4.4"))) == []


def test_services_moved_together_to_a_new_cluster_stay_silent() -> None:
    # new egress address and a new base-image agent for 6 services on the same day, same
    # prompts and hours: only infrastructure changed
    rng = random.Random(6)
    moved = [event(key, START + timedelta(days=day, hours=13, seconds=rng.uniform(0, 8 * 3600)),
                   "198.18.0.1", "python-httpx/0.28.1", service_prompt(n, rng))
             for day in range(21, 28) if (START + timedelta(days=day)).weekday() < 5
             for n, key in enumerate(VICTIMS) for _ in range(40)]
    assert scan(office(STAFF, 21) + moved) == []


def test_keys_rotated_together_stay_silent() -> None:
    # a rotation run replaces 5 keys on one day; each new key takes over its old key's
    # traffic (same address, agent, template, hours): new keys, nothing shared anew
    cutover = START + timedelta(days=21)
    old = [e for e in office(STAFF, 28) if e.key_id not in STAFF[:5] or e.time < cutover]
    renamed = [f"{key}-v2" for key in STAFF[:5]]
    new = [e for e in _office(tuple(renamed), 28, None) if e.time >= cutover]
    assert {e.key_id for e in new} == set(renamed)
    assert scan(old + new) == []


def test_established_group_sharing_address_template_and_minutes_stays_silent() -> None:
    # an eval harness: 5 keys from one runner, one template, the same minutes, every night
    harness = [f"eval-{i}" for i in range(5)]
    nightly: list[UsageEvent] = []
    for day in range(28):
        nightly += campaign(harness, day=day, hour=1, hours=2, ips=["10.9.9.9"], agent="evalkit/3",
                            seed=day)
    assert scan(office(STAFF, 28) + nightly) == []


def test_ci_keys_bursting_together_from_fresh_runner_addresses_stay_silent() -> None:
    # one pipeline uses 4 keys at once, from a new runner address every run
    rng = random.Random(5)
    pipeline = [f"ci-{i}" for i in range(4)]
    runs: list[UsageEvent] = []
    for day in range(28):
        for run in range(3):
            start = START + timedelta(days=day, hours=rng.randint(0, 23), minutes=rng.randrange(60))
            runner = f"20.{day}.{run}.{rng.randrange(256)}"
            for key in pipeline:
                runs += [event(key, start + timedelta(seconds=s * 7), runner, "pytest-ci/1.0",
                               service_prompt(12, rng)) for s in range(20)]
    assert scan(office(STAFF, 28) + runs) == []


def feature_launch(rng: random.Random) -> list[UsageEvent]:
    """One new prompt template on 5 office keys in the last week, from their usual addresses."""
    return [event(key, START + timedelta(days=day, hours=13, seconds=rng.uniform(0, 8 * 3600)),
                  NAT, prompt=campaign_prompt(rng))
            for day in range(21, 28) if (START + timedelta(days=day)).weekday() < 5
            for key in STAFF[:5] for _ in range(30)]


def test_feature_launch_on_several_keys_of_one_app_stays_silent() -> None:
    # the same new prompt template appears on 5 keys the same day, from their usual
    # addresses, agent and hours: template is the only new kind of evidence
    assert scan(office(STAFF, 28) + feature_launch(random.Random(9))) == []


def test_travellers_sharing_a_hotel_address_at_night_stay_silent() -> None:
    # four colleagues at an offsite use their own keys from the hotel wifi at hours that
    # are quiet at home; independent use, their own prompts
    rng = random.Random(4)
    stay: list[UsageEvent] = []
    for n, key in enumerate(STAFF[:4]):
        for day in (22, 23):
            for _ in range(60):
                when = START + timedelta(days=day, hours=2, seconds=rng.uniform(0, 4 * 3600))
                stay.append(event(key, when, "192.0.2.50", prompt=service_prompt(n, rng)))
    assert scan(office(STAFF, 28) + stay) == []


def test_campaign_inside_the_learning_period_is_not_judged() -> None:
    attack = campaign(VICTIMS, day=3, ips=["198.51.100.7"])
    assert scan(office(STAFF, 10) + attack) == []
    # with a shorter learning period the same day is judged
    alerts = scan(office(STAFF, 10) + attack, settings=DetectorSettings(learning_days=2))
    assert sorted(a.subject for a in alerts) == VICTIMS


def test_unattributed_events_are_never_members() -> None:
    keys = [*VICTIMS[:4], "(unattributed)"]
    attack = campaign(keys, day=22, ips=["198.51.100.7"])
    alerts = scan(office(STAFF, 28) + attack)
    assert sorted(a.subject for a in alerts) == VICTIMS[:4]
    assert "(unattributed)" not in str(alerts[0].evidence["members"])


def test_empty_store_and_unfingerprinted_events_do_not_fail() -> None:
    bare = [UsageEvent(time=START + timedelta(days=d), key_id=f"k{d % 3}", source_format="anthropic-usage")
            for d in range(20)]
    assert scan(bare) == []


# -- parameters and graph helpers ----------------------------------------------------------

@pytest.mark.parametrize(("values", "message"), [
    ({"min_kinds": 1}, "min-kinds must be at least 2"),
    ({"min_group": 2}, "min-group must be at least 3"),
    ({"history_days": 0}, "history-days must be at least 1"),
    ({"sync_ratio": 0.5}, "sync-ratio"),
    ({"template_min_share": 1.5}, "template-min-share"),
])
def test_params_refuse_values_that_would_link_everything(values: dict[str, float],
                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CoordinationParams(**values)  # type: ignore[arg-type]


def test_params_come_from_the_config_table_and_bad_values_name_it() -> None:
    table = {"coordination": {"min-group": 5, "sync-ratio": 2.0}}
    config = parse_config({"usage": {"detectors": table}}, Path("kg.toml"))
    params = load_settings(config.usage, "kg.toml").params_for("coordination", CoordinationParams)
    assert (params.min_group, params.sync_ratio, params.min_kinds) == (5, 2.0, 2)
    bad = parse_config({"usage": {"detectors": {"coordination": {"min-kinds": 1}}}}, Path("kg.toml"))
    with pytest.raises(ConfigError, match=r"\[usage.detectors.coordination\] min-kinds"):
        load_settings(bad.usage, "kg.toml")


def test_dense_groups_need_two_links_per_member() -> None:
    chain = [("a", "b"), ("b", "c"), ("c", "d")]
    assert dense_groups(chain, 3) == []
    ring = [*chain, ("d", "a"), ("d", "x")]  # x hangs on by one link and is dropped
    assert dense_groups(ring, 3) == [frozenset("abcd")]
    assert dense_groups(ring, 5) == []
    two = [("a", "b"), ("b", "c"), ("c", "a"), ("p", "q"), ("q", "r"), ("r", "p")]
    assert dense_groups(two, 3) == [frozenset("abc"), frozenset("pqr")]
    assert dense_groups([*two, ("a", "a")], 3) == [frozenset("abc"), frozenset("pqr")]


def test_merge_overlapping_joins_groups_sharing_a_member() -> None:
    groups = [frozenset("ab"), frozenset("cd"), frozenset("bx"), frozenset("yd"), frozenset("z")]
    assert merge_overlapping(groups) == [[0, 2], [1, 3], [4]]


# -- sampled prompt analysis (bulk import: weights instead of every prompt) ----------------

def test_sampled_analysis_links_the_same_campaign_as_full_analysis() -> None:
    # linked by a shared template and timing only (own address per key, the org's agent),
    # and by all four kinds: the sampled store (32 analysed prompts per key-day, weighted)
    # must find the same members and links, with estimated use close to the real one
    for attack in (campaign(VICTIMS, day=22, agent=AGENT),
                   campaign(VICTIMS, day=22, ips=["198.51.100.7", "198.51.100.8"])):
        events = office(STAFF, 28) + attack
        full, thin = scan(events), scan(sampled(events))
        assert sorted(a.subject for a in full) == VICTIMS
        assert [(a.subject, a.evidence["group_id"]) for a in thin] == \
            [(a.subject, a.evidence["group_id"]) for a in full]
        for a, b in zip(full, thin, strict=True):
            assert [b.evidence[f"links_{k}"] for k in ("ip", "template", "user_agent", "timing")] \
                == [a.evidence[f"links_{k}"] for k in ("ip", "template", "user_agent", "timing")]
            for name in ("campaign_events", "campaign_requests", "shared_template_signatures"):
                assert float(b.evidence[name]) == pytest.approx(float(a.evidence[name]), rel=0.3)


def test_sampled_look_alikes_stay_silent() -> None:
    launch = feature_launch(random.Random(9))
    harness = [f"eval-{i}" for i in range(5)]
    nightly = [e for day in range(28) for e in campaign(
        harness, day=day, hour=1, hours=2, ips=["10.9.9.9"], agent="evalkit/3", seed=day)]
    assert scan(sampled(office(STAFF, 28) + launch + nightly)) == []


def test_template_evidence_counts_prompt_weights_not_analysed_rows() -> None:
    # 8 analysed prompts per key-day: as weighted estimates the campaign's template
    # signatures pass template-min-events; as 8 rows each they mostly do not
    thin = sampled(office(STAFF, 28) + campaign(VICTIMS, day=22, agent=AGENT), k=8)
    weighted = scan(thin)
    assert len(weighted) >= CoordinationParams().min_group
    assert {a.subject for a in weighted} <= set(VICTIMS)
    assert scan([replace(e, prompt_weight=None) for e in thin]) == []
