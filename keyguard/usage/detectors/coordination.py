"""Coordination detector: several keys suddenly used as one campaign (same infrastructure, prompts, clock).

Why: a thief holding many stolen keys (or an abuser spreading load over many keys to dodge
rate limits) drives them from the same scripts: the same new source IPs, the same prompt
templates, the same unusual user agent, requests fired in the same minutes. Each key on its
own may look unremarkable; together they form a group no legitimate team produces by
chance. The detector builds a graph of keys linked by such shared behaviour and alerts every
member of a dense group, naming the others.

Method, per UTC day of the window (so one long export behaves like a series of daily runs),
among the keys active that day (``(unattributed)`` excluded, because it mixes callers):

* **Evidence new to both keys.** A value links two keys only when it is *fresh* for each of
  them (not used by that key in the previous ``history-days``) and not established
  infrastructure (used by fewer than ``common-keys`` other keys in that period) and shared
  by at most ``max-value-keys`` keys that day. So office and VPC NAT addresses, the
  org's usual SDK user agents and long-standing shared prompts never link keys: they are
  part of every member's history. Kinds of evidence:

  - ``ip``: a shared source IP;
  - ``user_agent``: a shared user agent string;
  - ``template``: a shared prompt template. Each request's 64-bit SimHash is cut into four
    16-bit bands; a band value that recurs in a key's requests that day (at least
    ``template-min-events`` times and ``template-min-share`` of its fingerprinted requests)
    is a template signature. Requests from one template keep each band's majority value far
    more often than chance (1 in 65,536), so two keys share a template when they share such
    signatures in at least two bands. This is a hash join, never an all-pairs comparison.
    A signature is fresh only if the key did not send it even once in the previous
    ``history-days`` (a variant of an old template that happens to recur today is not new).
    Counts are sums of ``prompt_weight`` (NULL = 1): when a bulk import analysed only a
    sample of a key-day's prompts, each analysed one stands for that many requests, so
    the thresholds still compare estimated requests.
  - ``timing``: minute-level synchrony. Co-active minutes (both keys used in the same
    minute) are compared with what the two keys' hourly activity alone predicts
    (``E`` = the sum over hours of ``a_h * b_h / 60``, active minutes per hour), so business
    hours, which synchronise every office at the hour level, do not count. The pair is in
    sync when co-active minutes ``C`` reach ``sync-min-minutes``, ``sync-ratio`` times
    ``E`` and ``sync-z`` standard deviations above it (``(C - E) / sqrt(E + 1)``), as when
    a script fires every key in the same ticks. A script that keeps keys busy every minute
    leaves no minute-level excess; it is in sync when at least ``sync-min-minutes``
    co-active minutes fall in hours quiet for both keys (no use within an hour of that time
    of day in the previous ``history-days``) and both keys' quiet-hour use starts and stops
    within ``sync-edge-seconds`` of each other (people sharing a hotel wifi at night do not
    start and stop in the same minute).

* **New for the pair.** A kind of evidence counts only if the same pair did not show that
  kind in the previous ``history-days``: a CI pipeline that always runs two keys from fresh
  runner IPs in lockstep, or two cron jobs firing at the same minute, are the pair's normal.
* **Edges and groups.** Two keys are linked when at least ``min-kinds`` kinds of new
  evidence join them, one of them behavioural (``template`` or ``timing``): a shared IP
  alone never links keys, nor does a new template alone (a feature launch on several keys
  of one app), nor do infrastructure kinds alone (services moved together to a new
  cluster get a new egress address and a new base-image agent). Groups are the connected
  parts of the graph after repeatedly removing keys with fewer than two links (so a chain
  of pairs is not a group), of at least ``min-group`` keys. Daily groups with a common
  member merge into one campaign.
* **Learning.** Days are judged only once the store holds ``learning-days`` (shared
  setting) of history: on the first days of a store every value is new to every key.
  A key first seen before then does not get fresh evidence on its own first day; a key
  that first appears later does (a campaign may use freshly made keys).

* **Runs.** A run whose window starts mid-day first re-derives that day's groups from the
  events before the window (what the previous run saw) and does not alert their members
  again, so hourly runs report a campaign once; a key that joins it later still alerts.

Output: one ``high`` alert per member key per campaign. The message names the group size,
the other members, the kinds of links and the timing numbers; evidence carries a stable
``group_id`` (hash of the sorted members), the members and the ones this key is linked to,
link counts per kind, the shared IPs and user agents, the number of shared template
signatures, ``sync_co_minutes``/``sync_expected_minutes`` of the key's most synchronised
link, and when and how much the key used the shared values (``campaign_events``,
``campaign_requests``, ``first_seen``/``last_seen``; a request found only by its template
counts its prompt weight). A request counts as using a shared
template when it matches shared signatures in two bands, so the key's own traffic of that
day is left out.

Parameters (``[usage.detectors.coordination]``, defaults): ``min-group`` 4,
``min-kinds`` 2, ``history-days`` 14, ``sync-min-minutes`` 5, ``sync-ratio`` 1.5,
``sync-z`` 5.0, ``sync-edge-seconds`` 60, ``template-min-events`` 3,
``template-min-share`` 0.01, ``common-keys`` 3, ``max-value-keys`` 50. Values that would
let one kind of evidence or a pair make a campaign are refused (ConfigError).

Cost: DuckDB aggregates over the window plus ``2 * history-days`` of lookback (per key-day
value sets, their self-join on shared fresh values, then minute activity of the candidate
pairs only); Python sees only per-pair summaries, never events. Rarity is applied as
thresholds (``common-keys``, ``max-value-keys``) rather than IDF weights: a weight would
still let many weak shared values add up to a link, which is exactly the NAT case.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from keyguard.errors import ConfigError
from keyguard.model import Alert, Severity
from keyguard.serialize import iso
from keyguard.usage.detectors import UNATTRIBUTED, Detector, DetectorSettings
from keyguard.usage.detectors._graph import dense_groups, merge_overlapping
from keyguard.usage.prompt import PREFIX
from keyguard.usage.store import UsageStore, Window

#: Kinds of link evidence, in report order.
KINDS = ("ip", "template", "user_agent", "timing")
#: Kinds about what the keys do rather than where from; every link needs one of them.
BEHAVIOUR = frozenset({"template", "timing"})
_LABELS = {"ip": "new shared source IPs", "template": "new shared prompt templates",
           "user_agent": "a new shared user agent", "timing": "synchronised timing"}
#: Members named in the message before "+N more" (the evidence lists them all).
_NAMED = 5
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)  # the store's time resolution

# NOTE: the SQL below is built from constants only; every value is a bound parameter.
# Fingerprints of another version (an older store) are not comparable and are left out.
_BANDS = ", ".join(f"'{i}' || substr(prompt_fingerprint, {len(PREFIX) + 1 + 4 * i}, 4)"
                   for i in range(4))
_FINGERPRINTED = (f"prompt_fingerprint LIKE '{PREFIX}%' AND "
                  f"length(prompt_fingerprint) = {len(PREFIX) + 16}")
# NOTE: one GROUP BY per band, labelled after grouping: several times faster than unnesting
# four strings per request. Keys travel as 64-bit hashes (``k``) and values as hashes of
# (kind, value) (``vh``) so the big sorts and joins compare integers, not 64-char key ids.
_TEMPLATE_BANDS = "\n  UNION ALL\n".join(
    f"  SELECT k, day, '{i}' || b AS value, n FROM (SELECT k, day, "  # noqa: S608
    f"substr(prompt_fingerprint, {len(PREFIX) + 1 + 4 * i}, 4) AS b, sum(pw) AS n "
    f"FROM ev WHERE {_FINGERPRINTED} GROUP BY ALL)" for i in range(4))

#: Shared fresh values per (day, key pair, kind). $1/$2 load range, $3 unattributed,
#: $4/$5 template thresholds, $6 first computed day, $7 history days, $8 learned day,
#: $9 max keys per value, $10 common keys.
_LINKS_SQL = f"""
WITH ev AS (
  SELECT hash(key_id) AS k, CAST(time AS DATE) AS day, source_ip, user_agent, prompt_fingerprint,
         coalesce(prompt_weight, 1) AS pw
  FROM events WHERE time >= $1 AND time <= $2 AND key_id <> $3
),
tpl AS (
{_TEMPLATE_BANDS}
),
tpl_total AS (
  SELECT k, day, sum(pw) AS total FROM ev WHERE {_FINGERPRINTED} GROUP BY ALL
),
tpl_seen AS (
  SELECT k, day, value, n, lag(day) OVER (PARTITION BY hash(k, value) ORDER BY day) AS prev
  FROM tpl
),
kv AS (
  SELECT k, day, kind, value, hash(kind, value) AS vh, prev FROM (
    SELECT k, day, kind, value, lag(day) OVER (PARTITION BY hash(k, kind, value) ORDER BY day)
           AS prev FROM (
      SELECT DISTINCT k, day, 'ip' AS kind, source_ip AS value FROM ev
      WHERE source_ip IS NOT NULL AND source_ip <> ''
      UNION ALL
      SELECT DISTINCT k, day, 'user_agent', user_agent FROM ev
      WHERE user_agent IS NOT NULL AND user_agent <> '')
    UNION ALL
    SELECT t.k, t.day, 'template', t.value, t.prev FROM tpl_seen t JOIN tpl_total USING (k, day)
    WHERE t.n >= $4 AND t.n >= $5 * tpl_total.total)
),
seen AS (SELECT k, day, vh, kind, value, prev FROM kv),
names AS (
  SELECT key_id, hash(key_id) AS k, CAST(min(time) AS DATE) AS first_day FROM events
  WHERE key_id <> $3 GROUP BY key_id
),
fresh AS (
  SELECT n.key_id, s.k, s.day, s.vh, s.kind, s.value FROM seen s JOIN names n USING (k)
  WHERE s.day >= $6 AND (s.prev IS NULL OR s.day - s.prev > $7)
    AND (n.first_day < s.day OR s.day >= $8)
),
fanout AS (
  SELECT day, vh FROM fresh GROUP BY ALL HAVING count(*) BETWEEN 2 AND $9
),
prior AS (
  SELECT f.day, f.vh, count(DISTINCT kv.k) AS users FROM fanout f
  JOIN kv ON kv.vh = f.vh AND kv.day < f.day AND kv.day >= f.day - $7
  GROUP BY ALL
),
shared AS (
  SELECT f.day, f.vh FROM fanout f LEFT JOIN prior p USING (day, vh)
  WHERE coalesce(p.users, 0) < $10
)
SELECT a.day, a.key_id, b.key_id, a.kind, list(a.value ORDER BY a.value)
FROM shared s
JOIN fresh a ON a.day = s.day AND a.vh = s.vh
JOIN fresh b ON b.day = s.day AND b.vh = s.vh AND a.key_id < b.key_id
GROUP BY ALL
"""  # noqa: S608

#: Minute-level synchrony of candidate pairs per day. $1/$2 pair keys, $3/$4 load range,
#: $5 history days, $6 first computed day, $7 how close quiet-hour starts and stops must be.
_TIMING_SQL = """
WITH p AS (SELECT unnest($1::VARCHAR[]) AS ka, unnest($2::VARCHAR[]) AS kb),
ks AS (SELECT ka AS k FROM p UNION SELECT kb FROM p),
act AS (
  SELECT DISTINCT key_id, date_trunc('minute', time) AS m FROM events
  WHERE time >= $3 AND time <= $4 AND key_id IN (SELECT k FROM ks)
),
hk AS (
  SELECT key_id, CAST(m AS DATE) AS day, hour(m) AS hod, count(*) AS n FROM act GROUP BY ALL
),
hq AS (
  SELECT a.key_id, a.day, a.hod, a.n, NOT EXISTS (
    SELECT 1 FROM hk b WHERE b.key_id = a.key_id AND b.day < a.day AND b.day >= a.day - $5
      AND (b.hod - a.hod + 24) % 24 IN (0, 1, 23)) AS quiet
  FROM hk a WHERE a.day >= $6
),
hh AS (
  SELECT x.day, p.ka, p.kb, x.hod, x.n AS na, y.n AS nb, x.quiet AND y.quiet AS quiet
  FROM p JOIN hq x ON x.key_id = p.ka
  JOIN hq y ON y.key_id = p.kb AND y.day = x.day AND y.hod = x.hod
),
co AS (
  SELECT CAST(x.m AS DATE) AS day, p.ka, p.kb, hour(x.m) AS hod, count(*) AS c
  FROM p JOIN act x ON x.key_id = p.ka
  JOIN act y ON y.key_id = p.kb AND y.m = x.m
  WHERE x.m >= $6 GROUP BY ALL
),
qm AS (
  SELECT a.key_id, hq.day, min(a.m) AS q_first, max(a.m) AS q_last
  FROM act a JOIN hq ON hq.key_id = a.key_id AND hq.day = CAST(a.m AS DATE)
    AND hq.hod = hour(a.m)
  WHERE hq.quiet GROUP BY ALL
),
t AS (
  SELECT hh.day, hh.ka, hh.kb, sum(coalesce(co.c, 0)) AS c, sum(hh.na * hh.nb) / 60.0 AS e,
         sum(CASE WHEN hh.quiet THEN coalesce(co.c, 0) ELSE 0 END) AS q
  FROM hh LEFT JOIN co USING (day, ka, kb, hod) GROUP BY ALL
)
SELECT t.day, t.ka, t.kb, t.c, t.e,
       CASE WHEN abs(epoch(qa.q_first) - epoch(qb.q_first)) <= $7
             AND abs(epoch(qa.q_last) - epoch(qb.q_last)) <= $7 THEN t.q ELSE 0 END
FROM t LEFT JOIN qm qa ON qa.key_id = t.ka AND qa.day = t.day
LEFT JOIN qm qb ON qb.key_id = t.kb AND qb.day = t.day
"""

#: How much each member used the campaign's shared values (a request matches a template
#: on two bands, like a pair does). $1 members, $2/$3 window, $4 campaign days, $5 IPs,
#: $6 user agents, $7 template band values. A row found by its IP or agent is one row; a
#: row found only by its template stands for its prompt weight (sampled analysis: the
#: template rows that were not analysed are estimated, not missed).
_USE_SQL = f"""
SELECT key_id, sum(n), sum(greatest(coalesce(requests, 0), 1) * n), min(time), max(time),
       max(key_alias)
FROM (
  SELECT key_id, time, requests, key_alias,
         CASE WHEN source_ip IN (SELECT unnest($5::VARCHAR[]))
                OR user_agent IN (SELECT unnest($6::VARCHAR[])) THEN 1
              WHEN {_FINGERPRINTED} AND len(list_intersect([{_BANDS}], $7::VARCHAR[])) >= 2
              THEN coalesce(prompt_weight, 1) END AS n
  FROM events
  WHERE key_id IN (SELECT unnest($1::VARCHAR[])) AND time >= $2 AND time <= $3
    AND CAST(time AS DATE) IN (SELECT unnest($4::DATE[]))
)
WHERE n IS NOT NULL
GROUP BY key_id
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class CoordinationParams:
    """``[usage.detectors.coordination]``: thresholds of the link graph (module docstring)."""

    min_group: int = 4  # keys in a dense group before it is a campaign
    min_kinds: int = 2  # kinds of new evidence that link two keys
    history_days: int = 14  # what counts as a key's (and a pair's) established behaviour
    sync_min_minutes: int = 5  # co-active minutes before timing counts
    sync_ratio: float = 1.5  # co-active minutes over what hourly activity predicts
    sync_z: float = 5.0  # ...and standard deviations above it (Poisson)
    sync_edge_seconds: int = 60  # quiet-hour use must start and stop together within this
    template_min_events: int = 3  # requests behind a template signature, per key-day
    template_min_share: float = 0.01  # ...and their share of the key-day's prompts
    common_keys: int = 3  # a value this many other keys used in the history is infrastructure
    max_value_keys: int = 50  # a value shared by more keys in one day is infrastructure

    def __post_init__(self) -> None:
        """Refuse values that would make every pair (or no pair) a campaign."""
        where = "[usage.detectors.coordination]"
        for name, low in (("min_group", 3), ("min_kinds", 2), ("history_days", 1),
                          ("sync_min_minutes", 1), ("template_min_events", 2),
                          ("common_keys", 1), ("max_value_keys", 2), ("sync_z", 0),
                          ("sync_edge_seconds", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{where} {name.replace('_', '-')} must be at least {low}, "
                                  f"got {getattr(self, name)}")
        if self.sync_ratio < 1 or not 0 < self.template_min_share <= 1:
            raise ConfigError(f"{where} sync-ratio must be at least 1 and template-min-share "
                              "between 0 and 1")


@dataclass(slots=True)
class _Link:
    """What joins two keys on one day: the shared values per kind, and timing numbers."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    co_minutes: int = 0
    expected_minutes: float = 0.0
    quiet_minutes: int = 0

    def synchronised(self, params: CoordinationParams) -> bool:
        """Co-active minutes far above what hourly activity predicts, or in quiet hours."""
        co, expected = self.co_minutes, self.expected_minutes
        if co < params.sync_min_minutes:
            return False
        if self.quiet_minutes >= params.sync_min_minutes:
            return True
        return (co >= params.sync_ratio * expected
                and (co - expected) / math.sqrt(expected + 1) >= params.sync_z)

    def template_bands(self) -> int:
        """Bands in which the pair shares a template signature (one band alone may be chance)."""
        return len({value[0] for value in self.values.get("template", ())})


@dataclass(frozen=True, slots=True)
class _DayGroup:
    """One day's dense group: its members and, per linked pair, the new kinds and the link."""

    day: date
    members: frozenset[str]
    edges: dict[tuple[str, str], tuple[set[str], _Link]]


@dataclass(slots=True)
class _Campaign:
    """Merged daily groups: members, the links that joined them, and the days."""

    members: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)
    edges: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    values: dict[str, set[str]] = field(default_factory=dict)
    #: Synchronised links: (co-active minutes, minutes expected from hourly activity).
    sync: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    def add(self, found: _DayGroup) -> None:
        """Fold one day's group in: members, days, link kinds and the shared values."""
        self.members |= found.members
        self.days.add(found.day)
        for pair, (kinds, link) in found.edges.items():
            self.edges.setdefault(pair, set()).update(kinds)
            for kind in kinds:
                self.values.setdefault(kind, set()).update(link.values.get(kind, ()))
            if "timing" in kinds:
                self.sync[pair] = (link.co_minutes, link.expected_minutes)


class CoordinationDetector:
    """Groups of keys joined by new shared IPs, templates, user agents and synchronised timing."""

    id: ClassVar[str] = "coordination"
    Params: ClassVar[type[CoordinationParams]] = CoordinationParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """One alert per member of each campaign seen on the window's days (``now`` unused)."""
        params = settings.params_for(self.id, CoordinationParams)
        row = store.query("SELECT min(time) FROM events WHERE key_id <> ?", [UNATTRIBUTED])
        if not row or row[0][0] is None:
            return
        learned = (row[0][0] + timedelta(days=settings.learning_days) - _TICK).date() + _DAY
        start, end = _plain(window.start), _plain(window.end)
        judged = [d for d in _days(start.date(), end.date()) if d >= learned]
        if not judged:
            return
        daily = self._daily(store, params, judged, end, learned)
        alerted: set[str] = set()
        if judged[0] == start.date() and start.time() != datetime.min.time():
            # NOTE: the run before this one judged the start of this day with the events up
            # to this window; members it grouped then were alerted then. Re-deriving that
            # view keeps hourly runs from repeating a campaign every hour of its day.
            before = self._daily(store, params, judged[:1], start - _TICK, learned)
            alerted = {key for found in before for key in found.members}
        for indexes in merge_overlapping(found.members for found in daily):
            campaign = _Campaign()
            for i in indexes:
                campaign.add(daily[i])
            yield from self._alerts(store, campaign, start, end, alerted)

    def _daily(self, store: UsageStore, params: CoordinationParams, judged: list[date],
               end: datetime, learned: date) -> list[_DayGroup]:
        """Dense groups of each judged day, from the events up to ``end``."""
        history = timedelta(days=params.history_days)
        computed_from = judged[0] - history
        load_from = datetime.combine(computed_from - history, datetime.min.time())
        links = self._links(store, params, load_from, end, computed_from, learned)
        new = self._new_kinds(links, judged, history)
        candidates = sorted({pair for (day, pair), kinds in new.items() if kinds})
        self._timing(store, params, links, candidates, load_from, end, computed_from)
        new = self._new_kinds(links, judged, history)
        daily: list[_DayGroup] = []
        for day in judged:
            edges = [pair for (d, pair), kinds in new.items()
                     if d == day and len(kinds) >= params.min_kinds and kinds & BEHAVIOUR]
            for group in dense_groups(edges, params.min_group):
                inside = {pair: (new[day, pair], links[day, pair]) for pair in edges
                          if pair[0] in group and pair[1] in group}
                daily.append(_DayGroup(day, group, inside))
        return daily

    # -- evidence --------------------------------------------------------------------------

    def _links(self, store: UsageStore, params: CoordinationParams, load_from: datetime,
               end: datetime, computed_from: date, learned: date,
               ) -> dict[tuple[date, tuple[str, str]], _Link]:
        rows = store.query(_LINKS_SQL, [
            load_from, end, UNATTRIBUTED, params.template_min_events,
            params.template_min_share, computed_from, params.history_days, learned,
            params.max_value_keys, params.common_keys])
        links: dict[tuple[date, tuple[str, str]], _Link] = {}
        for day, a, b, kind, values in rows:
            link = links.setdefault((day, (a, b)), _Link())
            link.values[kind] = tuple(values)
            if kind == "template" and link.template_bands() < 2:
                del link.values[kind]
        return links

    def _timing(self, store: UsageStore, params: CoordinationParams,
                links: dict[tuple[date, tuple[str, str]], _Link],
                candidates: list[tuple[str, str]], load_from: datetime, end: datetime,
                computed_from: date) -> None:
        """Add ``timing`` to the candidate pairs' links on every day they were in sync.

        Every computed day of a candidate pair is measured, not only the days with other
        evidence, so a pair that is always in lockstep (CI, cron) has timing in its past.
        """
        if not candidates:
            return
        rows = store.query(_TIMING_SQL, [[a for a, _ in candidates], [b for _, b in candidates],
                                         load_from, end, params.history_days, computed_from,
                                         params.sync_edge_seconds])
        for day, a, b, co, expected, quiet in rows:
            link = links.setdefault((day, (a, b)), _Link())
            link.co_minutes, link.expected_minutes = int(co), float(expected)
            link.quiet_minutes = int(quiet)
            if link.synchronised(params):
                link.values["timing"] = ()

    @staticmethod
    def _new_kinds(links: dict[tuple[date, tuple[str, str]], _Link], judged: list[date],
                   history: timedelta) -> dict[tuple[date, tuple[str, str]], set[str]]:
        """Kinds each pair shows on a judged day that it did not show in the history before."""
        by_pair: dict[tuple[str, str], dict[date, _Link]] = {}
        for (day, pair), link in links.items():
            by_pair.setdefault(pair, {})[day] = link
        days = set(judged)
        new: dict[tuple[date, tuple[str, str]], set[str]] = {}
        for pair, per_day in by_pair.items():
            for day, link in per_day.items():
                if day not in days:
                    continue
                past: set[str] = set()
                for earlier, old in per_day.items():
                    if day - history <= earlier < day:
                        past.update(old.values)
                new[day, pair] = set(link.values) - past
        return new

    # -- alerts ----------------------------------------------------------------------------

    def _alerts(self, store: UsageStore, campaign: _Campaign, start: datetime,
                end: datetime, alerted: set[str]) -> Iterator[Alert]:
        members = sorted(campaign.members)
        values = campaign.values
        templates = values.get("template", set())
        rows = store.query(_USE_SQL, [
            members, start, end, sorted(campaign.days), sorted(values.get("ip", ())),
            sorted(values.get("user_agent", ())), sorted(templates)])
        use = {r[0]: r[1:] for r in rows}
        group_id = "cg-" + hashlib.sha256("\n".join(members).encode()).hexdigest()[:12]
        per_kind = {k: sum(1 for kinds in campaign.edges.values() if k in kinds) for k in KINDS}
        kinds_text = ", ".join(f"{_LABELS[k]} on {n} of {len(campaign.edges)} links"
                               for k, n in per_kind.items() if n)
        days = sorted(campaign.days)
        span = days[0].isoformat() + (f" to {days[-1].isoformat()}" if len(days) > 1 else "")
        for key in members:
            if key not in use or key in alerted:
                continue  # its shared use fell outside this window, or was alerted before
            events, requests, first, last, alias = use[key]
            events, requests = round(events), round(requests)
            others = [m for m in members if m != key]
            near = sorted({b if a == key else a for a, b in campaign.edges if key in (a, b)})
            named = ", ".join(others[:_NAMED]) + (
                f" (+{len(others) - _NAMED} more)" if len(others) > _NAMED else "")
            evidence: dict[str, str | int | float] = {
                "group_id": group_id,
                "group_size": len(members),
                "members": ", ".join(members),
                "linked_to": ", ".join(near),
                "links": len(campaign.edges),
                **{f"links_{k}": n for k, n in per_kind.items()},
                "shared_ips": len(values.get("ip", ())),
                "shared_ip_sample": ", ".join(sorted(values.get("ip", ()))[:5]),
                "shared_user_agents": ", ".join(sorted(values.get("user_agent", ()))[:3]),
                "shared_template_signatures": len(templates),
                "days": ", ".join(d.isoformat() for d in days),
                "campaign_events": int(events),
                "campaign_requests": int(requests),
                "first_seen": iso(_utc(first)) or "",
                "last_seen": iso(_utc(last)) or "",
            }
            mine = [numbers for pair, numbers in campaign.sync.items() if key in pair]
            timing = ""
            if mine:
                co, expected = max(mine, key=lambda n: n[0] - n[1])
                evidence["sync_co_minutes"], evidence["sync_expected_minutes"] = co, round(expected, 1)
                timing = (f"; its most synchronised link shares {co} active minutes where "
                          f"{expected:.1f} were expected")
            yield Alert(
                rule_id=self.id,
                severity=Severity.HIGH,
                subject=key,
                key_alias=alias,
                message=(f"Key {key} is one of {len(members)} keys used as one campaign on "
                         f"{span} (with {named}): linked to {len(near)} of them by behaviour "
                         f"new to each pair, group-wide {kinds_text}{timing}; {events} "
                         f"event(s) used the shared values between {evidence['first_seen']} "
                         f"and {evidence['last_seen']}."),
                evidence=evidence,
                first_seen=_utc(first),
                last_seen=_utc(last),
            )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _plain(when: datetime) -> datetime:
    """A window bound as the store keeps times: naive UTC (see ``store.naive``)."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC)


PLUGIN: type[Detector] = CoordinationDetector
