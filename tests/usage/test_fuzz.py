"""Hypothesis: arbitrary or mangled bytes give events or line-numbered RowErrors, never an exception."""

from __future__ import annotations

import gzip
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import IMPORTERS, RowError
from keyguard.usage.reader import ImportStats, UsageReader

CONFIG = UsageConfig(max_record_bytes=4096)
NAMES = IMPORTERS.names()

SAMPLES = [
    json.dumps({"Records": [{"eventTime": "2025-03-04T12:31:07Z", "eventName": "InvokeModel",
                             "userIdentity": {"accessKeyId": "AKIAEXAMPLE"},
                             "sourceIPAddress": "203.0.113.1", "eventID": "e1"}]}).encode(),
    (json.dumps({"api_key": "h", "startTime": "2025-06-01T10:00:00", "prompt_tokens": 3,
                 "messages": [{"role": "user", "content": "hi"}]}) + "\n").encode() * 3,
    b"request_id,api_key,startTime,prompt_tokens\nr1,h,2025-06-01 10:00:00,5\n",
    json.dumps({"data": [{"starting_at": "2025-06-01T13:00:00Z", "results": [
        {"api_key_id": "apikey_1", "uncached_input_tokens": 1}]}]}).encode(),
    json.dumps({"data": [{"start_time": 1730419200, "results": [
        {"api_key_id": "key_1", "num_model_requests": 1}]}]}).encode(),
    b"time,key_id\n2025-01-01T00:00:00Z,k\n",
]


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["cut", "insert", "flip"]))
        at = draw(st.integers(0, len(data)))
        if op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=8))
        elif at < len(data):
            data[at] ^= draw(st.integers(1, 255))
    return bytes(data)


_inputs = st.one_of(st.binary(max_size=3000), _mangled(),
                    st.text(alphabet='{}[]",:0123456789aeE.-\n \\u', max_size=400).map(str.encode))


def _check(items: list[UsageEvent | RowError], data: bytes) -> None:
    max_line = data.count(b"\n") + 1
    for item in items:
        assert isinstance(item, UsageEvent | RowError)
        if isinstance(item, RowError):
            assert 0 <= item.line <= max_line, item
            assert "\n" not in item.reason
            assert len(item.reason) < 300
        else:
            assert item.time.utcoffset() == timedelta(0)
            assert item.key_id


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=_inputs)
def test_importer_never_raises(name: str, data: bytes) -> None:
    importer = IMPORTERS.load(name)(CONFIG)
    _check(list(importer.read(io.BytesIO(data), "fuzz")), data)


@settings(max_examples=100, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=_inputs, compress=st.booleans(), cut=st.integers(0, 40))
def test_reader_never_raises(tmp_path: Path, data: bytes, compress: bool, cut: int) -> None:
    payload = gzip.compress(data) if compress else data
    if compress and cut:
        payload = payload[:-cut]
    f = tmp_path / "input"
    f.write_bytes(payload)
    stats = ImportStats()
    events = list(UsageReader(CONFIG).events([f], stats))
    assert stats.events == len(events)
    assert stats.records == stats.events + stats.errors - stats.file_errors + stats.duplicates
    assert stats.files == 1  # named explicitly: counted even when empty or unreadable
    for sample in stats.error_samples:
        assert sample.startswith(f"{f}:")


@pytest.mark.parametrize("name", NAMES)
def test_every_importer_on_hostile_inputs(name: str) -> None:
    hostile = [
        b"",
        b"\x00" * 10_000,
        b"[" * 50_000,
        b"{" * 50_000,
        b'{"a":' * 30_000,
        b"\xef\xbb\xbf" + "café,naïve\n1,2\n".encode("latin-1"),
        b'"' * 9000 + b"\n" + b"x" * 9000,
        b"\n".join([b"{}", b"[]", b"null", b"1e999", b'"\xff\xfe"', b"{\"a\": NaN}"]),
    ]
    importer = IMPORTERS.load(name)(CONFIG)
    for data in hostile:
        _check(list(importer.read(io.BytesIO(data), "h")), data)
