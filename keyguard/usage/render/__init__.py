"""What a ``keyguard usage scan`` report says, and the facts every output format shares.

Why one record: the table, JSON, SARIF and CSV views (one module each, pure
``render(report) -> str``) must never disagree about which alerts were raised, their ids,
order and type names; they all read a :class:`UsageReport` the CLI builds once. Every
string in it has already passed :func:`keyguard.redact.scrub`, so no format can
leak a secret-looking value from the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyguard.model import Alert, Severity
from keyguard.serialize import iso
from keyguard.usage.alerts import report_type
from keyguard.usage.sparkline import Volume

#: Version of the JSON report (schemas/usage.schema.json); bump on an incompatible change.
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReportedAlert:
    """An alert with its stable id (``ua1:...``, see :mod:`keyguard.usage.alerts`)."""

    id: str
    alert: Alert


@dataclass(frozen=True, slots=True)
class SuppressedAlert:
    """An alert a ``[[usage.suppressions]]`` entry accepted, with who and why."""

    id: str
    alert: Alert
    suppression: int  # index in [[usage.suppressions]]
    owner: str
    reason: str
    expires: str  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class UsageReport:
    """One scan's result: shown alerts, accepted ones, counts and unparseable input.

    ``stats`` is the JSON ``stats`` object (JSON-ready values). ``volumes`` maps a key (as
    shown) to its hourly volume around its alerts, for the table's sparkline. ``detectors``
    maps each detector id to its module docstring (SARIF rule help).
    """

    alerts: tuple[ReportedAlert, ...]
    now: datetime
    fail_on: Severity = Severity.HIGH
    suppressed: tuple[SuppressedAlert, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    detectors: Mapping[str, str] = field(default_factory=dict)


def alert_dict(reported: ReportedAlert) -> dict[str, Any]:
    """One alert as the JSON contract describes it (plus its stable ``id``)."""
    alert = reported.alert
    return {
        "id": reported.id,
        "key": alert.subject,
        "key_alias": alert.key_alias,
        "type": report_type(alert.rule_id),
        "severity": alert.severity.label,
        "start": iso(alert.first_seen),
        "end": iso(alert.last_seen),
        "summary": alert.message,
        "evidence": dict(alert.evidence),
    }


def failing(report: UsageReport) -> list[ReportedAlert]:
    """Shown alerts at or above the gate threshold: the ones that make the scan exit 1."""
    return [r for r in report.alerts if r.alert.severity >= report.fail_on]


def doc_summary(doc: str) -> tuple[str, str]:
    """(first line, first paragraph after it) of a module docstring, for rule descriptions."""
    paragraphs = [p.strip() for p in doc.strip().split("\n\n") if p.strip()]
    if not paragraphs:
        return "", ""
    title = paragraphs[0].splitlines()[0].strip()
    rest = " ".join(paragraphs[1].split()) if len(paragraphs) > 1 else ""
    return title, rest
