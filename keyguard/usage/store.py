"""DuckDB event store: usage events persist between runs so each key is judged on weeks of history.

Why a store: a daily ``keyguard usage scan`` reads only the newest exports, yet a detector
must compare today's use of a key with everything seen before. The store keeps every
event as one flat row (the :class:`~keyguard.model.UsageEvent` fields), remembers how far
each input file was read (a watermark), and offers the windowed queries detectors share.
``duckdb`` is imported only when a store is opened, so ``keyguard --help`` stays instant.

Invariants:

* Times are stored as naive ``TIMESTAMP`` in UTC and handed back timezone-aware (UTC).
* ``(source_format, event_id)`` is unique when ``event_id`` is set: re-reading a CloudTrail
  file or a LiteLLM log inserts nothing twice (NULL ids never clash). Inserts skip ids the
  store already holds with an anti-join that hashes the *new* rows and scans the stored
  ids; schema 4 dropped the UNIQUE index that used to enforce it, because maintaining it
  made a 1M-row insert ~4x slower (a version-3 store is rebuilt without it on open).
* The watermark of ``(file, format)`` is the latest event time imported from that file.
  On a later run, an event of that file older than its watermark is skipped without a
  lookup; an event *at* the watermark is skipped too unless it has an ``event_id`` (which
  dedupes it), so an aggregate bucket (Anthropic/OpenAI reports, no id) is never counted
  twice. This treats files as append-only in time order, which every supported export is.
* Every row records the import run that inserted it, so a scan can judge exactly the
  events that are new in this run (:meth:`UsageStore.run_range`).
* ``prompt_weight`` (schema 3) is how many requests of the key's UTC day a row's prompt
  analysis stands for: a bulk import analyses a sample of prompts, and detectors sum
  ``coalesce(prompt_weight, 1)`` over analysed rows instead of counting them. NULL (rows of
  older stores, every per-row importer) means 1; unanalysed rows have no fingerprint.
* Writes happen in one transaction that the caller commits (:meth:`UsageStore.commit`);
  a run that stops early (``--strict``, a crash) leaves the store as it was, so its events
  are not marked as seen without having been judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keyguard.errors import StateError
from keyguard.model import UsageEvent
from keyguard.usage.bulk import BulkFile

if TYPE_CHECKING:
    import duckdb

#: Bump when the table layout changes; an older file is refused, never silently misread.
SCHEMA_VERSION = 4
#: Columns added since version 1, with their types: an older store is upgraded in place.
ADDED = {2: (("prompt_markers", "VARCHAR"),), 3: (("prompt_weight", "DOUBLE"),)}
#: First version whose ``events`` table has no UNIQUE index (older ones are rebuilt).
NO_UNIQUE = 4
#: File name of the store inside the state directory (beside ``state.db``).
STORE_NAME = "usage.duckdb"
#: Events handed to DuckDB per INSERT (column lists, unnested server-side: fast and bounded).
BATCH = 50_000

#: Event columns in UsageEvent field order, with their DuckDB types.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "TIMESTAMP"),
    ("key_id", "VARCHAR"),
    ("source_format", "VARCHAR"),
    ("key_alias", "VARCHAR"),
    ("source_ip", "VARCHAR"),
    ("country", "VARCHAR"),
    ("region", "VARCHAR"),
    ("model", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cached_tokens", "BIGINT"),
    ("requests", "BIGINT"),
    ("user_agent", "VARCHAR"),
    ("error_code", "VARCHAR"),
    ("prompt_fingerprint", "VARCHAR"),
    ("prompt_chars", "BIGINT"),
    ("principal", "VARCHAR"),
    ("account", "VARCHAR"),
    ("source_host", "VARCHAR"),
    ("action", "VARCHAR"),
    ("service", "VARCHAR"),
    ("event_id", "VARCHAR"),
    ("bucket_end", "TIMESTAMP"),
    ("cost_usd", "DOUBLE"),
    ("origin", "VARCHAR"),
    ("prompt_markers", "VARCHAR"),
    ("prompt_weight", "DOUBLE"),
)
_NAMES = tuple(name for name, _ in COLUMNS)
_SELECT = ", ".join(_NAMES)
# NOTE: SQL here is assembled only from the constants above (column names, types, "<"/"<=");
# every value is a bound parameter, hence the S608 waivers below.


@dataclass(frozen=True, slots=True)
class Window:
    """The time range a scan judges, both ends inclusive (UTC)."""

    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        """True when ``when`` lies inside the window."""
        return self.start <= when <= self.end


@dataclass(frozen=True, slots=True)
class AddResult:
    """What one :meth:`UsageStore.add` call did with the events it was given."""

    run: int
    inserted: int = 0
    duplicates: int = 0  # same (source_format, event_id) already stored
    below_watermark: int = 0  # already imported from the same file by an earlier run
    before_since: int = 0  # older than the caller's ``since``


def store_file(path: Path) -> Path:
    """The store file for ``--state PATH``: a ``.duckdb`` file itself, else a directory."""
    return path if path.suffix == ".duckdb" else path / STORE_NAME


def naive(when: datetime | None) -> datetime | None:
    """A time as the store keeps it: naive UTC (None stays None)."""
    return None if when is None else when.astimezone(UTC).replace(tzinfo=None)


_naive = naive


def _aware(when: datetime | None) -> datetime | None:
    return None if when is None else when.replace(tzinfo=UTC)


def _source_of(event: UsageEvent) -> str:
    """The input file of an event (``origin`` is ``file:line``); "" when unknown."""
    if not event.origin:
        return ""
    head, sep, tail = event.origin.rpartition(":")
    return head if sep and tail.isdigit() else event.origin


def _open_error(path: str, exc: Exception) -> StateError:
    """One line for a store DuckDB would not open: held by another run, or unreadable.

    DuckDB takes an exclusive file lock for the whole run, so a second concurrent scan on the
    same store is refused here at once (exit 2), before it imports anything; it does not wait.
    """
    text = " ".join(str(exc).split())  # DuckDB messages may span lines
    if "Could not set lock" in text or "Conflicting lock" in text:
        pid = re.search(r"\(PID (\d+)\)", text)
        held = f" (PID {pid.group(1)})" if pid else ""
        return StateError(f"{path}: the usage store is in use by another keyguard run{held}",
                          "let it finish and retry, or pass --state to use another store")
    return StateError(f"{path}: cannot open the usage store: {text}",
                      "pass --state to use another store, or move this one aside")


class UsageStore:
    """Usage events in one DuckDB file (or in memory with ``":memory:"``).

    Raises:
        StateError: the file is locked by another run, corrupt, or of another version.

    """

    def __init__(self, path: Path | str = ":memory:") -> None:
        import duckdb

        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con: duckdb.DuckDBPyConnection = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        # NOTE: DuckDB draws a progress bar on *stdout* for any query over 2 s, which would
        # corrupt `usage scan --format json` written to stdout; off for this connection.
        self._con.execute("SET enable_progress_bar = false")
        self._in_tx = False
        self._setup()

    def _setup(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is None:
            con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('last_run', '0')",
                        [str(SCHEMA_VERSION)])
        elif row[0].isdigit() and int(row[0]) < SCHEMA_VERSION and self._upgrade(int(row[0])):
            pass
        elif row[0] != str(SCHEMA_VERSION):
            raise StateError(f"{self.path}: usage store version {row[0]}, this keyguard reads "
                             f"version {SCHEMA_VERSION}", "use another --state or a newer keyguard")
        cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        con.execute(f"CREATE TABLE IF NOT EXISTS events ({cols}, run BIGINT NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS watermarks (source VARCHAR, source_format VARCHAR,"
                    " max_time TIMESTAMP NOT NULL, PRIMARY KEY (source, source_format))")

    def _upgrade(self, version: int) -> bool:
        """Add the columns newer versions introduced (events keep their values; new ones NULL).

        Before version 4 the table carried a UNIQUE index, which DuckDB cannot drop: the
        table is copied into one without it (same columns and rows), in the same transaction.
        """
        con = self._con
        con.execute("BEGIN TRANSACTION")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for name, kind in ADDED.get(step, ()):
                con.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
        if version < NO_UNIQUE:
            cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
            con.execute(f"CREATE TABLE events_v{NO_UNIQUE} ({cols}, run BIGINT NOT NULL)")
            con.execute(f"INSERT INTO events_v{NO_UNIQUE} SELECT {_SELECT}, run FROM events")  # noqa: S608
            con.execute("DROP TABLE events")
            con.execute(f"ALTER TABLE events_v{NO_UNIQUE} RENAME TO events")
        con.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
        return True

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; an uncommitted import is rolled back."""
        if self._in_tx:
            self._con.execute("ROLLBACK")
            self._in_tx = False
        self._con.close()

    def commit(self) -> None:
        """Make this run's import (events, watermarks, run number) permanent."""
        if self._in_tx:
            self._con.execute("COMMIT")
            self._in_tx = False

    def _begin(self) -> None:
        if not self._in_tx:
            self._con.execute("BEGIN TRANSACTION")
            self._in_tx = True

    # -- writing ---------------------------------------------------------------------------

    def watermark(self, source: str, source_format: str) -> datetime | None:
        """Latest event time imported from ``source`` (a file path) in ``source_format``."""
        row = self._con.execute("SELECT max_time FROM watermarks WHERE source = ? AND "
                                "source_format = ?", [source, source_format]).fetchone()
        return _aware(row[0]) if row else None

    def add(self, events: Iterable[UsageEvent | BulkFile], since: datetime | None = None
            ) -> AddResult:
        """Import events as one new run, skipping what earlier runs already stored.

        Events older than ``since`` are skipped (and counted). A :class:`BulkFile` among
        the items (see :meth:`UsageReader.items`) is loaded by DuckDB in this run, after
        the events before it; if the bulk path declines it, ``loaded`` stays None and the
        reader sends the file's events one by one instead. Call :meth:`commit` to keep the
        result; until then the run is invisible to other connections.
        """
        self._begin()
        run = int(self._fetch1("SELECT value FROM meta WHERE name = 'last_run'")) + 1
        self._con.execute("UPDATE meta SET value = ? WHERE name = 'last_run'", [str(run)])
        marks: dict[tuple[str, str], datetime | None] = {}
        new_marks: dict[tuple[str, str], datetime] = {}
        counts = {"below": 0, "since": 0, "inserted": 0, "offered": 0}
        batch: list[UsageEvent] = []
        for event in events:
            if isinstance(event, BulkFile):
                if batch:  # earlier events first: the bulk load dedupes against them
                    counts["inserted"] += self._insert(batch, run)
                    counts["offered"] += len(batch)
                    batch = []
                self._bulk(event, run, since, counts, new_marks)
                continue
            if since is not None and event.time < since:
                counts["since"] += 1
                continue
            where = (_source_of(event), event.source_format)
            if where not in marks:
                marks[where] = self.watermark(*where)
            mark = marks[where]
            if mark is not None and (event.time < mark or
                                     (event.time == mark and event.event_id is None)):
                counts["below"] += 1
                continue
            latest = new_marks.get(where)
            if latest is None or event.time > latest:
                new_marks[where] = event.time
            batch.append(event)
            if len(batch) >= BATCH:
                counts["inserted"] += self._insert(batch, run)
                counts["offered"] += len(batch)
                batch = []
        if batch:
            counts["inserted"] += self._insert(batch, run)
            counts["offered"] += len(batch)
        for (source, fmt), latest in new_marks.items():
            self._con.execute(
                "INSERT INTO watermarks VALUES (?, ?, ?) ON CONFLICT (source, source_format) "
                "DO UPDATE SET max_time = greatest(watermarks.max_time, excluded.max_time)",
                [source, fmt, _naive(latest)])
        return AddResult(run=run, inserted=counts["inserted"],
                         duplicates=counts["offered"] - counts["inserted"],
                         below_watermark=counts["below"], before_since=counts["since"])

    def _bulk(self, job: BulkFile, run: int, since: datetime | None, counts: dict[str, int],
              new_marks: dict[tuple[str, str], datetime]) -> None:
        """Load one file with DuckDB (``keyguard.usage.bulk``); sets ``job.loaded`` on success."""
        from keyguard.usage.bulk import FORMAT, load

        where = (str(job.path), FORMAT)
        loaded = load(job, self._con, run, _naive(since), _naive(self.watermark(*where)),
                      _NAMES)
        if loaded is None:
            return
        job.loaded = loaded
        counts["inserted"] += loaded.inserted
        counts["offered"] += loaded.inserted + loaded.stored_duplicates
        counts["below"] += loaded.below_watermark
        counts["since"] += loaded.before_since
        if loaded.latest is not None:
            latest = loaded.latest.replace(tzinfo=UTC)
            if where not in new_marks or latest > new_marks[where]:
                new_marks[where] = latest

    def _insert(self, batch: Sequence[UsageEvent], run: int) -> int:
        """Insert one batch as numpy columns, minus stored ids; returns the rows inserted.

        A ``(source_format, event_id)`` already stored, or repeated earlier in the batch,
        is skipped (see the module docstring).

        Why numpy: DuckDB scans a registered dict of numpy arrays in C++, ~5x faster than
        binding Python lists as LIST parameters (which builds one DuckDB value per cell).
        Columns that may hold None are object arrays, read as NULL; the SELECT casts every
        column to its declared type, so an all-None batch column is still well typed.
        """
        import numpy as np

        data: dict[str, Any] = {}
        for name, kind in COLUMNS:
            values = list(map(attrgetter(name), batch))
            if kind == "TIMESTAMP":
                values = list(map(_naive, values))
            if kind == "BIGINT" and None not in values:
                data[name] = np.array(values, dtype=np.int64)
            else:
                data[name] = np.array(values, dtype=object)
        # NOTE: DuckDB finds ``kg_batch`` by name among this frame's locals (a replacement
        # scan); register() would refuse while an earlier result of the run is unfetched.
        data["kg_pos"] = np.arange(len(batch), dtype=np.int64)
        kg_batch = data  # noqa: F841
        casts = ", ".join(f"{name}::{kind} AS {name}" for name, kind in COLUMNS)
        row = self._con.execute(f"""
            INSERT INTO events ({_SELECT}, run)
            WITH b AS (SELECT {casts}, kg_pos FROM kg_batch
                       QUALIFY event_id IS NULL OR row_number() OVER (
                         PARTITION BY source_format, event_id ORDER BY kg_pos) = 1),
            stored AS (SELECT DISTINCT e.source_format, e.event_id FROM events e
                       SEMI JOIN b ON e.source_format = b.source_format
                       AND e.event_id = b.event_id)
            SELECT {_SELECT}, {run} FROM b WHERE event_id IS NULL OR NOT EXISTS (
              SELECT 1 FROM stored s WHERE s.source_format = b.source_format
              AND s.event_id = b.event_id)""").fetchall()  # noqa: S608
        return int(row[0][0]) if row else 0

    def _fetch1(self, sql: str, params: Sequence[object] = ()) -> Any:
        row = self._con.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    # -- reading: the windowed queries detectors share --------------------------------------

    def count(self) -> int:
        """Number of stored events."""
        return int(self._fetch1("SELECT count(*) FROM events"))

    def run_range(self, run: int) -> Window | None:
        """Earliest and latest time of the events inserted by ``run``; None if it added none."""
        row = self._con.execute("SELECT min(time), max(time) FROM events WHERE run = ?",
                                [run]).fetchone()
        if row is None or row[0] is None:
            return None
        return Window(row[0].replace(tzinfo=UTC), row[1].replace(tzinfo=UTC))

    def keys(self, window: Window, *, with_country: bool = False) -> list[str]:
        """Keys with at least one event in the window (only located events if asked)."""
        extra = " AND country IS NOT NULL" if with_country else ""
        rows = self._con.execute(
            f"SELECT DISTINCT key_id FROM events WHERE time BETWEEN ? AND ?{extra} ORDER BY 1",  # noqa: S608
            [_naive(window.start), _naive(window.end)]).fetchall()
        return [str(r[0]) for r in rows]

    def events(self, window: Window, key_id: str | None = None) -> list[UsageEvent]:
        """Events in the window (of one key if given), by key then time."""
        sql = f"SELECT {_SELECT} FROM events WHERE time BETWEEN ? AND ?"  # noqa: S608
        params: list[object] = [_naive(window.start), _naive(window.end)]
        if key_id is not None:
            sql += " AND key_id = ?"
            params.append(key_id)
        return self._events(sql + " ORDER BY key_id, time, origin", params)

    def history(self, key_id: str, before: datetime, *, inclusive: bool = False) -> list[UsageEvent]:
        """One key's events strictly before ``before`` (up to it if ``inclusive``), by time.

        This is the "earlier history" a detector judges an event against: never the future.
        """
        op = "<=" if inclusive else "<"
        return self._events(f"SELECT {_SELECT} FROM events WHERE key_id = ? AND time {op} ? "  # noqa: S608
                            "ORDER BY time, origin", [key_id, _naive(before)])

    def matching(self, identifiers: Iterable[str], window: Window) -> list[UsageEvent]:
        """Events in the window whose key id, alias or principal is one of ``identifiers``."""
        names = sorted(set(identifiers))
        if not names:
            return []
        return self._events(
            f"SELECT {_SELECT} FROM events WHERE time BETWEEN $1 AND $2 AND (key_id IN "  # noqa: S608
            "(SELECT unnest($3::VARCHAR[])) OR key_alias IN (SELECT unnest($3::VARCHAR[])) OR "
            "principal IN (SELECT unnest($3::VARCHAR[]))) ORDER BY key_id, time, origin",
            [_naive(window.start), _naive(window.end), names])

    def hourly_counts(self, key_id: str, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """Requests per UTC hour for one key in ``[start, end)``; hours without use are absent.

        A row whose request count is unknown (``requests == 0``, Anthropic buckets) counts as 1.
        """
        rows = self._con.execute(
            "SELECT date_trunc('hour', time) AS h, sum(CASE WHEN requests > 0 THEN requests "
            "ELSE 1 END) FROM events WHERE key_id = ? AND time >= ? AND time < ? GROUP BY h "
            "ORDER BY h", [key_id, _naive(start), _naive(end)]).fetchall()
        return [(r[0].replace(tzinfo=UTC), int(r[1])) for r in rows]

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Write a module-owned side table (the notify ledger) inside this run's transaction.

        Side tables commit or roll back together with the run's events (:meth:`commit`),
        so "alert sent" and "events judged" can never disagree after a crash.
        """
        self._begin()
        self._con.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of a detector's own aggregate over the ``events`` table (read it, never write).

        Why: velocity and coordination profiles are GROUP BYs over weeks of events that
        DuckDB computes far faster than Python loops over :meth:`history`. Bind every value
        as a parameter; TIMESTAMP values are naive UTC both ways (see :func:`naive`).
        """
        return self._con.execute(sql, list(params)).fetchall()

    def _events(self, sql: str, params: Sequence[object]) -> list[UsageEvent]:
        return list(self._rows(sql, params))

    def _rows(self, sql: str, params: Sequence[object]) -> Iterator[UsageEvent]:
        cursor = self._con.execute(sql, list(params))
        while chunk := cursor.fetchmany(10_000):
            for row in chunk:
                values = dict(zip(_NAMES, row, strict=True))
                values["time"] = _aware(values["time"])
                values["bucket_end"] = _aware(values["bucket_end"])
                yield UsageEvent(**values)
