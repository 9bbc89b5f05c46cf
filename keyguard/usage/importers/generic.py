"""Any CSV or JSONL request log, read through the ``[usage.generic]`` column mapping.

For gateways keyguard has no importer for (an nginx JSON log, a home-grown proxy, a
spreadsheet export): the config names the column holding each event field, e.g.
``[usage.generic] time = "ts", key = "api_key_id", ip = "client_ip"``. ``time`` and
``key`` must be present in every row; unmapped fields keep their defaults. JSON field names
may be dotted paths into nested objects. This importer is the fallback of auto-detection:
it claims a file only when the head names both the time and the key column.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar

from keyguard.config import UsageConfig, UsageGenericConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import Importer, RowError
from keyguard.usage.importers._common import (
    BadRow,
    count,
    get_path,
    is_json,
    is_jsonl_after_junk,
    iter_csv_rows,
    opt_str,
    parse_time,
    peek_head,
    req_str,
    split_source,
)
from keyguard.usage.importers._jsonstream import iter_json_records


#: A line after the first that starts a JSON object.
class GenericImporter:
    """CSV/JSONL rows mapped to events by the configured column names."""

    name: ClassVar[str] = "generic"
    description: ClassVar[str] = "CSV or JSONL request log mapped by [usage.generic] in keyguard.toml"
    priority: ClassVar[int] = 90

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes
        self._map = config.generic

    def sniff(self, head: bytes, path: str) -> bool:
        """True when the head names both the mapped time and key columns."""
        m = self._map
        if is_json(head):
            names = [f'"{m.time.split(".")[-1]}"', f'"{m.key.split(".")[-1]}"']
            return all(n.encode() in head for n in names)
        return self._csv_header(head)

    def _csv_header(self, head: bytes) -> bool:
        """True when the first line is a CSV header naming the mapped time and key columns."""
        m = self._map
        first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("latin-1")
        columns = {c.strip().strip('"') for c in first.split(",")}
        return m.time in columns and m.key in columns

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """One event per row; a CSV without the time or key column is one error for the file."""
        head, stream = peek_head(stream)
        rows: Iterator[tuple[int, object] | RowError]
        # NOTE: a JSONL file whose first line is torn or junk (a log cut mid-record) is
        # still JSONL when a later line starts an object and the first is no CSV header;
        # reading it as CSV would turn every good row into one "missing columns" error.
        if is_json(head) or not head.strip() or (
                is_jsonl_after_junk(head, self._csv_header(head))):
            rows = iter_json_records(stream, path, frozenset(), self._max_record)
        else:
            rows = iter_csv_rows(
                stream, path, self._max_record, (self._map.time, self._map.key)
            )
        for item in rows:
            if isinstance(item, RowError):
                yield item
                continue
            line, row = item
            try:
                yield event_from_row(row, self._map, f"{path}:{line}")
            except BadRow as bad:
                yield RowError(path, line, bad.reason)


def event_from_row(row: object, m: UsageGenericConfig, origin: str | None = None) -> UsageEvent:
    """Map one row through the column mapping."""
    if not isinstance(row, Mapping):
        raise BadRow(f"expected a row object, got {type(row).__name__}")

    def col(name: str | None) -> object:
        return get_path(row, name) if name else None

    ip, host = split_source(col(m.ip), m.ip or "ip")
    requests = col(m.requests)
    return UsageEvent(
        time=parse_time(col(m.time), m.time, m.time_format),
        key_id=req_str(col(m.key), m.key),
        source_format=GenericImporter.name,
        key_alias=opt_str(col(m.key_alias), m.key_alias or ""),
        source_ip=ip,
        source_host=host,
        region=opt_str(col(m.region), m.region or ""),
        model=opt_str(col(m.model), m.model or ""),
        input_tokens=count(col(m.input_tokens), m.input_tokens or ""),
        output_tokens=count(col(m.output_tokens), m.output_tokens or ""),
        cached_tokens=count(col(m.cached_tokens), m.cached_tokens or ""),
        requests=1 if m.requests is None else count(requests, m.requests),
        user_agent=opt_str(col(m.user_agent), m.user_agent or ""),
        error_code=opt_str(col(m.error_code), m.error_code or ""),
        principal=opt_str(col(m.principal), m.principal or ""),
        event_id=opt_str(col(m.event_id), m.event_id or ""),
        origin=origin,
    )


PLUGIN: type[Importer] = GenericImporter
