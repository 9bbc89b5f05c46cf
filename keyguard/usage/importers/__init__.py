"""The Importer contract and the IMPORTERS registry; one public module per usage export format.

An importer turns one file of a provider's usage export (CloudTrail, a LiteLLM spend log,
an Anthropic or OpenAI usage report, a generic CSV/JSONL) into :class:`UsageEvent` rows. A
row it cannot read becomes a :class:`RowError` naming the line, and the file goes on: one
broken line never hides the rest. Importers never raise on bad data; only the reader
turns I/O failures (a truncated gzip) into errors of its own.

This module is import-light: listing format names for ``--help`` imports no plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Protocol

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.registry import Registry

#: ``key_id`` of usage that an export does not attribute to any key (Anthropic Console
#: usage, an OpenAI report not grouped by key, a CloudTrail service event with no caller).
UNATTRIBUTED = "(unattributed)"


@dataclass(frozen=True, slots=True)
class RowError:
    """One record an importer could not turn into an event.

    ``line`` is 1-based; 0 means the whole file (unreadable, wrong shape). ``reason`` is
    one line and never quotes a whole record: records can carry prompts or secrets.
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class Importer(Protocol):
    """Reads one usage export format into events; never raises on malformed input."""

    #: Plugin name (module name with "-"); stored with every event as ``source_format``.
    name: ClassVar[str]
    #: One line for ``keyguard plugins`` and ``--help``.
    description: ClassVar[str]
    #: Auto-detection order: lower runs first, so catch-all formats go last.
    priority: ClassVar[int]

    def __init__(self, config: UsageConfig) -> None: ...

    def sniff(self, head: bytes, path: str) -> bool:
        """True when ``head`` (the first decompressed bytes of the file) looks like this format."""
        ...

    def read(self, stream: BinaryIO, path: str) -> Iterator[UsageEvent | RowError]:
        """Yield one event per record and one RowError per record it could not read."""
        ...


IMPORTERS: Registry[Importer] = Registry(__name__, __path__, "keyguard.importers", "importer")
