"""Robust statistics and hour arithmetic for detectors that profile per-key time series.

Why a private module: velocity (and later coordination) compare an hour or a day with a
key's own earlier values, and usage data is heavy-tailed (one batch job, one CI burst), so
means and standard deviations are dragged by exactly the outliers we want to find.
Medians, MADs and order statistics are not. Everything here is pure and works on plain
lists of numbers, so the callers' DuckDB aggregates can stay small and the logic testable.

Hours are integers: UTC hours since the Unix epoch (``floor(epoch(time) / 3600)`` in SQL),
so "the same hour last week" is ``h - 168`` and no timezone arithmetic is ever involved.
The epoch (1970-01-01) was a Thursday, hence :data:`_MONDAY_OFFSET`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

#: Hours per day and per week.
DAY = 24
WEEK = 168
#: Hours from the Monday 00:00 before the epoch to the epoch (Thursday 00:00).
_MONDAY_OFFSET = 72
#: Scales a MAD to a standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_of(when: datetime) -> int:
    """UTC hours since the epoch of an aware time (the hour it falls in)."""
    return math.floor((when - _EPOCH).total_seconds() / 3600)


def hour_start(hour: int) -> datetime:
    """The aware UTC start of an hour index."""
    return _EPOCH + timedelta(hours=hour)


def hour_of_week(hour: int) -> int:
    """0 (Monday 00:00 UTC) to 167 (Sunday 23:00 UTC)."""
    return (hour + _MONDAY_OFFSET) % WEEK


def slot_name(hour: int) -> str:
    """A readable hour-of-week slot: ``"Tue 03:00 UTC"``."""
    how = hour_of_week(hour)
    return f"{_WEEKDAYS[how // DAY]} {how % DAY:02d}:00 UTC"


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values, so callers need not special-case empty history)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (0.0 for no values)."""
    center = median(values)
    return median([abs(v - center) for v in values])


def robust_scale(values: Sequence[float]) -> float:
    """A spread that is never zero: the largest of sigma-from-MAD, sqrt(median) and 10 %.

    Why the floors: a key whose hours are all identical (MAD 0) would otherwise make any
    change infinitely surprising; sqrt(median) is the Poisson noise of a count, and 10 %
    of the level keeps large flat counts from looking precise beyond reason.
    """
    center = median(values)
    return max(MAD_TO_SIGMA * mad(values), math.sqrt(max(center, 1.0)), 0.1 * center)


def robust_z(value: float, values: Sequence[float]) -> float:
    """How many robust spreads ``value`` lies above the median of ``values``."""
    return (value - median(values)) / robust_scale(values)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def kth_largest(values: Sequence[float], k: int) -> float:
    """The k-th largest value (1 = the maximum); the smallest if there are fewer than k."""
    if not values:
        return 0.0
    ordered = sorted(values, reverse=True)
    return float(ordered[min(k, len(ordered)) - 1])


def variation(values: Sequence[float]) -> float:
    """Coefficient of variation (population standard deviation / mean); inf for mean 0."""
    if not values:
        return math.inf
    mean = sum(values) / len(values)
    if mean <= 0:
        return math.inf
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


def excess_variation(values: Sequence[float]) -> float:
    """Spread of counts beyond Poisson counting noise, relative to the mean; inf for mean 0.

    Why: a machine paced at a fixed rate still yields counts that vary by about sqrt(rate)
    per hour, which at 20/h is a 22 % coefficient of variation, while a person's day is
    over-dispersed (a diurnal curve, meetings, bursts). ``sqrt(max(var - mean, 0)) / mean``
    is near 0 for the first at any rate and stays large for the second.
    """
    if not values:
        return math.inf
    mean = sum(values) / len(values)
    if mean <= 0:
        return math.inf
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(max(var - mean, 0.0)) / mean


def runs(hours: Sequence[int]) -> list[list[int]]:
    """Integers (hour or day indexes) split into sorted runs of consecutive values."""
    out: list[list[int]] = []
    for hour in sorted(hours):
        if out and hour == out[-1][-1] + 1:
            out[-1].append(hour)
        else:
            out.append([hour])
    return out
