"""CSV report: one row per key copy, for spreadsheets; failures are not rows (see stderr)."""

from __future__ import annotations

import csv
import io
from typing import ClassVar

from keyguard.report import Report, Reporter, age_days
from keyguard.serialize import iso

COLUMNS = (
    "source", "location", "name", "field", "provider", "kind", "key_id", "account", "region",
    "environment", "owner", "status", "created", "age_days", "last_rotated", "last_changed",
    "last_used", "expires", "rotation_enabled", "scope", "fingerprint", "plaintext", "tags",
)


class CsvReporter:
    """RFC 4180 CSV with a header row; cells that look like formulas are neutralised."""

    name: ClassVar[str] = "csv"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """One row per key; tags as ``k=v;k=v``."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
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


def _safe(cell: str) -> str:
    # NOTE: names and tags come from stores anyone with write access can edit; a leading
    # =, +, - or @ would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


PLUGIN: type[Reporter] = CsvReporter
