"""Expand inputs (files, directories, globs), detect each file's format, stream its events.

The reader is the only place that opens files. It decompresses gzip by magic bytes (S3
delivers ``.json.gz``, people rename files), picks an importer per file by sniffing the
first decompressed bytes (or uses the forced ``input_format``), drops CloudTrail and
LiteLLM duplicates by event id, resolves countries in batches, and counts everything in
:class:`ImportStats`. Bad rows never stop a run; they are counted, with a few
``file:line: reason`` samples for the report.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import gzip
import hashlib
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from keyguard.config import UsageConfig
from keyguard.errors import UsageError
from keyguard.model import UsageEvent
from keyguard.usage import _parallel
from keyguard.usage.bulk import BulkFile, eligible
from keyguard.usage.importers import IMPORTERS, Importer, RowError

#: How many decompressed bytes auto-detection looks at.
HEAD_BYTES = 64 * 1024
#: Directories never walked: CloudTrail integrity digests and Insights events are not calls.
SKIP_DIRS = frozenset({"CloudTrail-Digest", "CloudTrail-Insight", ".git", "__pycache__"})
#: Formats whose ``event_id`` is unique per request, so a repeat is a duplicate delivery.
DEDUPE_FORMATS = frozenset({"cloudtrail", "litellm"})
_GEO_BATCH = 4096
_GEO_CACHE = 1 << 18
_GLOB_CHARS = frozenset("*?[")


@dataclass(slots=True)
class ImportStats:
    """Counters of one import run.

    ``records`` counts what the files held: events + row errors + duplicates. ``errors``
    also counts whole-file failures (unreadable, unrecognised, truncated), which are in
    ``file_errors`` too and are not records.
    """

    max_samples: int = 20
    files: int = 0
    records: int = 0
    events: int = 0
    errors: int = 0
    file_errors: int = 0
    duplicates: int = 0
    error_samples: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    files_per_format: Counter[str] = field(default_factory=Counter)
    events_per_format: Counter[str] = field(default_factory=Counter)
    bulk_files: int = 0  # files loaded by DuckDB (keyguard.usage.bulk)
    prompts_analysed: int = 0  # of those files: prompts fingerprinted and classified
    prompts_estimated: int = 0  # of those files: prompts counted through sample weights

    def add_error(self, error: RowError) -> None:
        """Count one bad row (line 0: a whole file) and keep a sample while there is room."""
        self.errors += 1
        if error.line:
            self.records += 1
        else:
            self.file_errors += 1
        if len(self.error_samples) < self.max_samples:
            self.error_samples.append(str(error))


class UsageReader:
    """Reads usage exports into events with bounded memory.

    Memory: one record at a time per file (see ``importers/_jsonstream.py``), a batch of
    ``_GEO_BATCH`` events for country lookup, and an 8-byte digest per deduplicated event
    id (about 60 bytes each in a Python set: ~60 MB per million CloudTrail records).
    """

    def __init__(self, config: UsageConfig, input_format: str | None = None) -> None:
        self._config = config
        self._forced: Importer | None = None
        if input_format is not None:
            self._forced = IMPORTERS.load(input_format)(config)  # PluginError if unknown
        self._importers: list[Importer] | None = None
        self._seen: set[bytes] = set()
        self._countries: dict[str, str | None] = {}

    def importers(self) -> list[Importer]:
        """Every registered importer, in auto-detection order."""
        if self._importers is None:
            loaded = [IMPORTERS.load(name)(self._config) for name in IMPORTERS.names()]
            self._importers = sorted(loaded, key=lambda imp: (imp.priority, imp.name))
        return self._importers

    def expand(self, inputs: Iterable[str | Path]) -> list[tuple[Path, bool]]:
        """``(file, explicit)`` pairs; ``explicit`` is False for files found by a walk.

        Raises:
            UsageError: an input does not exist, or a glob matches nothing.

        """
        found: list[tuple[Path, bool]] = []
        for item in inputs:
            text = str(item)
            path = Path(text).expanduser()
            if path.exists():
                if not path.is_dir() and not path.is_file():
                    # NOTE: a FIFO or /dev/zero would never end; only regular files are read.
                    raise UsageError(f"{text}: not a regular file or directory")
                found.extend(_walk(path) if path.is_dir() else [(path, True)])
            elif _GLOB_CHARS & set(text):
                # NOTE: Path.glob takes no absolute patterns; glob.glob does.
                pattern = str(Path(text).expanduser())
                matches = sorted(glob.glob(pattern, recursive=True))  # noqa: PTH207
                if not matches:
                    raise UsageError(f"{text}: no file matches", "check the pattern")
                for match in matches:
                    m = Path(match)
                    found.extend(_walk(m) if m.is_dir() else [(m, True)])
            else:
                raise UsageError(f"{text}: no such file or directory", "check the path")
        return found

    def events(self, inputs: Iterable[str | Path], stats: ImportStats) -> Iterator[UsageEvent]:
        """Every event of every input, deduplicated, with countries; errors go to ``stats``.

        Raises:
            UsageError: an input does not exist (raised before any file is read).

        """
        return cast("Iterator[UsageEvent]", self._items(inputs, stats, bulk=False))

    def items(self, inputs: Iterable[str | Path], stats: ImportStats
              ) -> Iterator[UsageEvent | BulkFile]:
        """Like :meth:`events`, but a large LiteLLM JSONL file comes as one :class:`BulkFile`.

        :meth:`UsageStore.add <keyguard.usage.store.UsageStore.add>` loads such a file with
        DuckDB (``keyguard.usage.bulk``); if that declines, the file is read row by row here.
        """
        return self._items(inputs, stats, bulk=True)

    def _items(self, inputs: Iterable[str | Path], stats: ImportStats, *, bulk: bool
               ) -> Iterator[UsageEvent | BulkFile]:
        files = self.expand(inputs)
        batch: list[UsageEvent] = []
        for path, explicit in files:
            for event in self.read_file(path, stats, explicit=explicit, bulk=bulk):
                if isinstance(event, BulkFile):
                    yield from self._geo(batch)  # keep file order
                    batch = []
                    yield event
                    continue
                batch.append(event)
                if len(batch) >= _GEO_BATCH:
                    yield from self._geo(batch)
                    batch = []
        yield from self._geo(batch)

    def read_file(
        self, path: Path, stats: ImportStats, *, explicit: bool = True, bulk: bool = False
    ) -> Iterator[UsageEvent | BulkFile]:
        """Events of one file (no country lookup); its bad rows are counted in ``stats``."""
        where = str(path)
        try:
            with _open(path) as stream:
                head = stream.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            stats.files += 1
            stats.add_error(RowError(where, 0, f"cannot read file: {_reason(exc)}"))
            return
        importer = self._forced or self._detect(head, where)
        if importer is None:
            if not head.strip():
                stats.files += 1
                stats.files_per_format["empty"] += 1
            elif explicit:
                stats.files += 1
                stats.add_error(RowError(where, 0, "unrecognised usage format; pass the format"
                                         f" explicitly (one of: {', '.join(IMPORTERS.names())})"))
            else:
                stats.skipped_files.append(where)
            return
        stats.files += 1
        stats.files_per_format[importer.name] += 1
        if bulk and eligible(path, head, importer.name, self._config):
            job = BulkFile(path, self._config)
            yield job  # the consumer loads it, or leaves job.loaded None to decline
            if job.loaded is not None:
                loaded = job.loaded
                kept = loaded.rows - loaded.file_duplicates
                stats.records += loaded.rows
                stats.duplicates += loaded.file_duplicates
                stats.events += kept
                stats.events_per_format[importer.name] += kept
                stats.bulk_files += 1
                stats.prompts_analysed += loaded.analysed
                stats.prompts_estimated += loaded.estimated
                return
        try:
            if _parallel.suitable(path, head):
                yield from self._counted(_parallel.read(path, importer, self._config), stats)
            else:
                with _open(path) as stream:
                    yield from self._counted(importer.read(stream, where), stats)
        except (OSError, EOFError, zlib.error, RecursionError) as exc:
            # NOTE: a truncated gzip only fails when the importer reaches the cut; the
            # events before it are kept and the file gets one error.
            stats.add_error(RowError(where, 0, f"read stopped: {_reason(exc)}"))

    def _counted(self, items: Iterable[UsageEvent | RowError], stats: ImportStats
                 ) -> Iterator[UsageEvent]:
        """The new events among ``items``; errors and duplicates are counted in ``stats``."""
        for item in items:
            if isinstance(item, RowError):
                stats.add_error(item)
                continue
            stats.records += 1
            if self._duplicate(item):
                stats.duplicates += 1
                continue
            stats.events += 1
            stats.events_per_format[item.source_format] += 1
            yield sanitised(item)

    def _detect(self, head: bytes, path: str) -> Importer | None:
        for importer in self.importers():
            if importer.sniff(head, path):
                return importer
        return None

    def _duplicate(self, event: UsageEvent) -> bool:
        if event.event_id is None or event.source_format not in DEDUPE_FORMATS:
            return False
        digest = hashlib.blake2b(
            f"{event.source_format}\0{event.event_id}".encode(), digest_size=8
        ).digest()
        if digest in self._seen:
            return True
        self._seen.add(digest)
        return False

    def _geo(self, batch: list[UsageEvent]) -> list[UsageEvent]:
        """Set each event's country from its IP: one iptocc call per batch of new addresses.

        Countries are memoised per address (a log repeats a few thousand addresses a
        million times); the memo is dropped when it reaches ``_GEO_CACHE`` entries.
        """
        if not self._config.geo or not batch:
            return batch
        known = self._countries
        fresh = list({e.source_ip for e in batch if e.source_ip and e.source_ip not in known})
        if fresh:
            from keyguard.usage.geo import countries

            if len(known) + len(fresh) > _GEO_CACHE:
                known.clear()
                fresh = list({e.source_ip for e in batch if e.source_ip})
            known.update(zip(fresh, countries(fresh), strict=True))
        for event in batch:
            code = known.get(event.source_ip) if event.source_ip else None
            if code:
                # NOTE: the event was built by an importer for this batch and nobody else
                # holds it yet; setting the field in place saves a 26-field copy per event
                # (dataclasses.replace was ~10% of the import).
                object.__setattr__(event, "country", code)
        return batch


@functools.lru_cache(maxsize=65536)
def _clean(text: str) -> str:
    from keyguard.redact import scrub

    return scrub(text)


@functools.lru_cache(maxsize=65536)
def clean_key_id(key_id: str) -> str:
    """A key id that is itself a secret (a raw key in a gateway log) becomes its SHA-256.

    SHA-256 hex of the raw token is what LiteLLM stores as the key's hash, so a raw key in
    a generic export and the same key's LiteLLM spend rows meet under one id. ``usage
    scan --canary`` maps its values through this too, so a raw canary key matches.
    """
    return key_id if _clean(key_id) == key_id else hashlib.sha256(key_id.encode()).hexdigest()


def sanitised(event: UsageEvent) -> UsageEvent:
    """The event with secret-looking text scrubbed before it reaches the store.

    Exports are written by other software: an alias, a user agent or a principal can hold
    a pasted credential, and the store is a state file, which must never hold a secret.
    Cached per distinct string, so a million rows of a few hundred aliases cost little.
    """
    changes: dict[str, Any] = {}
    if clean_key_id(event.key_id) != event.key_id:
        changes["key_id"] = clean_key_id(event.key_id)
    # NOTE: model, region, action and source_host are free text from the export too (a key
    # pasted as the model name reached the store); all of them repeat a few values per log.
    for name in ("key_alias", "principal", "user_agent", "account", "error_code", "model",
                 "region", "action", "source_host"):
        value = getattr(event, name)
        if value is not None and _clean(value) != value:
            changes[name] = _clean(value)
    return dataclasses.replace(event, **changes) if changes else event


def _walk(root: Path) -> list[tuple[Path, bool]]:
    """Files under ``root``, sorted, skipping digest/insight folders and hidden files."""
    out: list[tuple[Path, bool]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        out.extend(
            (Path(dirpath, name), False)
            for name in sorted(filenames)
            if not name.startswith(".") and "_CloudTrail-Digest_" not in name
        )
    return out


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """Open a file, decompressing gzip when its first two bytes are the gzip magic."""
    with path.open("rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic != b"\x1f\x8b":
            yield raw
            return
        # NOTE: GzipFile does not close the file object it wraps; the outer with does.
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield cast("BinaryIO", unzipped)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "compressed data ends early (truncated gzip)"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"corrupt gzip data ({exc})"
    if isinstance(exc, RecursionError):
        return "data nested too deeply"
    return str(exc) or type(exc).__name__
