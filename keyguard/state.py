"""Local SQLite state: inventory snapshots, first-seen times, and snapshot diffs.

The database lives under the user data directory (``$XDG_DATA_HOME/keyguard/state.db``)
unless ``--state`` or the config's ``state`` says otherwise. It holds what the JSON report
holds (metadata and fingerprints) and never a secret value. WAL journaling plus one
transaction per snapshot means a run killed mid-write (even SIGKILL) leaves the previous
snapshot intact, and the next run goes on from it (tests/test_state_durability.py). A second
concurrent writer waits up to ``busy_timeout`` seconds for the first one's transaction (a
fraction of a second: sources are read before it starts) and then fails with one line
(:class:`StateError`, exit 2), never a traceback.

Schema changes bump :data:`SCHEMA_VERSION` and add a step to :data:`_MIGRATIONS`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from keyguard.errors import StateError
from keyguard.model import ChangeType, Inventory, KeyChange, KeyRecord
from keyguard.serialize import iso, parse_iso, record_from_dict, record_to_dict

log = logging.getLogger(__name__)
#: How long a writer waits silently before it says it is waiting for another run.
QUIET_WAIT_S = 1.0

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        taken_at TEXT NOT NULL,
        sources TEXT NOT NULL,          -- JSON list of source names
        failed_sources TEXT NOT NULL,   -- JSON list of sources with any failure
        key_count INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS snapshot_keys (
        snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        identity TEXT NOT NULL,
        source TEXT NOT NULL,
        fingerprint TEXT,
        record TEXT NOT NULL,           -- JSON, see keyguard.serialize
        PRIMARY KEY (snapshot_id, identity)
    );
    CREATE TABLE IF NOT EXISTS first_seen (
        identity TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS snapshot_keys_fp ON snapshot_keys(fingerprint);
    """,
    # v2: canary keys (keyguard.canary). The row is how keyguard knows a key is a canary;
    # nothing about it lives in the cloud account, so nothing there can give it away.
    2: """
    CREATE TABLE IF NOT EXISTS canaries (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,             -- aws, litellm, anthropic, openai
        name TEXT NOT NULL,
        identifier TEXT NOT NULL,       -- access key id, LiteLLM token hash, provider key id
        created TEXT NOT NULL,
        record TEXT NOT NULL            -- JSON, see keyguard.canary.store; never a secret
    );
    CREATE UNIQUE INDEX IF NOT EXISTS canaries_identifier ON canaries(kind, identifier);
    """,
}

#: Fields whose change between snapshots is reported by ``inventory --diff``.
DIFF_FIELDS = (
    "fingerprint", "provider", "kind", "status", "environment", "owner", "tags",
    "last_rotated", "last_changed", "expires", "rotation", "scope", "key_id",
)

#: Snapshots kept per database; older ones are pruned (first-seen times are kept).
KEEP_SNAPSHOTS = 30


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored inventory snapshot's header."""

    id: int
    taken_at: datetime
    sources: tuple[str, ...]
    failed_sources: tuple[str, ...]
    key_count: int


@dataclass(frozen=True, slots=True)
class CanaryRow:
    """One stored canary; ``record`` is keyguard.canary's JSON (ids and locations, no secret)."""

    id: str
    kind: str
    name: str
    identifier: str
    created: datetime
    record: str


class StateDB:
    """Handle on the state database; use as a context manager."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked() from None
            raise StateError(f"{path}: cannot open the state database ({exc})",
                             "pass --state to use another file, or move this one aside") from None
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: cannot open the state database ({exc})",
                             "pass --state to use another file, or move this one aside") from None
        except OSError as exc:
            raise StateError(f"{path}: cannot create the state database ({exc.strerror})",
                             "pass --state with a writable path") from None

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _locked(self) -> StateError:
        return StateError(
            f"{self.path}: the state database is locked by another keyguard run "
            f"(waited {self._busy_timeout_s:g} s)",
            "let the other run finish and retry, or pass --state to use another file")

    def _begin(self, cur: sqlite3.Cursor) -> None:
        """BEGIN IMMEDIATE; a wait longer than a moment is announced, not silent.

        A second ``inventory`` on the same state waits for the first one's write (up to
        the busy timeout); a cron job that seems to hang for 30 s should say why.
        """
        quiet = min(QUIET_WAIT_S, self._busy_timeout_s)
        self._conn.execute(f"PRAGMA busy_timeout = {int(quiet * 1000)}")
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or quiet >= self._busy_timeout_s:
                raise
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        log.warning("%s: another keyguard run is writing the state database; waiting up to "
                    "%g s", self.path, self._busy_timeout_s - quiet)
        self._conn.execute(
            f"PRAGMA busy_timeout = {int((self._busy_timeout_s - quiet) * 1000)}")
        try:
            cur.execute("BEGIN IMMEDIATE")
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn SQLite's "database is locked" (busy timeout spent) into one StateError line."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked() from None
            raise

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: state schema v{version} is newer than this keyguard (v{SCHEMA_VERSION})",
                "upgrade keyguard or pass --state with another file",
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            # NOTE: executescript() commits any open transaction first, so the whole step,
            # including the version bump, runs as one explicit transaction inside the script.
            self._conn.executescript(
                f"BEGIN IMMEDIATE;\n{_MIGRATIONS[step]}\nPRAGMA user_version = {step};\nCOMMIT;"
            )

    def last_snapshot(self) -> Snapshot | None:
        """The most recent snapshot header, if any."""
        row = self._conn.execute(
            "SELECT id, taken_at, sources, failed_sources, key_count FROM snapshots "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        taken = parse_iso(row[1])
        assert taken is not None  # noqa: S101  (written by record_snapshot)
        return Snapshot(row[0], taken, tuple(json.loads(row[2])), tuple(json.loads(row[3])), row[4])

    def snapshot_records(self, snapshot_id: int) -> dict[str, KeyRecord]:
        """The records of one snapshot, by identity."""
        rows = self._conn.execute(
            "SELECT identity, record FROM snapshot_keys WHERE snapshot_id = ?", (snapshot_id,)
        )
        return {identity: record_from_dict(json.loads(rec)) for identity, rec in rows}

    def known_records(self, snapshot: Snapshot) -> dict[str, KeyRecord]:
        """A snapshot's records, plus the last known record of each key it could not read.

        For every source that failed in ``snapshot``, keys it did not list are taken from
        the newest earlier snapshot that read that source without a failure. A partial run
        stores only what it read; without this, the next ``--diff`` would call every key of
        a region that had been down "added", though it was there all along.
        """
        records = self.snapshot_records(snapshot.id)
        pending = set(snapshot.failed_sources)
        rows = self._conn.execute(
            "SELECT id, sources, failed_sources FROM snapshots WHERE id < ? ORDER BY id DESC",
            (snapshot.id,),
        ).fetchall() if pending else []
        for older_id, sources, failed in rows:
            clean = (set(json.loads(sources)) - set(json.loads(failed))) & pending
            if not clean:
                continue
            for identity, record in self.snapshot_records(older_id).items():
                if record.source in clean:
                    records.setdefault(identity, record)
            pending -= clean
            if not pending:
                break
        return records

    def first_seen(self, identities: Iterable[str]) -> dict[str, datetime]:
        """First-seen times of the given identities (those never recorded are absent)."""
        wanted = list(identities)
        out: dict[str, datetime] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for identity, seen in self._conn.execute(
                f"SELECT identity, first_seen FROM first_seen WHERE identity IN ({marks})",  # noqa: S608
                chunk,
            ):
                parsed = parse_iso(seen)
                if parsed is not None:
                    out[identity] = parsed
        return out

    def record_snapshot(self, inventory: Inventory, taken_at: datetime) -> int:
        """Store a snapshot in one transaction; returns its id."""
        failed = sorted({f.source for f in inventory.failures})
        cur = self._conn.cursor()
        with self._writing():
            self._begin(cur)  # the wait for a concurrent writer happens here
        try:
            cur.execute(
                "INSERT INTO snapshots (taken_at, sources, failed_sources, key_count) "
                "VALUES (?, ?, ?, ?)",
                (iso(taken_at), json.dumps(list(inventory.sources)), json.dumps(failed),
                 len(inventory.keys)),
            )
            snap_id = cur.lastrowid
            assert snap_id is not None  # noqa: S101
            rows = {r.identity: r for r in inventory.keys}
            cur.executemany(
                "INSERT INTO snapshot_keys (snapshot_id, identity, source, fingerprint, record) "
                "VALUES (?, ?, ?, ?, ?)",
                [(snap_id, ident, r.source, r.fingerprint,
                  json.dumps(record_to_dict(r), sort_keys=True)) for ident, r in rows.items()],
            )
            cur.executemany(
                "INSERT OR IGNORE INTO first_seen (identity, first_seen) VALUES (?, ?)",
                [(ident, iso(taken_at)) for ident in rows],
            )
            cur.execute(
                "DELETE FROM snapshots WHERE id NOT IN "
                "(SELECT id FROM snapshots ORDER BY id DESC LIMIT ?)", (KEEP_SNAPSHOTS,),
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return snap_id

    # -- canaries (schema v2) -----------------------------------------------------------------

    def put_canary(self, row: CanaryRow) -> None:
        """Insert or replace one canary row (keyed by its id)."""
        with self._writing():
            self._conn.execute(
                "INSERT OR REPLACE INTO canaries (id, kind, name, identifier, created, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row.id, row.kind, row.name, row.identifier, iso(row.created), row.record),
            )

    def canary_rows(self) -> list[CanaryRow]:
        """Every canary row, oldest first."""
        out: list[CanaryRow] = []
        for cid, kind, name, ident, created, record in self._conn.execute(
            "SELECT id, kind, name, identifier, created, record FROM canaries "
            "ORDER BY created, id"
        ):
            when = parse_iso(created)
            assert when is not None  # noqa: S101  (written by put_canary)
            out.append(CanaryRow(cid, kind, name, ident, when, record))
        return out

    def delete_canary(self, canary_id: str) -> bool:
        """Remove one canary row; False when there was none."""
        with self._writing():
            cur = self._conn.execute("DELETE FROM canaries WHERE id = ?", (canary_id,))
        return cur.rowcount > 0


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    """SQLite's busy errors: another connection holds the write lock past our timeout."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
        or "locked" in str(exc)


def diff(
    previous: Mapping[str, KeyRecord],
    current: Inventory,
    previous_sources: Iterable[str] = (),
) -> list[KeyChange]:
    """What appeared, disappeared or changed since ``previous``.

    When both runs fingerprinted a value and the fingerprints agree, a new
    ``last_changed`` alone is not a change of the key (a .env file edited elsewhere).

    Only sources read in both runs are compared, and a source that failed in this run
    (partly or wholly) reports no removals: a key that could not be read is not gone.
    """
    compared = set(current.sources) & set(previous_sources or current.sources)
    failed = {f.source for f in current.failures}
    now = {r.identity: r for r in current.keys if r.source in compared}
    before = {i: r for i, r in previous.items() if r.source in compared}
    changes: list[KeyChange] = []
    for identity, rec in now.items():
        old = before.get(identity)
        if old is None:
            changes.append(KeyChange(ChangeType.ADDED, identity, rec))
            continue
        old_d, new_d = record_to_dict(old), record_to_dict(rec)
        both_known = old.fingerprint is not None and rec.fingerprint is not None
        ignored = {"last_changed"} if both_known and old.fingerprint == rec.fingerprint else set()
        if not both_known:
            # a run without --inspect-values knows no fingerprint; that is not a change
            ignored.add("fingerprint")
        changed = tuple(f for f in DIFF_FIELDS
                        if f not in ignored and old_d.get(f) != new_d.get(f))
        if changed:
            changes.append(KeyChange(ChangeType.CHANGED, identity, rec, changed))
    changes.extend(
        KeyChange(ChangeType.REMOVED, identity, rec)
        for identity, rec in before.items()
        if identity not in now and rec.source not in failed
    )
    order = {ChangeType.ADDED: 0, ChangeType.CHANGED: 1, ChangeType.REMOVED: 2}
    changes.sort(key=lambda c: (order[c.change], c.identity))
    return changes
