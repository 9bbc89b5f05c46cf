"""Geography detector: a key used from a country it has never been used from, or too fast between two.

Method, per key, walking its stored history in time order (each event is judged only on
the events *before* it, never on later ones, so a long single export behaves like a
series of daily runs):

* **Learning period.** A key is not judged until its history spans ``learning_days``
  (default 7) from its first event *and* at least ``learning_min_events`` (default 20)
  events precede the one being judged. Countries seen while learning become established,
  so keys used from several offices, or by people who travelled during that time, never
  alert for those countries.
* **new-country.** After learning, the first use from a country not seen before for that
  key (and not in the allow-list) raises an alert; later uses from that country in the
  same scan join it (count, last seen, IPs). Once stored, the country counts as seen, so
  the next daily run does not repeat the alert.
* **impossible-travel** (country level). After learning, two consecutive located uses from
  different countries closer in time than ``travel-within-minutes`` (default 60) raise an
  alert on the country that is not established (not seen before this scan flagged it).
  Pairs of established countries are ignored: a shared key used from the US and German
  offices in the same hour is normal once both offices are in its history.
* **outside-allow-list.** With ``--allow-country`` given (or ``allow-countries`` in
  ``[usage.detectors]``, or per tag/key in ``[[usage.scopes]]``, which replaces the global
  list for the keys it picks), any use from another country alerts, learned or not: the
  list is policy, not a baseline. An allow-listed country
  never raises new-country, but a first use from it minutes after a use elsewhere is
  still impossible travel (one credential in two places at once).

Reasons for the same (key, country) merge into one ``high`` alert whose evidence names
each reason and the numbers behind it. Events without a country (private IPs, AWS
internal callers, aggregate reports without IPs) are skipped, and ``(unattributed)``
events are not judged because they mix callers.

Cost: each key with located events in the window loads its history once (O(events of
that key)).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import UNATTRIBUTED, Detector, DetectorSettings, use_evidence
from keyguard.usage.store import UsageStore, Window


@dataclass(slots=True)
class _Group:
    """Uses of one (key, country) that raised an alert, with the reasons and their numbers."""

    country: str
    established: tuple[str, ...]
    history_events: int
    history_days: float
    reasons: list[str] = field(default_factory=list)
    events: list[UsageEvent] = field(default_factory=list)
    travel_from: str = ""
    travel_gap: timedelta | None = None

    def travel(self, other: str, gap: timedelta) -> None:
        """Record an impossible-travel pair; the shortest gap is the evidence."""
        if "impossible-travel" not in self.reasons:
            self.reasons.append("impossible-travel")
        if self.travel_gap is None or gap < self.travel_gap:
            self.travel_from, self.travel_gap = other, gap


@dataclass(frozen=True, slots=True)
class GeographyParams:
    """``[usage.detectors.geography]``; the learning period is shared (``[usage.detectors]``)."""

    travel_within_minutes: float = 60.0  # consecutive uses from two countries closer than this


class GeographyDetector:
    """New country after learning, country-level impossible travel, allow-list violations."""

    id: ClassVar[str] = "geography"
    Params: ClassVar[type[GeographyParams]] = GeographyParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """Alerts for located events in the window, each judged on the key's earlier history."""
        for key_id in store.keys(window, with_country=True):
            if key_id == UNATTRIBUTED:
                continue
            history = store.history(key_id, window.end, inclusive=True)
            yield from self._judge(key_id, history, window, settings)

    def _judge(self, key_id: str, history: list[UsageEvent], window: Window,
               settings: DetectorSettings) -> Iterator[Alert]:
        allow = frozenset(c.upper() for c in settings.allow_countries_for(key_id, history[-1].key_alias))
        travel_within = timedelta(minutes=settings.params_for(self.id, GeographyParams)
                                  .travel_within_minutes)
        learning = timedelta(days=settings.learning_days)
        first_time = history[0].time
        seen: set[str] = set()
        flagged: dict[str, _Group] = {}
        previous: UsageEvent | None = None  # the last event with a country

        def established(country: str) -> bool:
            return country in seen and country not in flagged

        def group(country: str, n_before: int, when: datetime) -> _Group:
            if country not in flagged:
                flagged[country] = _Group(
                    country, tuple(sorted(seen)), n_before,
                    round((when - first_time).total_seconds() / 86400, 1))
            return flagged[country]

        for n_before, event in enumerate(history):
            country = event.country
            if country is None:
                continue
            if window.contains(event.time):
                learned = (event.time - first_time >= learning
                           and n_before >= settings.learning_min_events)
                reasons = []
                if allow and country not in allow:
                    reasons.append("outside-allow-list")
                if learned and country not in seen and country not in allow:
                    reasons.append("new-country")
                if reasons and country not in flagged:
                    group(country, n_before, event.time).reasons.extend(reasons)
                if (learned and previous is not None and previous.country != country
                        and previous.country is not None
                        and event.time - previous.time < travel_within):
                    gap = event.time - previous.time
                    if not established(country):
                        group(country, n_before, event.time).travel(previous.country, gap)
                    elif not established(previous.country):
                        group(previous.country, n_before, event.time).travel(country, gap)
                if country in flagged:
                    flagged[country].events.append(event)
            seen.add(country)
            previous = event
        for found in flagged.values():
            if found.events:
                yield self._alert(key_id, found, settings, allow, travel_within)

    def _alert(self, key_id: str, found: _Group, settings: DetectorSettings,
               allow: frozenset[str], travel_within: timedelta) -> Alert:
        events = found.events
        use = use_evidence(events)
        known = ", ".join(found.established) or "no country"
        parts = []
        if "new-country" in found.reasons:
            parts.append(f"first use from {found.country} after {found.history_days:g} days and "
                         f"{found.history_events} events seen only from {known}")
        if found.travel_gap is not None:
            parts.append(f"{found.travel_gap.total_seconds() / 60:.0f} min apart from a use in "
                         f"{found.travel_from}, too close to travel "
                         f"(threshold {travel_within.total_seconds() / 60:.0f} min)")
        if "outside-allow-list" in found.reasons:
            parts.append(f"{found.country} is outside the allowed countries "
                         f"({', '.join(sorted(allow))})")
        evidence: dict[str, str | int | float] = {
            "country": found.country,
            "reasons": ", ".join(found.reasons),
            "established_countries": ", ".join(found.established),
            "history_events": found.history_events,
            "history_days": found.history_days,
            "learning_days": settings.learning_days,
            "learning_min_events": settings.learning_min_events,
            **use,
        }
        if found.travel_gap is not None:
            evidence["travel_from"] = found.travel_from
            evidence["travel_gap_minutes"] = round(found.travel_gap.total_seconds() / 60, 1)
            evidence["travel_threshold_minutes"] = travel_within.total_seconds() / 60
        return Alert(
            rule_id=self.id,
            severity=Severity.HIGH,
            subject=key_id,
            key_alias=events[0].key_alias,
            message=(f"Key {key_id}: " + "; ".join(parts)
                     + f" ({len(events)} event(s) from {use['source_ips'] or 'unknown IPs'}, "
                       f"{use['first_seen']} to {use['last_seen']})."),
            evidence=evidence,
            first_seen=events[0].time,
            last_seen=events[-1].time,
        )


PLUGIN: type[Detector] = GeographyDetector
