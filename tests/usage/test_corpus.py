"""Synthetic-org corpus: generator invariants, the scorer's arithmetic, and the quality gate.

The gate (issue 4) replays a small corpus through the real importer, store and every
registered detector in weekly runs and asserts, for each alert type whose detector exists,
recall >= 0.9 and precision >= 0.9, and no alert at all on a normal key.
`python -m bench.usage_quality` prints the same table for a bigger corpus.
"""

import collections
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.usage_quality import Replay, render, replay, score
from keyguard.model import Alert, Severity
from keyguard.usage.detectors import DETECTORS
from keyguard.usage.geo import countries
from keyguard.usage.synthetic import (
    ALERT_TYPES,
    ATTACK_KINDS,
    IP_BLOCKS,
    Corpus,
    CorpusSpec,
    generate,
)

SMALL = CorpusSpec(seed=11, normal_keys=16, weeks=4, scale=0.3)
TARGET = 0.9


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate(SMALL)


@pytest.fixture(scope="module")
def replayed(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    return replay(corpus, tmp_path_factory.mktemp("corpus"), run_days=7)


def by_alias(corpus: Corpus, prefix: str) -> list[str]:
    return [k.key_id for k in corpus.keys if k.alias.startswith(prefix)]


# -- generator ---------------------------------------------------------------------------------

def test_same_spec_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = generate(CorpusSpec(seed=3, normal_keys=4, weeks=1, scale=0.2))
    b = generate(CorpusSpec(seed=3, normal_keys=4, weeks=1, scale=0.2))
    c = generate(CorpusSpec(seed=4, normal_keys=4, weeks=1, scale=0.2))
    first = [p.read_bytes() for p in a.write(tmp_path / "a", compress=True)]
    second = [p.read_bytes() for p in b.write(tmp_path / "b", compress=True)]
    assert first == second
    assert a.ground_truth() == b.ground_truth()
    assert a.rows != c.rows


def test_every_address_block_resolves_to_its_country() -> None:
    rng = random.Random(0)
    for country, blocks in IP_BLOCKS.items():
        for block in blocks:
            sample = [f"{block}.{rng.randrange(256)}.{rng.randint(1, 254)}" for _ in range(300)]
            assert set(countries(sample)) == {country}, (country, block)


def test_ground_truth_points_into_the_export(corpus: Corpus) -> None:
    times: dict[str, list[datetime]] = collections.defaultdict(list)
    for row in corpus.rows:
        times[str(row["api_key"])].append(
            datetime.fromisoformat(str(row["startTime"])).replace(tzinfo=UTC))
    for planted in corpus.planted:
        for key in planted.keys:
            inside = [t for t in times[key] if planted.start <= t <= planted.end]
            assert inside, (planted.kind, key)
    addresses = sorted({str(r["requester_ip_address"]) for r in corpus.rows})
    assert None not in countries(addresses)  # every address is public and located


def test_every_attack_kind_is_planted_after_learning(corpus: Corpus) -> None:
    assert sorted({p.kind for p in corpus.planted}) == sorted(ATTACK_KINDS)
    assert {p.alert_type for p in corpus.planted} == set(ALERT_TYPES)
    learned = SMALL.start + timedelta(days=8)
    for planted in corpus.planted:
        assert planted.start >= learned, planted.kind
        assert planted.start.tzinfo is UTC
    sizes = {p.kind: len(p.keys) for p in corpus.planted}
    assert 5 <= sizes["campaign-shared-ip"] <= 12
    assert 5 <= sizes["campaign-distinct-ip"] <= 12
    assert 4 <= sizes["rotation"] <= 6
    assert len(corpus.canaries) == 1
    normal = set(corpus.normal_key_ids())
    assert not normal & {k for p in corpus.planted for k in p.keys}


def test_legitimate_patterns_are_present(corpus: Corpus) -> None:
    rows_by_key: dict[str, list[dict[str, object]]] = collections.defaultdict(list)
    for row in corpus.rows:
        rows_by_key[str(row["api_key"])].append(row)
    profiles = {k.key_id: k.profile for k in corpus.keys}
    present = collections.Counter(profiles[k] for k in rows_by_key)
    for profile in ("business-hours", "batch", "ci", "multi-office", "traveller", "tutor",
                    "launch", "app-group", "eval-group"):
        assert present[profile] >= 1, profile
    first_week = (SMALL.start + timedelta(days=7)).isoformat()[:19]
    for key, profile in profiles.items():
        rows = rows_by_key[key]
        if profile == "multi-office":  # three offices, all seen in the learning week
            seen = {str(r["requester_ip_address"]) for r in rows if str(r["startTime"]) < first_week}
            assert set(countries(sorted(seen))) == {"US", "DE", "IN"}
        if profile == "tutor":
            assert all("step by step" in str(r["messages"]) for r in rows)
        if profile == "ci":  # a fresh runner address per burst
            assert len({r["requester_ip_address"] for r in rows}) > 20
        if profile == "traveller":  # every country of later trips was visited while learning
            located = countries([str(r["requester_ip_address"]) for r in rows])
            early = {c for r, c in zip(rows, located, strict=True)
                     if str(r["startTime"]) < first_week}
            assert len(early) == 2
            assert set(located) == early
    # the model release moves every sonnet 4.5 key to 4.6 within one day
    migrated = {str(r["api_key"]) for r in corpus.rows if r["model"] == "claude-sonnet-4-6"}
    assert len(migrated) >= 5
    last_old = max(str(r["startTime"]) for r in corpus.rows
                   if r["model"] == "claude-sonnet-4-5-20250929")
    first_new = min(str(r["startTime"]) for r in corpus.rows if r["model"] == "claude-sonnet-4-6")
    assert datetime.fromisoformat(last_old) - datetime.fromisoformat(first_new) < timedelta(days=1)


# -- scorer ------------------------------------------------------------------------------------

def alert(kind: str, key: str, when: datetime) -> Alert:
    return Alert(rule_id=kind, severity=Severity.HIGH, subject=key, message="m",
                 first_seen=when, last_seen=when + timedelta(minutes=5))


def test_score_counts_pairs_alerts_also_and_false(corpus: Corpus) -> None:
    plateau = next(p for p in corpus.planted if p.kind == "plateau")
    canary = next(p for p in corpus.planted if p.kind == "canary")
    normal = corpus.normal_key_ids()[0]
    victim = plateau.keys[0]
    alerts = [
        alert("velocity", victim, plateau.start),  # the planted pair
        alert("velocity", victim, plateau.end),  # a second alert on the same pair
        alert("prompt-mix", victim, plateau.start),  # allowed through `also`
        alert("geography", victim, plateau.start),  # wrong type on a victim
        alert("velocity", victim, plateau.start - timedelta(days=3)),  # before the attack
        alert("geography", normal, plateau.start),  # a false alert on a normal key
    ]
    result = score(corpus, alerts)
    velocity = result.types["velocity"]
    assert (velocity.found, velocity.alerts, velocity.correct) == (1, 3, 2)
    assert velocity.planted == sum(len(p.keys) for p in corpus.planted
                                   if p.alert_type == "velocity")
    assert result.types["prompt-mix"].incidental == 1
    assert result.types["prompt-mix"].precision == 1.0
    assert result.types["geography"].precision == 0.0
    assert result.types["canary"].recall == 0.0
    assert [a.subject for a in result.false_on_normal] == [normal]
    assert len(result.misplaced) == 2
    assert ("canary", "canary", canary.keys[0]) in result.missed
    assert not result.passes(["velocity"])
    table = render(corpus, result, ALERT_TYPES)
    assert "FALSE geography" in table
    assert "MISPLACED" in table


# -- the quality gate --------------------------------------------------------------------------

def test_replay_imports_everything(corpus: Corpus, replayed: Replay) -> None:
    # the real LiteLLM importer reads every generated row: no errors, no duplicates
    assert replayed.errors == 0
    assert replayed.events == len(corpus.rows)
    assert replayed.runs == SMALL.weeks


def assert_gate(corpus: Corpus, replayed: Replay, alert_type: str) -> None:
    """Recall and precision >= TARGET for ``alert_type``, and no false alert of it."""
    assert alert_type in DETECTORS.names()  # every alert type the corpus plants is gated
    result = score(corpus, replayed.alerts)
    table = render(corpus, result, DETECTORS.names(), show=20)
    counts = result.types[alert_type]
    assert counts.recall is not None
    assert counts.recall >= TARGET, table
    assert counts.precision is None or counts.precision >= TARGET, table
    mine = [a for a in result.false_on_normal if a.rule_id == alert_type]
    assert not mine, table


@pytest.mark.parametrize("alert_type", ALERT_TYPES)
def test_detector_quality(corpus: Corpus, replayed: Replay, alert_type: str) -> None:
    assert_gate(corpus, replayed, alert_type)


# -- the same gate through the DuckDB bulk path with sampled prompt analysis -------------------

@pytest.fixture(scope="module")
def replayed_bulk(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Replay:
    from keyguard.config import UsageConfig

    return replay(corpus, tmp_path_factory.mktemp("bulk"), run_days=7,
                  sample=UsageConfig().prompt_sample)


def test_bulk_replay_imports_everything_and_samples_prompts(corpus: Corpus,
                                                            replayed_bulk: Replay) -> None:
    assert replayed_bulk.errors == 0
    assert replayed_bulk.events == len(corpus.rows)
    # the default cap left prompts to the sample weights (else this gate proves nothing)
    assert replayed_bulk.estimated > replayed_bulk.analysed / 10
    assert replayed_bulk.analysed + replayed_bulk.estimated == sum(
        1 for row in corpus.rows if row.get("messages"))


@pytest.mark.parametrize("alert_type", ALERT_TYPES)
def test_detector_quality_through_the_bulk_path(corpus: Corpus, replayed_bulk: Replay,
                                                alert_type: str) -> None:
    assert_gate(corpus, replayed_bulk, alert_type)
