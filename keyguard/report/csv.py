"""CSV report: one row per key copy (inventory) or per finding (check); failures are not rows (see stderr)."""

from __future__ import annotations

import csv
import io
from typing import ClassVar

from keyguard.report import Report, Reporter, age_days
from keyguard.report.json import ordered, rule_meta
from keyguard.serialize import iso

COLUMNS = (
    "source", "location", "name", "field", "provider", "kind", "key_id", "account", "region",
    "environment", "owner", "status", "created", "age_days", "last_rotated", "last_changed",
    "last_used", "expires", "rotation_enabled", "scope", "fingerprint", "plaintext", "tags",
)
#: Columns of ``keyguard check --format csv``: what a spreadsheet triage needs per finding.
CHECK_COLUMNS = (
    "id", "rule_id", "severity", "title", "category", "message", "subject", "source", "location",
    "name", "field", "provider", "kind", "key_id", "account", "region", "environment", "owner",
    "fingerprint", "remediation", "evidence",
)


class CsvReporter:
    """RFC 4180 CSV with a header row; cells that look like formulas are neutralised."""

    name: ClassVar[str] = "csv"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """One row per key (tags as ``k=v;k=v``), or one per remaining finding for check."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if report.findings is not None:
            writer.writerow(CHECK_COLUMNS)
            writer.writerows(self._findings(report))
            return out.getvalue()
        writer.writerow(COLUMNS)
        for r in report.inventory.keys:
            row = [
                r.source, r.location, r.name, r.field, r.provider, r.kind, r.key_id, r.account,
                r.region, r.environment, r.owner, r.status.value, iso(r.created),
                age_days(r.created, report.now), iso(r.last_rotated), iso(r.last_changed),
                iso(r.last_used), iso(r.expires),
                None if r.rotation is None else r.rotation.enabled,
                " ".join(r.scope.labels), r.fingerprint, r.plaintext,
                ";".join(f"{k}={v}" for k, v in sorted(r.tags.items())),
            ]
            writer.writerow(["" if v is None else _safe(str(v)) for v in row])
        return out.getvalue()

    @staticmethod
    def _findings(report: Report) -> list[list[str]]:
        """Remaining findings only (waived/baselined are accepted); evidence as ``k=v;k=v``."""
        rows = []
        for f in ordered(report.findings or ()):
            rec = f.key
            meta = rule_meta(report, f)
            row = [
                f.finding_id, f.rule_id, f.severity.label, meta.title, meta.category, f.message,
                f.subject,
                *((rec.source, rec.location, rec.name, rec.field, rec.provider, rec.kind,
                   rec.key_id, rec.account, rec.region, rec.environment, rec.owner,
                   rec.fingerprint or f.fingerprint) if rec is not None
                  else (None, f.location, None, None, None, None, None, None, None, None, None,
                        f.fingerprint)),
                f.remediation or meta.remediation.summary,
                ";".join(f"{k}={v}" for k, v in sorted(f.evidence.items())),
            ]
            rows.append(["" if v is None else _safe(str(v)) for v in row])
        return rows


def _safe(cell: str) -> str:
    # NOTE: names and tags come from stores anyone with write access can edit; a leading
    # =, +, - or @ would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


PLUGIN: type[Reporter] = CsvReporter
