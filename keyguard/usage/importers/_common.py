"""Helpers shared by the importers: field coercion, timestamps, IPs, bounded CSV/line reading.

Every coercion helper raises :class:`BadRow` with a one-line reason that names the field
but never quotes more than a short, truncated value: records may carry prompts or keys.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import BinaryIO, cast

from keyguard.usage.importers import RowError

_EPOCH_MS_THRESHOLD = 100_000_000_000  # unix seconds beyond year 5138 are surely ms


class BadRow(Exception):
    """A record that cannot become an event; the importer turns it into a RowError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def short(value: object, limit: int = 40) -> str:
    """A repr short enough for an error message (values may be secrets or prompts)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def get_path(record: Mapping[str, object], dotted: str) -> object:
    """``record["a"]["b"]`` for ``"a.b"``; an exact key containing dots wins; None if absent."""
    if dotted in record:
        return record[dotted]
    current: object = record
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def as_mapping(value: object) -> Mapping[str, object]:
    """A JSON object, or a string holding one (CSV/DB exports stringify jsonb); else empty."""
    if type(value) is dict:  # the common case, without the slow ABC check
        return value
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        if isinstance(parsed, dict):
            return parsed
    return {}


def opt_str(value: object, field: str) -> str | None:
    """A non-empty string (numbers are accepted and printed); None when absent or blank."""
    if type(value) is str:  # the common case first: ~10 calls per row of a 1M-row log
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, (bool, dict, list)):
        raise BadRow(f"{field}: expected a string, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRow(f"{field}: expected a string, got {short(value)}")
    text = str(value).strip()
    return text or None


def req_str(value: object, field: str) -> str:
    """Like :func:`opt_str` but the field must be present."""
    text = opt_str(value, field)
    if text is None:
        raise BadRow(f"{field}: missing")
    return text


def count(value: object, field: str) -> int:
    """A non-negative integer count (tokens, requests); absent or blank is 0."""
    if type(value) is int and value >= 0:  # the common case first
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise BadRow(f"{field}: expected a non-negative integer, got {short(value)}")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = math.nan
            if math.isfinite(as_float) and as_float.is_integer():
                number = int(as_float)
    if number is None or number < 0:
        raise BadRow(f"{field}: expected a non-negative integer, got {short(value)}")
    return number


def opt_float(value: object, field: str) -> float | None:
    """A finite number (cost); None when absent or blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise BadRow(f"{field}: expected a number, got {short(value)}")
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise BadRow(f"{field}: expected a number, got {short(value)}")
    return number


def parse_time(value: object, field: str, fmt: str = "auto") -> datetime:
    """A UTC datetime from ISO-8601 text or unix seconds (``fmt``: auto, iso, unix, unix-ms).

    Timestamps without a zone are UTC: LiteLLM stores ``timestamp(3)`` without tz, and
    every provider documents UTC. A value out of datetime's range is a bad row.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow(f"{field}: missing timestamp")
    if isinstance(value, bool):
        raise BadRow(f"{field}: unparseable timestamp {short(value)}")
    numeric: float | None = None
    if isinstance(value, (int, float)):
        numeric = float(value)
    elif isinstance(value, str) and fmt in ("unix", "unix-ms", "auto"):
        try:
            numeric = float(value.strip())
        except ValueError:
            numeric = None
    if numeric is not None and fmt != "iso":
        if not math.isfinite(numeric):
            raise BadRow(f"{field}: unparseable timestamp {short(value)}")
        seconds = numeric / 1000 if fmt == "unix-ms" or (
            fmt == "auto" and abs(numeric) >= _EPOCH_MS_THRESHOLD) else numeric
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadRow(f"{field}: timestamp out of range {short(value)}") from None
    if not isinstance(value, str) or fmt in ("unix", "unix-ms"):
        raise BadRow(f"{field}: unparseable timestamp {short(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRow(f"{field}: unparseable timestamp {short(value)}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadRow(f"{field}: timestamp out of range {short(value)}") from None


def split_source(value: object, field: str) -> tuple[str | None, str | None]:
    """``(ip, host)``: a parseable IP goes to ``ip`` (normalised), anything else to ``host``.

    CloudTrail puts service DNS names (``lambda.amazonaws.com``) and ``AWS Internal`` in
    ``sourceIPAddress``; those are not addresses and must not reach geolocation.
    """
    text = opt_str(value, field)
    if text is None:
        return None, None
    known = _SOURCES.get(text)
    if known is not None:
        return known
    found = _split_source(text)
    if len(_SOURCES) < _SOURCES_MAX:
        _SOURCES[text] = found
    return found


#: Parsed callers by text: a log repeats a few thousand addresses a million times, and
#: ``ipaddress`` parsing costs more than the rest of a row. Bounded; a pure function's memo.
_SOURCES: dict[str, tuple[str | None, str | None]] = {}
_SOURCES_MAX = 65_536


def _split_source(text: str) -> tuple[str | None, str | None]:
    candidate = text.strip("[]")
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        return None, text[:255]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), None
    return str(ip), None


def decode_line(raw: bytes) -> str:
    """UTF-8 text of one line; Latin-1 when it is not UTF-8 (every byte is valid Latin-1).

    Spreadsheet exports are often Latin-1 or cp1252; decoding them as Latin-1 keeps "café"
    readable instead of failing the row.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def iter_lines(stream: BinaryIO, max_record: int) -> Iterator[tuple[int, str | None]]:
    """``(line number, text)`` per line; text is None for a line longer than ``max_record``.

    An over-long line is drained in fixed chunks, so memory stays bounded whatever its size.
    """
    lineno = 0
    while True:
        raw = stream.readline(max_record + 1)
        if not raw:
            return
        lineno += 1
        if lineno == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if len(raw) > max_record and not raw.endswith(b"\n"):
            while True:
                more = stream.readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
            yield lineno, None
            continue
        yield lineno, decode_line(raw)


def iter_csv_rows(
    stream: BinaryIO, path: str, max_record: int, required: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]] | RowError]:
    """Rows of a CSV file with a header, as dicts, with the line each row starts on.

    A row with the wrong number of cells, an over-long line or a CSV syntax error becomes
    a RowError and reading goes on with the next line. A header lacking a ``required``
    column is one error for the whole file (every row would fail the same way).
    """
    # NOTE: csv's field limit is process-global; raising it (never lowering) lets a long
    # prompt column through while max_record still bounds each line.
    if csv.field_size_limit() < max_record:
        csv.field_size_limit(max_record)
    pending: list[RowError] = []
    state = {"line": 0}

    def lines() -> Iterator[str]:
        for lineno, text in iter_lines(stream, max_record):
            state["line"] = lineno
            if text is None:
                pending.append(RowError(path, lineno, f"line longer than {max_record} bytes"))
                yield "\n"
            else:
                yield text

    reader = csv.reader(lines())
    header: list[str] | None = None
    last_end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield from pending
            pending.clear()
            yield RowError(path, state["line"], f"CSV syntax error: {exc}")
            last_end = state["line"]
            continue
        start, last_end = last_end + 1, state["line"]
        yield from pending
        pending.clear()
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            missing = [name for name in required if name not in header]
            if missing:
                yield RowError(path, start, f"not a CSV with column(s) {', '.join(missing)}")
                return
            continue
        if len(row) != len(header):
            yield RowError(path, start, f"expected {len(header)} columns, got {len(row)}")
            continue
        yield start, dict(zip(header, row, strict=True))
    yield from pending


def first_byte(head: bytes) -> bytes:
    """The first non-whitespace byte of ``head`` (after a UTF-8 BOM), or b''."""
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return stripped[:1]


def is_json(head: bytes) -> bool:
    """True when the file starts like JSON/JSONL (an object or an array)."""
    return first_byte(head) in (b"{", b"[")


_LATER_OBJECT = re.compile(rb"\n[ \t\r]*\{")


def is_jsonl_after_junk(head: bytes, csv_header: bool) -> bool:
    """True for JSONL whose first line is torn or junk (a log cut mid-record).

    When a later line starts an object and the first line is no CSV header, the file is
    JSONL; reading it as CSV would turn every good row into one "missing columns" error.
    """
    return not csv_header and _LATER_OBJECT.search(head) is not None


class _Replay(io.RawIOBase):
    """A non-seekable stream with its already-read head put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def replay(head: bytes, rest: BinaryIO) -> BinaryIO:
    """A stream that yields ``head`` and then the rest of ``rest`` (already past ``head``)."""
    return cast("BinaryIO", io.BufferedReader(_Replay(head, rest)))


def peek_head(stream: BinaryIO, size: int = 4096) -> tuple[bytes, BinaryIO]:
    """The first ``size`` bytes of ``stream`` and a stream that still starts at them."""
    if stream.seekable():
        start = stream.tell()
        head = stream.read(size)
        stream.seek(start)
        return head, stream
    head = stream.read(size)
    return head, replay(head, stream)


def buckets_of(record: object) -> list[Mapping[str, object]]:
    """Buckets of a usage-report record: a bucket itself, or a whole page (``{"data": [...]}``).

    Reports are saved as the API returns them (one page), as JSONL of pages, or as a JSON
    array of pages; the streaming reader hands over either pages or buckets.
    """
    if not isinstance(record, Mapping):
        raise BadRow(f"expected a usage bucket object, got {type(record).__name__}")
    if "results" in record:
        return [record]
    if "data" in record:
        data = record["data"]
        if not isinstance(data, list) or not all(
            isinstance(b, Mapping) and "results" in b for b in data
        ):
            raise BadRow("data: expected a list of buckets with results")
        return list(data)
    raise BadRow("expected a usage bucket (with results) or a page (with data)")


def results_of(bucket: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The result rows of one bucket; a wrong shape is a bad row."""
    results = bucket.get("results")
    if not isinstance(results, list) or not all(isinstance(r, Mapping) for r in results):
        raise BadRow("results: expected a list of objects")
    return list(results)
