"""Anthropic Admin API messages usage report (``/v1/organizations/usage_report/messages``) -> events.

One event per result row, i.e. per (bucket, api_key_id, model, ...) group: the report
aggregates, so ``time`` is the bucket start, ``bucket_end`` its end and ``requests`` is 0
("unknown": the report counts tokens, not requests). Input tokens follow Anthropic's own
total: uncached + cache read + cache creation (5m and 1h); ``cached_tokens`` is the cache
read. ``api_key_id`` is null for Console/Workbench usage: those rows get ``(unattributed)``.
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
    get_path,
    is_json,
    opt_str,
    parse_time,
    results_of,
)
from keyguard.usage.importers._jsonstream import iter_json_records

_CONTAINERS = frozenset({"data"})


class AnthropicUsageImporter:
    """Anthropic messages usage report pages (JSON or JSONL of pages)."""

    name: ClassVar[str] = "anthropic-usage"
    description: ClassVar[str] = "Anthropic Admin API messages usage report (JSON pages)"
    priority: ClassVar[int] = 20

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes

    def sniff(self, head: bytes, path: str) -> bool:
        """The report's own field ``uncached_input_tokens``, or its bucket fields.

        NOTE: not ``cache_creation``: Messages API responses carry it too, and a LiteLLM
        log that stores responses must not be taken for a usage report.
        """
        if not is_json(head):
            return False
        if b'"uncached_input_tokens"' in head:
            return True
        return b'"starting_at"' in head and b'"results"' in head

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
    uncached = count(result.get("uncached_input_tokens"), "uncached_input_tokens")
    cache_read = count(result.get("cache_read_input_tokens"), "cache_read_input_tokens")
    creation = sum(
        count(get_path(result, f"cache_creation.{name}"), f"cache_creation.{name}")
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    )
    start = parse_time(bucket.get("starting_at"), "starting_at", "iso")
    end = bucket.get("ending_at")
    return UsageEvent(
        time=start,
        bucket_end=parse_time(end, "ending_at", "iso") if end is not None else None,
        key_id=opt_str(result.get("api_key_id"), "api_key_id") or UNATTRIBUTED,
        source_format=AnthropicUsageImporter.name,
        model=opt_str(result.get("model"), "model"),
        input_tokens=uncached + cache_read + creation,
        output_tokens=count(result.get("output_tokens"), "output_tokens"),
        cached_tokens=cache_read,
        requests=0,
        principal=opt_str(result.get("workspace_id"), "workspace_id"),
        region=opt_str(result.get("inference_geo"), "inference_geo"),
        origin=origin,
    )


PLUGIN: type[Importer] = AnthropicUsageImporter
