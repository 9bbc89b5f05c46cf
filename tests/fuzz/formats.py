"""Writers of every usage export format from plain row specs, for the importer fuzz tests.

Each :class:`Format` turns generated :class:`Row` values into the bytes of one export
(LiteLLM JSONL/JSON/CSV, CloudTrail, Bedrock invocation logs, Anthropic and OpenAI usage
pages, a generic CSV/JSONL read through a column mapping) and knows how to break one
record (a required field deleted, a field of the wrong type), so a test can mix good and
bad records and know exactly which lines must fail.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyguard.config import UsageConfig, UsageGenericConfig

#: A small record cap, so "huge line" cases stay cheap; every good record is far below it.
MAX_RECORD = 4096
CONFIG = UsageConfig(
    max_record_bytes=MAX_RECORD,
    max_error_samples=10_000,
    geo=False,
    generic=UsageGenericConfig(time="ts", key="key", ip="client.ip", input_tokens="tokens_in",
                               output_tokens="tokens_out", event_id="id"),
)


@dataclass(frozen=True)
class Row:
    """What one good record says; every format writes it its own way."""

    key: str
    time: datetime  # aware
    tokens_in: int
    tokens_out: int
    ip: str | None


Record = dict[str, object]


@dataclass(frozen=True)
class Format:
    """One export layout: a record writer, a file writer and two ways to break a record."""

    name: str  # a label for test ids
    importer: str  # the importer that must read it (and that auto-detection must pick)
    record: Callable[[Row, int], Record]  # row, index -> the JSON object (or CSV dict)
    required: tuple[str, ...]  # dotted paths whose absence makes the record bad
    wrong_types: tuple[tuple[str, object], ...]  # dotted path, a value that makes it bad
    csv_columns: tuple[str, ...] = ()  # non-empty: the file is CSV with this header
    envelope: str | None = None  # "Records": one {"Records": [...]} object per file
    array: bool = False  # one pretty JSON array, one record per line
    key_of: Callable[[Row], str] = lambda row: row.key  # the event's expected key id

    def line_of(self, first: int, index: int) -> int:
        """The line the record at ``index`` is reported on (an envelope is one line)."""
        return first if self.envelope is not None else first + index

    @property
    def line_based(self) -> bool:
        """One record per line with nothing around it: a broken line costs only itself."""
        return self.envelope is None and not self.array

    def lines(self, records: Sequence[Record | bytes]) -> list[bytes]:
        """One line per record (bytes are written as they are: broken lines)."""
        out: list[bytes] = []
        for rec in records:
            if isinstance(rec, bytes):
                out.append(rec)
            elif self.csv_columns:
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow(
                    ["" if rec.get(c) is None else _cell(rec.get(c)) for c in self.csv_columns])
                out.append(buf.getvalue().encode())
            else:
                out.append(json.dumps(rec).encode())
        return out

    def file(self, records: Sequence[Record | bytes]) -> tuple[bytes, int]:
        """The file's bytes and the line number of its first record."""
        body = self.lines(records)
        if self.csv_columns:
            return b"\n".join([",".join(self.csv_columns).encode(), *body]) + b"\n", 2
        if self.envelope is not None:
            # One line, as S3 delivers CloudTrail: every record is on line 1.
            return b'{"' + self.envelope.encode() + b'": [' + b", ".join(body) + b"]}\n", 1
        if self.array:
            return b"[\n" + b",\n".join(body) + b"\n]\n", 2
        return b"".join(line + b"\n" for line in body), 1


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def iso(t: datetime) -> str:
    """ISO-8601 with the row's own offset (the importers must convert it to UTC)."""
    return t.isoformat()


def set_path(record: Record, dotted: str, value: object) -> Record:
    """A copy of ``record`` with ``a.0.b`` set, or deleted when ``value`` is ``DELETE``."""
    copy: Record = json.loads(json.dumps(record))
    parts = dotted.split(".")
    node: object = copy
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    assert isinstance(node, dict)
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return copy


DELETE = object()


def _litellm(row: Row, n: int) -> Record:
    return {"request_id": f"req-{n}", "call_type": "acompletion", "api_key": row.key,
            "startTime": iso(row.time), "model": "gpt-x", "prompt_tokens": row.tokens_in,
            "completion_tokens": row.tokens_out, "requester_ip_address": row.ip,
            "metadata": {"user_api_key_alias": "team-a"},
            "messages": [{"role": "user", "content": f"question {n}"}]}


def _cloudtrail(row: Row, n: int) -> Record:
    return {"eventVersion": "1.09", "eventTime": iso(row.time).replace("+00:00", "Z"),
            "eventSource": "bedrock.amazonaws.com", "eventName": "InvokeModel",
            "awsRegion": "us-east-1", "sourceIPAddress": row.ip or "bedrock.amazonaws.com",
            "userIdentity": {"type": "IAMUser", "accessKeyId": row.key},
            "requestParameters": {"modelId": "anthropic.claude"}, "eventID": f"ev-{n}"}


ARN = "arn:aws:iam::123456789012:user/"


def _bedrock(row: Row, n: int) -> Record:
    return {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
            "timestamp": iso(row.time), "accountId": "123456789012",
            "identity": {"arn": f"{ARN}{row.key}"},
            "region": "us-east-1", "requestId": f"b-{n}", "operation": "InvokeModel",
            "modelId": "anthropic.claude", "input": {"inputTokenCount": row.tokens_in},
            "output": {"outputTokenCount": row.tokens_out}}


def _anthropic(row: Row, n: int) -> Record:
    return {"data": [{"starting_at": iso(row.time),
                      "ending_at": iso(row.time + timedelta(hours=1)),
                      "results": [{"api_key_id": row.key, "uncached_input_tokens": row.tokens_in,
                                   "cache_read_input_tokens": 0, "output_tokens": row.tokens_out,
                                   "model": "claude-x"}]}],
            "has_more": False, "next_page": None}


def _openai(row: Row, n: int) -> Record:
    start = int(row.time.timestamp())
    return {"object": "page", "data": [{
        "object": "bucket", "start_time": start, "end_time": start + 3600,
        "results": [{"object": "organization.usage.completions.result", "api_key_id": row.key,
                     "input_tokens": row.tokens_in, "output_tokens": row.tokens_out,
                     "num_model_requests": 1}]}], "has_more": False}


def _generic(row: Row, n: int) -> Record:
    return {"ts": iso(row.time), "key": row.key, "id": f"g-{n}",
            "tokens_in": row.tokens_in, "tokens_out": row.tokens_out,
            "client": {"ip": row.ip}}


def _generic_flat(row: Row, n: int) -> Record:
    flat = _generic(row, n)
    flat["client.ip"] = row.ip
    del flat["client"]
    return flat


_LITELLM_BAD = (("startTime", [2025]), ("prompt_tokens", -3), ("startTime", "yesterday"),
                ("completion_tokens", "many"), ("spend", "NaN"))

FORMATS: tuple[Format, ...] = (
    Format("litellm-jsonl", "litellm", _litellm, ("api_key", "startTime"), _LITELLM_BAD),
    Format("litellm-json", "litellm", _litellm, ("api_key", "startTime"), _LITELLM_BAD,
           array=True),
    Format("litellm-csv", "litellm", _litellm, ("startTime",),
           (("startTime", "yesterday"), ("prompt_tokens", -3), ("completion_tokens", "1.5")),
           csv_columns=("request_id", "api_key", "startTime", "model", "prompt_tokens",
                        "completion_tokens", "requester_ip_address", "metadata")),
    Format("cloudtrail", "cloudtrail", _cloudtrail, ("eventTime",),
           (("eventTime", 1700000000), ("userIdentity", "root"), ("eventTime", "2025-13-01")),
           envelope="Records"),
    Format("cloudtrail-jsonl", "cloudtrail", _cloudtrail, ("eventTime",),
           (("eventTime", None), ("userIdentity", [1]), ("awsRegion", {"a": 1}))),
    Format("bedrock-invocation", "bedrock-invocation", _bedrock, ("timestamp",),
           (("timestamp", "0000-00-00"), ("input", {"inputTokenCount": -1}),
            ("modelId", ["m"])), key_of=lambda row: f"{ARN}{row.key}"),
    Format("anthropic-usage", "anthropic-usage", _anthropic, ("data.0.starting_at",),
           (("data.0.results", "none"), ("data.0.starting_at", 1e400),
            ("data.0.ending_at", "later"))),
    Format("openai-usage", "openai-usage", _openai, ("data.0.start_time",),
           (("data.0.start_time", "2025-01-01T00:00:00Z"), ("data.0.results", [1]),
            ("data.0.end_time", True))),
    Format("generic-jsonl", "generic", _generic, ("ts", "key"),
           (("ts", "soon"), ("key", {"id": 1}), ("tokens_in", 2.5))),
    Format("generic-csv", "generic", _generic_flat, ("ts", "key"),
           (("ts", "soon"), ("tokens_in", "-1"), ("tokens_out", "x")),
           csv_columns=("ts", "key", "id", "tokens_in", "tokens_out", "client.ip")),
)
BY_NAME = {f.name: f for f in FORMATS}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
