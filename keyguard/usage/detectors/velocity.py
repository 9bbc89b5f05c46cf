"""Velocity detector: request and token rates of a key against its own seasonal baseline.

A stolen key shows up as *volume*: a burst far beyond anything the key does, hours of
flat-rate harvesting while its owners sleep, a climb over days, or several keys of one
owner driven in turns so that none trips a per-key limit. Each is judged against the
key's (or owner's) own earlier history only, day by day, so a long export scanned once
behaves like the same export scanned in daily runs.

Profiles. A SQL pre-pass keeps the keys that could alert at all (an hour in the window at
``min(spike-min-requests, plateau-min-requests)`` or ``spike-min-tokens``, or a day at
``ramp-min-requests``); for those one GROUP BY gives hourly buckets (``requests``, where
an aggregate row with an unknown count counts as 1, and ``tokens`` = input + output) from
``lookback-days`` (default 35) before the window's first day. An hour without events
after the key's first event is a zero. The baseline of an hour ``h`` is, in order of
preference, the same hour-of-week in earlier weeks (``h - 168k``), the same hour-of-day on
the 14 earlier days, or every earlier hour of the lookback, whichever first has
``min-slot-samples`` (default 3) values. A key is judged on day D only when learned: its
first event is ``learning-days`` before D and at least ``learning-min-events`` events
precede D (shared settings, 7 days and 20 events by default).

Sub-kinds (``evidence["reason"]``), each merged per key into one alert per contiguous run:

* **spike**: an hour whose requests (or tokens) are at least ``spike-min-requests``
  (default 40) (``spike-min-tokens``, 200000), at least ``spike-factor`` (4) times the
  *envelope*, and at least ``spike-z`` (6) robust z-scores (median/MAD) above the slot.
  The envelope is the larger of the slot's highest value and the key's second-highest
  hour in the lookback, so a weekly batch slot, bursty CI (bursts every few hours) and a
  single old outlier never count as surprising. Requests and tokens of one hour make one
  hit (``metric`` = requests, or tokens when only the tokens jumped). A spike run lying
  inside a reported plateau is not reported again. High when the ratio is at least
  ``high-factor`` (2) times ``spike-factor``, else medium.
* **plateau**: at least ``plateau-hours`` (6) consecutive hours in *quiet* slots (slot
  median at most ``quiet-fraction`` (0.1) of the key's busy working hour, the 90th
  percentile of its non-zero hours, or 1), each at least ``plateau-min-requests`` (20)
  and ``plateau-factor`` (4) times the slot's highest value, at a near-constant rate:
  flat-rate harvesting through the night. Flat means the spread beyond Poisson counting
  noise, ``sqrt(max(var - mean, 0)) / mean`` over the run's interior (its first and last
  hours are usually partial), is at most ``plateau-flatness`` (0.15). A 24/7 batch key
  has no quiet slots, so it never qualifies. *Shift guard* (``plateau-shift-guard``,
  default true): a run no faster than the key's busy working hour, no longer than its
  usual number of hours a day at half the run's rate, and no flatter than the key's own
  busiest stretches of a day usually are (10th percentile) is the owner's ordinary day
  moved to another time zone (a traveller) and is not reported; harvesting that mimics
  the owner's own rate, length and shape is left to geography and the other detectors.
  High from twice ``plateau-hours``, else medium.
* **ramp**: daily requests rising ``ramp-days`` (5) days in a row, each day at least
  ``ramp-min-step`` (5 %) above the one before, ending at least ``ramp-factor`` (3) times
  the median day of the earlier lookback and at least ``ramp-min-requests`` (500). A
  feature launch is a *step* (one jump, then flat): no single day may carry more than
  ``ramp-max-step-share`` (0.5) of the climb's log-growth, and a step that then stays
  flat fails the day-over-day rule. Only complete UTC days are judged. High from
  ``high-factor`` times ``ramp-factor``.
* **rotation** (limit dodging): the keys of one owner (``account``, else ``principal``)
  take turns. A key is present in an hour when it carries at least
  ``rotation-presence`` (0.2) of the owner's requests, and holds the hour when it carries
  at least ``rotation-hold`` (0.7). A stretch of turns is a run of hours (one idle hour
  allowed) with at most two keys present each hour, at least half of them held, at least
  ``rotation-min-keys`` (3) different holders and ``rotation-min-handoffs`` (8) changes
  of holder. The stretch alerts when the owner is learned, its requests are at least
  ``rotation-min-requests`` (200) and ``rotation-factor`` (2.5) times the most any one
  of its keys did in a day of the lookback, and the owner's keys took turns on at most
  ``rotation-habit-share`` (0.1) of its earlier active days, so a team whose offices in
  several time zones always hand work over never alerts, and several similar services
  running side by side (no hour held by one) never look like turns. Every holder gets an
  alert naming the others. High from ``high-factor`` times ``rotation-factor``.

Daily runs do not repeat themselves: a plateau, ramp or stretch of turns that already
qualified before the window (so an earlier run reported it) is not reported again while
it continues. ``(unattributed)`` events mix callers and are not judged.

Evidence: ``reason``, ``metric``, observed and baseline rates (``peak_rate`` or
``mean_rate``, ``baseline_median``, ``baseline_high``, ``envelope``), the ``slot`` and
``baseline`` kind, ``ratio`` and ``z``, ``start``/``end``/``hours`` (or ``days``), the key's
``history_days``/``history_events``, plus the usual use evidence (IPs, countries, agents)
of the events inside the window.

Cost: SQL aggregates over the lookback plus O(candidate keys x hours) Python on hourly
rows; per-event rows are read only for the hours of an alert (its evidence). About 2 s
for 1M events over 1000 keys on two cores.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import ClassVar

from keyguard.model import Alert, Severity
from keyguard.serialize import iso
from keyguard.usage.detectors import UNATTRIBUTED, Detector, DetectorSettings, use_evidence
from keyguard.usage.detectors._timeseries import (
    DAY,
    WEEK,
    excess_variation,
    hour_of,
    hour_start,
    kth_largest,
    median,
    quantile,
    robust_z,
    runs,
    slot_name,
    variation,
)
from keyguard.usage.store import UsageStore, Window, naive

#: Requests of one row: an aggregate row with an unknown count (0) is at least one request.
_REQUESTS = "CASE WHEN requests > 0 THEN requests ELSE 1 END"
_HOUR = "CAST(floor(epoch(time) / 3600) AS BIGINT)"
_OWNER = "coalesce(account, principal)"
#: Earlier days the hour-of-day fallback looks at.
_DAY_SAMPLES = 14
_TINY = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class VelocityParams:
    """``[usage.detectors.velocity]``; see the module docstring for what each one does."""

    lookback_days: int = 35
    min_slot_samples: int = 3
    spike_factor: float = 4.0
    spike_z: float = 6.0
    spike_min_requests: int = 40
    spike_min_tokens: int = 200_000
    plateau_hours: int = 6
    plateau_factor: float = 4.0
    plateau_min_requests: int = 20
    plateau_flatness: float = 0.15
    plateau_shift_guard: bool = True
    quiet_fraction: float = 0.1
    ramp_days: int = 5
    ramp_factor: float = 3.0
    ramp_min_step: float = 0.05
    ramp_max_step_share: float = 0.5
    ramp_min_requests: int = 500
    rotation_min_keys: int = 3
    rotation_min_handoffs: int = 8
    rotation_presence: float = 0.2
    rotation_hold: float = 0.7
    rotation_factor: float = 2.5
    rotation_min_requests: int = 200
    rotation_habit_share: float = 0.1
    high_factor: float = 2.0


@dataclass(frozen=True, slots=True)
class _Baseline:
    """What an hour is compared with: its slot's earlier values and where they came from."""

    slot: str
    kind: str  # hour-of-week | hour-of-day | overall
    values: list[float]

    @property
    def center(self) -> float:
        return median(self.values)

    @property
    def high(self) -> float:
        return max(self.values, default=0.0)


@dataclass(frozen=True, slots=True)
class _Day:
    """A key's profile as of the start of one UTC day (from the lookback before it)."""

    learned: bool
    envelope: dict[str, float]  # metric -> second-highest hour of the lookback
    active_high: float  # 90th percentile of the non-zero hours: a busy working hour
    history_days: float
    history_events: int


@dataclass(frozen=True, slots=True)
class _Hit:
    """One hour that met a sub-kind's test, with the numbers behind it."""

    hour: int
    metric: str
    value: float
    base: _Baseline
    envelope: float
    ratio: float
    z: float


@dataclass(slots=True)
class _Turns:
    """A stretch of hours in which an owner's keys take turns (at most two at a time)."""

    hours: list[int] = field(default_factory=list)
    holders: set[str] = field(default_factory=set)  # keys that held at least one hour alone
    handoffs: int = 0  # changes of holder between held hours
    held: int = 0  # hours one key carried alone (``rotation-hold`` of the requests)
    requests: int = 0


@dataclass(slots=True)
class _Key:
    """Hourly requests, tokens and event counts of one key over the profile range."""

    key_id: str
    alias: str | None
    first_hour: int  # hour of the key's first event ever
    before: int  # events before the profile range
    series: dict[str, dict[int, int]] = field(default_factory=lambda: {"requests": {}, "tokens": {}})
    counts: dict[int, int] = field(default_factory=dict)
    _cum_hours: list[int] = field(default_factory=list)
    _cum_events: list[int] = field(default_factory=list)
    _days: dict[int, _Day] = field(default_factory=dict)
    _daily: dict[int, int] | None = None

    def finish(self) -> None:
        """Prepare cumulative event counts (events before an hour in O(log n))."""
        total = self.before
        for hour in sorted(self.counts):
            total += self.counts[hour]
            self._cum_hours.append(hour)
            self._cum_events.append(total)

    def events_before(self, hour: int) -> int:
        i = bisect.bisect_left(self._cum_hours, hour)
        return self._cum_events[i - 1] if i else self.before

    def daily(self) -> dict[int, int]:
        """Requests per UTC day index."""
        if self._daily is None:
            days: dict[int, int] = defaultdict(int)
            for hour, value in self.series["requests"].items():
                days[hour // DAY] += value
            self._daily = dict(days)
        return self._daily


class VelocityDetector:
    """Spikes, night plateaus, multi-day ramps and limit-dodging key rotation."""

    id: ClassVar[str] = "velocity"
    Params: ClassVar[type[VelocityParams]] = VelocityParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """Alerts for the hours and days of the window, each judged on earlier history."""
        p = settings.params_for(self.id, VelocityParams)
        judge = _Judge(store, window, settings, p)
        keys = judge.load()
        rotations = list(judge.rotations())
        yield from rotations
        spans: dict[str, list[tuple[datetime | None, datetime | None]]] = defaultdict(list)
        for alert in rotations:
            spans[alert.subject].append((alert.first_seen, alert.last_seen))
        for key in keys.values():
            plateaus = list(judge.plateaus(key))
            yield from plateaus
            covered = spans[key.key_id] + [(a.first_seen, a.last_seen) for a in plateaus]
            # a spike run inside a reported plateau or turn is the same anomaly, told less well
            yield from (a for a in judge.spikes(key) if not _inside(a, covered))
            yield from judge.ramps(key)


def _inside(alert: Alert, spans: list[tuple[datetime | None, datetime | None]]) -> bool:
    """True when the alert's first..last seen lies within one of ``spans``."""
    first, last = alert.first_seen, alert.last_seen
    return first is not None and last is not None and any(
        start is not None and end is not None and start <= first and last <= end
        for start, end in spans)


class _Judge:
    """One evaluation: the profile range, the loaded keys and the per-sub-kind tests."""

    def __init__(self, store: UsageStore, window: Window, settings: DetectorSettings,
                 p: VelocityParams) -> None:
        self.store, self.window, self.settings, self.p = store, window, settings, p
        self.start_hour = hour_of(window.start)
        self.end_hour = hour_of(window.end)
        self.range_hour = (self.start_hour // DAY - p.lookback_days) * DAY
        self.learning_hours = settings.learning_days * DAY

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> dict[str, _Key]:
        """Hourly profiles of the attributed keys in the window that could raise an alert.

        A key whose every hour in the window stays under the spike and plateau floors and
        every day under the ramp floor cannot alert (rotation has its own query), so a
        first pass in SQL drops it and its weeks of history never reach Python.
        """
        p = self.p
        lo, hi = naive(hour_start(self.range_hour)), naive(self.window.end)
        last = self.store.query("SELECT max(time) FROM events WHERE time BETWEEN ? AND ?",
                                [naive(self.window.start), hi])
        if not last or last[0][0] is None:
            return {}
        # NOTE: with --since the window ends "now", past the data; judge only what exists.
        self.end_hour = min(self.end_hour, hour_of(_aware(last[0][0])))
        candidates = [str(r[0]) for r in self.store.query(
            f"WITH hw AS (SELECT key_id, {_HOUR} AS h, sum({_REQUESTS}) AS n, "  # noqa: S608
            "sum(input_tokens + output_tokens) AS t FROM events WHERE time BETWEEN ? AND ? "
            "AND key_id <> ? GROUP BY key_id, h), "
            "dw AS (SELECT key_id, max(n) AS top, max(t) AS top_tokens, sum(n) AS daily "
            "FROM hw GROUP BY key_id, h // 24) "
            "SELECT key_id FROM dw GROUP BY key_id "
            "HAVING max(top) >= ? OR max(top_tokens) >= ? OR max(daily) >= ? ORDER BY 1",
            [naive(hour_start(self.start_hour // DAY * DAY)), hi, UNATTRIBUTED,
             min(p.spike_min_requests, p.plateau_min_requests), p.spike_min_tokens,
             p.ramp_min_requests])]
        if not candidates:
            return {}
        picked = "key_id IN (SELECT unnest(?::VARCHAR[]))"
        info = self.store.query(
            f"SELECT key_id, min(time), count(*) FILTER (WHERE time < ?), "  # noqa: S608
            f"max(key_alias) FROM events WHERE time <= ? AND {picked} GROUP BY key_id",
            [lo, hi, candidates])
        keys = {str(k): _Key(str(k), alias, hour_of(_aware(first)), int(n))
                for k, first, n, alias in info}
        rows = self.store.query(
            f"SELECT key_id, {_HOUR} AS h, sum({_REQUESTS}), "  # noqa: S608
            "sum(input_tokens + output_tokens), count(*) FROM events "
            f"WHERE time >= ? AND time <= ? AND {picked} GROUP BY key_id, h",
            [lo, hi, candidates])
        for key_id, hour, requests, tokens, count in rows:
            key = keys[str(key_id)]
            key.series["requests"][int(hour)] = int(requests)
            key.series["tokens"][int(hour)] = int(tokens or 0)
            key.counts[int(hour)] = int(count)
        for key in keys.values():
            key.finish()
        return keys

    # -- profiles ----------------------------------------------------------------------------

    def day(self, key: _Key, day: int) -> _Day:
        """The key's profile as of the start of ``day`` (cached per key and day)."""
        found = key._days.get(day)
        if found is not None:
            return found
        start = day * DAY
        lo = max(key.first_hour, start - self.p.lookback_days * DAY, self.range_hour)
        events = key.events_before(start)
        learned = self.learned(key, day)
        envelope: dict[str, float] = {}
        active_high = 0.0
        if learned:
            for metric, series in key.series.items():
                values = [series.get(h, 0) for h in range(lo, start)]
                envelope[metric] = kth_largest(values, 2)
            requests = key.series["requests"]
            active_high = quantile([v for h in range(lo, start) if (v := requests.get(h, 0))], 0.9)
        found = _Day(learned, envelope, active_high, round((start - key.first_hour) / DAY, 1),
                     events)
        key._days[day] = found
        return found

    def learned(self, key: _Key, day: int) -> bool:
        """True when the key's history before ``day`` is long and large enough to judge it."""
        start = day * DAY
        return (start - key.first_hour >= self.learning_hours
                and key.events_before(start) >= self.settings.learning_min_events)

    def baseline(self, key: _Key, metric: str, hour: int) -> _Baseline:
        """Earlier values of the hour's slot: hour-of-week, else hour-of-day, else all hours."""
        series = key.series[metric]
        lo = max(key.first_hour, self.range_hour)
        need = self.p.min_slot_samples
        weeks = self.p.lookback_days // 7
        values = [float(series.get(hour - WEEK * k, 0)) for k in range(1, weeks + 1)
                  if hour - WEEK * k >= lo]
        if len(values) >= need:
            return _Baseline(slot_name(hour), "hour-of-week", values)
        values = [float(series.get(hour - DAY * k, 0)) for k in range(1, _DAY_SAMPLES + 1)
                  if hour - DAY * k >= lo]
        if len(values) >= need:
            return _Baseline(f"{hour % DAY:02d}:00 UTC", "hour-of-day", values)
        values = [float(series.get(h, 0)) for h in range(lo, hour)]
        return _Baseline("all hours", "overall", values)

    # -- spike -------------------------------------------------------------------------------

    def spikes(self, key: _Key) -> Iterator[Alert]:
        """Hours far above both the slot and the key's usual peak, merged into runs.

        Requests and tokens are tested separately but an hour is one hit: a burst that
        raises both is one alert (``metric`` = requests), one that only carries huge
        prompts or outputs is a token spike.
        """
        p = self.p
        floors = {"requests": p.spike_min_requests, "tokens": p.spike_min_tokens}
        hits: dict[int, list[_Hit]] = defaultdict(list)
        for metric, series in key.series.items():
            for hour, value in series.items():
                if not self.start_hour <= hour <= self.end_hour or value < floors[metric]:
                    continue
                profile = self.day(key, hour // DAY)
                if not profile.learned:
                    continue
                base = self.baseline(key, metric, hour)
                envelope = max(base.high, profile.envelope[metric], 1.0)
                ratio = value / envelope
                z = robust_z(value, base.values)
                if ratio >= p.spike_factor and z >= p.spike_z:
                    hits[hour].append(_Hit(hour, metric, value, base, envelope, ratio, z))
        for run in runs(list(hits)):
            yield self._spike_alert(key, run, [h for hour in run for h in hits[hour]])

    def _spike_alert(self, key: _Key, hours: list[int], hits: list[_Hit]) -> Alert:
        metric = "requests" if any(h.metric == "requests" for h in hits) else "tokens"
        peak = max((h for h in hits if h.metric == metric), key=lambda h: h.ratio)
        requests = sum(key.series["requests"].get(h, 0) for h in hours)
        tokens = sum(key.series["tokens"].get(h, 0) for h in hours)
        total = requests if metric == "requests" else tokens
        high = peak.ratio >= self.p.high_factor * self.p.spike_factor
        start = iso(hour_start(hours[0])) or ""
        evidence: dict[str, str | int | float] = {
            "reason": "spike", "metric": metric, "hours": len(hours),
            "start": start, "end": iso(hour_start(hours[-1] + 1)) or "",
            "peak_hour": iso(hour_start(peak.hour)) or "", "peak_rate": int(peak.value),
            "total_requests": requests, "total_tokens": tokens,
            "slot": peak.base.slot, "baseline": peak.base.kind,
            "baseline_median": round(peak.base.center, 1), "baseline_high": peak.base.high,
            "envelope": peak.envelope, "ratio": round(peak.ratio, 1), "z": round(peak.z, 1),
            "threshold_factor": self.p.spike_factor,
        }
        message = (f"Key {key.key_id}: {total} {metric} in {len(hours)} hour(s) from {start} "
                   f"(peak {int(peak.value)}/h), {peak.ratio:.1f}x its usual high of "
                   f"{peak.envelope:g}/h; the {peak.base.slot} baseline is a median of "
                   f"{peak.base.center:g}/h (robust z {peak.z:.0f})")
        return self._alert(key, "spike", hours[0], hours[-1] + 1, high, message, evidence)

    # -- plateau -----------------------------------------------------------------------------

    def plateaus(self, key: _Key) -> Iterator[Alert]:
        """Long flat runs of elevated use in hours the key is normally quiet."""
        p = self.p
        series = key.series["requests"]
        first = self.start_hour - DAY  # to see a run that an earlier scan already judged
        hits: dict[int, _Hit] = {}
        for hour, value in series.items():
            if not first <= hour <= self.end_hour or value < p.plateau_min_requests:
                continue
            profile = self.day(key, hour // DAY)
            if not profile.learned:
                continue
            base = self.baseline(key, "requests", hour)
            quiet = base.center <= max(1.0, p.quiet_fraction * profile.active_high)
            floor = max(base.high, 1.0)
            if quiet and value >= p.plateau_factor * floor:
                hits[hour] = _Hit(hour, "requests", value, base, floor, value / floor,
                                  robust_z(value, base.values))
        for run in runs(list(hits)):
            earlier = [h for h in run if h < self.start_hour]
            if len(earlier) == len(run) or self._plateau(key, earlier, hits) is not None:
                continue  # not in the window, or an earlier run already reported it
            found = self._plateau(key, run, hits)
            if found is not None:
                yield self._plateau_alert(key, [hits[h] for h in run], *found)

    def _plateau(self, key: _Key, run: list[int], hits: dict[int, _Hit]
                 ) -> tuple[float, float] | None:
        """(variation, excess variation) when the run is a plateau, else None."""
        p = self.p
        if len(run) < p.plateau_hours:
            return None
        # NOTE: the first and last hour of a run are usually partial (a job started at
        # 22:30 fills half of its first hour), so flatness and rate come from the interior.
        values = [hits[h].value for h in (run[1:-1] if len(run) > 3 else run)]
        mean = sum(values) / len(values)
        excess = excess_variation(values)
        if excess > p.plateau_flatness:
            return None
        day = run[0] // DAY
        if (p.plateau_shift_guard and mean <= self.day(key, day).active_high
                and len(run) <= self._busy_hours(key, day, mean / 2)
                and excess >= self._usual_flatness(key, day, len(run))):
            return None  # the key's ordinary working day, moved: its owner in another zone
        return variation(values), excess

    def _busy_hours(self, key: _Key, day: int, level: float) -> float:
        """Median number of hours at ``level`` or more on the earlier days that had any."""
        series = key.series["requests"]
        lo = max(key.first_hour, (day - self.p.lookback_days) * DAY, self.range_hour)
        per_day: dict[int, int] = defaultdict(int)
        for hour in range(lo, day * DAY):
            if series.get(hour, 0) >= level:
                per_day[hour // DAY] += 1
        return median(list(per_day.values()))

    def _usual_flatness(self, key: _Key, day: int, hours: int) -> float:
        """How flat the key's own busiest ``hours``-long stretch of a day gets (10th pct).

        Each earlier day of the lookback contributes the excess variation of its busiest
        window of ``hours`` consecutive hours. A night run flatter than nearly all of them
        is machine-paced, not the owner's ordinary (over-dispersed) day moved elsewhere.
        """
        series = key.series["requests"]
        lo = max(key.first_hour, (day - self.p.lookback_days) * DAY, self.range_hour)
        found: list[float] = []
        for start in range(lo - lo % DAY, day * DAY, DAY):
            windows = [[series.get(h, 0) for h in range(s, s + hours)]
                       for s in range(max(start, lo), min(start + DAY, day * DAY - hours + 1))]
            if windows and (busiest := max(windows, key=sum)) and sum(busiest) > 0:
                found.append(excess_variation(busiest))
        return quantile(found, 0.1) if found else math.inf

    def _plateau_alert(self, key: _Key, hits: list[_Hit], cv: float, excess: float) -> Alert:
        inner = hits[1:-1] if len(hits) > 3 else hits
        mean = sum(h.value for h in inner) / len(inner)
        typical = median([h.base.center for h in hits])
        usual_high = max(h.base.high for h in hits)
        start = iso(hour_start(hits[0].hour)) or ""
        evidence: dict[str, str | int | float] = {
            "reason": "plateau", "metric": "requests", "hours": len(hits),
            "start": start, "end": iso(hour_start(hits[-1].hour + 1)) or "",
            "mean_rate": round(mean, 1), "variation": round(cv, 3),
            "excess_variation": round(excess, 3),
            "total_requests": int(sum(h.value for h in hits)),
            "slot": f"{hits[0].base.slot} to {hits[-1].base.slot}",
            "baseline": hits[0].base.kind, "baseline_median": round(typical, 1),
            "baseline_high": usual_high, "ratio": round(mean / max(usual_high, 1.0), 1),
            "threshold_hours": self.p.plateau_hours,
            "threshold_flatness": self.p.plateau_flatness,
        }
        message = (f"Key {key.key_id}: {len(hits)} consecutive hours from {start} at a "
                   f"near-constant {mean:.0f} requests/h (variation {cv:.0%}) in hours it is "
                   f"normally quiet (median {typical:g}/h, at most {usual_high:g}/h before)")
        high = len(hits) >= 2 * self.p.plateau_hours
        return self._alert(key, "plateau", hits[0].hour, hits[-1].hour + 1, high, message,
                           evidence)

    # -- ramp --------------------------------------------------------------------------------

    def ramps(self, key: _Key) -> Iterator[Alert]:
        """Steady multi-day climbs to well above the key's median day."""
        first_day = self.start_hour // DAY
        judged = [d for d in range(first_day, (self.end_hour + 1) // DAY)
                  if (d + 1) * DAY > self.start_hour]
        found: dict[int, tuple[list[int], float]] = {}
        for day in judged:
            climb = self._ramp(key, day)
            if climb is not None:
                found[day] = climb
        for run in runs(list(found)):
            if run[0] - 1 < first_day and self._ramp(key, run[0] - 1) is not None:
                continue  # the climb was already under way (and reported) before the window
            yield self._ramp_alert(key, run, found[run[-1]])

    def _ramp(self, key: _Key, day: int) -> tuple[list[int], float] | None:
        p = self.p
        start = day - p.ramp_days + 1
        daily = key.daily()
        values = [daily.get(d, 0) for d in range(start, day + 1)]
        if p.ramp_days < 2 or values[0] <= 0 or values[-1] < p.ramp_min_requests:
            return None
        if any(b < a * (1 + p.ramp_min_step) for a, b in pairwise(values)):
            return None
        if not self.learned(key, start):
            return None
        lo = max(key.first_hour // DAY, day - p.lookback_days, self.range_hour // DAY)
        earlier = [daily.get(d, 0) for d in range(lo, start)]
        if len(earlier) < max(self.settings.learning_days, 1):
            return None
        base = max(median(earlier), 1.0)
        if values[-1] < p.ramp_factor * base:
            return None
        growth = math.log(values[-1] / values[0])
        steps = [math.log(b / a) for a, b in pairwise(values)]
        if max(steps) > p.ramp_max_step_share * growth:
            return None  # one jump carries the climb: a step (launch), not a ramp
        return values, base

    def _ramp_alert(self, key: _Key, days: list[int], climb: tuple[list[int], float]) -> Alert:
        values, base = climb
        first = days[0] - self.p.ramp_days + 1
        daily = key.daily()
        series = [daily.get(d, 0) for d in range(first, days[-1] + 1)]
        ratio = values[-1] / base
        evidence: dict[str, str | int | float] = {
            "reason": "ramp", "metric": "requests", "days": len(series),
            "start": iso(hour_start(first * DAY)) or "",
            "end": iso(hour_start((days[-1] + 1) * DAY)) or "",
            "daily_requests": ", ".join(str(v) for v in series),
            "baseline_daily_median": round(base, 1), "ratio": round(ratio, 1),
            "threshold_factor": self.p.ramp_factor, "threshold_days": self.p.ramp_days,
        }
        message = (f"Key {key.key_id}: daily requests rose {len(series)} days in a row from "
                   f"{series[0]} to {series[-1]} ({ratio:.1f}x its median day of {base:g} "
                   f"before the climb)")
        high = ratio >= self.p.high_factor * self.p.ramp_factor
        return self._alert(key, "ramp", first * DAY, (days[-1] + 1) * DAY, high, message,
                           evidence)

    # -- rotation ----------------------------------------------------------------------------

    def rotations(self) -> Iterator[Alert]:
        """Owners whose keys take turns to push more than any one key ever did."""
        p = self.p
        lo, hi = naive(hour_start(self.range_hour)), naive(self.window.end)
        context = naive(hour_start(self.start_hour - DAY))  # a run may begin before the window
        # NOTE: a cheap SQL pass first: owners with hours shared by at most two keys whose
        # sharers add up to enough distinct keys; only those get the exact test below.
        candidates = self.store.query(
            f"WITH k AS (SELECT {_OWNER} AS o, key_id, {_HOUR} AS h, "  # noqa: S608
            f"sum({_REQUESTS}) AS n FROM events WHERE time BETWEEN ? AND ? AND key_id <> ? "
            f"AND {_OWNER} IS NOT NULL GROUP BY ALL), "
            "hr AS (SELECT o, h, sum(n) AS total FROM k GROUP BY o, h), "
            "pk AS (SELECT k.o, k.h, k.key_id FROM k JOIN hr USING (o, h) "
            "WHERE k.n >= ? * hr.total), "
            "ph AS (SELECT o, h FROM pk GROUP BY o, h HAVING count(*) <= 2) "
            "SELECT pk.o FROM pk JOIN ph USING (o, h) GROUP BY pk.o "
            "HAVING count(DISTINCT pk.key_id) >= ?",
            [context, hi, UNATTRIBUTED, p.rotation_presence, p.rotation_min_keys])
        if not candidates:
            return
        owners = self.store.query(
            f"SELECT {_OWNER} AS o, min(time) FROM events WHERE "  # noqa: S608
            "o IN (SELECT unnest(?::VARCHAR[])) AND time <= ? GROUP BY o",
            [sorted(str(c[0]) for c in candidates), hi])
        first_hour = {str(o): hour_of(_aware(t)) for o, t in owners}
        rows = self.store.query(
            f"SELECT {_OWNER} AS o, key_id, {_HOUR} AS h, sum({_REQUESTS}), "  # noqa: S608
            "max(key_alias) FROM events WHERE time >= ? AND time <= ? AND key_id <> ? AND "
            "o IN (SELECT unnest(?::VARCHAR[])) GROUP BY o, key_id, h",
            [lo, hi, UNATTRIBUTED, sorted(first_hour)])
        hourly: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        aliases: dict[str, str | None] = {}
        for owner, key_id, hour, requests, alias in rows:
            hourly[str(owner)][int(hour)][str(key_id)] = int(requests)
            aliases[str(key_id)] = alias
        for owner in sorted(hourly):
            yield from self._owner_turns(owner, hourly[owner], first_hour[owner], aliases)

    def _owner_turns(self, owner: str, hours: dict[int, dict[str, int]], first_hour: int,
                     aliases: dict[str, str | None]) -> Iterator[Alert]:
        daily: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for hour, by_key in hours.items():
            for key_id, value in by_key.items():
                daily[key_id][hour // DAY] += value
        for turn in self._turn_runs(hours, self.start_hour - DAY, self.end_hour):
            if turn.hours[-1] < self.start_hour:
                continue  # over before the window: an earlier run judged it
            found = self._rotation(owner, turn, hours, daily, first_hour)
            if found is None:
                continue
            earlier = [h for h in turn.hours if h < self.start_hour]
            if earlier:
                before = self._turn_runs({h: hours[h] for h in earlier if h in hours},
                                         earlier[0], earlier[-1])
                if any(self._rotation(owner, t, hours, daily, first_hour) for t in before):
                    continue  # already qualified (and reported) before the window
            for key_id in sorted(turn.holders):
                own = sum(hours.get(h, {}).get(key_id, 0) for h in turn.hours)
                yield self._rotation_alert(key_id, aliases.get(key_id), turn, found, own)

    def _turn_runs(self, hours: dict[int, dict[str, int]], first: int, last: int
                   ) -> list[_Turns]:
        """Stretches of hours in ``[first, last]`` where the owner's keys take turns.

        At most two keys are present in each hour of a stretch (a hand-off hour shows the
        outgoing and the incoming key); a hand-off is a change of holder between held
        hours. One idle hour does not end a stretch. Only stretches with enough holders,
        hand-offs and held hours are returned.
        """
        p = self.p
        found: list[_Turns] = []
        current: _Turns | None = None
        holder = ""
        idle = 0
        for hour in range(first, last + 1):
            by_key = hours.get(hour, {})
            total = sum(by_key.values())
            if total <= 0:
                idle += 1
                if idle > 1:
                    current = None
                continue
            idle = 0
            present = {k for k, v in by_key.items() if v >= p.rotation_presence * total}
            if len(present) > 2:
                current = None
                continue
            if current is None:
                current, holder = _Turns(), ""
                found.append(current)
            top, value = max(by_key.items(), key=lambda kv: (kv[1], kv[0]))
            if value >= p.rotation_hold * total:
                current.held += 1
                current.holders.add(top)
                if holder and top != holder:
                    current.handoffs += 1
                holder = top
            current.hours.append(hour)
            current.requests += total
        return [t for t in found if len(t.holders) >= p.rotation_min_keys
                and t.handoffs >= p.rotation_min_handoffs and 2 * t.held >= len(t.hours)]

    def _rotation(self, owner: str, turn: _Turns, hours: dict[int, dict[str, int]],
                  daily: dict[str, dict[int, int]], first_hour: int
                  ) -> dict[str, str | int | float] | None:
        """The evidence when a stretch of turns is limit dodging, else None."""
        p = self.p
        start = turn.hours[0]
        day = start // DAY
        lo_day = max(first_hour // DAY, day - p.lookback_days, self.range_hour // DAY)
        if start - first_hour < self.learning_hours or day <= lo_day:
            return None  # the owner is still learning
        single = max((v for days in daily.values() for d, v in days.items()
                      if lo_day <= d < day), default=0)
        if turn.requests < p.rotation_min_requests or \
                turn.requests < p.rotation_factor * max(single, 1):
            return None
        lo = max(first_hour, lo_day * DAY)
        active = {h // DAY for h in hours if lo <= h < day * DAY}
        habit = {t.hours[0] // DAY for t in self._turn_runs(hours, lo, start - 1)}
        if len(habit) > p.rotation_habit_share * len(active):
            return None  # this owner's keys always take turns (offices in several zones)
        return {
            "reason": "rotation", "metric": "requests", "owner": owner,
            "keys": ", ".join(sorted(turn.holders)), "key_count": len(turn.holders),
            "handoffs": turn.handoffs, "hours": len(turn.hours),
            "owner_requests": turn.requests, "single_key_max": single,
            "ratio": round(turn.requests / max(single, 1), 1),
            "turn_days_before": len(habit), "active_days_before": len(active),
            "threshold_factor": p.rotation_factor,
        }

    def _rotation_alert(self, key_id: str, alias: str | None, turn: _Turns,
                        found: dict[str, str | int | float], own: int) -> Alert:
        others = sorted(turn.holders - {key_id})
        start, end = turn.hours[0], turn.hours[-1] + 1
        evidence = {**found, "key_requests": own, "start": iso(hour_start(start)) or "",
                    "end": iso(hour_start(end)) or ""}
        message = (f"Key {key_id}: one of {len(turn.holders)} keys of owner {found['owner']} "
                   f"used in turns ({found['handoffs']} hand-offs over {len(turn.hours)} h from "
                   f"{evidence['start']}) with {', '.join(others)}; together "
                   f"{found['owner_requests']} requests, {found['ratio']}x the most any single "
                   f"key did in a day ({found['single_key_max']}), and its keys took turns on "
                   f"{found['turn_days_before']} of {found['active_days_before']} earlier "
                   f"days; this key made {own}")
        high = float(found["ratio"]) >= self.p.high_factor * self.p.rotation_factor
        return self._alert(_Key(key_id, alias, 0, 0), "rotation", start, end, high, message,
                           evidence)

    # -- output ------------------------------------------------------------------------------

    def _alert(self, key: _Key, reason: str, start_hour: int, end_hour: int, high: bool,
               message: str, evidence: dict[str, str | int | float]) -> Alert:
        """The alert with the use evidence of the events inside its hours and the window."""
        start = max(hour_start(start_hour), self.window.start)
        end = min(hour_start(end_hour) - _TINY, self.window.end)
        events = self.store.events(Window(start, end), key.key_id) if start <= end else []
        use = use_evidence(events) if events else {}
        if key.first_hour and reason != "rotation":
            profile = self.day(key, start_hour // DAY)
            evidence = {**evidence, "history_days": profile.history_days,
                        "history_events": profile.history_events}
        when = f" ({use['first_seen']} to {use['last_seen']}, from {use['source_ips'] or 'unknown IPs'})" \
            if events else ""
        return Alert(
            rule_id=VelocityDetector.id,
            severity=Severity.HIGH if high else Severity.MEDIUM,
            subject=key.key_id,
            key_alias=key.alias or (events[0].key_alias if events else None),
            message=message + when + ".",
            evidence={**use, **evidence},
            first_seen=events[0].time if events else hour_start(start_hour),
            last_seen=events[-1].time if events else hour_start(end_hour) - _TINY,
        )


def _aware(when: datetime) -> datetime:
    """A naive UTC time from a query as an aware one."""
    return when.replace(tzinfo=UTC)


PLUGIN: type[Detector] = VelocityDetector
