"""Prompt phrasing markers, computed once at import while the prompt text is at hand.

Why at import: the store keeps no prompt text (only a SimHash and a length), so anything a
detector needs to know about *what the prompt says* must be decided here and stored as a
short marker list (``prompt_markers``: comma-separated, sorted marker names, or None).

Markers are class names, never quotes of the text. The prompt-mix detector reads them.
Trap strings come from ``[usage.detectors.prompt-mix] trap-strings`` in the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyguard.config import UsageConfig


class PromptClassifier:
    """Finds phrasing markers in one prompt text; built once per importer."""

    def __init__(self, traps: Sequence[str] = ()) -> None:
        self.traps = tuple(t.lower() for t in traps if t)

    def markers(self, text: str) -> str | None:
        """Comma-separated sorted marker names found in ``text``, or None when there are none."""
        found = sorted({"trap" for t in self.traps if t in text.lower()})
        return ",".join(found) or None


def from_config(config: UsageConfig) -> PromptClassifier:
    """The classifier for ``config``: trap strings from the prompt-mix detector's table."""
    table: Any = config.detectors.get("prompt-mix", {})
    traps = table.get("trap-strings", ()) if isinstance(table, dict) else ()
    return PromptClassifier([t for t in traps if isinstance(t, str)] if isinstance(traps, list) else ())
