"""Which prompts a bulk load analyses, and what each analysed prompt stands for.

Why a sample: fingerprinting and classifying a prompt costs ~120 us of Python, the main
cost of a 1M-row import, yet the detectors need shares and counts per key and day, which
a sample estimates well. Per key and UTC day at most ``[usage] prompt_sample`` ordinary
prompts are analysed (the ones with the smallest hash of their row, so the choice is
deterministic), each with weight = ordinary prompts of that key-day / analysed ones;
detectors sum ``coalesce(prompt_weight, 1)`` (see ``keyguard.usage.store``). Rare signals
must not depend on luck: every prompt that could be a system-prompt extraction attempt or
hold a configured trap string is found by one SQL pre-filter and always analysed (weight
1), and the prompts the pre-filter cleared skip those two checks in Python.

On the synthetic org (``python -m bench.usage_quality --bulk 16``) this keeps every alert
type at recall and precision 1.0 with no false alert while 3 of 4 prompts are estimated;
``tests/usage/test_corpus.py`` holds the bulk path to the same gate as the row-by-row one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyguard.config import UsageConfig

if TYPE_CHECKING:
    import duckdb

#: Sampled prompts analysed in one worker task.
_CHUNK = 2_000
#: Below this many prompts analysis runs in this process (workers cost ~0.3 s to start).
_PARALLEL_MIN = 6_000

#: Literals of which every extraction phrase of ``prompt_markers`` contains at least one
#: (lower-case; matched case-insensitively). tests/usage/test_bulk.py checks the phrases.
EXTRACTION_LITERALS = (
    "ignore ", "disregard ", "forget ", "override ", "bypass ", "repeat ", "system prompt",
    "system message", "initial instructions", "original instructions",
    "hidden instructions", "developer message", "preprompt", "pre-prompt",
    "instructions you were given", "what were your", "what are your", "what was your",
    "what is your", "above this", "before this", "above the first", "before the first")


def prefilter_literals(traps: Sequence[str]) -> tuple[str, ...]:
    """Lower-case literals of which every prompt needing a full look contains one."""
    return (*EXTRACTION_LITERALS, *(t.lower() for t in traps if t.strip()))


def prefilter(traps: Sequence[str]) -> str:
    """The RE2 pattern (matched case-insensitively) that every prompt needing a full look hits."""
    return "|".join(_re2_literal(text) for text in prefilter_literals(traps))


def _re2_literal(text: str) -> str:
    return "".join(f"\\{c}" if c.isascii() and not c.isalnum() and c != " " else c
                   for c in text)


def pick(con: duckdb.DuckDBPyConnection, config: UsageConfig) -> int:
    """Choose the prompts to analyse; returns how many prompts the load holds.

    Reads ``kg_stage`` (``rowid``, ``gk``: key hash, ``time``, ``chars``: prompt length,
    NULL without one, ``forced``: the pre-filter matched) and ``kg_fate`` (``srow``,
    ``fate``: 0 for rows to insert) on ``con``, the bulk load's cursor, and writes
    ``kg_pick`` (``srow``, ``w``: weight, ``forced``): every forced prompt at weight 1, and
    per key and UTC day the ``[usage] prompt_sample`` others with the smallest hash of
    their row, each weighing ordinary prompts of the key-day / picked ones. With a
    sample of 0 every prompt is picked, unscreened.
    """
    cap = config.prompt_sample
    forced = "s.forced" if cap > 0 else "true"
    con.execute(f"""
        CREATE OR REPLACE TABLE kg_pick AS
        WITH k AS (SELECT s.rowid AS srow, s.gk, CAST(s.time AS DATE) AS day,
                          {forced} AS forced
                   FROM kg_stage s JOIN kg_fate f ON f.srow = s.rowid
                   WHERE f.fate = 0 AND s.chars IS NOT NULL),
        o AS (SELECT gk, day, count(*) AS n, min_by(srow, hash(srow), $1) AS picks
              FROM k WHERE NOT forced GROUP BY ALL)
        SELECT srow, 1.0::DOUBLE AS w, true AS forced FROM k WHERE forced
        UNION ALL
        SELECT unnest(picks) AS srow, n / len(picks) AS w, false FROM o""",  # noqa: S608
                [max(cap, 1)])
    total = con.execute("SELECT count(*) FROM kg_stage s JOIN kg_fate f ON f.srow = s.rowid "
                        "WHERE f.fate = 0 AND s.chars IS NOT NULL").fetchone()
    return int(total[0]) if total else 0


def write_analysis(con: duckdb.DuckDBPyConnection, config: UsageConfig,
                   picked: Sequence[tuple[int, float, bool, str]]) -> None:
    """Fingerprint and classify the picked prompts into ``kg_analysis``.

    ``picked``: ``(srow, weight, forced, text)`` per row of ``kg_pick``. Writes
    ``kg_analysis`` (``srow``, ``w``: weight, NULL for 1, ``fp``, ``markers``).
    """
    import numpy as np

    from keyguard.usage import prompt_markers

    classifier = prompt_markers.from_config(config)
    results = analyse([row[3] for row in picked], classifier.traps,
                      [not row[2] and config.prompt_sample > 0 for row in picked])
    kg_analysis = {  # noqa: F841 - read by DuckDB's replacement scan below
        "srow": np.array([row[0] for row in picked], dtype=np.int64),
        "w": np.array([None if row[1] == 1 else row[1] for row in picked], dtype=object),
        "fp": np.array([r[0] for r in results], dtype=object),
        "markers": np.array([r[1] for r in results], dtype=object)}
    con.execute("CREATE OR REPLACE TABLE kg_analysis AS SELECT srow::BIGINT AS srow, "
                "w::DOUBLE AS w, fp::VARCHAR AS fp, markers::VARCHAR AS markers "
                "FROM kg_analysis")


def analyse(texts: Sequence[str], traps: Sequence[str], screened: Sequence[bool]
            ) -> list[tuple[str, str | None]]:
    """``(fingerprint, markers)`` per prompt, on every core when there are many.

    ``screened[i]``: the pre-filter found no extraction phrase or trap string in text i.
    """
    from keyguard.usage import _parallel

    if len(texts) < _PARALLEL_MIN or _parallel.workers() < 2:
        return _analyse_chunk(texts, traps, screened)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    starts = range(0, len(texts), _CHUNK)
    try:
        with ProcessPoolExecutor(_parallel.workers(), mp_context=context) as pool:
            results: list[tuple[str, str | None]] = []
            for part in pool.map(_analyse_chunk, [texts[i:i + _CHUNK] for i in starts],
                                 [traps] * len(starts),
                                 [screened[i:i + _CHUNK] for i in starts]):
                results.extend(part)
            return results
    except (BrokenProcessPool, OSError):  # no processes here (a sandbox): do it in-process
        return _analyse_chunk(texts, traps, screened)


def _analyse_chunk(texts: Sequence[str], traps: Sequence[str], screened: Sequence[bool]
                   ) -> list[tuple[str, str | None]]:
    from keyguard.usage import prompt
    from keyguard.usage.prompt_markers import PromptClassifier

    classifier = PromptClassifier(traps)
    return [(prompt.fingerprint(text), classifier.markers(text, screened=skip))
            for text, skip in zip(texts, screened, strict=True)]
