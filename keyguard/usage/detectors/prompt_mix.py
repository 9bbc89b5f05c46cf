"""Prompt-mix detector: a key suddenly sends a different *kind* of request than it used to.

A stolen key is used for the thief's workload, not the owner's: other models, other prompt
sizes, long answers to short prompts (distillation), one template filled in thousands of
times, "think step by step" on every request, attempts to read the system prompt. Each is
judged against the key's *own* baseline, so a tutoring bot that always says "step by step"
or a batch job that always sends one template is normal.

**Units.** The window is cut into 24-hour days counted back from its end (day 0 is the
last 24 h), so one long export is judged like a series of daily runs. Day *k* is judged
on the events of the ``baseline-days`` (default 28) days before it only, never on later
ones. A key is judged on its baseline once its first event is ``learning_days`` before the
day and its baseline holds at least ``learning_min_events`` and ``min-baseline-requests``
(default 200) requests; only trap strings and extraction attempts need no baseline.
Alerts of several days of one key merge into one alert per key and scan.

**Distribution shift** (needs ``min-window-requests``, default 50, in the day). Three
distributions of requests (weighted by ``requests``): model family, prompt size (log2
buckets of input tokens per request, or characters / 4) and output/input token ratio
(log2 buckets). Each is compared with its baseline by the Jensen-Shannon divergence (bits,
0 = same, 1 = disjoint). The threshold adapts to the key: the second-largest divergence of
one baseline day against the rest of the baseline (days this scan already flagged left
out), times ``divergence-margin`` (default 1.25), and never below ``min-divergence``
(default 0.15); so keys whose weekdays and weekends differ do not alert on the next
weekend, while one odd day in the baseline does not blind the detector. A shift must also
be *new*: at least ``min-novel-share`` (default 0.3) of the day's requests fall in buckets
the baseline did not use (under 0.5% of its requests; for sizes and ratios a bucket next
to a used one counts as used, so a 2x drift in prompt length after a feature change does
not alert, and moving between models the key already used does not either). Reasons
``model-shift``, ``size-shift``, ``ratio-shift``.

**Model migrations** are not shifts. Model names are reduced to a family (provider
prefixes, dates, versions and tokens with digits removed: ``claude-sonnet-4-5-20250929``
and ``claude-3-5-sonnet-20241022`` are ``claude-sonnet``; ``gpt-4o-2024-08-06`` and
``gpt-4.1`` are ``gpt``; ``gpt-4o-mini`` is ``gpt-mini``), and distributions are over
families. A family that is a *release* for the key counts as the key's main other family,
in the day and in the baseline (so the days after the switch, when the baseline still
remembers the old family, do not alert either): at least ``release-min-keys`` (default 3)
keys of the store, this one included, first used it within ``release-days`` (default 14)
of this key's first use, all before the end of the day judged (staggered roll-outs
included). Size and ratio are still judged.

**Prompt text signals** (only for events with a prompt fingerprint or markers; see
``keyguard.usage.prompt_markers``):

* ``templated``: the day's largest template cluster (prompts whose SimHash lies within
  ``template-bits``, default 12, of a centroid: the bitwise majority of the best of 8
  candidate centres, found on a sample of about 128 of the day's prompts) holds at least ``template-min-requests`` (200) requests and
  ``template-min-share`` (0.5) of the day's prompts, and is new: under
  ``template-known-share`` (0.02) of the baseline's prompts fall in it. Alone it alerts only
  when the day's volume is ``template-volume-factor`` (5) times the key's median baseline
  day (a feature launch adds a template, a scraper floods one); with another reason it
  makes that reason stronger.
* ``reasoning``: the share of prompts with reasoning-elicitation phrasing reaches
  ``reasoning-min-share`` (0.3) and exceeds the baseline share by ``reasoning-factor``
  (3x) plus 0.1, with at least ``reasoning-min-requests`` (50) such prompts.
* ``extraction``: at least ``extraction-min-requests`` (3) prompts try to extract the
  system prompt, more than ``extraction-factor`` (5) times the baseline rate.
* ``trap``: any prompt containing one of ``trap-strings`` (configured for the importers,
  which mark prompts at import; prompts imported before a trap string was configured are
  not marked).
* ``topic-sweep``: a new template cluster of at least ``sweep-min-requests`` (100) whose
  prompts cycle through at least ``sweep-min-topics`` (6) subjects (``topic:`` markers)
  spread evenly (normalised entropy at least ``sweep-min-evenness``, 0.8).

Severity: ``high`` for trap, extraction, templated reasoning, topic sweep and templated
ratio shift (distillation), ``medium`` otherwise. Evidence names the reasons, the
divergences and thresholds, top models and buckets of baseline and day, cluster sizes and
marker shares. ``(unattributed)`` events are not judged.

**Sampled analysis.** A bulk import may analyse only a sample of a key-day's ordinary
prompts and give each analysed row a ``prompt_weight``: how many of the day's requests its
analysis stands for (NULL = 1; rows left out have no fingerprint or markers, and prompts
that may be extraction attempts or hold a trap string are always analysed, weight 1).
Every prompt count above is therefore a sum of weights over analysed rows, an unbiased
estimate of what analysing every prompt would count, so thresholds keep their meaning
in requests. Only the template sample rate uses analysed *rows*, and ``trap`` counts the
rows that hold a trap string (each one is a prompt actually seen).

Cost: a handful of DuckDB GROUP BYs over the window plus the baseline period, and a
Hamming-distance join only for days with enough prompts; per-event objects are loaded
only for keys that alert.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from keyguard.model import Alert, Severity
from keyguard.serialize import iso
from keyguard.usage.detectors import UNATTRIBUTED, Detector, DetectorSettings, use_evidence
from keyguard.usage.store import UsageStore, Window, naive

DAY_MS = 86_400_000
_SUPPORT = 0.005  # a baseline bucket with this share of requests is "known"
_SAMPLE = 128  # prompts per day sampled to find the template centroid
#: A stored ``sh1:`` fingerprint as a 64-bit integer (NULL for another version).
_HEX = "TRY_CAST('0x' || substr({}, 5) AS UBIGINT)"
#: Order in which reasons are reported.
REASONS = ("trap", "extraction", "reasoning", "topic-sweep", "templated", "model-shift",
           "size-shift", "ratio-shift")
_HIGH_ALONE = frozenset({"trap", "extraction", "topic-sweep"})
_PROVIDER = re.compile(
    r"^(?:[a-z]{2,6}\.)?(?:anthropic|meta|amazon|cohere|mistral|ai21|deepseek|openai|google|"
    r"qwen|writer|stability|us|eu|apac|global)\.")
_TOKEN_SPLIT = re.compile(r"[-_.\s]+")
_PARAM = re.compile(r"\$([a-z]+)")
_DROP = frozenset({"latest", "preview", "exp", "experimental", "chat"})


@dataclass(frozen=True, slots=True)
class PromptMixParams:
    """``[usage.detectors.prompt-mix]``: see the module docstring for each default's reason."""

    baseline_days: float = 28.0
    min_window_requests: int = 50
    min_baseline_requests: int = 200
    min_divergence: float = 0.15
    divergence_margin: float = 1.25
    min_novel_share: float = 0.3
    release_min_keys: int = 3
    release_days: float = 14.0
    template_bits: int = 12
    template_min_requests: int = 200
    template_min_share: float = 0.5
    template_known_share: float = 0.02
    template_volume_factor: float = 5.0
    reasoning_min_share: float = 0.3
    reasoning_factor: float = 3.0
    reasoning_min_requests: int = 50
    extraction_min_requests: int = 3
    extraction_factor: float = 5.0
    sweep_min_requests: int = 100
    sweep_min_topics: int = 6
    sweep_min_evenness: float = 0.8
    trap_strings: tuple[str, ...] = ()  # read by the importers (keyguard.usage.prompt_markers)


def family(model: str) -> str:
    """The model family: no provider prefix, date, version or digit-bearing token.

    ``claude-sonnet-4-5-20250929`` -> ``claude-sonnet``; ``gpt-4o-2024-08-06`` -> ``gpt``;
    ``anthropic.claude-3-haiku-20240307-v1:0`` -> ``claude-haiku``; ``o3-mini`` -> ``o-mini``.
    """
    name = model.strip().lower().rsplit("/", 1)[-1].split(":", 1)[0]
    name = _PROVIDER.sub("", _PROVIDER.sub("", name))
    tokens = [t for t in _TOKEN_SPLIT.split(name) if t]
    if not tokens:
        return model
    head = "".join(c for c in tokens[0] if c.isalpha()) or tokens[0]
    rest = [t for t in tokens[1:] if t.isalpha() and t not in _DROP]
    return "-".join([head, *rest])


def jsd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence of two count histograms, in bits (0 same .. 1 disjoint)."""
    sp, sq = sum(p.values()), sum(q.values())
    if sp <= 0 or sq <= 0:
        return 0.0
    total = 0.0
    for b in set(p) | set(q):
        x, y = p.get(b, 0.0) / sp, q.get(b, 0.0) / sq
        m = (x + y) / 2
        if x > 0:
            total += x * math.log2(x / m)
        if y > 0:
            total += y * math.log2(y / m)
    return max(0.0, min(1.0, total / 2))


def _novel_share(now: Mapping[str, float], base: Mapping[str, float], *, numeric: bool) -> float:
    """Share of the day's requests in buckets the baseline never (or hardly) used.

    The baseline's support is every bucket with at least ``_SUPPORT`` of its requests; for
    log2 buckets (``numeric``) a bucket next to the support still counts as known, so
    prompts drifting by a factor of two are not new, while outputs 64x the input are.
    """
    total_base = sum(base.values()) or 1.0
    support = {b for b, w in base.items() if w / total_base >= _SUPPORT}
    if numeric:
        support |= {str(int(b) + step) for b in support for step in (-1, 1)}
    total = sum(now.values()) or 1.0
    return sum(w for b, w in now.items() if b not in support) / total


def _describe(dim: str, hist: Mapping[str, float], limit: int = 3) -> str:
    """Top buckets with their share, in words (``gpt 80%``, ``256-511 tok 60%``)."""
    total = sum(hist.values()) or 1.0
    shown = sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    parts = []
    for bucket, weight in shown:
        if dim == "size":
            b = int(bucket)
            label = f"{2 ** b}-{2 ** (b + 1) - 1} tok"
        elif dim == "ratio":
            b = int(bucket)
            label = f"out/in {2.0 ** b:g}-{2.0 ** (b + 1):g}"
        else:
            label = bucket
        parts.append(f"{label} {100 * weight / total:.0f}%")
    return ", ".join(parts)


@dataclass(slots=True)
class _Day:
    """Aggregates of one key on one day (``age`` days before the window end)."""

    requests: float = 0.0
    texts: float = 0.0  # analysed prompts, as estimated requests (sum of prompt weights)
    rows: int = 0  # analysed (fingerprinted) rows: what the template sample is drawn from
    reasoning: float = 0.0  # weighted, like texts
    extraction: float = 0.0  # weighted, like texts
    trap: int = 0  # rows with a trap string (always analysed, never sampled)
    first: datetime | None = None
    last: datetime | None = None
    dims: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"model": {}, "size": {}, "ratio": {}})


@dataclass(slots=True)
class _Key:
    """Everything known about one key: in-window days and history days by age."""

    current: dict[int, _Day] = field(default_factory=dict)
    history: dict[int, _Day] = field(default_factory=dict)  # every event, in window or not
    first_time: datetime | None = None


@dataclass(slots=True)
class _Finding:
    """Why one day of one key is anomalous, with the numbers for the alert."""

    age: int
    reasons: list[str]
    evidence: dict[str, str | int | float]
    parts: list[str]
    day: _Day
    score: float


def _learned(info: _Key, age: int, window: Window, params: PromptMixParams,
             settings: DetectorSettings, days: int) -> bool:
    """True when day ``age`` of the key has a baseline to be judged on (learning is over).

    The key's first event lies ``learning_days`` before the day, and the baseline days
    hold ``learning_min_events`` and ``min-baseline-requests`` requests.
    """
    first = info.first_time
    day_start = (window.end - timedelta(days=age + 1)).astimezone(UTC).replace(tzinfo=None)
    if first is None or (day_start - first).total_seconds() < settings.learning_days * 86400:
        return False
    requests = sum(d.requests for a, d in info.history.items() if age < a <= age + days)
    return requests >= max(settings.learning_min_events, params.min_baseline_requests)


def _merge(days: Iterable[_Day]) -> _Day:
    out = _Day()
    for d in days:
        out.requests += d.requests
        out.texts += d.texts
        out.rows += d.rows
        out.reasoning += d.reasoning
        out.extraction += d.extraction
        out.trap += d.trap
        for dim, hist in d.dims.items():
            target = out.dims[dim]
            for bucket, weight in hist.items():
                target[bucket] = target.get(bucket, 0.0) + weight
    return out


class PromptMixDetector:
    """Shift of a key's model/size/ratio mix, templated or phrased prompts, traps."""

    id: ClassVar[str] = "prompt-mix"
    Params: ClassVar[type[PromptMixParams]] = PromptMixParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """One alert per key with anomalous days in the window (``now`` unused: no aging)."""
        params = settings.params_for(self.id, PromptMixParams)
        days = max(1, math.ceil(params.baseline_days))
        span_days = int((window.end - window.start).total_seconds() * 1000) // DAY_MS
        lo = window.end - timedelta(days=span_days + days + 1)
        keys = self._aggregate(store, window, lo)
        if not keys:
            return
        first_uses = self._first_uses(store, window)
        learned = {(k, age) for k, info in keys.items() for age in info.current
                   if _learned(info, age, window, params, settings, days)}
        templates = self._templates(store, window, lo, keys, learned, params, days)
        for key_id in sorted(keys):
            info = keys[key_id]
            findings: list[_Finding] = []
            for age in sorted(info.current, reverse=True):  # oldest day first
                found = self._judge(key_id, age, info, window, params, settings, days,
                                    first_uses, templates, {f.age for f in findings},
                                    (key_id, age) in learned)
                if found is not None:
                    findings.append(found)
            if findings:
                yield self._alert(store, key_id, findings, window)

    # -- aggregates ---------------------------------------------------------------------

    @staticmethod
    def _base_sql() -> str:
        return (
            "SELECT key_id, (epoch_ms($end) - epoch_ms(time)) // 86400000 AS age, "
            "time >= $start AS cur, greatest(requests, 1) AS w, time, model, input_tokens, "
            "output_tokens, requests, prompt_chars, prompt_fingerprint, prompt_markers, "
            # the requests this row's prompt analysis stands for (NULL: analysed alone)
            "coalesce(prompt_weight, 1) AS pw "
            "FROM events WHERE time >= $lo AND time <= $end "
            "AND key_id IN (SELECT unnest($keys::VARCHAR[]))")

    def _aggregate(self, store: UsageStore, window: Window, lo: datetime) -> dict[str, _Key]:
        judged = [k for k in store.keys(window) if k != UNATTRIBUTED]
        if not judged:
            return {}
        params = {"start": naive(window.start), "end": naive(window.end), "lo": naive(lo),
                  "keys": judged}
        base = self._base_sql()
        keys: dict[str, _Key] = {}
        totals = self._q(store, f"""
            WITH ev AS ({base})
            SELECT key_id, age, cur, sum(w),
                   coalesce(sum(pw) FILTER (WHERE prompt_fingerprint IS NOT NULL), 0),
                   count(prompt_fingerprint),
                   coalesce(sum(pw) FILTER (WHERE contains(coalesce(prompt_markers, ''),
                                                           'reasoning')), 0),
                   coalesce(sum(pw) FILTER (WHERE contains(coalesce(prompt_markers, ''),
                                                           'extraction')), 0),
                   count_if(contains(coalesce(prompt_markers, ''), 'trap')), min(time), max(time)
            FROM ev GROUP BY ALL""", params)  # noqa: S608
        for key_id, age, cur, w, texts, rows, reasoning, extraction, trap, first, last in totals:
            info = keys.setdefault(key_id, _Key())
            for target in ([info.history, info.current] if cur else [info.history]):
                day = target.setdefault(int(age), _Day())
                day.requests += float(w)
                day.texts += float(texts)
                day.rows += int(rows)
                day.reasoning += float(reasoning)
                day.extraction += float(extraction)
                day.trap += int(trap)
                day.first = first if day.first is None else min(day.first, first)
                day.last = last if day.last is None else max(day.last, last)
        # Size: log2 of input tokens per request (characters / 4 when tokens are unknown);
        # ratio: log2 of output/input tokens clamped to [-8, 6]. Aggregate rows with an
        # unknown request count (requests = 0) have no per-request size: left out.
        dims = self._q(store, f"""
            WITH ev AS ({base}),
            b AS (SELECT key_id, age, cur, w, model,
                         CASE WHEN requests > 0 AND (input_tokens > 0 OR prompt_chars > 0)
                         THEN CAST(floor(log2(greatest(1, CASE WHEN input_tokens > 0
                              THEN input_tokens / requests ELSE coalesce(prompt_chars, 0) / 4
                              END))) AS INTEGER) END AS size,
                         CASE WHEN input_tokens > 0 THEN CAST(least(6, greatest(-8, floor(log2(
                              (output_tokens + 1.0) / (input_tokens + 1.0))))) AS INTEGER)
                         END AS ratio
                  FROM ev)
            SELECT key_id, age, cur, model, size, ratio, grouping(model, size, ratio), sum(w)
            FROM b GROUP BY GROUPING SETS ((key_id, age, cur, model), (key_id, age, cur, size),
                                          (key_id, age, cur, ratio))""", params)  # noqa: S608
        # grouping() bits: 4 model, 2 size, 1 ratio (set when the column is rolled up)
        for key_id, age, cur, model, size, ratio, rolled, w in dims:
            dim, bucket = (("model", model) if rolled == 3 else ("size", size) if rolled == 5
                           else ("ratio", ratio))
            if bucket is None:
                continue
            info = keys[key_id]
            label = family(bucket) if dim == "model" else str(bucket)
            for target in ([info.history, info.current] if cur else [info.history]):
                hist = target[int(age)].dims[dim]
                hist[label] = hist.get(label, 0.0) + float(w)
        for key_id, first in self._q(store, """
                SELECT key_id, min(time) FROM events WHERE key_id IN
                (SELECT unnest($keys::VARCHAR[])) GROUP BY key_id""",
                {"keys": sorted(keys)}):
            keys[key_id].first_time = first
        return {k: v for k, v in keys.items() if v.current}

    def _first_uses(self, store: UsageStore,
                    window: Window) -> dict[str, dict[str, datetime]]:
        """For each model family, when each key of the store first used it (release rule)."""
        out: dict[str, dict[str, datetime]] = {}
        for key_id, model, first in self._q(store, """
                SELECT key_id, model, min(time) FROM events WHERE model IS NOT NULL
                AND time <= $end GROUP BY ALL""", {"end": naive(window.end)}):
            keys = out.setdefault(family(model), {})
            if key_id not in keys or first < keys[key_id]:
                keys[key_id] = first
        return out

    def _templates(self, store: UsageStore, window: Window, lo: datetime,
                   keys: Mapping[str, _Key], learned: set[tuple[str, int]],
                   params: PromptMixParams, days: int) -> dict[tuple[str, int], dict[str, Any]]:
        """The largest template cluster of each judged day with enough prompts.

        Centres are the day's 8 commonest fingerprints (ties broken by hash, so for a
        template whose fills all differ they are random members); the centre with the
        most prompts within ``template-bits`` wins, and is replaced by the bitwise
        majority of (a sample of) those prompts: a member sits about half as far from this
        centroid as from another member, so the cluster gathers nearly all fills of the
        template. Then, per key, centroids of different days that are the same template
        are merged, and each distinct one is counted against the key's prompts of every
        day once: that gives the baseline share, topics and reasoning inside the cluster.
        Cluster sizes are sums of prompt weights (estimated requests); the sample rate
        comes from the day's analysed rows, since only they can be drawn.
        """
        floor = min(params.template_min_requests, params.sweep_min_requests)
        wanted = [(k, age, max(1, math.ceil(day.rows / _SAMPLE))) for k, info in keys.items()
                  for age, day in info.current.items()
                  if day.texts >= floor and (k, age) in learned]
        if not wanted:
            return {}
        bind = {"start": naive(window.start), "end": naive(window.end), "lo": naive(lo),
                "keys": sorted(keys), "bits": params.template_bits,
                "wk": [k for k, _, _ in wanted], "wa": [a for _, a, _ in wanted],
                "wm": [m for _, _, m in wanted]}
        # Centroids come from a sample of about _SAMPLE prompts per day (every m-th by a
        # hash of time and fingerprint, so exact duplicates are sampled like any other);
        # the exact cluster sizes are counted afterwards, for the few centroids that matter.
        rows = self._q(store, f"""
            WITH ev AS ({self._base_sql()}),
            want AS (SELECT unnest($wk::VARCHAR[]) AS key_id, unnest($wa::BIGINT[]) AS age,
                            unnest($wm::UBIGINT[]) AS m),
            picked AS (SELECT e.key_id, e.age, e.prompt_fingerprint AS fp, sum(e.pw) AS n
                       FROM ev e JOIN want USING (key_id, age)
                       WHERE e.cur AND e.prompt_fingerprint IS NOT NULL
                         AND hash(e.time, e.prompt_fingerprint) % want.m = 0
                       GROUP BY ALL),
            fp AS MATERIALIZED (SELECT key_id, age, {_HEX.format("fp")} AS h, n FROM picked
                   WHERE h IS NOT NULL),
            cand AS (SELECT key_id, age, h FROM (SELECT *, row_number() OVER (
                        PARTITION BY key_id, age ORDER BY n DESC, hash(h)) AS rn FROM fp)
                     WHERE rn <= 8),
            score AS (SELECT c.key_id, c.age, c.h, sum(f.n) AS members FROM cand c
                      JOIN fp f ON f.key_id = c.key_id AND f.age = c.age
                      AND bit_count(xor(c.h, f.h)) <= $bits GROUP BY ALL),
            best AS (SELECT key_id, age, arg_max(h, members) AS h FROM score GROUP BY ALL),
            near AS (SELECT f.key_id, f.age, f.h, f.n FROM best b JOIN fp f
                     ON f.key_id = b.key_id AND f.age = b.age
                     AND bit_count(xor(b.h, f.h)) <= $bits),
            ones AS (SELECT key_id, age, bit, sum(((h >> bit) & 1) * n) AS ones,
                            sum(n) AS total
                     FROM near, range(64) AS r(bit) GROUP BY ALL),
            centre AS (SELECT key_id, age, bit_or(CASE WHEN 2 * ones > total
                              THEN (1::UBIGINT << bit) ELSE 0::UBIGINT END) AS h
                       FROM ones GROUP BY ALL),
            sampled AS (SELECT key_id, age, sum(n) AS n FROM fp GROUP BY ALL)
            SELECT c.key_id, c.age, c.h, sum(f.n) / any_value(s.n) FROM centre c
              JOIN fp f ON f.key_id = c.key_id AND f.age = c.age
                AND bit_count(xor(c.h, f.h)) <= $bits
              JOIN sampled s ON s.key_id = c.key_id AND s.age = c.age
            GROUP BY ALL""", bind)  # noqa: S608
        out: dict[tuple[str, int], dict[str, Any]] = {}
        distinct: list[tuple[str, int]] = []  # (key, centroid) counted once per key
        for key_id, age, h, share in sorted(rows):
            if share * keys[key_id].current[int(age)].texts < 0.8 * floor:
                continue  # no cluster big enough to matter, even allowing for sampling
            centre = int(h)
            same = next((i for i, (k, c) in enumerate(distinct) if k == key_id
                         and (c ^ centre).bit_count() <= params.template_bits // 2), None)
            if same is None:
                distinct.append((key_id, centre))
                same = len(distinct) - 1
            out[(key_id, int(age))] = {"centre": same, "members": 0, "baseline": 0,
                                       "reasoning": 0, "topics": {}}
        if not out:
            return out
        bind = {"start": naive(window.start), "end": naive(window.end), "lo": naive(lo),
                "keys": sorted({k for k, _ in distinct}), "bits": params.template_bits,
                "ck": [k for k, _ in distinct], "ch": [c for _, c in distinct],
                "ci": list(range(len(distinct)))}
        rows = self._q(store, f"""
            WITH ev AS ({self._base_sql()}),
            c AS (SELECT unnest($ck::VARCHAR[]) AS key_id, unnest($ch::UBIGINT[]) AS centre,
                         unnest($ci::BIGINT[]) AS idx),
            -- NOTE: parse each fingerprint once here; inside the join condition DuckDB
            -- would parse it once per (row, centroid) pair (5x slower at 1M events).
            mine AS (SELECT age, cur, key_id, prompt_markers, pw,
                            {_HEX.format("prompt_fingerprint")} AS h
                     FROM ev WHERE key_id IN (SELECT key_id FROM c)
                     AND prompt_fingerprint IS NOT NULL)
            SELECT c.idx, e.age, e.cur,
                   regexp_extract(coalesce(e.prompt_markers, ''), 'topic:([a-z]+)', 1),
                   sum(e.pw), coalesce(sum(e.pw) FILTER (
                       WHERE contains(coalesce(e.prompt_markers, ''), 'reasoning')), 0)
            FROM c JOIN mine e ON e.key_id = c.key_id
            WHERE e.h IS NOT NULL AND bit_count(xor(c.centre, e.h)) <= $bits
            GROUP BY ALL""", bind)  # noqa: S608
        # per distinct centroid: members by age (in window or not); in-window topics; all
        # of them estimated requests (sums of prompt weights)
        by_age: dict[int, dict[int, float]] = {}
        current: dict[tuple[int, int], tuple[dict[str, float], float, float]] = {}
        for idx, age, cur, topic, n, reasoning in rows:
            ages = by_age.setdefault(int(idx), {})
            ages[int(age)] = ages.get(int(age), 0.0) + float(n)
            if cur:
                topics, members, count = current.get((int(idx), int(age)), ({}, 0.0, 0.0))
                if topic:
                    topics[topic] = topics.get(topic, 0.0) + float(n)
                current[(int(idx), int(age))] = (topics, members + float(n),
                                                 count + float(reasoning))
        for (_key_id, age), entry in out.items():
            ages = by_age.get(entry["centre"], {})
            entry["baseline"] = sum(n for a, n in ages.items() if age < a <= age + days)
            topics, members, reasoning = current.get((entry["centre"], age), ({}, 0.0, 0.0))
            entry["topics"], entry["members"], entry["reasoning"] = topics, members, reasoning
        return out

    @staticmethod
    def _q(store: UsageStore, sql: str, bind: Mapping[str, object]) -> list[tuple[Any, ...]]:
        """``store.query`` with named parameters: ``$name`` becomes ``$n`` (positional)."""
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        return store.query(_PARAM.sub(number, sql), [bind[n] for n in names])

    # -- judging ------------------------------------------------------------------------

    def _judge(self, key_id: str, age: int, info: _Key, window: Window,
               params: PromptMixParams, settings: DetectorSettings, days: int,
               first_uses: Mapping[str, Mapping[str, datetime]],
               templates: Mapping[tuple[str, int], Mapping[str, Any]],
               flagged: set[int], learned: bool) -> _Finding | None:
        day = info.current[age]
        base_days = {a: d for a, d in info.history.items() if age < a <= age + days}
        # Days this scan already flagged stay in the baseline (as in daily runs, an attack
        # alerts on its first day, not again on each later one) but do not set the key's
        # normal day-to-day variation.
        calm = {a: d for a, d in base_days.items() if a not in flagged}
        base = _merge(base_days.values())
        day_end = window.end - timedelta(days=age)
        reasons: list[str] = []
        parts: list[str] = []
        evidence: dict[str, str | int | float] = {
            "day_requests": round(day.requests), "baseline_requests": round(base.requests),
            "baseline_days": params.baseline_days, "learned": int(learned)}
        score = 0.0
        if day.trap:
            reasons.append("trap")
            parts.append(f"{day.trap} prompt(s) contain a configured trap string")
            evidence["trap_requests"] = day.trap
            score += 10
        base_extraction = base.extraction / base.texts if base.texts else 0.0
        if (day.extraction >= params.extraction_min_requests and day.texts
                and day.extraction / day.texts > params.extraction_factor * base_extraction):
            reasons.append("extraction")
            parts.append(f"{round(day.extraction)} of {round(day.texts)} prompts try to extract "
                         f"the system prompt (baseline {100 * base_extraction:.1f}%)")
            evidence["extraction_requests"] = round(day.extraction)
            evidence["extraction_baseline_share"] = round(base_extraction, 4)
            score += 5
        if learned:
            score += self._shift(key_id, day, base, calm, params, first_uses, day_end,
                                 reasons, parts, evidence)
            score += self._text(key_id, age, day, base, base_days, params,
                                templates.get((key_id, age)), reasons, parts, evidence)
        if not reasons:
            return None
        return _Finding(age, reasons, evidence, parts, day, score)

    def _shift(self, key_id: str, day: _Day, base: _Day, base_days: Mapping[int, _Day],
               params: PromptMixParams, first_uses: Mapping[str, Mapping[str, datetime]],
               day_end: datetime, reasons: list[str], parts: list[str],
               evidence: dict[str, str | int | float]) -> float:
        """Model/size/ratio divergence against the baseline; returns a score (0: none)."""
        if day.requests < params.min_window_requests:
            return 0.0
        score = 0.0
        for dim in ("model", "size", "ratio"):
            now_hist, base_hist = dict(day.dims[dim]), dict(base.dims[dim])
            if sum(now_hist.values()) < params.min_window_requests or \
                    sum(base_hist.values()) < params.min_baseline_requests:
                continue
            if dim == "model":
                now_hist, base_hist, migrated = self._migrations(
                    key_id, now_hist, base_hist, first_uses, day_end, params)
                if migrated:
                    evidence["released_families"] = ", ".join(migrated)
            divergence = jsd(now_hist, base_hist)
            if divergence < params.min_divergence:
                continue
            novel = _novel_share(now_hist, base_hist, numeric=dim != "model")
            if novel < params.min_novel_share:
                continue
            threshold = self._threshold(dim, base_days, params)
            if divergence < threshold:
                continue
            reasons.append(f"{dim}-shift")
            label = {"model": "model mix", "size": "prompt size",
                     "ratio": "output/input ratio"}[dim]
            parts.append(f"{label} diverged from its baseline (JSD {divergence:.2f}, threshold "
                         f"{threshold:.2f}; {100 * novel:.0f}% of requests where the baseline "
                         f"had none): now {_describe(dim, now_hist)}, before "
                         f"{_describe(dim, base_hist)}")
            evidence[f"{dim}_divergence"] = round(divergence, 3)
            evidence[f"{dim}_threshold"] = round(threshold, 3)
            evidence[f"{dim}_novel_share"] = round(novel, 3)
            evidence[f"{dim}_window"] = _describe(dim, now_hist, 5)
            evidence[f"{dim}_baseline"] = _describe(dim, base_hist, 5)
            score += divergence
        return score

    @staticmethod
    def _migrations(key_id: str, now_hist: Mapping[str, float], base_hist: Mapping[str, float],
                    first_uses: Mapping[str, Mapping[str, datetime]], day_end: datetime,
                    params: PromptMixParams) -> tuple[dict[str, float], dict[str, float], list[str]]:
        """Both histograms with the key's org-wide-release families counted as its old family.

        A family is a release for this key when the key switched to it (it used another
        family first) and at least ``release-min-keys`` keys (this one included) first used
        it within ``release-days`` of this key's first use, all no later than the day judged. Its requests count as the key's main other
        family, in the day and in the baseline, for as long as the baseline remembers
        the old family: a migration never looks like a shift.
        """
        end = day_end.astimezone(UTC).replace(tzinfo=None)
        spread = timedelta(days=params.release_days)
        released: list[str] = []
        started = min((keys[key_id] for keys in first_uses.values() if key_id in keys),
                      default=None)
        for fam in sorted(set(now_hist) | set(base_hist)):
            adopters = first_uses.get(fam, {})
            mine = adopters.get(key_id)
            if mine is None or started is None or mine <= started:
                continue  # the key's first family is where it started, not a migration
            near = sum(1 for t in adopters.values() if t <= end and abs(t - mine) <= spread)
            if near >= params.release_min_keys:
                released.append(fam)
        others = {f: w for f, w in base_hist.items() if f not in released}
        if not released or not others:
            return dict(now_hist), dict(base_hist), []
        main = max(others, key=lambda f: (others[f], f))

        def mapped(hist: Mapping[str, float]) -> dict[str, float]:
            out: dict[str, float] = {}
            for fam, weight in hist.items():
                target = main if fam in released else fam
                out[target] = out.get(target, 0.0) + weight
            return out

        return mapped(now_hist), mapped(base_hist), released

    @staticmethod
    def _threshold(dim: str, base_days: Mapping[int, _Day], params: PromptMixParams) -> float:
        """``min-divergence`` or the key's own day-to-day divergence (leave-one-out) x margin."""
        pooled = _merge(base_days.values()).dims[dim]
        spread: list[float] = []
        for day in base_days.values():
            hist = day.dims[dim]
            if sum(hist.values()) < params.min_window_requests:
                continue
            rest = {b: pooled[b] - hist.get(b, 0.0) for b in pooled}
            if sum(rest.values()) < params.min_window_requests:
                continue
            spread.append(jsd(hist, rest))
        # The second-largest: a recurring kind of day (weekends come in pairs) raises the
        # bar, a single odd day does not.
        spread.sort(reverse=True)
        usual = spread[1] if len(spread) > 1 else (spread[0] if spread else 0.0)
        return max(params.min_divergence, params.divergence_margin * usual)

    def _text(self, key_id: str, age: int, day: _Day, base: _Day,
              base_days: Mapping[int, _Day], params: PromptMixParams,
              template: Mapping[str, Any] | None, reasons: list[str], parts: list[str],
              evidence: dict[str, str | int | float]) -> float:
        """Templates, reasoning phrasing and topic sweeps; returns a score (0: none)."""
        if not day.texts:
            return 0.0
        score = 0.0
        new_template = False
        members = 0.0  # estimated requests in the day's largest template cluster
        if template is not None and base.texts:
            members = float(template["members"])
            share = members / day.texts
            known = template["baseline"] / base.texts
            new_template = (known < params.template_known_share)
            evidence["template_requests"] = round(members)
            evidence["template_share"] = round(share, 3)
            evidence["template_baseline_share"] = round(known, 4)
            topics: dict[str, float] = template["topics"]
            if new_template and members >= params.sweep_min_requests and \
                    len(topics) >= params.sweep_min_topics:
                evenness = _evenness(topics.values())
                evidence["sweep_topics"] = len(topics)
                evidence["sweep_evenness"] = round(evenness, 3)
                if evenness >= params.sweep_min_evenness:
                    reasons.append("topic-sweep")
                    parts.append(f"one new template of {round(members)} prompts cycles through "
                                 f"{len(topics)} topics ({', '.join(sorted(topics))})")
                    score += 3
            big = members >= params.template_min_requests and share >= params.template_min_share
            new_template = new_template and big
        base_reasoning = base.reasoning / base.texts if base.texts else 0.0
        share = day.reasoning / day.texts
        if (day.reasoning >= params.reasoning_min_requests and share >= params.reasoning_min_share
                and share >= params.reasoning_factor * base_reasoning + 0.1):
            reasons.append("reasoning")
            parts.append(f"{100 * share:.0f}% of prompts ask for step-by-step reasoning "
                         f"(baseline {100 * base_reasoning:.1f}%)")
            evidence["reasoning_share"] = round(share, 3)
            evidence["reasoning_baseline_share"] = round(base_reasoning, 4)
            score += 2
        if new_template:
            volumes = [d.requests for d in base_days.values() if d.requests > 0]
            typical = statistics.median(volumes) if volumes else 0.0
            evidence["baseline_median_day_requests"] = round(typical)
            flood = day.requests >= params.template_volume_factor * typical
            # A new template alone is usually a feature launch; it counts when it floods
            # the key or comes with another change of what the key is asked.
            if flood or any(r.endswith("-shift") or r in ("reasoning", "topic-sweep")
                            for r in reasons):
                reasons.append("templated")
                parts.append(f"a new prompt template carries {round(members)} of "
                             f"{round(day.texts)} prompts ({100 * members / day.texts:.0f}%)"
                             + (f", {day.requests / max(typical, 1):.1f}x the usual daily "
                                "volume" if flood else ""))
                score += 1
        return score

    # -- output -------------------------------------------------------------------------

    def _alert(self, store: UsageStore, key_id: str, findings: list[_Finding],
               window: Window) -> Alert:
        reasons = [r for r in REASONS if any(r in f.reasons for f in findings)]
        high = bool(_HIGH_ALONE & set(reasons)) or any(
            "templated" in f.reasons and ("reasoning" in f.reasons or "ratio-shift" in f.reasons)
            for f in findings)
        worst = max(findings, key=lambda f: (f.score, -f.age))
        firsts = [f.day.first for f in findings if f.day.first is not None]
        lasts = [f.day.last for f in findings if f.day.last is not None]
        start = max(window.start, min(firsts).replace(tzinfo=window.start.tzinfo)) if firsts \
            else window.start
        end = min(window.end, max(lasts).replace(tzinfo=window.end.tzinfo)) if lasts \
            else window.end
        events = [e for e in store.events(Window(start, end), key_id)
                  if any(window.end - timedelta(days=f.age + 1) < e.time
                         <= window.end - timedelta(days=f.age) for f in findings)]
        if not events:  # NOTE: cannot happen (a finding has events); never crash a scan
            events = store.events(window, key_id)
        marked = [e for e in events if e.prompt_markers and (
            "trap" in e.prompt_markers or "extraction" in e.prompt_markers)]
        only_marks = set(reasons) <= {"trap", "extraction"}
        use = use_evidence(marked if only_marks and marked else events)
        evidence: dict[str, str | int | float] = {
            "reasons": ", ".join(reasons),
            "days": len(findings),
            "worst_day_start": iso(window.end - timedelta(days=worst.age + 1)) or "",
            **worst.evidence,
            **use,
        }
        severity = Severity.HIGH if high else Severity.MEDIUM
        days = f" on {len(findings)} day(s)" if len(findings) > 1 else ""
        return Alert(
            rule_id=self.id,
            severity=severity,
            subject=key_id,
            key_alias=events[-1].key_alias if events else None,
            message=(f"Key {key_id}: prompt mix changed{days} ({', '.join(reasons)}): "
                     + "; ".join(worst.parts)
                     + f" ({use['events']} event(s), {use['first_seen']} to "
                       f"{use['last_seen']})."),
            evidence=evidence,
            first_seen=events[0].time if events else start,
            last_seen=events[-1].time if events else end,
        )


def _evenness(counts: Iterable[float]) -> float:
    """Normalised Shannon entropy of counts: 1 = perfectly even, 0 = one value."""
    values = [c for c in counts if c > 0]
    total = sum(values)
    if len(values) < 2 or total <= 0:
        return 0.0
    entropy = -sum(c / total * math.log(c / total) for c in values)
    return entropy / math.log(len(values))


PLUGIN: type[Detector] = PromptMixDetector
