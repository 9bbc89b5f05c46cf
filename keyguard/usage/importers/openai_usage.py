"""OpenAI organization usage API, completions (``/organization/usage/completions``) -> events.

One event per result row of each bucket: ``time``/``bucket_end`` from the unix
``start_time``/``end_time``, ``requests`` from ``num_model_requests``. OpenAI's
``input_tokens`` already includes cached (and cache-write) tokens, which matches the event
convention; ``cached_tokens`` is ``input_cached_tokens``. Rows not grouped by key get
``(unattributed)``; ``project_id`` goes to ``account``, ``user_id`` to ``principal``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import UNATTRIBUTED, Importer, RowError
from keyguard.usage.importers._common import (
    BadRow,
    buckets_of,
    count,
    is_json,
    opt_str,
    parse_time,
    results_of,
)
from keyguard.usage.importers._jsonstream import iter_json_records

_CONTAINERS = frozenset({"data"})


class OpenAIUsageImporter:
    """OpenAI completions usage pages (JSON or JSONL of pages)."""

    name: ClassVar[str] = "openai-usage"
    description: ClassVar[str] = "OpenAI organization usage API, completions (JSON pages)"
    priority: ClassVar[int] = 20

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes

    def sniff(self, head: bytes, path: str) -> bool:
        """OpenAI's result object type or request counter, or its unix bucket fields."""
        if not is_json(head):
            return False
        if b"organization.usage.completions" in head or b'"num_model_requests"' in head:
            return True
        return b'"start_time"' in head and b'"results"' in head and b'"bucket"' in head

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """One event per result row of every bucket."""
        for item in iter_json_records(stream, path, _CONTAINERS, self._max_record):
            if isinstance(item, RowError):
                yield item
                continue
            line, record = item
            try:
                events = [
                    _event(bucket, result, f"{path}:{line}")
                    for bucket in buckets_of(record)
                    for result in results_of(bucket)
                ]
            except BadRow as bad:
                yield RowError(path, line, bad.reason)
                continue
            yield from events


def _event(bucket: Mapping[str, object], result: Mapping[str, object], origin: str) -> UsageEvent:
    start = parse_time(bucket.get("start_time"), "start_time", "unix")
    end = bucket.get("end_time")
    return UsageEvent(
        time=start,
        bucket_end=parse_time(end, "end_time", "unix") if end is not None else None,
        key_id=opt_str(result.get("api_key_id"), "api_key_id") or UNATTRIBUTED,
        source_format=OpenAIUsageImporter.name,
        model=opt_str(result.get("model"), "model"),
        input_tokens=count(result.get("input_tokens"), "input_tokens"),
        output_tokens=count(result.get("output_tokens"), "output_tokens"),
        cached_tokens=count(result.get("input_cached_tokens"), "input_cached_tokens"),
        requests=count(result.get("num_model_requests"), "num_model_requests"),
        principal=opt_str(result.get("user_id"), "user_id"),
        account=opt_str(result.get("project_id"), "project_id"),
        origin=origin,
    )


PLUGIN: type[Importer] = OpenAIUsageImporter
