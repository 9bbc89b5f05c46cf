"""Per-type precision and recall of the usage detectors on the synthetic org (issue 4).

Generates a corpus (keyguard.usage.synthetic), writes one LiteLLM spend log per UTC day,
then replays a daily ``keyguard usage scan``: each run imports the next day's file(s)
into one store with the real UsageReader, judges exactly that run's new events with every
registered detector (``now`` = end of the run's last day), and commits, as the CLI does.

Scoring, per alert type (detector id):

* recall = planted (key, type) pairs with at least one matching alert / planted pairs;
* precision = matching alerts / all alerts of that type, where an alert matches when its
  key is in a planted attack whose ``alert_type`` or ``also`` names the type and its
  first..last seen overlaps the attack span (``slack`` either side);
* false alerts on normal keys are listed one by one (the target is none).

Usage: python -m bench.usage_quality --keys 40 --weeks 5 --seed 7 [--runs daily|weekly|once]
[--attacks 1] [--scale 1.0] [--show N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from keyguard.config import UsageConfig
from keyguard.model import Alert
from keyguard.usage.detectors import DETECTORS, DetectorSettings
from keyguard.usage.reader import ImportStats, UsageReader
from keyguard.usage.settings import load_settings
from keyguard.usage.store import UsageStore, Window
from keyguard.usage.synthetic import ALERT_TYPES, Corpus, CorpusSpec, Planted, generate

#: How far outside a planted span a matching alert may start or end.
SLACK = timedelta(hours=6)
RUN_DAYS = {"daily": 1, "weekly": 7}


@dataclass(slots=True)
class Replay:
    """Alerts of a replayed corpus and what the replay cost."""

    alerts: list[Alert]
    runs: int
    events: int
    errors: int
    import_seconds: float
    detect_seconds: dict[str, float]
    analysed: int = 0  # bulk path: prompts analysed, and prompts estimated from the sample
    estimated: int = 0


@dataclass(slots=True)
class TypeScore:
    """Counts behind one alert type's precision and recall."""

    planted: int = 0  # (key, type) pairs that must alert
    found: int = 0  # of those, pairs with a matching alert
    alerts: int = 0
    correct: int = 0  # alerts matching a planted pair (alert_type or also)
    incidental: int = 0  # of those, matching only through ``also``

    @property
    def recall(self) -> float | None:
        return self.found / self.planted if self.planted else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.alerts if self.alerts else None


@dataclass(slots=True)
class Score:
    """Per-type scores, per-kind recall and every wrong alert."""

    types: dict[str, TypeScore]
    kinds: dict[str, tuple[int, int]]  # kind -> (pairs found, pairs planted)
    false_on_normal: list[Alert] = field(default_factory=list)
    misplaced: list[Alert] = field(default_factory=list)  # on a victim, wrong type or time
    missed: list[tuple[str, str, str]] = field(default_factory=list)  # kind, type, key

    def passes(self, types: Iterable[str], target: float = 0.9) -> bool:
        """Every listed type reaches ``target`` recall and precision; no false alert on a normal key."""
        for name in types:
            s = self.types[name]
            if (s.recall is not None and s.recall < target) or (
                    s.precision is not None and s.precision < target):
                return False
        return not self.false_on_normal


def settings_for(corpus: Corpus) -> DetectorSettings:
    """The scan settings a user of this org would have: its canaries, default everything else."""
    return load_settings(UsageConfig(), "synthetic", canaries=corpus.canaries)


def replay(corpus: Corpus, workdir: Path, *, run_days: int | None = 1,
           detectors: Sequence[str] | None = None, sample: int | None = None) -> Replay:
    """Import the corpus run by run (``run_days`` days each; None: one run) and scan each run.

    ``sample``: import every file through the DuckDB bulk path (``keyguard.usage.bulk``)
    with ``prompt-sample = sample`` (0: every prompt analysed), as a large log would be.
    """
    files = corpus.write(workdir / "exports")
    if run_days is None:
        batches = [files]
    else:
        batches = [files[i:i + run_days] for i in range(0, len(files), run_days)]
    names = list(detectors) if detectors is not None else DETECTORS.names()
    loaded = {name: DETECTORS.load(name)() for name in names}
    settings = settings_for(corpus)
    config = UsageConfig() if sample is None else UsageConfig(bulk_min_mb=0, prompt_sample=sample)
    reader = UsageReader(config)
    stats = ImportStats()
    alerts: list[Alert] = []
    spent = dict.fromkeys(names, 0.0)
    import_seconds = 0.0
    with UsageStore(workdir / "usage.duckdb") as store:
        for batch in batches:
            began = time.perf_counter()
            added = store.add(reader.items(batch, stats))
            import_seconds += time.perf_counter() - began
            window = store.run_range(added.run)
            if window is not None:
                now = window.end.replace(hour=23, minute=59, second=59, microsecond=0)
                for name, detector in loaded.items():
                    began = time.perf_counter()
                    alerts.extend(detector.evaluate(store, Window(window.start, window.end),
                                                    now, settings))
                    spent[name] += time.perf_counter() - began
            store.commit()
    if sample is not None and stats.bulk_files != len(files):
        raise SystemExit(f"only {stats.bulk_files} of {len(files)} files took the bulk path")
    return Replay(alerts, len(batches), stats.events, stats.errors, import_seconds, spent,
                  stats.prompts_analysed, stats.prompts_estimated)


def _overlaps(alert: Alert, planted: Planted) -> bool:
    first = alert.first_seen or alert.last_seen
    last = alert.last_seen or alert.first_seen
    if first is None or last is None:
        return True  # an alert without times cannot be placed; judge it by key and type
    return first <= planted.end + SLACK and last >= planted.start - SLACK


def score(corpus: Corpus, alerts: Iterable[Alert], types: Iterable[str] = ALERT_TYPES) -> Score:
    """Compare alerts with the planted ground truth (see the module docstring)."""
    result = Score(types={t: TypeScore() for t in types}, kinds={})
    normal = set(corpus.normal_key_ids())
    found: set[tuple[str, str]] = set()  # (key, alert_type) pairs with a matching alert
    by_key: dict[str, list[Planted]] = {}
    for planted in corpus.planted:
        for key in planted.keys:
            by_key.setdefault(key, []).append(planted)
    for alert in alerts:
        counts = result.types.setdefault(alert.rule_id, TypeScore())
        counts.alerts += 1
        matches = [p for p in by_key.get(alert.subject, ()) if _overlaps(alert, p)
                   and alert.rule_id in (p.alert_type, *p.also)]
        if matches:
            counts.correct += 1
            if all(alert.rule_id != p.alert_type for p in matches):
                counts.incidental += 1
            found.update((alert.subject, p.alert_type) for p in matches
                         if p.alert_type == alert.rule_id)
        elif alert.subject in normal or alert.subject not in by_key:
            result.false_on_normal.append(alert)
        else:
            result.misplaced.append(alert)
    for planted in corpus.planted:
        counts = result.types.setdefault(planted.alert_type, TypeScore())
        hit, total = result.kinds.get(planted.kind, (0, 0))
        for key in planted.keys:
            counts.planted += 1
            if (key, planted.alert_type) in found:
                counts.found += 1
                hit += 1
            else:
                result.missed.append((planted.kind, planted.alert_type, key))
            total += 1
        result.kinds[planted.kind] = (hit, total)
    return result


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.2f}"


def render(corpus: Corpus, result: Score, registered: Sequence[str], show: int = 10) -> str:
    """The per-type table, per-kind recall and the first ``show`` wrong alerts.

    ``registered``: the detector ids that ran (a type whose detector did not run shows
    ``no``, and its zero recall means nothing).
    """
    aliases = {k.key_id: f"{k.alias} [{k.profile}]" for k in corpus.keys}
    lines = [f"{'type':14} {'ran':9} {'planted':>7} {'found':>5} {'recall':>6} "
             f"{'alerts':>6} {'correct':>7} {'(also)':>6} {'precision':>9}"]
    for name, s in sorted(result.types.items()):
        present = "yes" if name in registered else "no"
        lines.append(f"{name:14} {present:9} {s.planted:7} {s.found:5} {_pct(s.recall):>6} "
                     f"{s.alerts:6} {s.correct:7} {s.incidental:6} {_pct(s.precision):>9}")
    lines.append("")
    lines.append("recall per planted kind: " + ", ".join(
        f"{kind} {hit}/{total}" for kind, (hit, total) in result.kinds.items()))
    lines.append(f"false alerts on normal keys: {len(result.false_on_normal)}; "
                 f"misplaced alerts on victim keys (wrong type or time): {len(result.misplaced)}")
    for label, wrong in (("FALSE", result.false_on_normal), ("MISPLACED", result.misplaced)):
        lines.extend(f"  {label} {a.rule_id} {aliases.get(a.subject, a.subject[:12])} "
                     f"{a.first_seen:%Y-%m-%d %H:%M}..{a.last_seen:%m-%d %H:%M}: {a.message[:160]}"
                     if a.first_seen and a.last_seen else f"  {label} {a.rule_id} {a.message[:160]}"
                     for a in wrong[:show])
    missed = [f"{kind}/{kind_type} {aliases.get(key, key[:12])}"
              for kind, kind_type, key in result.missed]
    if missed:
        lines.append(f"missed ({len(missed)}): " + "; ".join(missed[:show])
                     + (" ..." if len(missed) > show else ""))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=40, help="normal keys (victims come on top)")
    parser.add_argument("--weeks", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--attacks", type=int, default=1, help="attacks per kind")
    parser.add_argument("--scale", type=float, default=1.0, help="normal request-rate multiplier")
    parser.add_argument("--runs", choices=("daily", "weekly", "once"), default="daily")
    parser.add_argument("--detector", action="append", help="only these detectors (repeatable)")
    parser.add_argument("--show", type=int, default=15, help="wrong alerts to list")
    parser.add_argument("--json", type=Path, help="also write alerts, truth and scores here")
    parser.add_argument("--keep", type=Path, help="write the exports and store here (kept)")
    parser.add_argument("--bulk", type=int, metavar="SAMPLE",
                        help="import through the DuckDB bulk path with this prompt-sample "
                             "(per key and day; 0 = analyse all), as large logs are")
    args = parser.parse_args(argv)
    spec = CorpusSpec(seed=args.seed, normal_keys=args.keys, weeks=args.weeks,
                      attacks_per_type=args.attacks, scale=args.scale)
    began = time.perf_counter()
    corpus = generate(spec)
    generated = time.perf_counter() - began
    registered = DETECTORS.names()
    unknown = sorted(set(args.detector or ()) - set(registered))
    if unknown:
        parser.error(f"unknown detector(s) {', '.join(unknown)}; registered: "
                     f"{', '.join(registered)}")
    ran = list(args.detector or registered)
    with tempfile.TemporaryDirectory(prefix="kg-quality-") as tmp:
        workdir = args.keep or Path(tmp)
        done = replay(corpus, workdir, run_days=RUN_DAYS.get(args.runs), detectors=args.detector,
                      sample=args.bulk)
    result = score(corpus, done.alerts)
    print(f"corpus: seed {spec.seed}, {len(corpus.keys)} keys ({len(corpus.normal_key_ids())} "
          f"normal), {spec.weeks} weeks, {len(corpus.rows)} requests, "
          f"{len(corpus.planted)} planted attacks; generated in {generated:.1f} s")
    per = ", ".join(f"{n} {s:.1f} s" for n, s in done.detect_seconds.items())
    print(f"replay: {done.runs} {args.runs} run(s), {done.events} events, {done.errors} errors; "
          f"import {done.import_seconds:.1f} s; detect {per}")
    if args.bulk is not None:
        print(f"bulk path, prompt-sample {args.bulk}: {done.analysed} prompts analysed, "
              f"{done.estimated} estimated from the sample weights")
    print(f"detectors run: {', '.join(ran)} (registered: {', '.join(registered)})\n")
    print(render(corpus, result, ran, args.show), end="")
    if args.json:
        from keyguard.cli.usage import alert_dict

        args.json.write_text(json.dumps({
            "truth": corpus.ground_truth(),
            "alerts": [alert_dict(a) for a in done.alerts],
            "scores": {n: {"planted": s.planted, "found": s.found, "recall": s.recall,
                           "alerts": s.alerts, "correct": s.correct, "precision": s.precision}
                       for n, s in result.types.items()},
            "recall_per_kind": {k: {"found": hit, "planted": total}
                                for k, (hit, total) in result.kinds.items()},
            "false_on_normal": [alert_dict(a) for a in result.false_on_normal],
            "misplaced": [alert_dict(a) for a in result.misplaced],
        }, indent=2, default=str) + "\n")
    return 0 if result.passes([t for t in ALERT_TYPES if t in ran]) else 1


if __name__ == "__main__":
    sys.exit(main())
