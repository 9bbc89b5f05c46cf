"""bedrock-invocation importer: the documented invocation-log record, prompts fingerprinted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keyguard.config import UsageConfig
from keyguard.usage import prompt
from keyguard.usage.importers import IMPORTERS, UNATTRIBUTED
from tests.usage.conftest import errors_of, events_of, run

ARN = "arn:aws:sts::111122223333:assumed-role/app/sess"


def _record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": "2025-06-26T12:00:00Z", "accountId": "111122223333",
        "identity": {"arn": ARN}, "region": "us-east-1", "requestId": "a1b2c3d4",
        "operation": "Converse", "modelId": "anthropic.claude-sonnet-4-20250514-v1:0",
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user",
                                                  "content": [{"text": "draft a memo"}]}]},
                  "inputTokenCount": 1500, "cacheReadInputTokenCount": 200},
        "output": {"outputContentType": "application/json", "outputBodyJson": {},
                   "outputTokenCount": 500},
    }
    record.update(overrides)
    return record


def test_documented_record() -> None:
    data = (json.dumps(_record()) + "\n").encode()
    [event] = events_of(run("bedrock-invocation", data))
    assert event.time == datetime(2025, 6, 26, 12, tzinfo=UTC)
    assert event.key_id == event.principal == ARN
    assert event.account == "111122223333"
    assert event.model == "anthropic.claude-sonnet-4-20250514-v1:0"
    assert (event.input_tokens, event.cached_tokens, event.output_tokens) == (1700, 200, 500)
    assert event.action == "Converse"
    assert event.event_id == "a1b2c3d4"
    assert event.source_ip is None
    assert event.prompt_fingerprint == prompt.fingerprint("draft a memo")
    assert "memo" not in repr(event)


def test_missing_identity_and_bad_counts() -> None:
    data = "\n".join([json.dumps(_record(identity=None, input={"inputBodyS3Path": "s3://b/k"})),
                      json.dumps(_record(output={"outputTokenCount": "lots"}))]).encode()
    items = run("bedrock-invocation", data)
    [event] = events_of(items)
    assert event.key_id == UNATTRIBUTED
    assert event.prompt_fingerprint is None
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (2, "output.outputTokenCount: expected a non-negative integer, got 'lots'")]


def test_sniff() -> None:
    importer = IMPORTERS.load("bedrock-invocation")(UsageConfig())
    assert importer.sniff(json.dumps(_record()).encode(), "x")
    assert not importer.sniff(b'{"Records": []}', "x")
