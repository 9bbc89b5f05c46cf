"""Shared builders for detector tests: synthetic keys with weeks of office traffic."""

import random
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keyguard.model import Alert, UsageEvent
from keyguard.usage.detectors import DETECTORS, DetectorSettings
from keyguard.usage.store import UsageStore, Window

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
NOW = START + timedelta(days=60)
IPS = {"US": "3.3.3.3", "DE": "5.5.5.5", "BR": "7.7.7.7", "FR": "9.9.9.9"}


def use(key: str, when: datetime, country: str, alias: str | None = None) -> UsageEvent:
    return UsageEvent(time=when, key_id=key, source_format="litellm", key_alias=alias,
                      source_ip=IPS[country], country=country, user_agent="python-httpx",
                      origin=f"spend.jsonl:{int(when.timestamp())}")


def office_traffic(key: str, days: int, countries: Iterable[str] = ("US", "DE")) -> list[UsageEvent]:
    """Weekday office hours from each country: DE mornings (08-11 UTC), US afternoons (14-17)."""
    hours = {"DE": (8, 9, 10, 11), "US": (14, 15, 16, 17), "FR": (9, 10)}
    out: list[UsageEvent] = []
    for day in range(days):
        base = START + timedelta(days=day)
        if base.weekday() >= 5:
            continue
        for country in countries:
            out.extend(use(key, base + timedelta(hours=h, minutes=5), country)
                       for h in hours[country])
    return sorted(out, key=lambda e: e.time)


def scan(events: list[UsageEvent], window: Window | None = None,
         settings: DetectorSettings | None = None, only: str | None = None) -> list[Alert]:
    """Alerts of every detector (or only the named one) over ``events`` in ``window``."""
    with UsageStore() as store:
        store.add(events)
        span = window or Window(min(e.time for e in events), max(e.time for e in events))
        settings = settings or DetectorSettings()
        return [alert for name in DETECTORS.names() if only in (None, name)
                for alert in DETECTORS.load(name)().evaluate(store, span, NOW, settings)]


#: Markers whose prompts a bulk import always analyses (its SQL prefilter finds them).
FORCED = ("extraction", "trap")


def sampled(events: Iterable[UsageEvent], k: int = 32) -> list[UsageEvent]:
    """``events`` as a sampling bulk import stores them: per key and UTC day, ``k`` prompts.

    Prompts marked ``extraction`` or ``trap`` are always analysed (weight 1). Of the other
    analysed prompts of a key-day, ``k`` are kept with weight ``n / k`` (all of them, weight
    1, when there are at most ``k``); the rest lose fingerprint, markers and weight but keep
    everything else (size, tokens, model). Events without a prompt stay as they are. The
    pick is seeded by the key and day, so a test sees the same store on every run.
    """
    days: dict[tuple[str, str], list[int]] = {}
    out = list(events)
    for i, e in enumerate(out):
        if e.prompt_fingerprint is None and e.prompt_markers is None:
            continue
        if any(m in (e.prompt_markers or "").split(",") for m in FORCED):
            out[i] = replace(e, prompt_weight=1.0)
            continue
        days.setdefault((e.key_id, e.time.astimezone(UTC).date().isoformat()), []).append(i)
    for (key, day), rows in days.items():
        keep = set(random.Random(f"{key}|{day}").sample(rows, min(k, len(rows))))
        weight = len(rows) / len(keep)
        for i in rows:
            out[i] = replace(out[i], prompt_weight=weight) if i in keep else replace(
                out[i], prompt_fingerprint=None, prompt_markers=None, prompt_weight=None)
    return out
