"""The DuckDB usage store: insert, dedupe by event id, watermarks across runs, windowed queries."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.errors import StateError
from keyguard.model import UsageEvent
from keyguard.usage.store import SCHEMA_VERSION, UsageStore, Window, store_file

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ev(minutes: int, key: str = "k1", event_id: str | None = None, fmt: str = "litellm",
       source: str = "/logs/a.jsonl", line: int = 1, requests: int = 1) -> UsageEvent:
    return UsageEvent(time=T0 + timedelta(minutes=minutes), key_id=key, source_format=fmt,
                      event_id=event_id, origin=f"{source}:{line}", requests=requests,
                      country="US", source_ip="8.8.8.8", key_alias="svc")


def test_round_trip_keeps_every_field_and_utc(tmp_path: Path) -> None:
    event = UsageEvent(time=T0, key_id="k", source_format="cloudtrail", key_alias="a",
                       source_ip="1.2.3.4", country="DE", region="eu-west-1", model="m",
                       input_tokens=5, output_tokens=6, cached_tokens=1, requests=2,
                       user_agent="ua", error_code="Throttling", prompt_fingerprint="sh1:00",
                       prompt_chars=9, principal="arn:p", account="123", source_host=None,
                       action="InvokeModel", service="bedrock", event_id="e1",
                       bucket_end=T0 + timedelta(hours=1), cost_usd=0.5, origin="f:3",
                       prompt_markers="reasoning,trap")
    with UsageStore(tmp_path / "u.duckdb") as store:
        store.add([event])
        store.commit()
    with UsageStore(tmp_path / "u.duckdb") as store:
        assert store.events(Window(T0, T0)) == [event]


def test_duplicate_event_ids_are_ignored_across_runs_and_null_ids_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    with UsageStore(path) as store:
        first = store.add([ev(0, event_id="a", line=1), ev(1, event_id="a", line=2),
                           ev(2, line=3), ev(2, line=4)])
        store.commit()
    assert (first.inserted, first.duplicates) == (3, 1)
    with UsageStore(path) as store:
        # another file, same request ids: a re-delivery of the same CloudTrail/LiteLLM rows
        again = store.add([ev(0, event_id="a", source="/logs/b.jsonl"),
                           ev(5, event_id="b", source="/logs/b.jsonl")])
        store.commit()
        assert (again.inserted, again.duplicates, again.run) == (1, 1, 2)
        assert store.count() == 4


def test_watermark_means_a_second_run_only_adds_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    day1 = [ev(i, line=i) for i in range(10)]  # no event ids: only the watermark protects them
    with UsageStore(path) as store:
        store.add(day1)
        store.commit()
        assert store.watermark("/logs/a.jsonl", "litellm") == T0 + timedelta(minutes=9)
    appended = [*day1, ev(9, line=10, event_id="late"), ev(60, line=11), ev(61, line=12)]
    with UsageStore(path) as store:
        result = store.add(appended)
        store.commit()
        assert result.below_watermark == 10
        assert result.inserted == 3
        assert store.count() == 13
        window = store.run_range(result.run)
        assert window == Window(T0 + timedelta(minutes=9), T0 + timedelta(minutes=61))
        assert store.watermark("/logs/a.jsonl", "litellm") == T0 + timedelta(minutes=61)


def test_uncommitted_run_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    with UsageStore(path) as store:
        store.add([ev(0)])
    with UsageStore(path) as store:
        assert store.count() == 0
        assert store.watermark("/logs/a.jsonl", "litellm") is None
        assert store.add([ev(0)]).run == 1


def test_since_skips_older_events() -> None:
    with UsageStore() as store:
        result = store.add([ev(0), ev(30), ev(90)], since=T0 + timedelta(minutes=30))
        assert (result.inserted, result.before_since) == (2, 1)


def test_windowed_queries_never_look_past_the_cut() -> None:
    with UsageStore() as store:
        store.add([ev(0), ev(10, requests=3), ev(70), ev(75, key="k2"), ev(200, requests=0)])
        assert [e.time for e in store.history("k1", T0 + timedelta(minutes=70))] == [
            T0, T0 + timedelta(minutes=10)]
        assert len(store.history("k1", T0 + timedelta(minutes=70), inclusive=True)) == 3
        assert store.hourly_counts("k1", T0, T0 + timedelta(hours=4)) == [
            (T0, 4), (T0 + timedelta(hours=1), 1), (T0 + timedelta(hours=3), 1)]
        window = Window(T0 + timedelta(minutes=60), T0 + timedelta(minutes=80))
        assert store.keys(window) == ["k1", "k2"]
        assert [e.key_id for e in store.matching(["svc"], window)] == ["k1", "k2"]
        assert store.matching([], window) == []


def test_store_file_and_version_check(tmp_path: Path) -> None:
    assert store_file(tmp_path) == tmp_path / "usage.duckdb"
    assert store_file(tmp_path / "x.duckdb") == tmp_path / "x.duckdb"
    path = tmp_path / "u.duckdb"
    UsageStore(path).close()
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    con.close()
    with pytest.raises(StateError, match="version 99"):
        UsageStore(path)


def test_version_1_store_is_upgraded_in_place_keeping_its_events(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    with UsageStore(path) as store:
        store.add([ev(0, event_id="a")])
        store.commit()
    import duckdb

    con = duckdb.connect(str(path))  # make it look like a version-1 file
    con.execute("ALTER TABLE events DROP COLUMN prompt_markers")
    con.execute("ALTER TABLE events DROP COLUMN prompt_weight")
    con.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    con.close()
    with UsageStore(path) as store:
        assert store.events(Window(T0, T0)) == [ev(0, event_id="a")]
        store.add([ev(1, event_id="b", line=2)])
        store.commit()
        assert store.count() == 2
        assert store.query("SELECT value FROM meta WHERE name = 'schema_version'") == [
            (str(SCHEMA_VERSION),)]


def test_version_2_store_gains_prompt_weight_in_place_keeping_its_analysis(
        tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    analysed = replace(ev(0, event_id="a"), prompt_fingerprint="sh2:00ff00ff00ff00ff",
                       prompt_markers="reasoning")
    with UsageStore(path) as store:
        store.add([analysed])
        store.commit()
    import duckdb

    con = duckdb.connect(str(path))  # make it look like a version-2 file (before weights)
    con.execute("ALTER TABLE events DROP COLUMN prompt_weight")
    con.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    con.close()
    with UsageStore(path) as store:
        # the old row reads back as before, its weight NULL (= 1 for the detectors)
        assert store.events(Window(T0, T0)) == [analysed]
        sampled = replace(ev(1, event_id="b", line=2), prompt_fingerprint="sh2:00ff00ff00ff00fe",
                          prompt_weight=15.625)
        store.add([sampled])
        store.commit()
    with UsageStore(path) as store:
        assert store.query("SELECT value FROM meta WHERE name = 'schema_version'") == [
            (str(SCHEMA_VERSION),)]
        assert store.query("SELECT event_id, prompt_markers, prompt_weight FROM events "
                           "ORDER BY event_id") == [("a", "reasoning", None), ("b", None, 15.625)]
        assert [e.prompt_weight for e in store.events(Window(T0, T0 + timedelta(minutes=1)))] \
            == [None, 15.625]


def test_version_3_store_loses_its_unique_index_but_still_skips_stored_ids(
        tmp_path: Path) -> None:
    """A store written by schema 3 (UNIQUE index on format and id) is rebuilt without it."""
    import duckdb

    from keyguard.usage.store import COLUMNS

    path = tmp_path / "u.duckdb"
    con = duckdb.connect(str(path))
    cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    con.execute("CREATE TABLE meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '3'), ('last_run', '1')")
    con.execute(f"CREATE TABLE events ({cols}, run BIGINT NOT NULL, "
                "UNIQUE (source_format, event_id))")
    con.execute("INSERT INTO events (time, key_id, source_format, event_id, requests, run) "
                "VALUES ('2026-01-01 10:00:00', 'k1', 'cloudtrail', 'a', 1, 1)")
    con.close()
    with UsageStore(path) as store:
        assert store.query("SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
                           "'events' AND constraint_type = 'UNIQUE'") == [(0,)]
        added = store.add([ev(0, event_id="a", fmt="cloudtrail"), ev(1, event_id="b", line=2),
                           ev(2, event_id="b", line=3), ev(3, line=4), ev(4, line=5)])
        store.commit()
        assert (added.inserted, added.duplicates) == (3, 2)  # "a" stored, "b" repeated
        assert store.query("SELECT event_id, count(*) FROM events GROUP BY ALL ORDER BY 1") \
            == [("a", 1), ("b", 1), (None, 2)]
        assert store.query("SELECT value FROM meta WHERE name = 'schema_version'") == [
            (str(SCHEMA_VERSION),)]


texts = st.none() | st.text(max_size=30)
# NOTE: hypothesis wants naive bounds; the strategy attaches UTC itself.
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                     timezones=st.just(UTC))
events = st.builds(
    UsageEvent, time=times, key_id=st.text(min_size=1, max_size=20),
    source_format=st.sampled_from(["litellm", "cloudtrail", "openai-usage"]),
    key_alias=texts, source_ip=texts, country=texts, model=texts, user_agent=texts,
    input_tokens=st.integers(0, 2**62), output_tokens=st.integers(0, 2**40),
    requests=st.integers(0, 10**6), prompt_chars=st.none() | st.integers(0, 10**9),
    event_id=texts, bucket_end=st.none() | times,
    cost_usd=st.none() | st.floats(allow_nan=False, allow_infinity=False), origin=texts,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(events, max_size=8))
def test_round_trip_property(batch: list[UsageEvent]) -> None:
    with UsageStore() as store:
        result = store.add(batch)
        stored = store.events(Window(datetime(1999, 1, 1, tzinfo=UTC),
                                     datetime(2101, 1, 1, tzinfo=UTC)))
    ids = {(e.source_format, e.event_id) for e in batch if e.event_id is not None}
    assert result.inserted == len(stored) == len(ids) + sum(e.event_id is None for e in batch)
    for event in stored:
        assert event in batch
