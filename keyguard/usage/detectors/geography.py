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
* **impossible-travel** (city level, when ``city-database`` names a MaxMind GeoIP2 or
  GeoLite2 City ``.mmdb`` file; relative paths are relative to the config file). Replaces
  the country-level check: two consecutive uses from different cities at least
  ``min-travel-km`` (default 300) apart whose distance, less both addresses' accuracy
  radii, would need more than ``max-speed-kmh`` (default 1000, an airliner) in the time
  between them. Same-country hops count (New York to San Francisco in 20 minutes), close
  cross-border ones do not (Strasbourg to Kehl). Addresses the database cannot place are
  skipped, and pairs of cities both used by the key before the scan are ignored.
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

Cost: two DuckDB queries per scan (a third with a city database, over the addresses it
places) compute, for every key located in the window, its first
use, the countries used before the window, and only the window's events where the country
changes (with the count of events before each, for the learning rule); Python walks those
few rows. Full events are loaded only for keys that alert.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from keyguard.errors import ConfigError
from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.citydb import CityDatabase, Place
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
    travel_to: str = ""  # city level: the place of this group's use
    travel_km: float | None = None  # city level: the distance of that pair

    def travel(self, other: str, gap: timedelta, *, to: str = "", km: float | None = None) -> None:
        """Record an impossible-travel pair; the shortest gap is the evidence."""
        if "impossible-travel" not in self.reasons:
            self.reasons.append("impossible-travel")
        if self.travel_gap is None or gap < self.travel_gap:
            self.travel_from, self.travel_gap, self.travel_to, self.travel_km = other, gap, to, km


@dataclass(frozen=True, slots=True)
class _Change:
    """A located event in the window that starts a run of one country (or the window)."""

    time: datetime
    country: str
    n_before: int  # events of the key before this one (any country or none): the learning count
    previous_country: str | None  # the key's located event just before, even before the window
    previous_time: datetime | None


@dataclass(frozen=True, slots=True)
class _Hop:
    """City level: two consecutive located uses too far apart for the time between them."""

    time: datetime
    country: str | None  # iptocc country of this use (the alert groups by it)
    place: str
    previous_country: str | None
    previous_place: str
    gap: timedelta
    km: float
    n_before: int


@dataclass(slots=True)
class _Profile:
    """What the judge needs of one key, computed by DuckDB instead of walking its history."""

    first_time: datetime
    alias: str | None
    seen_before: frozenset[str] = frozenset()  # countries used before the window
    changes: list[_Change] = field(default_factory=list)
    hops: list[_Hop] = field(default_factory=list)
    places_before: frozenset[str] = frozenset()  # city level: places used before the window

    def learned(self, when: datetime, n_before: int, settings: DetectorSettings) -> bool:
        """Whether a use at ``when`` with ``n_before`` earlier events is past learning."""
        return (when - self.first_time >= timedelta(days=settings.learning_days)
                and n_before >= settings.learning_min_events)

    def group(self, flagged: dict[str, _Group], country: str, established: Iterable[str],
              n_before: int, when: datetime) -> _Group:
        """The alert group of ``country``, opened with the key's history so far if new."""
        if country not in flagged:
            flagged[country] = _Group(
                country, tuple(sorted(established)), n_before,
                round((when - self.first_time).total_seconds() / 86400, 1))
        return flagged[country]


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


# NOTE: built only from constants; values are bound: $1 window start, $2 end, $3 the
# unattributed key id, $4..$8 the located addresses (ip, lat, lon, radius, place name),
# $9 min km, $10 max km/h. Only pairs too fast to travel come back.
_HOPS_SQL = """
WITH judged AS (
    SELECT DISTINCT key_id FROM events
    WHERE time BETWEEN $1 AND $2 AND source_ip IS NOT NULL AND key_id <> $3),
places AS (
    SELECT unnest($4::VARCHAR[]) AS ip, unnest($5::DOUBLE[]) AS lat,
           unnest($6::DOUBLE[]) AS lon, unnest($7::DOUBLE[]) AS radius,
           unnest($8::VARCHAR[]) AS place),
numbered AS (
    SELECT e.key_id, e.time, e.origin, e.source_ip, e.country,
           row_number() OVER (PARTITION BY e.key_id ORDER BY e.time, e.origin) - 1 AS n_before
    FROM events e JOIN judged USING (key_id) WHERE e.time <= $2),
located AS (
    SELECT n.*, p.lat, p.lon, p.radius, p.place,
           lag(p.lat) OVER w AS plat, lag(p.lon) OVER w AS plon, lag(p.radius) OVER w AS prad,
           lag(p.place) OVER w AS pplace, lag(n.country) OVER w AS pcountry,
           lag(n.time) OVER w AS ptime
    FROM numbered n JOIN places p ON n.source_ip = p.ip
    WINDOW w AS (PARTITION BY n.key_id ORDER BY n.time, n.origin)),
measured AS (
    SELECT *, 2 * 6371 * asin(least(1, sqrt(pow(sin(radians(lat - plat) / 2), 2)
              + cos(radians(plat)) * cos(radians(lat)) * pow(sin(radians(lon - plon) / 2), 2))))
              AS km
    FROM located WHERE time >= $1 AND ptime IS NOT NULL AND place <> pplace)
SELECT key_id, time, country, place, pcountry, pplace, ptime, km, n_before FROM measured
WHERE km >= $9 AND km - radius - prad > $10 * (epoch(time) - epoch(ptime)) / 3600.0
ORDER BY key_id, time, origin
"""
_ADDRESSES_SQL = """
SELECT DISTINCT source_ip FROM events WHERE time <= $2 AND source_ip IS NOT NULL AND key_id IN (
    SELECT DISTINCT key_id FROM events
    WHERE time BETWEEN $1 AND $2 AND source_ip IS NOT NULL AND key_id <> $3)
"""
_PLACES_BEFORE_SQL = """
WITH places AS (SELECT unnest($4::VARCHAR[]) AS ip, unnest($5::VARCHAR[]) AS place)
SELECT e.key_id, list(DISTINCT p.place) FROM events e JOIN places p ON e.source_ip = p.ip
WHERE e.time < $1 AND e.key_id IN (
    SELECT DISTINCT key_id FROM events WHERE time BETWEEN $1 AND $2 AND key_id <> $3)
GROUP BY e.key_id
"""


def _hops(store: UsageStore, window: Window, params: GeographyParams,
          profiles: dict[str, _Profile]) -> None:
    """City level: add each judged key's too-fast hops and the places it used before."""
    base = [naive(window.start), naive(window.end), UNATTRIBUTED]
    db = CityDatabase(Path(params.city_database), "usage.detectors.geography.city-database")
    try:
        places: dict[str, Place] = db.locate(str(r[0]) for r in store.query(_ADDRESSES_SQL, base))
    finally:
        db.close()
    if not places:
        return
    ips = sorted(places)
    located = [ips, [places[i].lat for i in ips], [places[i].lon for i in ips],
               [places[i].radius_km for i in ips], [places[i].name for i in ips]]
    for key_id, before in store.query(_PLACES_BEFORE_SQL, [*base, ips, located[4]]):
        if key_id in profiles:
            profiles[key_id].places_before = frozenset(before)
    rows = store.query(_HOPS_SQL, [*base, *located, params.min_travel_km, params.max_speed_kmh])
    for key_id, when, country, place, pcountry, pplace, ptime, km, n_before in rows:
        profile = profiles.get(key_id)
        if profile is not None:  # a key whose events carry addresses but no country
            profile.hops.append(_Hop(when.replace(tzinfo=UTC), country, place, pcountry,
                                     pplace, when - ptime, float(km), int(n_before)))


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
    city_database: str = ""  # MaxMind City .mmdb: travel judged by distance and speed
    max_speed_kmh: float = 1000.0
    min_travel_km: float = 300.0

    def resolve(self, base: Path, where: str) -> GeographyParams:
        """Check the city database now (any command), with a relative path under ``base``.

        Raises:
            ConfigError: the file is missing or not a City database; the numbers are not
                positive.

        """
        setting = f"{where}: 'usage.detectors.geography"
        for name in ("travel_within_minutes", "max_speed_kmh", "min_travel_km"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{setting}.{name.replace('_', '-')}' must be positive")
        if not self.city_database:
            return self
        path = Path(self.city_database).expanduser()
        path = path if path.is_absolute() else base / path
        CityDatabase(path, f"{setting}.city-database'").close()
        return dataclasses.replace(self, city_database=str(path))


class GeographyDetector:
    """New country after learning, country-level impossible travel, allow-list violations."""

    id: ClassVar[str] = "geography"
    Params: ClassVar[type[GeographyParams]] = GeographyParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """Alerts for located events in the window, each judged on the key's earlier history."""
        params = settings.params_for(self.id, GeographyParams)
        travel = timedelta(minutes=params.travel_within_minutes)
        profiles = _profiles(store, window)
        if params.city_database and profiles:
            _hops(store, window, params, profiles)
        for key_id, profile in profiles.items():
            allow = frozenset(c.upper() for c in settings.allow_countries_for(key_id, profile.alias))
            flagged = self._judge(profile, settings, allow,
                                  None if params.city_database else travel)
            self._judge_hops(profile, settings, flagged)
            if not flagged:
                continue
            events = store.events(window, key_id)  # only keys with something to report
            for found in flagged.values():
                found.events = [e for e in events if e.country == found.country]
                if found.events:
                    yield self._alert(key_id, found, settings, allow, travel)

    def _judge(self, profile: _Profile, settings: DetectorSettings, allow: frozenset[str],
               travel: timedelta | None) -> dict[str, _Group]:
        """Walk the window's country changes in time order; the groups that must alert.

        Equivalent to walking every event: an event from the same country as the located
        event before it can start no new-country, allow-list or travel finding, so only the
        first in-window event and each change of country are needed (see ``_profiles``).
        """
        seen = set(profile.seen_before)
        flagged: dict[str, _Group] = {}

        def established(country: str) -> bool:
            return country in seen and country not in flagged

        def group(country: str, n_before: int, when: datetime) -> _Group:
            return profile.group(flagged, country, seen, n_before, when)

        for change in profile.changes:
            country, when, n_before = change.country, change.time, change.n_before
            learned = profile.learned(when, n_before, settings)
            reasons = []
            if allow and country not in allow:
                reasons.append("outside-allow-list")
            if learned and country not in seen and country not in allow:
                reasons.append("new-country")
            if reasons and country not in flagged:
                group(country, n_before, when).reasons.extend(reasons)
            before = change.previous_country
            if (travel is not None and learned and before is not None
                    and change.previous_time is not None
                    and before != country and when - change.previous_time < travel):
                gap = when - change.previous_time
                if not established(country):
                    group(country, n_before, when).travel(before, gap)
                elif not established(before):
                    group(before, n_before, when).travel(country, gap)
            seen.add(country)
        return flagged

    @staticmethod
    def _judge_hops(profile: _Profile, settings: DetectorSettings,
                    flagged: dict[str, _Group]) -> None:
        """City level: blame the hop on the use whose place the key had not used before."""
        known = set(profile.places_before)
        for hop in profile.hops:
            judged = (profile.learned(hop.time, hop.n_before, settings)
                      and not (hop.place in known and hop.previous_place in known))
            blame_here = hop.place not in known or hop.previous_country is None
            known.update((hop.place, hop.previous_place))
            if not judged:
                continue
            country = hop.country if blame_here else hop.previous_country
            if country is None:
                continue
            here, there = ((hop.place, hop.previous_place) if blame_here
                           else (hop.previous_place, hop.place))
            profile.group(flagged, country, profile.seen_before, hop.n_before,
                          hop.time).travel(there, hop.gap, to=here, km=hop.km)

    def _alert(self, key_id: str, found: _Group, settings: DetectorSettings,
               allow: frozenset[str], travel_within: timedelta) -> Alert:
        events = found.events
        use = use_evidence(events)
        known = ", ".join(found.established) or "no country"
        parts = []
        if "new-country" in found.reasons:
            parts.append(f"first use from {found.country} after {found.history_days:g} days and "
                         f"{found.history_events} events seen only from {known}")
        if found.travel_gap is not None and found.travel_km is not None:
            hours = max(found.travel_gap.total_seconds(), 1.0) / 3600
            parts.append(f"used in {found.travel_to} {found.travel_gap.total_seconds() / 60:.0f} "
                         f"min from a use in {found.travel_from}, {found.travel_km:.0f} km away "
                         f"({found.travel_km / hours:.0f} km/h, faster than travel)")
        elif found.travel_gap is not None:
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
            if found.travel_km is None:
                evidence["travel_threshold_minutes"] = travel_within.total_seconds() / 60
            else:
                evidence["travel_to"] = found.travel_to
                evidence["travel_km"] = round(found.travel_km)
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
