"""JSON report: the documented, versioned object described by schemas/inventory.schema.json."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from keyguard import __version__
from keyguard.report import SCHEMA_VERSION, Report, Reporter, age_days
from keyguard.serialize import failure_to_dict, iso, record_to_dict


class JsonReporter:
    """``{"schema_version": 1, "keys": [...], "errors": [...], ...}``, stable key order."""

    name: ClassVar[str] = "json"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """Serialise the report; ages are whole days relative to ``report.now``."""
        inv = report.inventory
        keys = []
        for rec in inv.keys:
            item = record_to_dict(rec)
            item["age_days"] = age_days(rec.created, report.now)
            item["first_seen"] = iso(report.first_seen.get(rec.identity))
            keys.append(item)
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "keyguard", "version": __version__},
            "generated_at": iso(report.now),
            "sources": list(inv.sources),
            "partial": inv.partial,
            "summary": _summary(report),
            "keys": keys,
            "errors": [failure_to_dict(f) for f in inv.failures],
        }
        if report.changes is not None:
            doc["previous_snapshot"] = iso(report.previous_snapshot)
            doc["changes"] = [
                {"change": c.change.value, "identity": c.identity, "fields": list(c.fields),
                 "key": record_to_dict(c.record)}
                for c in report.changes
            ]
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _summary(report: Report) -> dict[str, Any]:
    by_provider: dict[str, int] = {}
    for rec in report.inventory.keys:
        by_provider[rec.provider] = by_provider.get(rec.provider, 0) + 1
    return {
        "keys": len(report.inventory.keys),
        "errors": len(report.inventory.failures),
        "by_provider": dict(sorted(by_provider.items())),
    }


PLUGIN: type[Reporter] = JsonReporter
