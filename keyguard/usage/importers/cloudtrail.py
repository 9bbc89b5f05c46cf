"""AWS CloudTrail log files (``{"Records": [...]}``, also JSONL of records) -> one event per record.

Every record becomes an event, not only Bedrock calls: a stolen AWS key shows up in
``GetCallerIdentity`` or ``ListSecrets`` long before it invokes a model. The key is
``userIdentity.accessKeyId`` (AKIA... long-term, ASIA... STS session); without one (console
sign-in, service events) the principal ARN, then principalId, then the invoking service.

Bedrock ``InvokeModel``/``Converse`` records carry the model in ``requestParameters.modelId``;
CloudTrail has no token counts (those are in Bedrock invocation logs), so tokens stay 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import UNATTRIBUTED, Importer, RowError
from keyguard.usage.importers._common import (
    BadRow,
    get_path,
    is_json,
    opt_str,
    parse_time,
    req_str,
    split_source,
)
from keyguard.usage.importers._jsonstream import iter_json_records

_CONTAINERS = frozenset({"Records"})


class CloudTrailImporter:
    """CloudTrail records (S3 delivery files, gzipped or not, or JSON lines of records)."""

    name: ClassVar[str] = "cloudtrail"
    description: ClassVar[str] = "AWS CloudTrail log files, including Bedrock InvokeModel/Converse"
    priority: ClassVar[int] = 10

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes

    def sniff(self, head: bytes, path: str) -> bool:
        """CloudTrail when the head names its envelope or its per-record fields."""
        if not is_json(head):
            return False
        compact = head.replace(b" ", b"")
        if b'{"Records":' in compact[:64] and b'"Records":[]' in compact[:64]:
            return True
        return b'"eventVersion"' in head and (b'"eventSource"' in head or b'"eventTime"' in head)

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """One event per record; records without an eventTime are bad rows."""
        for item in iter_json_records(stream, path, _CONTAINERS, self._max_record):
            if isinstance(item, RowError):
                yield item
                continue
            line, record = item
            try:
                yield _event(record, f"{path}:{line}")
            except BadRow as bad:
                yield RowError(path, line, bad.reason)


def _event(record: object, origin: str) -> UsageEvent:
    if not isinstance(record, Mapping):
        raise BadRow(f"expected a CloudTrail record object, got {type(record).__name__}")
    if "Records" in record:  # an envelope whose Records is not a list (else it was streamed)
        raise BadRow("Records: expected a list of records")
    identity = record.get("userIdentity")
    if identity is None:
        identity = {}
    if not isinstance(identity, Mapping):
        raise BadRow("userIdentity: expected an object")
    access_key = opt_str(identity.get("accessKeyId"), "userIdentity.accessKeyId")
    arn = opt_str(identity.get("arn"), "userIdentity.arn")
    principal_id = opt_str(identity.get("principalId"), "userIdentity.principalId")
    invoked_by = opt_str(identity.get("invokedBy"), "userIdentity.invokedBy")
    key_id = access_key or arn or principal_id or invoked_by or UNATTRIBUTED
    ip, host = split_source(record.get("sourceIPAddress"), "sourceIPAddress")
    params = record.get("requestParameters")
    model = None
    if isinstance(params, Mapping):
        model = opt_str(params.get("modelId"), "requestParameters.modelId")
    inference_region = get_path(record, "additionalEventData.inferenceRegion")
    return UsageEvent(
        time=parse_time(record.get("eventTime"), "eventTime", "iso"),
        key_id=key_id,
        source_format=CloudTrailImporter.name,
        source_ip=ip,
        source_host=host,
        region=opt_str(record.get("awsRegion"), "awsRegion")
        or opt_str(inference_region, "additionalEventData.inferenceRegion"),
        model=model,
        user_agent=opt_str(record.get("userAgent"), "userAgent"),
        error_code=opt_str(record.get("errorCode"), "errorCode"),
        principal=arn or principal_id or invoked_by,
        account=opt_str(identity.get("accountId"), "userIdentity.accountId")
        or opt_str(record.get("recipientAccountId"), "recipientAccountId"),
        action=req_str(record.get("eventName"), "eventName"),
        service=opt_str(record.get("eventSource"), "eventSource"),
        event_id=opt_str(record.get("eventID"), "eventID"),
        origin=origin,
    )


PLUGIN: type[Importer] = CloudTrailImporter
