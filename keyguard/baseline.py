"""Baseline files: today's accepted findings, so a CI gate can fail on new ones only.

Findings are keyed by their stable ``finding_id`` (rule + key fingerprint or public key id
+ location), never by position, so reordering stores or adding keys elsewhere does not
resurrect accepted findings, while a rotated value at the same place is a new finding.
The file is versioned; :data:`_UPGRADES` turns each older version into the next, so a
baseline written by an older keyguard keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from keyguard.atomic import atomic_write
from keyguard.errors import UsageError
from keyguard.model import Finding
from keyguard.serialize import iso

VERSION = 1
#: version N -> function upgrading a version-N document to version N+1.
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def load_baseline(path: Path) -> set[str]:
    """The finding ids accepted in a baseline file.

    Raises:
        UsageError: the file is missing, unreadable, not a keyguard baseline, or newer
            than this keyguard.

    """
    if not path.is_file():
        raise UsageError(f"{path}: baseline not found",
                         "create it with `keyguard check --baseline FILE --update-baseline`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable baseline ({type(exc).__name__})",
                         "regenerate it with --update-baseline") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keyguard_baseline"), int):
        raise UsageError(f"{path}: not a keyguard baseline (no keyguard_baseline version)",
                         "regenerate it with --update-baseline")
    version = doc["keyguard_baseline"]
    if version > VERSION:
        raise UsageError(f"{path}: baseline version {version} is newer than this keyguard "
                         f"({VERSION})", "upgrade keyguard")
    while version < VERSION:
        doc = _UPGRADES[version](doc)
        version = doc["keyguard_baseline"]
    entries = doc.get("findings")
    if not isinstance(entries, list):
        raise UsageError(f"{path}: baseline has no findings list", "regenerate it with --update-baseline")
    return {str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e}


def render_baseline(findings: Iterable[Finding], now: datetime) -> str:
    """The baseline document for ``findings`` (sorted, so diffs in review stay small)."""
    entries = sorted(
        ({"id": f.finding_id, "rule_id": f.rule_id, "subject": f.subject,
          "fingerprint": f.fingerprint, "severity": f.severity.label} for f in findings),
        key=lambda e: str(e["id"]),
    )
    doc = {"keyguard_baseline": VERSION, "generated_at": iso(now), "findings": entries}
    return json.dumps(doc, indent=2) + "\n"


def write_baseline(path: Path, findings: Iterable[Finding], now: datetime) -> None:
    """Write the baseline atomically (never a half-written file)."""
    atomic_write(path, render_baseline(findings, now))
