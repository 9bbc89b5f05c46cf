"""cloudtrail importer: field mapping on documented shapes, Bedrock calls, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from keyguard.config import UsageConfig
from keyguard.usage.importers import IMPORTERS, UNATTRIBUTED
from tests.usage.conftest import errors_of, events_of, run

KEY = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret


def _record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEID0000000",
                         "arn": "arn:aws:iam::111122223333:user/ci-bot",
                         "accountId": "111122223333", "accessKeyId": KEY, "userName": "ci-bot"},
        "eventTime": "2025-03-04T12:31:07Z", "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue", "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": {"secretId": "prod/anthropic/api-key"}, "responseElements": None,
        "requestID": "7c1b", "eventID": "b2f0-1", "readOnly": True, "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": "111122223333",
        "eventCategory": "Management",
    }
    record.update(overrides)
    return record


def _file(*records: object) -> bytes:
    return json.dumps({"Records": list(records)}).encode()


def test_documented_record_maps_every_field() -> None:
    [event] = events_of(run("cloudtrail", _file(_record()), path="ct.json"))
    assert event.time == datetime(2025, 3, 4, 12, 31, 7, tzinfo=UTC)
    assert event.key_id == KEY
    assert event.source_format == "cloudtrail"
    assert event.principal == "arn:aws:iam::111122223333:user/ci-bot"
    assert event.account == "111122223333"
    assert event.source_ip == "203.0.113.10"
    assert event.source_host is None
    assert event.region == "us-east-1"
    assert event.user_agent == "aws-cli/2.15.0 Python/3.11"
    assert event.action == "GetSecretValue"
    assert event.service == "secretsmanager.amazonaws.com"
    assert event.event_id == "b2f0-1"
    assert event.error_code is None
    assert event.requests == 1
    assert event.origin == "ct.json:1"


def test_bedrock_invoke_model_keeps_model_and_error() -> None:
    record = _record(eventSource="bedrock.amazonaws.com", eventName="InvokeModel",
                     requestParameters={"modelId": "anthropic.claude-sonnet-4-20250514-v1:0"},
                     errorCode="AccessDeniedException", eventID="b-2")
    converse = _record(eventSource="bedrock.amazonaws.com", eventName="Converse",
                       requestParameters={"modelId": "amazon.nova-pro-v1:0"}, eventID="b-3")
    invoke, conv = events_of(run("cloudtrail", _file(record, converse)))
    assert invoke.model == "anthropic.claude-sonnet-4-20250514-v1:0"
    assert invoke.error_code == "AccessDeniedException"
    assert invoke.action == "InvokeModel"
    assert conv.model == "amazon.nova-pro-v1:0"
    assert conv.action == "Converse"


def test_service_dns_names_are_hosts_not_ips() -> None:
    records = [
        _record(sourceIPAddress="AWS Internal", eventID="1"),
        _record(sourceIPAddress="lambda.amazonaws.com", eventID="2"),
        _record(sourceIPAddress="2001:db8::1", eventID="3"),
        _record(sourceIPAddress="::ffff:198.51.100.7", eventID="4"),
    ]
    events = events_of(run("cloudtrail", _file(*records)))
    assert [(e.source_ip, e.source_host) for e in events] == [
        (None, "AWS Internal"), (None, "lambda.amazonaws.com"), ("2001:db8::1", None),
        ("198.51.100.7", None),
    ]


def test_key_falls_back_to_arn_then_principal_then_service() -> None:
    no_key = _record(userIdentity={"type": "IAMUser", "arn": "arn:aws:iam::1:user/a",
                                   "principalId": "AIDA1"})
    only_principal = _record(userIdentity={"type": "IAMUser", "principalId": "AIDA2"})
    service = _record(userIdentity={"accountId": "1", "invokedBy": "ec2.amazonaws.com"})
    nothing = _record(userIdentity=None)
    events = events_of(run("cloudtrail", _file(no_key, only_principal, service, nothing)))
    assert [e.key_id for e in events] == [
        "arn:aws:iam::1:user/a", "AIDA2", "ec2.amazonaws.com", UNATTRIBUTED]


def test_bad_records_are_rows_with_reasons_and_the_rest_is_read() -> None:
    data = _file(_record(eventID="ok-1"), 5, _record(eventTime="yesterday"),
                 _record(eventName=None), _record(userIdentity="root"),
                 _record(eventTime="2025-13-01T00:00:00Z"), _record(eventID="ok-2"))
    items = run("cloudtrail", data)
    assert [e.event_id for e in events_of(items)] == ["ok-1", "ok-2"]
    reasons = [e.reason for e in errors_of(items)]
    assert reasons == [
        "expected a CloudTrail record object, got int",
        "eventTime: unparseable timestamp 'yesterday'",
        "eventName: missing",
        "userIdentity: expected an object",
        "eventTime: unparseable timestamp '2025-13-01T00:00:00Z'",
    ]


def test_jsonl_of_records_and_pretty_printed_files_give_line_numbers() -> None:
    jsonl = "\n".join(json.dumps(_record(eventID=str(i))) for i in range(3)).encode()
    assert [e.origin for e in events_of(run("cloudtrail", jsonl))] == ["f:1", "f:2", "f:3"]
    pretty = json.dumps([_record(eventID="a"), _record(eventID="b")], indent=2).encode()
    lines = [str(e.origin) for e in events_of(run("cloudtrail", pretty))]
    assert lines[0] == "f:2"
    assert int(lines[1].split(":")[1]) > 10


def test_sniff() -> None:
    importer = IMPORTERS.load("cloudtrail")(UsageConfig())
    assert importer.sniff(_file(_record()), "x")
    assert importer.sniff(b'{"Records": []}', "x")
    assert importer.sniff(json.dumps(_record()).encode(), "x.jsonl")
    assert not importer.sniff(b'{"data": [{"starting_at": "x", "results": []}]}', "x")
    assert not importer.sniff(b"eventVersion,eventSource\n", "x.csv")


def test_envelope_of_the_wrong_shape() -> None:
    items = run("cloudtrail", b'{"Records": {"eventTime": "2025-03-04T12:31:07Z"}}\n'
                              b'{"Records": "x"}\n{"Records": [[1]]}\n')
    assert [(e.line, e.reason) for e in errors_of(items)] == [
        (1, "Records: expected a list of records"),
        (2, "Records: expected a list of records"),
        (3, "expected a CloudTrail record object, got list"),
    ]
