"""Hourly request volume of a key around its alerts, drawn as a one-line sparkline.

Why: a responder reading ``keyguard usage scan`` output wants to see at a glance whether
an alert sits on a spike, on a key that was silent for a day, or on ordinary traffic. One
line of block characters per key (one cell per UTC hour, :data:`HOURS_BEFORE` hours before
the key's first alert to :data:`HOURS_AFTER` after it) shows that without a chart tool.

Scale: each hour's cell is proportional to its requests relative to the busiest hour in
the span (linear, rounded up, so any use shows at least the lowest block); an hour without
use is a blank. With ``unicode=False`` (stdout that cannot encode block characters) the
cells are ASCII (:data:`ASCII_LEVELS`). A second line puts ``^`` under the alert hours.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyguard.usage.store import UsageStore

#: Hours shown before and after the start of a key's first alert (48 cells in all).
HOURS_BEFORE = 24
HOURS_AFTER = 24
UNICODE_LEVELS = "▁▂▃▄▅▆▇█"
ASCII_LEVELS = ".:-=+*#@"
EMPTY = " "
MARK = "^"


@dataclass(frozen=True, slots=True)
class Volume:
    """Requests per hour of one key from ``start`` (a UTC hour), one count per cell.

    ``marked`` holds the cell indexes that fall inside an alert (start..end hours).
    """

    start: datetime
    counts: tuple[int, ...]
    marked: frozenset[int] = frozenset()

    @property
    def end(self) -> datetime:
        """Exclusive end of the last cell."""
        return self.start + timedelta(hours=len(self.counts))

    @property
    def peak(self) -> int:
        """Requests in the busiest hour of the span."""
        return max(self.counts, default=0)


def hour_floor(when: datetime) -> datetime:
    """The UTC hour ``when`` falls in."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_volume(store: UsageStore, key_id: str,
                  alert_spans: Iterable[tuple[datetime | None, datetime | None]]) -> Volume | None:
    """The key's volume around its first alert; None when no alert has a start time.

    ``alert_spans`` are (first_seen, last_seen) of the key's alerts; the hours they cover
    inside the span are marked.
    """
    spans = [(s, e or s) for s, e in alert_spans if s is not None]
    if not spans:
        return None
    anchor = hour_floor(min(s for s, _ in spans))
    start = anchor - timedelta(hours=HOURS_BEFORE)
    cells = HOURS_BEFORE + HOURS_AFTER
    counts = [0] * cells
    for hour, n in store.hourly_counts(key_id, start, start + timedelta(hours=cells)):
        index = int((hour - start).total_seconds() // 3600)
        if 0 <= index < cells:
            counts[index] += n
    marked: set[int] = set()
    for first, last in spans:
        lo = int((hour_floor(first) - start).total_seconds() // 3600)
        hi = int((hour_floor(last) - start).total_seconds() // 3600)
        marked.update(range(max(lo, 0), min(hi, cells - 1) + 1))
    return Volume(start, tuple(counts), frozenset(marked))


def sparkline(counts: Sequence[int], unicode: bool = True) -> str:
    """One character per count: blank for 0, else a level proportional to the peak."""
    levels = UNICODE_LEVELS if unicode else ASCII_LEVELS
    peak = max(counts, default=0)
    if peak <= 0:
        return EMPTY * len(counts)
    out = []
    for n in counts:
        if n <= 0:
            out.append(EMPTY)
        else:
            out.append(levels[min(len(levels), math.ceil(n * len(levels) / peak)) - 1])
    return "".join(out)


def markers(volume: Volume) -> str:
    """``^`` under each alert hour, blanks elsewhere (right-trimmed)."""
    return "".join(MARK if i in volume.marked else " " for i in range(len(volume.counts))).rstrip()
