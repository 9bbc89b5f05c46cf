"""Canary records in the state database: migration from v1, round trip, lookups, exclusion."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyguard.canary import Canary, CanaryKind, Planted
from keyguard.canary.store import (
    CanaryIndex,
    canary_identifiers,
    find,
    load_all,
    load_index,
    new_id,
    save,
)
from keyguard.errors import UsageError
from keyguard.model import Inventory, KeyRecord
from keyguard.state import SCHEMA_VERSION, StateDB

NOW = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/prod/aws"


def aws_canary(name: str = "billing-svc", key_id: str = "AKIAQQQQQQQQQQQQQQQ1") -> Canary:
    return Canary(id=new_id(), kind=CanaryKind.AWS, name=name, identifier=key_id, created=NOW,
                  principal=f"arn:aws:iam::123456789012:user/service/{name}",
                  account="123456789012", region="us-east-1", iam_path="/service/",
                  planted=(Planted("ssm:/app/prod/aws", ARN, "us-east-1"),
                           Planted("file:.env", "/srv/app/.env", None, created_file=True)))


def test_version_1_database_gains_the_canaries_table_and_keeps_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, taken_at TEXT NOT NULL,
            sources TEXT NOT NULL, failed_sources TEXT NOT NULL, key_count INTEGER NOT NULL);
        CREATE TABLE snapshot_keys (snapshot_id INTEGER NOT NULL, identity TEXT NOT NULL,
            source TEXT NOT NULL, fingerprint TEXT, record TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, identity));
        CREATE TABLE first_seen (identity TEXT PRIMARY KEY, first_seen TEXT NOT NULL);
        INSERT INTO snapshots (taken_at, sources, failed_sources, key_count)
            VALUES ('2026-01-01T00:00:00Z', '["dotenv"]', '[]', 0);
        PRAGMA user_version = 1;
    """)
    conn.close()
    with StateDB(path) as db:
        snap = db.last_snapshot()
        assert snap is not None
        assert snap.sources == ("dotenv",)
        save(db, aws_canary())
        assert [c.name for c in load_all(db)] == ["billing-svc"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()


def test_round_trip_find_and_delete(tmp_path: Path) -> None:
    canary = aws_canary()
    with StateDB(tmp_path / "s.db") as db:
        save(db, canary)
        assert load_all(db) == [canary]
        assert find(db, canary.id) == canary
        assert find(db, "billing-svc") == canary
        with pytest.raises(UsageError, match="no canary 'nope'"):
            find(db, "nope")
        assert db.delete_canary(canary.id)
        assert not db.delete_canary(canary.id)
        assert load_all(db) == []


def test_same_name_twice_is_ambiguous_by_name(tmp_path: Path) -> None:
    with StateDB(tmp_path / "s.db") as db:
        save(db, aws_canary(key_id="AKIAQQQQQQQQQQQQQQQ1"))
        save(db, aws_canary(key_id="AKIAQQQQQQQQQQQQQQQ2"))
        with pytest.raises(UsageError, match="ambiguous"):
            find(db, "billing-svc")


def test_identifiers_for_the_usage_scan(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with StateDB(path) as db:
        assert canary_identifiers(db) == ()
    litellm = Canary(id=new_id(), kind=CanaryKind.LITELLM, name="reporting-batch",
                     identifier="ab" * 32, created=NOW, base_url="http://proxy")
    anthropic = Canary(id=new_id(), kind=CanaryKind.ANTHROPIC, name="ci-summarizer",
                       identifier="apikey_01AbCdEf", created=NOW)
    with StateDB(path) as db:
        for canary in (aws_canary(), litellm, anthropic, aws_canary()):  # the last: a repeat
            save(db, canary)
        found = canary_identifiers(db)
    assert len(found) == len(set(found))
    assert set(found) == {
        "AKIAQQQQQQQQQQQQQQQ1", "arn:aws:iam::123456789012:user/service/billing-svc",
        "ab" * 32, "reporting-batch", "apikey_01AbCdEf"}


def test_index_drops_canaries_and_planted_copies_only(tmp_path: Path) -> None:
    with StateDB(tmp_path / "s.db") as db:
        save(db, aws_canary())
    index = load_index(tmp_path / "s.db")
    iam_key = KeyRecord(source="aws-iam", location="arn:...:access-key/AKIAQQQQQQQQQQQQQQQ1",
                        name="billing-svc", key_id="AKIAQQQQQQQQQQQQQQQ1")
    planted_meta_only = KeyRecord(source="aws-ssm", location=ARN, name="/app/prod/aws")
    planted_file = KeyRecord(source="dotenv", location="/srv/app/.env:3", anchor="/srv/app/.env",
                             name="AWS_SECRET_ACCESS_KEY")
    other = KeyRecord(source="aws-iam", location="arn:...:access-key/AKIAOTHER",
                      name="ci", key_id="AKIAOTHEROTHEROTHER1")
    inventory = Inventory(keys=(iam_key, planted_meta_only, planted_file, other))
    assert index.without(inventory).keys == (other,)
    assert not CanaryIndex()
    assert CanaryIndex().without(inventory) is inventory
    assert load_index(tmp_path / "missing.db") == CanaryIndex()
