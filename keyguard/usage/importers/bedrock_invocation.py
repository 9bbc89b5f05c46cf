"""Amazon Bedrock model invocation logs (S3 ``BedrockModelInvocationLogs/``, JSON lines) -> events.

These logs have tokens and prompts but **no source IP and no access key id**: the caller
is ``identity.arn``, which becomes ``key_id`` and ``principal``. Join with CloudTrail on
``event_id`` (invocation ``requestId`` == CloudTrail ``requestID``; common practice, not a
documented key) to get the IP. ``input_tokens`` adds the cache read/write counts to
``inputTokenCount``, assuming Bedrock reports them apart as Anthropic's API does (the AWS
docs do not say; see provider-formats.md §3.7). Prompt bodies (``inputBodyJson``) are
fingerprinted, never stored; bodies offloaded to S3 (``inputBodyS3Path``) are not fetched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage import prompt, prompt_markers
from keyguard.usage.importers import UNATTRIBUTED, Importer, RowError
from keyguard.usage.importers._common import (
    BadRow,
    as_mapping,
    count,
    get_path,
    is_json,
    opt_str,
    parse_time,
)
from keyguard.usage.importers._jsonstream import iter_json_records
from keyguard.usage.prompt_markers import PromptClassifier


class BedrockInvocationImporter:
    """Bedrock ModelInvocationLog records: one event per model call."""

    name: ClassVar[str] = "bedrock-invocation"
    description: ClassVar[str] = "Amazon Bedrock model invocation logs (JSON lines)"
    priority: ClassVar[int] = 10

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes
        self._prompts = prompt_markers.from_config(config)

    def sniff(self, head: bytes, path: str) -> bool:
        """Bedrock when the head carries the invocation-log schema type."""
        return is_json(head) and b'"ModelInvocationLog"' in head

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """One event per record."""
        for item in iter_json_records(stream, path, frozenset(), self._max_record):
            if isinstance(item, RowError):
                yield item
                continue
            line, record = item
            try:
                yield _event(record, f"{path}:{line}", self._prompts)
            except BadRow as bad:
                yield RowError(path, line, bad.reason)


def _event(record: object, origin: str, prompts: PromptClassifier) -> UsageEvent:
    if not isinstance(record, Mapping):
        raise BadRow(f"expected an invocation-log record object, got {type(record).__name__}")
    arn = opt_str(get_path(record, "identity.arn"), "identity.arn")
    inputs = as_mapping(record.get("input"))
    body = as_mapping(inputs.get("inputBodyJson"))
    text = prompt.messages_text(body.get("messages")) or prompt.messages_text(
        body.get("prompt") or body.get("inputText"))
    cache_read = count(inputs.get("cacheReadInputTokenCount"), "input.cacheReadInputTokenCount")
    cache_write = count(inputs.get("cacheWriteInputTokenCount"),
                        "input.cacheWriteInputTokenCount")
    return UsageEvent(
        time=parse_time(record.get("timestamp"), "timestamp", "iso"),
        key_id=arn or UNATTRIBUTED,
        source_format=BedrockInvocationImporter.name,
        region=opt_str(record.get("region"), "region"),
        model=opt_str(record.get("modelId"), "modelId"),
        input_tokens=count(inputs.get("inputTokenCount"), "input.inputTokenCount")
        + cache_read + cache_write,
        output_tokens=count(get_path(record, "output.outputTokenCount"),
                            "output.outputTokenCount"),
        cached_tokens=cache_read,
        error_code=opt_str(record.get("errorCode"), "errorCode"),
        prompt_fingerprint=prompt.fingerprint(text) if text else None,
        prompt_chars=len(text) if text else None,
        prompt_markers=prompts.markers(text) if text else None,
        principal=arn,
        account=opt_str(record.get("accountId"), "accountId"),
        action=opt_str(record.get("operation"), "operation"),
        service="bedrock.amazonaws.com",
        event_id=opt_str(record.get("requestId"), "requestId"),
        origin=origin,
    )


PLUGIN: type[Importer] = BedrockInvocationImporter
