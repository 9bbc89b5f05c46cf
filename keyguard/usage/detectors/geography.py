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

Cost: two DuckDB queries per scan compute, for every key located in the window, its first
use, the countries used before the window, and only the window's events where the country
changes (with the count of events before each, for the learning rule); Python walks those
few rows. Full events are loaded only for keys that alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import UNATTRIBUTED, Detector, DetectorSettings, use_evidence
from keyguard.usage.store import UsageStore, Window, naive


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
class _Change:
    """A located event in the window that starts a run of one country (or the window)."""

    time: datetime
    country: str
    n_before: int  # events of the key before this one (any country or none): the learning count
    previous_country: str | None  # the key's located event just before, even before the window
    previous_time: datetime | None


@dataclass(slots=True)
class _Profile:
    """What the judge needs of one key, computed by DuckDB instead of walking its history."""

    first_time: datetime
    alias: str | None
    seen_before: frozenset[str] = frozenset()  # countries used before the window
    changes: list[_Change] = field(default_factory=list)


# NOTE: built only from constants; every value is bound ($1 window start, $2 end, $3 the
# unattributed key id). Row order inside a key is (time, origin), as in store.history().
_CHANGES_SQL = """
WITH judged AS (
    SELECT DISTINCT key_id FROM events
    WHERE time BETWEEN $1 AND $2 AND country IS NOT NULL AND key_id <> $3),
numbered AS (
    SELECT e.key_id, e.time, e.origin, e.country, e.key_alias,
           row_number() OVER (PARTITION BY e.key_id ORDER BY e.time, e.origin) - 1 AS n_before,
           min(e.time) OVER (PARTITION BY e.key_id) AS first_time
    FROM events e JOIN judged USING (key_id) WHERE e.time <= $2),
located AS (
    SELECT *, lag(country) OVER w AS prev_country, lag(time) OVER w AS prev_time
    FROM numbered WHERE country IS NOT NULL
    WINDOW w AS (PARTITION BY key_id ORDER BY time, origin))
SELECT key_id, time, country, n_before, first_time, prev_country, prev_time, key_alias
FROM located
WHERE time >= $1 AND (prev_time IS NULL OR prev_time < $1 OR prev_country <> country)
ORDER BY key_id, time, origin
"""
_SEEN_SQL = """
SELECT key_id, list(DISTINCT country) FROM events
WHERE time < $1 AND country IS NOT NULL AND key_id IN (
    SELECT DISTINCT key_id FROM events
    WHERE time BETWEEN $1 AND $2 AND country IS NOT NULL AND key_id <> $3)
GROUP BY key_id
"""


def _aware(when: datetime | None) -> datetime | None:
    return None if when is None else when.replace(tzinfo=UTC)


def _profiles(store: UsageStore, window: Window) -> dict[str, _Profile]:
    """Per judged key: first use, countries before the window, and the window's country changes.

    Two GROUP BY / window-function queries over the store, so the cost no longer grows with
    each key's whole history in Python: a daily run over months of stored events loads
    only the handful of rows where a key's country changes.
    """
    params = [naive(window.start), naive(window.end), UNATTRIBUTED]
    profiles: dict[str, _Profile] = {}
    for key_id, when, country, n_before, first, prev_country, prev_time, alias in store.query(
            _CHANGES_SQL, params):
        profile = profiles.get(key_id)
        if profile is None:
            profile = profiles[key_id] = _Profile(first_time=first.replace(tzinfo=UTC), alias=alias)
        profile.alias = alias or profile.alias
        profile.changes.append(_Change(when.replace(tzinfo=UTC), country, int(n_before),
                                       prev_country, _aware(prev_time)))
    for key_id, countries in store.query(_SEEN_SQL, params):
        if key_id in profiles:
            profiles[key_id].seen_before = frozenset(countries)
    return profiles


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
        travel = timedelta(minutes=settings.params_for(self.id, GeographyParams)
                           .travel_within_minutes)
        for key_id, profile in _profiles(store, window).items():
            allow = frozenset(c.upper() for c in settings.allow_countries_for(key_id, profile.alias))
            flagged = self._judge(profile, settings, allow, travel)
            if not flagged:
                continue
            events = store.events(window, key_id)  # only keys with something to report
            for found in flagged.values():
                found.events = [e for e in events if e.country == found.country]
                if found.events:
                    yield self._alert(key_id, found, settings, allow, travel)

    def _judge(self, profile: _Profile, settings: DetectorSettings, allow: frozenset[str],
               travel: timedelta) -> dict[str, _Group]:
        """Walk the window's country changes in time order; the groups that must alert.

        Equivalent to walking every event: an event from the same country as the located
        event before it can start no new-country, allow-list or travel finding, so only the
        first in-window event and each change of country are needed (see ``_profiles``).
        """
        learning = timedelta(days=settings.learning_days)
        first_time = profile.first_time
        seen = set(profile.seen_before)
        flagged: dict[str, _Group] = {}

        def established(country: str) -> bool:
            return country in seen and country not in flagged

        def group(country: str, n_before: int, when: datetime) -> _Group:
            if country not in flagged:
                flagged[country] = _Group(
                    country, tuple(sorted(seen)), n_before,
                    round((when - first_time).total_seconds() / 86400, 1))
            return flagged[country]

        for change in profile.changes:
            country, when, n_before = change.country, change.time, change.n_before
            learned = (when - first_time >= learning
                       and n_before >= settings.learning_min_events)
            reasons = []
            if allow and country not in allow:
                reasons.append("outside-allow-list")
            if learned and country not in seen and country not in allow:
                reasons.append("new-country")
            if reasons and country not in flagged:
                group(country, n_before, when).reasons.extend(reasons)
            before = change.previous_country
            if (learned and before is not None and change.previous_time is not None
                    and before != country and when - change.previous_time < travel):
                gap = when - change.previous_time
                if not established(country):
                    group(country, n_before, when).travel(before, gap)
                elif not established(before):
                    group(before, n_before, when).travel(country, gap)
            seen.add(country)
        return flagged

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
