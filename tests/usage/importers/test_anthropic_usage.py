"""anthropic-usage importer: the documented messages usage report, pages, nulls, bad shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keyguard.config import UsageConfig
from keyguard.usage.importers import IMPORTERS, UNATTRIBUTED
from tests.usage.conftest import errors_of, events_of, run

DOC_EXAMPLE = {"data": [{"starting_at": "2025-06-01T13:00:00Z", "ending_at": "2025-06-01T14:00:00Z",
                         "results": [
    {"api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "workspace_id": None,
     "model": "claude-sonnet-4-20250514", "service_tier": "standard", "context_window": "0-200k",
     "inference_geo": None, "uncached_input_tokens": 1520,
     "cache_creation": {"ephemeral_5m_input_tokens": 4096, "ephemeral_1h_input_tokens": 0},
     "cache_read_input_tokens": 20480, "output_tokens": 812,
     "server_tool_use": {"web_search_requests": 0}}]}],
    "has_more": True, "next_page": "page_MjAyNS0wNi0wMVQxNDowMDowMFo="}


def _result(**overrides: object) -> dict[str, object]:
    result = dict(DOC_EXAMPLE["data"][0]["results"][0])  # type: ignore[index]
    result.update(overrides)
    return result


def _page(*results: object, start: str = "2025-06-01T13:00:00Z") -> dict[str, object]:
    return {"data": [{"starting_at": start, "ending_at": "2025-06-01T14:00:00Z",
                      "results": list(results)}], "has_more": False, "next_page": None}


def test_documented_example() -> None:
    [event] = events_of(run("anthropic-usage", json.dumps(DOC_EXAMPLE).encode(), path="a.json"))
    assert event.time == datetime(2025, 6, 1, 13, tzinfo=UTC)
    assert event.bucket_end == datetime(2025, 6, 1, 14, tzinfo=UTC)
    assert event.key_id == "apikey_01Rj2N8SVvo6BePZj99NhmiT"
    assert event.model == "claude-sonnet-4-20250514"
    assert event.input_tokens == 1520 + 20480 + 4096
    assert event.cached_tokens == 20480
    assert event.output_tokens == 812
    assert event.requests == 0  # unknown: the report counts tokens only
    assert event.source_format == "anthropic-usage"
    assert event.origin == "a.json:1"


def test_console_usage_without_key_and_workspace() -> None:
    data = json.dumps(_page(_result(api_key_id=None, workspace_id="wrkspc_01"))).encode()
    [event] = events_of(run("anthropic-usage", data))
    assert event.key_id == UNATTRIBUTED
    assert event.principal == "wrkspc_01"


def test_jsonl_of_pages_and_array_of_pages() -> None:
    pages = [_page(_result(model="a")), _page(_result(model="b"), _result(model="c"))]
    jsonl = "\n".join(json.dumps(p) for p in pages).encode()
    assert [e.model for e in events_of(run("anthropic-usage", jsonl))] == ["a", "b", "c"]
    array = json.dumps(pages).encode()
    assert [e.model for e in events_of(run("anthropic-usage", array))] == ["a", "b", "c"]


def test_wrong_shapes_and_types_are_row_errors() -> None:
    bad = [
        {"data": "nope"},
        {"data": [{"starting_at": "2025-06-01T13:00:00Z", "results": {"a": 1}}]},
        _page(_result(output_tokens="many")),
        _page(_result(uncached_input_tokens=-1)),
        _page(_result(), start="last tuesday"),
        _page(_result(cache_creation={"ephemeral_5m_input_tokens": True})),
        [1, 2],
    ]
    data = "\n".join(json.dumps(b) for b in bad).encode() + b"\n" + json.dumps(DOC_EXAMPLE).encode()
    items = run("anthropic-usage", data)
    assert len(events_of(items)) == 1
    reasons = [(e.line, e.reason) for e in errors_of(items)]
    assert reasons == [
        (1, "data: expected a list of buckets with results"),
        (2, "results: expected a list of objects"),
        (3, "output_tokens: expected a non-negative integer, got 'many'"),
        (4, "uncached_input_tokens: expected a non-negative integer, got -1"),
        (5, "starting_at: unparseable timestamp 'last tuesday'"),
        (6, "cache_creation.ephemeral_5m_input_tokens: expected a non-negative integer, got True"),
        (7, "expected a usage bucket object, got int"),
        (7, "expected a usage bucket object, got int"),
    ]


def test_sniff() -> None:
    importer = IMPORTERS.load("anthropic-usage")(UsageConfig())
    assert importer.sniff(json.dumps(DOC_EXAMPLE).encode(), "x")
    assert importer.sniff(b'{"data": [{"starting_at": "x", "results": []}]}', "x")
    assert not importer.sniff(b'{"object": "page", "data": [{"start_time": 1, "results": []}]}', "x")
