"""litellm importer: spend-log rows in JSONL, JSON array and CSV; prompts never stored; round trip."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage import prompt
from keyguard.usage.importers import IMPORTERS
from keyguard.usage.prompt_markers import PromptClassifier
from tests.usage.conftest import errors_of, events_of, run

KEY_HASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
SECRET_PROMPT = "Summarise the contract for ACME-4711 and the salary table"


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": "chatcmpl-9xYz", "call_type": "acompletion", "api_key": KEY_HASH,
        "spend": 0.00042, "total_tokens": 540, "prompt_tokens": 500, "completion_tokens": 40,
        "startTime": "2025-06-01T10:00:00.120", "endTime": "2025-06-01T10:00:01.980",
        "model": "gpt-4o-mini", "model_group": "gpt-4o-mini", "user": "", "team_id": "team-ml",
        "requester_ip_address": "198.51.100.7",
        "metadata": {"user_api_key_alias": "etl-prod", "user_api_key_user_id": "alice",
                     "additional_usage_values": {"cache_read_input_tokens": 300}},
        "request_tags": ["job:nightly"],
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
    }
    row.update(overrides)
    return row


def _jsonl(*rows: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_documented_row_maps_every_field() -> None:
    [event] = events_of(run("litellm", _jsonl(_row()), path="spend.jsonl"))
    assert event.time == datetime(2025, 6, 1, 10, 0, 0, 120000, tzinfo=UTC)
    assert event.key_id == KEY_HASH
    assert event.key_alias == "etl-prod"
    assert event.model == "gpt-4o-mini"
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (500, 40, 300)
    assert event.source_ip == "198.51.100.7"
    assert event.principal == "alice"
    assert event.account == "team-ml"
    assert event.action == "acompletion"
    assert event.event_id == "chatcmpl-9xYz"
    assert event.cost_usd == 0.00042
    assert event.error_code is None
    assert event.prompt_chars == len(SECRET_PROMPT)
    assert event.prompt_fingerprint == prompt.fingerprint(SECRET_PROMPT)
    assert event.origin == "spend.jsonl:1"


def test_prompt_text_is_never_in_the_event() -> None:
    [event] = events_of(run("litellm", _jsonl(_row())))
    assert "contract" not in repr(event)
    assert "ACME" not in repr(event)


def test_prompt_from_proxy_server_request_and_content_parts() -> None:
    row = _row(messages={}, proxy_server_request={
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"},
                                                   {"type": "image_url", "image_url": "x"}]}],
        "headers": {"user-agent": "OpenAI/Python 1.40"}})
    [event] = events_of(run("litellm", _jsonl(row)))
    assert event.prompt_fingerprint == prompt.fingerprint("hello there")
    assert event.user_agent == "OpenAI/Python 1.40"
    [bare] = events_of(run("litellm", _jsonl(_row(messages={}))))
    assert bare.prompt_fingerprint is None
    assert bare.prompt_chars is None


def test_ip_from_metadata_failure_status_and_key_from_metadata() -> None:
    row = _row(requester_ip_address=None, api_key=None, status="failure",
               metadata={"requester_ip_address": "2001:db8::7", "user_api_key": "hash-2",
                         "error_information": {"error_code": "429"}})
    [event] = events_of(run("litellm", _jsonl(row)))
    assert event.source_ip == "2001:db8::7"
    assert event.key_id == "hash-2"
    assert event.error_code == "429"


def test_json_array_and_v2_page_shapes() -> None:
    array = json.dumps([_row(request_id="a"), _row(request_id="b")]).encode()
    assert [e.event_id for e in events_of(run("litellm", array))] == ["a", "b"]
    page = json.dumps({"data": [_row(request_id="c")], "total": 1, "page": 1}).encode()
    assert [e.event_id for e in events_of(run("litellm", page))] == ["c"]


def test_csv_export_with_json_string_columns_bom_and_latin1() -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["request_id", "api_key", "startTime", "model", "prompt_tokens",
                     "completion_tokens", "metadata", "messages"])
    writer.writerow(["r1", KEY_HASH, "2025-06-01 10:00:00", "gpt-4o", "12", "3",
                     json.dumps({"user_api_key_alias": "café"}),
                     json.dumps([{"role": "user", "content": "hi"}])])
    data = b"\xef\xbb\xbf" + out.getvalue().encode("latin-1")
    [event] = events_of(run("litellm", data))
    assert event.key_alias == "café"
    assert event.time == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert (event.input_tokens, event.output_tokens) == (12, 3)
    assert event.prompt_fingerprint == prompt.fingerprint("hi")


def test_broken_lines_among_good_ones_are_counted_with_line_numbers() -> None:
    data = (_jsonl(_row(request_id="1")) + b'{"api_key": "x", broken\n'
            + _jsonl(_row(request_id="2"), _row(request_id="3", prompt_tokens=-4),
                     _row(request_id="4", startTime="not a time"),
                     _row(request_id="5", prompt_tokens="12.5"), _row(request_id="6")))
    items = run("litellm", data)
    assert [e.event_id for e in events_of(items)] == ["1", "2", "6"]
    assert [(e.line, e.reason.split(":")[0]) for e in errors_of(items)] == [
        (2, "invalid JSON"), (4, "prompt_tokens"), (5, "startTime"), (6, "prompt_tokens")]


def test_over_long_line_is_one_error_and_reading_goes_on() -> None:
    config = UsageConfig(max_record_bytes=10_000)
    huge = _row(request_id="big", messages=[{"role": "user", "content": "x" * 50_000}])
    items = run("litellm", _jsonl(_row(request_id="a"), huge, _row(request_id="b")), config)
    assert [e.event_id for e in events_of(items)] == ["a", "b"]
    [error] = errors_of(items)
    assert error.line == 2
    assert "larger than 10000 bytes" in error.reason


def test_over_long_csv_line_is_one_error() -> None:
    config = UsageConfig(max_record_bytes=1000)
    header = "request_id,api_key,startTime\n"
    data = (header + "a,k,2025-01-01T00:00:00\n" + "b,k," + "9" * 5000 + "\n"
            + "c,k,2025-01-01T00:00:01\n").encode()
    items = run("litellm", data, config)
    assert [e.event_id for e in events_of(items)] == ["a", "c"]
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (3, "line longer than 1000 bytes")]


def test_sniff() -> None:
    importer = IMPORTERS.load("litellm")(UsageConfig())
    assert importer.sniff(_jsonl(_row()), "x")
    assert importer.sniff(b"request_id,api_key,startTime,spend\n", "x.csv")
    assert not importer.sniff(b'{"Records": [{"eventVersion": "1.08"}]}', "x")
    assert not importer.sniff(b"time,key_id\n", "x.csv")


# --- round trip: generated rows -> JSONL -> parse -> the same events ---------------------

_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and s != "")
# Naive datetimes on purpose: LiteLLM writes startTime without a zone (UTC).
_times = st.datetimes(min_value=datetime(2000, 1, 1),  # noqa: DTZ001
                      max_value=datetime(2100, 1, 1)).map(  # noqa: DTZ001
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_counts = st.integers(min_value=0, max_value=10**9)
_ips = st.one_of(st.none(), st.ip_addresses().map(str))


@st.composite
def _spend_rows(draw: st.DrawFn) -> tuple[dict[str, object], UsageEvent]:
    start = draw(_times)
    key = draw(_text)
    alias = draw(st.one_of(st.none(), _text))
    model = draw(_text)
    tokens = (draw(_counts), draw(_counts), draw(_counts))
    ip = draw(_ips)
    text = draw(st.one_of(st.none(), st.text(max_size=200).filter(bool)))
    request_id = draw(_text)
    row: dict[str, object] = {
        "request_id": request_id, "api_key": key, "model": model, "call_type": "acompletion",
        "startTime": start.isoformat(timespec="milliseconds"),
        "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
        "requester_ip_address": ip,
        "metadata": {"user_api_key_alias": alias,
                     "additional_usage_values": {"cache_read_input_tokens": tokens[2]}},
        "messages": [{"role": "user", "content": text}] if text else {},
    }
    from keyguard.usage.importers._common import split_source

    source_ip, _host = split_source(ip, "ip")
    expected = UsageEvent(
        time=start.replace(tzinfo=UTC), key_id=key, source_format="litellm", key_alias=alias,
        source_ip=source_ip, model=model, input_tokens=tokens[0], output_tokens=tokens[1],
        cached_tokens=tokens[2], action="acompletion", event_id=request_id,
        prompt_fingerprint=prompt.fingerprint(text) if text else None,
        prompt_chars=len(text) if text else None,
        prompt_markers=PromptClassifier().markers(text) if text else None,
    )
    return row, expected


@settings(max_examples=60, deadline=None)
@given(st.lists(_spend_rows(), max_size=8))
def test_round_trip_jsonl(pairs: list[tuple[dict[str, object], UsageEvent]]) -> None:
    data = _jsonl(*(row for row, _ in pairs))
    items = run("litellm", data, path="rt.jsonl")
    assert errors_of(items) == []
    got = [_without_origin(e) for e in events_of(items)]
    assert got == [expected for _, expected in pairs]
    assert [e.origin for e in events_of(items)] == [f"rt.jsonl:{i + 1}" for i in range(len(pairs))]


def _without_origin(event: UsageEvent) -> UsageEvent:
    import dataclasses

    return dataclasses.replace(event, origin=None)


def test_naive_start_time_is_utc_and_offsets_convert() -> None:
    rows = _jsonl(_row(startTime="2025-06-01T10:00:00"), _row(startTime="2025-06-01T12:00:00+02:00"))
    a, b = events_of(run("litellm", rows))
    assert a.time == b.time == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert a.time.utcoffset() == timedelta(0)
