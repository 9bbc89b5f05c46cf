"""LiteLLM proxy spend logs (``LiteLLM_SpendLogs`` rows as JSONL, a JSON array or CSV) -> events.

One row is one request. ``api_key`` is the sha256 of the virtual key (never the key), so
it is safe to keep as ``key_id``; the alias comes from ``metadata.user_api_key_alias``.
Prompt text (``messages`` or ``proxy_server_request.messages``) is reduced to a SimHash
fingerprint and a length here and never leaves this module: prompts may be sensitive.
jsonb columns arrive as objects in JSON exports and as JSON strings in CSV/DB dumps; both
are read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage import prompt, prompt_markers
from keyguard.usage.importers import Importer, RowError
from keyguard.usage.importers._common import (
    BadRow,
    as_mapping,
    count,
    get_path,
    is_json,
    is_jsonl_after_junk,
    iter_csv_rows,
    opt_float,
    opt_str,
    parse_time,
    peek_head,
    split_source,
)
from keyguard.usage.importers._jsonstream import iter_json_records
from keyguard.usage.prompt_markers import PromptClassifier

#: ``/spend/logs/v2`` pages wrap rows in ``data``.
_CONTAINERS = frozenset({"data"})


class LiteLLMImporter:
    """LiteLLM spend-log rows: one event per request."""

    name: ClassVar[str] = "litellm"
    description: ClassVar[str] = "LiteLLM proxy spend logs (JSONL, JSON array or CSV)"
    priority: ClassVar[int] = 40

    def __init__(self, config: UsageConfig) -> None:
        self._max_record = config.max_record_bytes
        self._prompts = prompt_markers.from_config(config)

    def sniff(self, head: bytes, path: str) -> bool:
        """LiteLLM when the head has the api_key column and a spend-log time or token column."""
        quoted = b'"api_key"' in head
        bare = b"api_key" in head.split(b"\n", 1)[0] and not is_json(head)
        if not (quoted or bare):
            return False
        return any(col in head for col in (b"startTime", b"prompt_tokens", b"spend"))

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """One event per row; CSV or JSON decided by the first byte of the file."""
        head, stream = peek_head(stream)
        rows: Iterator[tuple[int, object] | RowError]
        header = head.split(b"\n", 1)[0]
        csv_header = b"api_key" in header and b"startTime" in header and not is_json(head)
        if is_json(head) or not head.strip() or is_jsonl_after_junk(head, csv_header):
            rows = iter_json_records(stream, path, _CONTAINERS, self._max_record)
        else:
            rows = iter_csv_rows(stream, path, self._max_record, ("api_key", "startTime"))
        for item in rows:
            if isinstance(item, RowError):
                yield item
                continue
            line, row = item
            try:
                yield event_from_row(row, f"{path}:{line}", self._prompts)
            except BadRow as bad:
                yield RowError(path, line, bad.reason)


def event_from_row(row: object, origin: str | None = None,
                   prompts: PromptClassifier | None = None) -> UsageEvent:
    """Map one spend-log row (a JSON object or a CSV dict) to an event."""
    if type(row) is not dict and not isinstance(row, Mapping):
        raise BadRow(f"expected a spend-log row object, got {type(row).__name__}")
    metadata = as_mapping(row.get("metadata"))
    key_id = opt_str(row.get("api_key"), "api_key") or opt_str(
        metadata.get("user_api_key"), "metadata.user_api_key"
    )
    if key_id is None:
        raise BadRow("api_key: missing")
    ip_value = row.get("requester_ip_address") or metadata.get("requester_ip_address")
    ip, host = split_source(ip_value, "requester_ip_address")
    usage_extra = as_mapping(metadata.get("additional_usage_values"))
    cached = count(
        usage_extra.get("cache_read_input_tokens")
        or get_path(usage_extra, "prompt_tokens_details.cached_tokens"),
        "metadata.additional_usage_values.cache_read_input_tokens",
    )
    request = as_mapping(row.get("proxy_server_request"))
    text = prompt_text(row.get("messages"), request)
    headers = as_mapping(request.get("headers"))
    agent = (
        opt_str(row.get("user_agent"), "user_agent")
        or opt_str(metadata.get("user_agent"), "metadata.user_agent")
        or opt_str(headers.get("user-agent") or headers.get("User-Agent"), "user-agent")
    )
    status = opt_str(row.get("status") or metadata.get("status"), "status")
    error_code = None
    if status is not None and status.lower() not in ("success", "ok"):
        error_info = as_mapping(metadata.get("error_information"))
        error_code = opt_str(error_info.get("error_code"), "error_code") or status
    return UsageEvent(
        time=parse_time(row.get("startTime"), "startTime"),
        key_id=key_id,
        source_format=LiteLLMImporter.name,
        key_alias=opt_str(metadata.get("user_api_key_alias"), "metadata.user_api_key_alias"),
        source_ip=ip,
        source_host=host,
        model=opt_str(row.get("model"), "model") or opt_str(row.get("model_group"), "model_group"),
        input_tokens=count(row.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=count(row.get("completion_tokens"), "completion_tokens"),
        cached_tokens=cached,
        requests=1,
        user_agent=agent,
        error_code=error_code,
        prompt_fingerprint=prompt.fingerprint(text) if text else None,
        prompt_chars=len(text) if text else None,
        prompt_markers=(prompts or _PLAIN).markers(text) if text else None,
        principal=opt_str(row.get("user"), "user")
        or opt_str(metadata.get("user_api_key_user_id"), "metadata.user_api_key_user_id"),
        account=opt_str(row.get("team_id"), "team_id")
        or opt_str(metadata.get("user_api_key_team_id"), "metadata.user_api_key_team_id"),
        action=opt_str(row.get("call_type"), "call_type"),
        event_id=opt_str(row.get("request_id"), "request_id"),
        cost_usd=opt_float(row.get("spend"), "spend"),
        origin=origin,
    )


def prompt_text(messages: object, request: Mapping[str, object]) -> str | None:
    """The prompt of a row: its ``messages``, else ``proxy_server_request`` messages or prompt."""
    return prompt.messages_text(_messages(messages)) or prompt.messages_text(
        _messages(request.get("messages") or request.get("prompt")))


def _messages(value: object) -> object:
    """Messages as stored: a list, an object, or (CSV) a JSON string of either."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        import json

        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


PLUGIN: type[Importer] = LiteLLMImporter


_PLAIN = PromptClassifier()
