"""``--format csv``: one row per shown alert, evidence as a JSON object in one column.

Why JSON for evidence: detectors each have their own evidence fields, so a fixed column
per field would change with every new detector; one JSON cell keeps the header stable and
is still one ``json_extract`` away in a spreadsheet or DuckDB.
"""

from __future__ import annotations

import csv
import io
import json

from keyguard.serialize import iso
from keyguard.usage.alerts import report_type
from keyguard.usage.render import UsageReport

COLUMNS = ("id", "type", "severity", "key", "key_alias", "start", "end", "summary", "evidence")


def render(report: UsageReport) -> str:
    """RFC 4180 CSV with a header row; cells that look like formulas are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for reported in report.alerts:
        alert = reported.alert
        row = [reported.id, report_type(alert.rule_id), alert.severity.label, alert.subject,
               alert.key_alias, iso(alert.first_seen), iso(alert.last_seen), alert.message,
               json.dumps(dict(alert.evidence), ensure_ascii=False, sort_keys=True)]
        writer.writerow(["" if v is None else _safe(str(v)) for v in row])
    return out.getvalue()


def _safe(cell: str) -> str:
    # NOTE: key ids, aliases and user agents come from exports anyone can write to; a
    # leading =, +, - or @ would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell
