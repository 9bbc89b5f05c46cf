"""The streaming JSON reader: same records as json.loads at any chunk size, bounded, resyncs."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.usage.importers import RowError, _jsonstream
from keyguard.usage.importers._jsonstream import iter_json_records

RECORDS = frozenset({"Records"})

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
_record = st.dictionaries(st.text(max_size=8).filter(lambda k: k != "Records"), _json,
                          max_size=5)


def _records(data: bytes, max_record: int = 1 << 20) -> list[object]:
    out: list[object] = []
    for item in iter_json_records(io.BytesIO(data), "f", RECORDS, max_record):
        assert not isinstance(item, RowError), item
        out.append(item[1])
    return out


@settings(max_examples=150, deadline=None)
@given(records=st.lists(_record, max_size=6), chunk=st.integers(1, 64),
       fast_limit=st.sampled_from([1, 8, 1 << 20]),
       shape=st.sampled_from(["jsonl", "array", "records", "pretty", "concatenated"]))
def test_same_records_as_json_loads_at_any_chunk_size(
    records: list[dict[str, object]], chunk: int, fast_limit: int, shape: str
) -> None:
    if shape == "jsonl":
        text = "\n".join(json.dumps(r) for r in records)
    elif shape == "array":
        text = json.dumps(records)
    elif shape == "records":
        text = json.dumps({"eventVersion": "x", "Records": records, "tail": [1, 2]})
    elif shape == "pretty":
        text = json.dumps({"Records": records}, indent=2)
    else:
        text = "".join(json.dumps(r) for r in records)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_jsonstream, "_CHUNK", chunk)
        mp.setattr(_jsonstream, "_FAST_LIMIT", fast_limit)
        assert _records(text.encode()) == records


def test_record_beyond_the_cap_is_one_error_and_the_next_line_is_read() -> None:
    data = b'{"a": 1}\n{"b": "' + b"x" * 5000 + b'"}\n{"c": 3}\n'
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_jsonstream, "_CHUNK", 256)
        items = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 1000))
    assert items[0] == (1, {"a": 1})
    assert items[1] == RowError("f", 2, "record larger than 1000 bytes")
    assert items[2] == (3, {"c": 3})


def test_unclosed_long_array_yields_every_element_then_one_error() -> None:
    data = b"[" + b'"x",' * 200_000 + b'"y"'  # 800 KB on one line, never closed
    items = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 10_000))
    assert len(items) == 200_002  # 200,001 elements, then the truncation error
    assert items[-2] == (1, "y")
    assert items[-1] == RowError("f", 1, "invalid JSON: expected ',' or ']', got end of file")


def test_memory_stays_bounded_on_a_large_array() -> None:
    import tracemalloc

    data = b"[" + b",".join(b'{"k": "%d", "pad": "%s"}' % (i, b"p" * 200) for i in range(40_000)) + b"]"
    tracemalloc.start()
    try:
        n = sum(1 for _ in iter_json_records(io.BytesIO(data), "f", RECORDS, 1 << 20))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 40_000
    assert len(data) > 8_000_000
    assert peak < 2_000_000  # the input is ~9 MB; the reader holds a window, not the file


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    data = b"[" * 200_000 + b"]" * 200_000 + b'\n{"ok": 1}\n'
    items = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 1 << 20))
    assert items[0] == RowError("f", 1, "JSON nested too deeply")
    assert items[-1] == (2, {"ok": 1})


def test_truncated_records_file_reports_the_cut() -> None:
    full = json.dumps({"Records": [{"i": i} for i in range(50)]}).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_jsonstream, "_FAST_LIMIT", 16)
        items = list(iter_json_records(io.BytesIO(full[:-40]), "f", RECORDS, 1 << 20))
    good = [i for i in items if not isinstance(i, RowError)]
    assert len(good) >= 40
    assert isinstance(items[-1], RowError)
    assert items[-1].reason.startswith("invalid JSON")


def test_scalars_at_top_level_are_errors() -> None:
    items = list(iter_json_records(io.BytesIO(b'{"a": 1}\n42\n"s"\n{"b": 2}'), "f", RECORDS, 100))
    assert items == [(1, {"a": 1}), RowError("f", 2, "expected a JSON object or array"),
                     RowError("f", 3, "expected a JSON object or array"), (4, {"b": 2})]


# --- the orjson JSONL fast path ------------------------------------------------------------

_ODD_LINES = st.sampled_from([
    '{"a": Infinity}',  # json reads it, orjson refuses it
    '{"id": 123456789012345678901234}',  # beyond 64 bits: must stay an exact int
    '{"s": "\\ud800"}',  # a lone surrogate
    '{"a": 1',  # broken
    "garbage",
    "",
    "   ",
    '[1, {"b": 2}]',
    '{"a": 1}{"b": 2}',  # concatenated on one line
    '{\n  "pretty": [1,\n 2]\n}',
    '{"Records": [{"r": 1}, {"r": 2}]}',
    '\u00e9t\u00e9 {"x": 1}',
])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(_record.map(json.dumps), _ODD_LINES), max_size=8),
       bom=st.booleans())
def test_fast_path_yields_exactly_what_the_general_reader_yields(lines: list[str],
                                                                 bom: bool) -> None:
    data = ("\ufeff" if bom else "").encode() + "\n".join(lines).encode()
    fast = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 1 << 20))
    general = list(_jsonstream._general(io.BytesIO(data), "f", RECORDS, 1 << 20, 1))
    assert fast == general


def test_clean_jsonl_never_reaches_the_general_reader() -> None:
    data = b"\xef\xbb\xbf" + b"\n".join(json.dumps({"i": i, "big": 2**63}).encode()
                                        for i in range(50)) + b"\n\n"

    def fail(*_args: object) -> object:
        raise AssertionError("fell back to the general reader")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_jsonstream, "_general", fail)
        items = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 1 << 20))
    assert items == [(i + 1, {"i": i, "big": 2**63}) for i in range(50)]


def test_a_broken_line_is_reported_and_later_lines_keep_their_numbers() -> None:
    data = b'{"a": 1}\n{"b" 2}\n{"c": 3}\n\n{"d": 4}\n'
    items = list(iter_json_records(io.BytesIO(data), "f", RECORDS, 1 << 20))
    assert items[0] == (1, {"a": 1})
    assert isinstance(items[1], RowError)
    assert items[1].line == 2
    assert items[2:] == [(3, {"c": 3}), (5, {"d": 4})]
