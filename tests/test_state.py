"""State database: snapshots, first-seen, diff rules, schema versioning, bad files."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyguard.errors import StateError
from keyguard.model import ChangeType, Fingerprint, Inventory, KeyRecord, KeyStatus, SourceFailure
from keyguard.state import KEEP_SNAPSHOTS, SCHEMA_VERSION, StateDB, diff

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(loc: str, source: str = "aws-ssm", **kw: object) -> KeyRecord:
    return KeyRecord(source=source, location=loc, name=loc, **kw)  # type: ignore[arg-type]


def inv(*keys: KeyRecord, sources: tuple[str, ...] = ("aws-ssm",),
        failures: tuple[SourceFailure, ...] = ()) -> Inventory:
    return Inventory(keys=keys, sources=sources, failures=failures)


def test_snapshot_round_trip_and_first_seen(tmp_path: Path) -> None:
    a = rec("a", fingerprint=Fingerprint("kg1:01"), tags={"owner": "x"}, created=T0,
            status=KeyStatus.ACTIVE)
    with StateDB(tmp_path / "s.db") as db:
        assert db.last_snapshot() is None
        sid = db.record_snapshot(inv(a), T0)
        db.record_snapshot(inv(a, rec("b")), T0 + timedelta(days=1))
        last = db.last_snapshot()
        assert last is not None
        assert last.id == sid + 1
        assert last.key_count == 2
        assert db.snapshot_records(sid) == {a.identity: a}
        seen = db.first_seen([a.identity, rec("b").identity, "nope"])
        assert seen == {a.identity: T0, rec("b").identity: T0 + timedelta(days=1)}


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    with StateDB(tmp_path / "s.db"):
        pass
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer than this keyguard"):
        StateDB(tmp_path / "s.db")


def test_corrupt_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(StateError, match="cannot open the state database"):
        StateDB(tmp_path / "s.db")


def test_old_snapshots_are_pruned_first_seen_kept(tmp_path: Path) -> None:
    with StateDB(tmp_path / "s.db") as db:
        db.record_snapshot(inv(rec("old")), T0)
        for i in range(KEEP_SNAPSHOTS + 2):
            db.record_snapshot(inv(rec("new")), T0 + timedelta(hours=i + 1))
        count = db._conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        assert count == KEEP_SNAPSHOTS
        assert db.first_seen([rec("old").identity]) == {rec("old").identity: T0}


def test_failed_write_leaves_previous_snapshot(tmp_path: Path) -> None:
    dup = rec("a")
    with StateDB(tmp_path / "s.db") as db:
        db.record_snapshot(inv(rec("x")), T0)
        broken = Inventory(keys=(dup,), sources=("aws-ssm",))
        db._conn.execute("CREATE TRIGGER boom BEFORE INSERT ON first_seen "
                         "BEGIN SELECT RAISE(ABORT, 'boom'); END")
        with pytest.raises(sqlite3.IntegrityError):
            db.record_snapshot(broken, T0 + timedelta(days=1))
        last = db.last_snapshot()
        assert last is not None
        assert last.taken_at == T0


def test_known_records_fill_in_what_a_partial_snapshot_could_not_read(tmp_path: Path) -> None:
    both = ("aws-ssm", "dotenv")
    down = (SourceFailure("aws-ssm", "eu-west-1", "unreachable"),)
    with StateDB(tmp_path / "s.db") as db:
        db.record_snapshot(inv(rec("east"), rec("west"), rec("gone"), rec("d", source="dotenv"),
                               sources=both), T0)
        db.record_snapshot(inv(rec("older-failure"), sources=both, failures=down), T0)
        db.record_snapshot(inv(rec("east", status=KeyStatus.INACTIVE), sources=both,
                               failures=down), T0 + timedelta(days=1))
        last = db.last_snapshot()
        assert last is not None
        known = db.known_records(last)
    # what the partial run read wins; unread keys of the failed source come from the last
    # snapshot that read it cleanly; a source that did not fail gets nothing added
    assert known == {r.identity: r for r in (rec("east", status=KeyStatus.INACTIVE),
                                             rec("west"), rec("gone"))}


def test_diff_added_removed_changed() -> None:
    before = {r.identity: r for r in (rec("a", status=KeyStatus.ACTIVE), rec("gone"))}
    now = inv(rec("a", status=KeyStatus.INACTIVE), rec("new"))
    changes = diff(before, now, ["aws-ssm"])
    assert [(c.change, c.record.location, c.fields) for c in changes] == [
        (ChangeType.ADDED, "new", ()),
        (ChangeType.CHANGED, "a", ("status",)),
        (ChangeType.REMOVED, "gone", ()),
    ]


def test_diff_failed_source_reports_no_removals() -> None:
    before = {rec("gone").identity: rec("gone")}
    now = inv(failures=(SourceFailure("aws-ssm", "eu-west-1", "denied"),))
    assert diff(before, now, ["aws-ssm"]) == []


def test_diff_only_compares_sources_read_in_both_runs() -> None:
    before = {rec("x", source="dotenv").identity: rec("x", source="dotenv")}
    assert diff(before, inv(rec("a")), ["dotenv"]) == []


def test_diff_fingerprint_unknown_is_not_a_change() -> None:
    old = rec("a", fingerprint=Fingerprint("kg1:01"))
    assert diff({old.identity: old}, inv(rec("a")), ["aws-ssm"]) == []
    new_value = rec("a", fingerprint=Fingerprint("kg1:02"))
    (change,) = diff({old.identity: old}, inv(new_value), ["aws-ssm"])
    assert change.fields == ("fingerprint",)


def test_diff_ignores_last_changed_when_value_is_the_same() -> None:
    old = rec("a", fingerprint=Fingerprint("kg1:01"), last_changed=T0)
    same = rec("a", fingerprint=Fingerprint("kg1:01"), last_changed=T0 + timedelta(days=1))
    assert diff({old.identity: old}, inv(same), ["aws-ssm"]) == []
    meta_only = rec("a", last_changed=T0 + timedelta(days=1))
    old_meta = rec("a", last_changed=T0)
    (change,) = diff({old_meta.identity: old_meta}, inv(meta_only), ["aws-ssm"])
    assert change.fields == ("last_changed",)
