"""SIGKILL during `keyguard inventory`, and concurrent inventories: the state database stays whole.

Each killed run is the real CLI in a subprocess reading the real moto server. The launcher
(``python -c LAUNCHER inventory ...``) is test-only code wrapping ``StateDB.record_snapshot``
so the kill lands at a named point: while the sources are read, just before the snapshot
transaction, inside it (an SQLite progress handler fires every 100 VM instructions; the
page cache is shrunk so uncommitted pages spill into the WAL, as a large inventory's do),
or just after its commit. Afterwards ``PRAGMA integrity_check`` passes, the previous
snapshot is byte-for-byte intact, a snapshot is either absent or complete, and the next
run records a snapshot with no changes against the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyguard.cli import app
from keyguard.errors import StateError
from keyguard.model import Inventory
from keyguard.sandbox import CLEARED_ENV, sandbox_env
from keyguard.state import StateDB
from tests.fixtures.aws import AwsSandbox

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["-q", "inventory", "--source", "aws-ssm", "--source", "aws-iam", "--region",
        "us-east-1", "--format", "json"]

LAUNCHER = r"""
import os, signal, threading, time
from keyguard import state

POINT = os.environ["KG_TEST_DUR_POINT"]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if POINT.startswith("sources+"):  # killed while the stores are read (or just after)
    import keyguard.inventory
    read = keyguard.inventory.run_inventory
    def read_(*args, **kwargs):
        threading.Timer(float(POINT[len("sources+"):]), die).start()
        read(*args, **kwargs)
        time.sleep(30)
    keyguard.inventory.run_inventory = read_

record = state.StateDB.record_snapshot

def record_(self, inventory, taken_at):
    if POINT == "announce":  # the test holds the write lock: say we are about to wait for it
        open(os.environ["KG_TEST_DUR_MARK"], "w").close()
    if POINT == "before-write":
        die()
    ticks = [0]
    def tick():
        ticks[0] += 1
        if POINT.startswith("write@") and ticks[0] >= int(POINT[len("write@"):]):
            die()
        return 0
    if POINT == "count" or POINT.startswith("write@"):
        self._conn.execute("PRAGMA cache_size = 2")  # spill uncommitted pages into the WAL
        self._conn.set_progress_handler(tick, 100)
    out = record(self, inventory, taken_at)
    self._conn.set_progress_handler(None, 0)
    if POINT == "count":
        with open(os.environ["KG_TEST_DUR_MARK"], "w") as f:
            f.write(str(ticks[0]))
    if POINT == "after-commit":
        die()
    return out

state.StateDB.record_snapshot = record_
from keyguard.cli import main
main()
"""


@dataclass(frozen=True, slots=True)
class World:
    """A state database holding one complete snapshot, and how to run keyguard against moto."""

    db: Path
    env: dict[str, str]
    cwd: Path
    ticks: int  # progress-handler ticks of one snapshot transaction


@dataclass(frozen=True, slots=True)
class Contents:
    """Everything the state database holds, as comparable values."""

    snapshots: list[tuple[int, int]]  # (id, key_count)
    rows: dict[int, int]  # snapshot id -> snapshot_keys rows
    digest: str  # of every snapshot_keys and first_seen row


def contents(db: Path) -> Contents:
    """Check the file is sound, then read it (this connection replays the WAL, as a run does)."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        snapshots = conn.execute("SELECT id, key_count FROM snapshots ORDER BY id").fetchall()
        rows = dict(conn.execute("SELECT snapshot_id, count(*) FROM snapshot_keys "
                                 "GROUP BY snapshot_id").fetchall())
        digest = hashlib.sha256()
        for row in conn.execute("SELECT snapshot_id, identity, record FROM snapshot_keys "
                                "ORDER BY snapshot_id, identity"):
            digest.update(repr(row).encode())
        for row in conn.execute("SELECT identity, first_seen FROM first_seen ORDER BY identity"):
            digest.update(repr(row).encode())
    finally:
        conn.close()
    return Contents(snapshots, rows, digest.hexdigest())


def _launch(world: World, point: str, mark: Path | None = None) -> subprocess.Popen[str]:
    env = {**world.env, "KG_TEST_DUR_POINT": point}
    if mark is not None:
        env["KG_TEST_DUR_MARK"] = str(mark)
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *ARGS, "--state", str(world.db)],
                            env=env, cwd=world.cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def world(aws_sandbox: AwsSandbox, tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("state-durability")
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED_ENV and not k.startswith("KEYGUARD_")}
    env.update(sandbox_env(aws_sandbox.endpoint))
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": str(ROOT),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    mark = root / "ticks"
    base = World(root / "base.db", env, root, 0)
    proc = _launch(base, "count", mark)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    ticks = int(mark.read_text())
    assert ticks > 20  # enough instructions to land a kill well inside the transaction
    return World(base.db, env, root, ticks)


@pytest.fixture
def db_copy(world: World, tmp_path: Path) -> World:
    target = tmp_path / "state.db"
    target.write_bytes(world.db.read_bytes())  # closed cleanly: no WAL beside it
    return World(target, world.env, world.cwd, world.ticks)


def _run_in_process(world: World, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, object]:
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(world.cwd)
    result = CliRunner().invoke(app, [*ARGS, "--state", str(world.db), *extra],
                                prog_name="keyguard")
    assert result.exit_code == 0, result.stderr
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


@pytest.mark.parametrize("point", ["sources+0.05", "before-write", "write@mid", "after-commit"])
def test_sigkill_during_inventory_keeps_the_last_snapshot_and_the_next_run_goes_on(
        db_copy: World, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = contents(db_copy.db)
    [(first_id, keys)] = before.snapshots
    assert before.rows == {first_id: keys}
    point = point.replace("@mid", f"@{db_copy.ticks // 2}")
    proc = _launch(db_copy, point)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, stderr
    after = contents(db_copy.db)
    if point in ("sources+0.05", "before-write", f"write@{db_copy.ticks // 2}"):
        assert after == before
    elif point == "after-commit":
        assert after.snapshots == [(first_id, keys), (first_id + 1, keys)]
    # whatever the kill hit: the old snapshot is intact, any new one is complete
    assert after.snapshots[0] == (first_id, keys)
    assert after.rows == dict(after.snapshots)
    with StateDB(db_copy.db) as db:  # keyguard's own open path after the crash
        last = db.last_snapshot()
        assert last is not None
        assert len(db.snapshot_records(last.id)) == keys
    report = _run_in_process(db_copy, monkeypatch, "--diff")
    assert report["changes"] == []  # against the snapshot before, nothing moved
    final = contents(db_copy.db)
    assert len(final.snapshots) == len(after.snapshots) + 1
    assert final.rows == dict(final.snapshots)


def test_inventory_waits_for_a_writer_holding_the_lock_then_records(db_copy: World,
                                                                     tmp_path: Path) -> None:
    holder = sqlite3.connect(db_copy.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    mark = tmp_path / "waiting"
    proc = _launch(db_copy, "announce", mark)
    try:
        deadline = time.monotonic() + 180
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting for the lock, not failed
    finally:
        holder.execute("COMMIT")
        holder.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "another keyguard run" not in stderr  # -q: the wait notice is a warning
    snapshots = contents(db_copy.db).snapshots
    assert len(snapshots) == 2
    assert snapshots[0][1] == snapshots[1][1]


def test_two_inventories_at_once_both_record_a_complete_snapshot(db_copy: World) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "keyguard", *ARGS, "--state",
                               str(db_copy.db)], env=db_copy.env, cwd=db_copy.cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    after = contents(db_copy.db)
    assert len(after.snapshots) == 3
    assert after.rows == dict(after.snapshots)
    assert len({count for _, count in after.snapshots}) == 1
    assert all("Traceback" not in err for _, err in outs)


def test_writer_that_waits_out_the_busy_timeout_gets_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with StateDB(path, busy_timeout_s=0.2) as db, \
                pytest.raises(StateError) as locked:
            db.record_snapshot(Inventory(keys=(), sources=("aws-ssm",)), datetime.now(UTC))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(locked.value) == (
        f"{path}: the state database is locked by another keyguard run (waited 0.2 s); let "
        "the other run finish and retry, or pass --state to use another file")
    with StateDB(path) as db:
        assert db.last_snapshot() is None  # nothing half-written


def test_a_wait_longer_than_a_moment_is_announced_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import threading

    path = tmp_path / "state.db"
    StateDB(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(2.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with caplog.at_level("WARNING", logger="keyguard.state"), StateDB(path) as db:
            db.record_snapshot(Inventory(keys=(), sources=("aws-ssm",)), datetime.now(UTC))
            assert db.last_snapshot() is not None
    finally:
        release.join()
        holder.close()
    notices = [r.getMessage() for r in caplog.records if r.name == "keyguard.state"]
    assert len(notices) == 1
    assert "another keyguard run is writing the state database; waiting up to 29 s" in notices[0]


def test_a_free_database_is_written_without_a_waiting_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with StateDB(tmp_path / "state.db") as db:
        db.record_snapshot(Inventory(keys=(), sources=("aws-ssm",)), datetime.now(UTC))
        assert db.last_snapshot() is not None
    assert "waiting" not in caplog.text
