"""openai-usage importer: completions usage buckets, unix times, request counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keyguard.config import UsageConfig
from keyguard.usage.importers import IMPORTERS, UNATTRIBUTED
from tests.usage.conftest import errors_of, events_of, run

DOC_EXAMPLE = {"object": "page", "data": [{"object": "bucket", "start_time": 1730419200,
                                           "end_time": 1730505600, "results": [
    {"object": "organization.usage.completions.result", "input_tokens": 1000,
     "output_tokens": 500, "input_cached_tokens": 800, "num_model_requests": 5,
     "project_id": "proj_abc", "user_id": None, "api_key_id": "key_abc",
     "model": "gpt-4o-mini-2024-07-18", "batch": False}]}],
    "has_more": True, "next_page": "AAAAAGdGxdEiJdKOAAAAAGcqsYA="}


def test_documented_example() -> None:
    [event] = events_of(run("openai-usage", json.dumps(DOC_EXAMPLE).encode()))
    assert event.time == datetime(2024, 11, 1, tzinfo=UTC)
    assert event.bucket_end == datetime(2024, 11, 2, tzinfo=UTC)
    assert event.key_id == "key_abc"
    assert event.account == "proj_abc"
    assert event.principal is None
    assert event.model == "gpt-4o-mini-2024-07-18"
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (1000, 500, 800)
    assert event.requests == 5
    assert event.source_format == "openai-usage"


def test_ungrouped_rows_are_unattributed_and_missing_optionals_are_zero() -> None:
    page = {"data": [{"object": "bucket", "start_time": 1730419200, "end_time": None,
                      "results": [{"input_tokens": 7, "num_model_requests": 1}]}]}
    [event] = events_of(run("openai-usage", json.dumps(page).encode()))
    assert event.key_id == UNATTRIBUTED
    assert event.bucket_end is None
    assert (event.input_tokens, event.cached_tokens, event.output_tokens) == (7, 0, 0)


def test_bad_values() -> None:
    def page(**result: object) -> str:
        return json.dumps({"data": [{"object": "bucket", "start_time": result.pop("t", 1),
                                     "results": [result]}]})
    data = "\n".join([page(num_model_requests=1.5), page(t="2024-11-01"), page(t=10**20),
                      page(input_tokens=None, num_model_requests=2)]).encode()
    items = run("openai-usage", data)
    assert [e.requests for e in events_of(items)] == [2]
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (1, "num_model_requests: expected a non-negative integer, got 1.5"),
        (2, "start_time: unparseable timestamp '2024-11-01'"),
        (3, "start_time: timestamp out of range 100000000000000000000"),
    ]


def test_sniff() -> None:
    importer = IMPORTERS.load("openai-usage")(UsageConfig())
    assert importer.sniff(json.dumps(DOC_EXAMPLE).encode(), "x")
    assert not importer.sniff(b'{"data": [{"starting_at": "x", "results": []}]}', "x")
