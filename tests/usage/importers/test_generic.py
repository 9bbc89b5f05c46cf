"""generic importer: CSV and JSONL through the [usage.generic] mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keyguard.config import UsageConfig, UsageGenericConfig, parse_config
from keyguard.usage.importers import IMPORTERS
from tests.usage.conftest import errors_of, events_of, run

MAPPING = UsageGenericConfig(time="ts", key="api_key_id", ip="client_ip", model="model",
                             input_tokens="in", output_tokens="out", requests="n",
                             key_alias="meta.alias", user_agent="ua")
CONFIG = UsageConfig(generic=MAPPING)


def test_csv_rows_map_through_the_config() -> None:
    data = (b"ts,api_key_id,client_ip,model,in,out,n,ua\n"
            b"2025-01-02T03:04:05Z,k1,203.0.113.9,m,10,2,3,curl/8\n"
            b"1735787045,k2,,m,,,,\n")
    first, second = events_of(run("generic", data, CONFIG, path="g.csv"))
    assert first.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (first.key_id, first.source_ip, first.model) == ("k1", "203.0.113.9", "m")
    assert (first.input_tokens, first.output_tokens, first.requests) == (10, 2, 3)
    assert first.user_agent == "curl/8"
    assert first.origin == "g.csv:2"
    assert second.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert second.requests == 0  # mapped but blank: unknown
    assert second.source_ip is None


def test_jsonl_with_dotted_paths() -> None:
    rows = [{"ts": "2025-01-02T03:04:05+01:00", "api_key_id": "k", "meta": {"alias": "ops"},
             "client_ip": "lb.internal"}]
    [event] = events_of(run("generic", "\n".join(map(json.dumps, rows)).encode(), CONFIG))
    assert event.time == datetime(2025, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert event.key_alias == "ops"
    assert (event.source_ip, event.source_host) == (None, "lb.internal")


def test_unmapped_requests_default_to_one_and_time_format_unix_ms() -> None:
    config = UsageConfig(generic=UsageGenericConfig(time="t", key="k", time_format="unix-ms"))
    [event] = events_of(run("generic", b"t,k\n1735787045000,key\n", config))
    assert event.requests == 1
    assert event.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_csv_with_wrong_columns_is_one_error_for_the_file() -> None:
    items = run("generic", b"\xef\xbb\xbfwhen,who\n2025-01-01,k\n" * 3, CONFIG)
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (1, "not a CSV with column(s) ts, api_key_id")]
    assert events_of(items) == []


def test_bom_header_and_bad_rows() -> None:
    data = ("\ufeffts,api_key_id,in\n"
            "2025-01-01T00:00:00Z,k,1\n"
            "garbage,k,1\n"
            "2025-01-01T00:00:00Z,,1\n"
            "2025-01-01T00:00:00Z,k,1,extra\n"
            "2025-01-01T00:00:00Z,k,1e3\n").encode()
    items = run("generic", data, CONFIG)
    assert [e.input_tokens for e in events_of(items)] == [1, 1000]
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (3, "ts: unparseable timestamp 'garbage'"),
        (4, "api_key_id: missing"),
        (5, "expected 3 columns, got 4"),
    ]


def test_mapping_comes_from_keyguard_toml() -> None:
    config = parse_config({"usage": {"generic": {"time": "ts", "key": "api_key_id",
                                                 "ip": "client_ip"}}}, None)
    [event] = events_of(run("generic", b"ts,api_key_id,client_ip\n2025-01-01,k,8.8.8.8\n",
                            config.usage))
    assert event.source_ip == "8.8.8.8"


def test_sniff_needs_both_mapped_columns() -> None:
    importer = IMPORTERS.load("generic")(CONFIG)
    assert importer.sniff(b"ts,api_key_id,x\n", "a.csv")
    assert importer.sniff(b'{"ts": 1, "api_key_id": "k"}\n', "a.jsonl")
    assert not importer.sniff(b"ts,key\n", "a.csv")
