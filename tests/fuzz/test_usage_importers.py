"""Fuzz every usage importer through the reader's public API (issues 4 and 8).

Properties, per export format (tests/fuzz/formats.py writes each one):

* good records round-trip: auto-detection picks the format, every record is one event
  with the right key and UTC time, with or without a UTF-8 BOM and gzip;
* bad records among good ones (a required field missing, a wrong type, and for line-based
  formats a torn line, binary junk or an over-long line) cost exactly one error each,
  reported at that record's ``file:line``, and every good record is still read;
* gzip truncated at any offset is one file error and the events before the cut; a
  corrupted byte is at most one file error;
* other encodings (UTF-16 with and without BOM, Latin-1) are read or reported, never
  silently empty; arbitrary bytes never raise;
* odd timestamps (epoch s/ms/us, negative, year 1/9999 with offsets, garbage) are an
  event in UTC or one error;
* an error sample never shows a planted key once scrubbed (what every report prints).

Time per case is bounded by the profile's deadline (tests/fuzz/profiles.py).
"""

from __future__ import annotations

import gzip
import math
import random
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keyguard.fakes import fake_key
from keyguard.model import UsageEvent
from keyguard.redact import scrub
from keyguard.usage.importers import IMPORTERS
from keyguard.usage.reader import ImportStats, UsageReader
from tests.fuzz.formats import (
    BY_NAME,
    CONFIG,
    DELETE,
    FORMATS,
    MAX_RECORD,
    Format,
    Record,
    Row,
    set_path,
)
from tests.fuzz.profiles import budget

NAMES = [f.name for f in FORMATS]
LINE_BASED = [f.name for f in FORMATS if f.line_based]
_SAMPLE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<reason>.+)$")
_SECRET_KINDS = ("anthropic-api", "openai-project", "github-fine-grained-pat", "stripe-secret",
                 "slack-bot")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One directory for every example's files (hypothesis runs a test many times)."""
    with tempfile.TemporaryDirectory(prefix="kg-fuzz-") as name:
        yield Path(name)


_counter = iter(range(10**9))


def write(workdir: Path, data: bytes, suffix: str = "") -> Path:
    """A fresh file per example, so no two examples share a path."""
    path = workdir / f"f{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


def read(path: Path, forced: str | None = None) -> tuple[list[UsageEvent], ImportStats]:
    """Events and stats of one file through the reader (a new reader: fresh dedupe)."""
    stats = ImportStats(max_samples=CONFIG.max_error_samples)
    events = list(UsageReader(CONFIG, forced).events([path], stats))
    assert stats.files == 1
    assert stats.events == len(events)
    assert stats.records == stats.events + stats.errors - stats.file_errors + stats.duplicates
    for sample in stats.error_samples:
        assert "\n" not in sample
        assert sample.startswith(f"{path}:"), sample
    return events, stats


def error_lines(stats: ImportStats) -> list[int]:
    """The line of every error sample (0 is the whole file)."""
    lines = []
    for sample in stats.error_samples:
        m = _SAMPLE.match(sample)
        assert m is not None, sample
        lines.append(int(m["line"]))
    return sorted(lines)


# --- strategies -----------------------------------------------------------------------

def _naive(text: str) -> datetime:
    """A naive bound for st.datetimes (hypothesis attaches zones itself)."""
    return datetime.fromisoformat(text)


_offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.builds(
    lambda t, tz: t.replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=_naive("1971-01-02"), max_value=_naive("2999-12-30")).map(
        lambda t: t.replace(microsecond=0)),
    _offsets,
)
_keys = st.text("0123456789abcdef", min_size=4, max_size=12).map(lambda s: f"k-{s}")
_ips = st.none() | st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(str)
rows = st.builds(Row, key=_keys, time=_times, tokens_in=st.integers(0, 10**9),
                 tokens_out=st.integers(0, 10**6), ip=_ips)


def _expected(fmt: Format, row: Row) -> tuple[str, datetime]:
    return fmt.key_of(row), row.time.astimezone(UTC)


def _got(event: UsageEvent) -> tuple[str, datetime]:
    assert event.time.utcoffset() == timedelta(0)
    return event.key_id, event.time


# --- good records ------------------------------------------------------------------------


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3), max_leaves=6)
#: Fields no export defines: a newer export version adds some, a reader must ignore them.
_extra = st.dictionaries(st.text("abcxyz_", min_size=1, max_size=8).map(lambda s: f"zz_{s}"),
                         _json_values, max_size=3)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.lists(rows, min_size=1, max_size=6), bom=st.booleans(), gz=st.booleans(),
       crlf=st.booleans(), extra=_extra)
@budget(0.6)
def test_good_records_round_trip(workdir: Path, name: str, data: list[Row], bom: bool,
                                 gz: bool, crlf: bool, extra: dict[str, object]) -> None:
    fmt = BY_NAME[name]
    body, _first = fmt.file([{**fmt.record(row, n), **extra} for n, row in enumerate(data)])
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    if bom:
        body = b"\xef\xbb\xbf" + body
    path = write(workdir, gzip.compress(body) if gz else body, ".gz" if gz else "")
    events, stats = read(path)
    assert stats.error_samples == []
    assert dict(stats.files_per_format) == {fmt.importer: 1}
    assert sorted(map(_got, events)) == sorted(_expected(fmt, r) for r in data)


# --- bad records among good ones ---------------------------------------------------------

_junk_start = st.sampled_from(["#", "@", "%", "~", "<", "|", "\x00", "\x7f"])
_junk = st.builds(lambda a, b: (a + b).encode("utf-8", "surrogatepass"), _junk_start,
                  st.text(st.characters(exclude_characters='\n\r",', exclude_categories=["Cs"]),
                          max_size=60))


@st.composite
def mixed(draw: st.DrawFn, fmt: Format) -> tuple[list[Record | bytes], list[int], int]:
    """Records, the indexes where an error must be reported, and how many are good.

    A junk line right after another unreadable line (junk, torn or over-long JSON) is part
    of the same unreadable stretch: the JSON reader resynchronises at the next line that
    starts a record, so the stretch is one error, at its first line.
    """
    kinds = ["good", "good", "missing", "wrong"]
    if fmt.line_based:
        kinds += ["junk", "huge"] + ([] if fmt.csv_columns else ["torn"])
    records: list[Record | bytes] = []
    errors: list[int] = []
    good = 0
    previous = "good"
    for n in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "huge" and previous == "torn":
            # NOTE: a torn line ending in '"key":' takes the next line's object as its
            # value; when that object is over-long the two lines are one error, at the
            # second (reported to the lead; an ambiguity of JSON, not of the line count).
            kind = "wrong"
        rec = fmt.record(draw(rows), n)
        if kind == "good":
            records.append(rec)
            good += 1
            previous = kind
            continue
        merged = (kind == "junk" and not fmt.csv_columns
                  and previous in ("junk", "torn", "huge"))
        if not merged:
            errors.append(n)
        previous = kind
        if kind == "missing":
            records.append(set_path(rec, draw(st.sampled_from(fmt.required)), DELETE))
        elif kind == "wrong":
            path, value = draw(st.sampled_from(fmt.wrong_types))
            records.append(set_path(rec, path, value))
        elif kind == "junk":
            records.append(draw(_junk))
        elif kind == "huge":
            size = MAX_RECORD + draw(st.integers(1, 3 * MAX_RECORD))
            filler = b"y" * size
            records.append(filler if fmt.csv_columns else b'{"x": "' + filler + b'"}')
        else:  # torn: a record cut short, as by a crash mid-write
            line = fmt.lines([rec])[0]
            records.append(line[: draw(st.integers(1, len(line) - 2))])
    return records, errors, good


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
@budget(1)
def test_bad_records_cost_one_error_at_their_line(workdir: Path, name: str,
                                                  data: st.DataObject) -> None:
    fmt = BY_NAME[name]
    records, errors, good = data.draw(mixed(fmt))
    body, first = fmt.file(records)
    path = write(workdir, body)
    _events, stats = read(path, fmt.importer)
    assert stats.events == good
    assert error_lines(stats) == [fmt.line_of(first, n) for n in errors]
    assert stats.file_errors == 0


@pytest.mark.parametrize("name", [n for n in LINE_BASED
                                  if not BY_NAME[n].csv_columns and BY_NAME[n].importer != "litellm"])
@given(data=st.data())
@budget(0.4)
def test_good_lines_survive_a_broken_first_line(workdir: Path, name: str,
                                                data: st.DataObject) -> None:
    """A JSONL file whose head is junk (a log cut mid-record) is still read when forced."""
    fmt = BY_NAME[name]
    good = data.draw(st.lists(rows, min_size=1, max_size=4))
    body, _ = fmt.file([data.draw(_junk), *(fmt.record(r, n) for n, r in enumerate(good))])
    events, stats = read(write(workdir, body), fmt.importer)
    assert error_lines(stats) == [1]
    assert sorted(map(_got, events)) == sorted(_expected(fmt, r) for r in good)


# --- gzip ----------------------------------------------------------------------------------


def _good_file(fmt: Format, data: list[Row]) -> bytes:
    return fmt.file([fmt.record(row, n) for n, row in enumerate(data)])[0]


@pytest.mark.parametrize("name", NAMES)
@given(data=st.lists(rows, min_size=1, max_size=5), where=st.floats(0, 1))
@budget(0.3)
def test_truncated_gzip_is_one_file_error_and_a_prefix(workdir: Path, name: str,
                                                       data: list[Row], where: float) -> None:
    fmt = BY_NAME[name]
    packed = gzip.compress(_good_file(fmt, data))
    cut = max(1, min(len(packed) - 1, int(where * len(packed))))
    full, _ = read(write(workdir, packed))
    events, stats = read(write(workdir, packed[:cut]))
    assert stats.file_errors == 1
    assert error_lines(stats) == [0]
    # the events read before the cut are the file's first events, in order
    assert [e.origin.rsplit(":", 1)[1] for e in events] == [  # type: ignore[union-attr]
        e.origin.rsplit(":", 1)[1] for e in full[: len(events)]]  # type: ignore[union-attr]
    assert [_got(e) for e in events] == [_got(e) for e in full[: len(events)]]


@pytest.mark.parametrize("name", NAMES)
@given(data=st.lists(rows, min_size=1, max_size=5), where=st.floats(0, 1),
       flip=st.integers(1, 255))
@budget(0.3)
def test_corrupt_gzip_is_at_most_one_file_error(workdir: Path, name: str, data: list[Row],
                                                where: float, flip: int) -> None:
    fmt = BY_NAME[name]
    packed = bytearray(gzip.compress(_good_file(fmt, data), mtime=0))
    at = min(len(packed) - 1, int(where * len(packed)))
    assume(at >= 2)  # a broken magic number is "not gzip": covered by the bytes test below
    packed[at] ^= flip
    full, _ = read(write(workdir, gzip.compress(_good_file(fmt, data))))
    events, stats = read(write(workdir, bytes(packed)))
    assert stats.file_errors <= 1
    if stats.errors == 0:
        assert [_got(e) for e in events] == [_got(e) for e in full]


# --- encodings and arbitrary bytes -----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(data=st.lists(rows, min_size=1, max_size=4),
       codec=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]),
       forced=st.booleans())
@budget(0.3)
def test_wide_encodings_are_reported_not_silent(workdir: Path, name: str, data: list[Row],
                                                codec: str, forced: bool) -> None:
    fmt = BY_NAME[name]
    text = _good_file(fmt, data).decode("utf-8")
    events, stats = read(write(workdir, text.encode(codec)), fmt.importer if forced else None)
    # Either keyguard read the rows or it said it could not: never an empty success.
    assert len(events) == len(data) or stats.errors >= 1


@pytest.mark.parametrize("name", ["litellm-csv", "generic-csv"])
@given(data=st.lists(rows, min_size=1, max_size=4),
       word=st.text(st.characters(min_codepoint=0xC0, max_codepoint=0xFF), min_size=1,
                    max_size=8))
@budget(0.5)
def test_latin1_csv_cells_are_read(workdir: Path, name: str, data: list[Row],
                                   word: str) -> None:
    """Spreadsheet exports in Latin-1: a non-UTF-8 cell costs nothing, the key is kept."""
    fmt = BY_NAME[name]
    tagged = [Row(f"{r.key}-{word}", r.time, r.tokens_in, r.tokens_out, r.ip) for r in data]
    body = _good_file(fmt, tagged).decode("utf-8").encode("latin-1")
    events, stats = read(write(workdir, body))
    assert stats.errors == 0
    assert sorted(map(_got, events)) == sorted(_expected(fmt, r) for r in tagged)


@given(data=st.binary(max_size=2048) | st.text(max_size=400).map(str.encode),
       name=st.sampled_from([None, *IMPORTERS.names()]), gz=st.booleans())
@budget(2)
def test_arbitrary_bytes_never_raise(workdir: Path, data: bytes, name: str | None,
                                     gz: bool) -> None:
    path = write(workdir, gzip.compress(data) if gz else data)
    _events, stats = read(path, name)
    assert all(line <= data.count(b"\n") + 1 for line in error_lines(stats))


# --- deep nesting and huge lines (fixed, large inputs) ---------------------------------

DEPTH = 100_000
_GOOD = BY_NAME["litellm-jsonl"]


def _good_line(n: int) -> bytes:
    row = Row("k-0a", datetime(2025, 1, 1, tzinfo=UTC), 1, 1, None)
    return _GOOD.lines([_GOOD.record(row, n)])[0]


@pytest.mark.parametrize("deep", [
    b"[" * DEPTH,
    b'{"a":' * DEPTH,
    b'{"api_key": "k", "startTime": "2025-01-01", "metadata": ' + b"[" * DEPTH,
    b'{"api_key": "k", "startTime": "2025-01-01", "messages": ' + b'{"messages":' * 5000
    + b'"hi"' + b"}" * 5001,
    b'{"api_key": "k", "startTime": "2025-01-01", "messages": ' + b'{"messages":' * 900
    + b'"hi"' + b"}" * 901,
], ids=["array", "object", "field", "messages-5000", "messages-900"])
@pytest.mark.parametrize("gz", [False, True])
def test_deep_nesting_costs_one_line(workdir: Path, deep: bytes, gz: bool) -> None:
    body = b"\n".join([_good_line(1), deep, _good_line(2)]) + b"\n"
    path = write(workdir, gzip.compress(body) if gz else body)
    events, stats = read(path, "litellm")
    assert len(events) + stats.errors == 3
    assert len(events) >= 2
    assert stats.file_errors == 0


def test_a_huge_line_is_one_error_and_memory_stays_bounded(workdir: Path) -> None:
    huge = b'{"api_key": "k", "startTime": "2025-01-01", "x": "' + b"z" * (50 * MAX_RECORD)
    body = b"\n".join([_good_line(1), huge + b'"}', _good_line(2), b"q" * 50 * MAX_RECORD,
                       _good_line(3)]) + b"\n"
    events, stats = read(write(workdir, body), "litellm")
    assert len(events) == 3
    assert error_lines(stats) == [2, 4]
    assert all("larger than" in s or "invalid JSON" in s for s in stats.error_samples)


# --- odd timestamps ------------------------------------------------------------------------

#: Which field, and how the importer reads it (tests/fuzz/formats.py record layouts).
_TIME_FIELDS = {"litellm-jsonl": ("startTime", "auto"), "generic-jsonl": ("ts", "auto"),
                "cloudtrail-jsonl": ("eventTime", "iso"),
                "bedrock-invocation": ("timestamp", "iso"),
                "anthropic-usage": ("data.0.starting_at", "iso"),
                "openai-usage": ("data.0.start_time", "unix")}

_numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, -1, 1_700_000_000, 1_700_000_000_000, 1_700_000_000_000_000,
                     253402300799, 253402300800, -62135596800, 99_999_999_999,
                     100_000_000_000]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_iso = st.builds(
    lambda t, tz, sep, naive: (t.isoformat(sep=sep) if naive
                               else t.replace(tzinfo=tz).isoformat(sep=sep)),
    st.datetimes(min_value=_naive("0001-01-01"), max_value=_naive("9999-12-31T23:59:59")),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
    st.sampled_from(["T", " "]), st.booleans())
_timestamps = st.one_of(
    _numbers, _numbers.map(str), _iso, _iso.map(lambda s: s.replace("+00:00", "Z")),
    st.sampled_from(["", " ", "NaN", "inf", "-inf", "1e400", "0000-00-00T00:00:00",
                     "2025-02-30", "2025-01-01T25:00:00", "9999-12-31T23:59:59-23:59",
                     "0001-01-01T00:00:00+23:59", "\uff12\uff10\uff12\uff15-01-01", "2025-01-01T00:00:00+99:00"]),
    st.text(max_size=30), st.none(), st.booleans(),
)


def _oracle(value: object, how: str) -> datetime | None:
    """The UTC time a correct importer reads from ``value``, or None for "must be an error"."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (how != "iso" and isinstance(value, str)):
        number: float | None
        try:
            number = float(value) if how != "iso" else math.nan
        except ValueError:
            number = None  # a string that is not a number: maybe ISO below
        if number is not None:
            if not math.isfinite(number):
                return None
            seconds = number / 1000 if how == "auto" and abs(number) >= 100_000_000_000 else number
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                return None
    if not isinstance(value, str) or how == "unix":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


@pytest.mark.parametrize("name", sorted(_TIME_FIELDS))
@given(value=_timestamps, row=rows)
@budget(1.5)
def test_odd_timestamps_are_an_utc_event_or_one_error(workdir: Path, name: str, value: object,
                                                      row: Row) -> None:
    fmt = BY_NAME[name]
    field, how = _TIME_FIELDS[name]
    odd = set_path(fmt.record(row, 1), field, value)
    body, first = fmt.file([fmt.record(row, 0), odd, fmt.record(row, 2)])
    events, stats = read(write(workdir, body), fmt.importer)
    want = _oracle(value, how)
    if want is None:
        assert error_lines(stats) == [fmt.line_of(first, 1)]
        assert len(events) == 2
    else:
        assert stats.errors == 0
        times = sorted(e.time for e in events)
        assert want in times
        assert all(t.utcoffset() == timedelta(0) for t in times)


# --- planted keys never reach an error sample -------------------------------------------

_SLOTS = {"litellm-jsonl": ["startTime", "prompt_tokens", "spend", "model", "call_type",
                           "requester_ip_address", "user", "team_id"],
          "litellm-csv": ["startTime", "prompt_tokens", "completion_tokens"],
          "generic-jsonl": ["ts", "tokens_in", "key"],
          "cloudtrail-jsonl": ["eventTime", "userIdentity", "awsRegion", "eventName",
                               "sourceIPAddress"],
          "bedrock-invocation": ["timestamp", "modelId", "operation", "region", "errorCode"],
          "openai-usage": ["data.0.start_time", "data.0.results"],
          "anthropic-usage": ["data.0.starting_at", "data.0.ending_at"]}


@pytest.mark.parametrize("name", sorted(_SLOTS))
@given(kind=st.sampled_from(_SECRET_KINDS), seed=st.integers(0, 2**32), data=st.data())
@budget(0.6)
def test_planted_key_never_in_a_scrubbed_error(workdir: Path, name: str, kind: str, seed: int,
                                               data: st.DataObject) -> None:
    fmt = BY_NAME[name]
    secret = fake_key(kind, random.Random(seed))
    slot = data.draw(st.sampled_from(_SLOTS[name]))
    shape = data.draw(st.sampled_from(["bare", "list", "prefixed", "object"]))
    value: object = {"bare": secret, "list": [secret], "prefixed": f"x:{secret}",
                     "object": {"token": secret}}[shape]
    planted = set_path(fmt.record(data.draw(rows), 0), slot, value)
    junk = f"#{secret} junk".encode()
    records: list[Record | bytes] = [planted, junk] if fmt.line_based else [planted]
    body, _ = fmt.file(records)
    events, stats = read(write(workdir, body), fmt.importer)
    shown = "\n".join(scrub(s) for s in stats.error_samples)
    for start in range(0, len(secret) - 15, 8):
        assert secret[start:start + 16] not in shown, (slot, shape, shown)
    for event in events:  # a key that made it into an event is scrubbed there too
        assert secret[:16] not in repr(event)


@pytest.mark.parametrize("name", [n for n in LINE_BASED if not BY_NAME[n].csv_columns])
@pytest.mark.parametrize("stray", [b"[", b"[1", b'["a",', b"[{}"])
def test_a_stray_array_opening_line_costs_only_itself(workdir: Path, name: str,
                                                      stray: bytes) -> None:
    """A "[" line left in a JSONL log must not swallow the good records after it."""
    fmt = BY_NAME[name]
    good = [Row(f"k-{n}", datetime(2025, 1, 1, n, tzinfo=UTC), n, n, None) for n in range(3)]
    recs: list[Record | bytes] = [fmt.record(good[0], 0), stray, fmt.record(good[1], 1),
                                  fmt.record(good[2], 2)]
    body, first = fmt.file(recs)
    events, stats = read(write(workdir, body), fmt.importer)
    assert sorted(map(_got, events)) == sorted(_expected(fmt, r) for r in good)
    assert fmt.line_of(first, 1) in error_lines(stats)
