"""``--format json``: the versioned report object of schemas/usage.schema.json."""

from __future__ import annotations

import json

from keyguard.usage.render import SCHEMA_VERSION, UsageReport, alert_dict


def render(report: UsageReport) -> str:
    """``{"schema_version", "alerts", "stats", "errors"}`` as indented JSON, newline-terminated."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "alerts": [alert_dict(r) for r in report.alerts],
        "stats": dict(report.stats),
        "errors": list(report.errors),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
