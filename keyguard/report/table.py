"""Human table (tabulate): keys (inventory) or findings (check), failures listed after.

AGE is days since the key was created; where the store keeps no creation date (SSM, .env
files) it is days since the last change, else since keyguard first saw it.

Meant for a terminal: one row per key copy (or per finding, most severe first, then a
one-line summary with the gate verdict), then one line per store that could not be read
with the hint to fix it. Secrets never appear (there are none in a Report).
"""

from __future__ import annotations

from typing import ClassVar

from tabulate import tabulate

from keyguard.model import Finding, KeyRecord
from keyguard.report import Report, Reporter, age_days
from keyguard.report.json import ordered, summary_line

HEADERS = ("SOURCE", "NAME", "WHERE", "PROVIDER", "KIND", "ENV", "OWNER", "STATUS", "AGE", "USED",
           "SCOPE", "FINGERPRINT")
CHECK_HEADERS = ("SEVERITY", "RULE", "KEY", "MESSAGE")


def _days(value: int | None) -> str:
    return "-" if value is None else f"{value}d"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _name(rec: KeyRecord, width: int = 44) -> str:
    return _clip(rec.name + (f"#{rec.field}" if rec.field and rec.field != rec.name else ""), width)


def _where(rec: KeyRecord, width: int = 40) -> str:
    """Region for cloud stores, file:line or keyring path otherwise (ARNs are too long)."""
    if rec.region:
        return rec.region
    return "-" if rec.location.startswith("arn:") else _clip(rec.location, width)


def _printable(text: str) -> str:
    """One line without control characters: a name from a store must not drive the terminal."""
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))


def _key(finding: Finding, width: int = 56) -> str:
    """``source: name#field``; the subject (``policy:waiver/2``) when the finding has no key."""
    rec = finding.key
    return _clip(finding.subject, width) if rec is None else f"{rec.source}: {_name(rec, width)}"


class TableReporter:
    """Plain-text table for terminals."""

    name: ClassVar[str] = "table"
    machine: ClassVar[bool] = False

    def render(self, report: Report) -> str:
        """Keys (or changes, for --diff), then failures."""
        parts: list[str] = []
        if report.findings is not None:
            parts.append(self._findings(report))
        elif report.changes is not None:
            parts.append(self._changes(report))
        else:
            rows = [
                (
                    r.source, _name(r), _where(r), r.provider, r.kind, r.environment or "-", r.owner or "-",
                    r.status.value, _days(age_days(
                        r.created or r.last_changed or report.first_seen.get(r.identity),
                        report.now)),
                    _days(age_days(r.last_used, report.now)) if r.last_used else "never" if (
                        "last_used" in r.provenance) else "-",
                    ",".join(r.scope.labels) or "-",
                    (r.fingerprint[:12] + "…") if r.fingerprint else "-",
                )
                for r in report.inventory.keys
            ]
            parts.append(tabulate(rows, headers=HEADERS, tablefmt="simple") if rows
                         else "No keys found.")
        if report.inventory.failures:
            lines = ["", f"Could not read {len(report.inventory.failures)} part(s) of the stores:"]
            for f in report.inventory.failures:
                where = f"{f.source}[{f.scope}]" if f.scope else f.source
                # AWS sources already name themselves and the scope in the message
                head = "" if f.message.startswith(f"{f.source} ") else f"{where}: "
                lines.append(f"  ! {head}{f.message}" + (f" ({f.hint})" if f.hint else ""))
            parts.append("\n".join(lines))
        return "\n".join(parts) + "\n"

    def _findings(self, report: Report) -> str:
        """Findings grouped by severity (most severe first), then the summary and gate line."""
        findings = ordered(report.findings or ())
        rows = [(f.severity.label.upper(), f.rule_id, _printable(_key(f)), _printable(f.message))
                for f in findings]
        table = tabulate(rows, headers=CHECK_HEADERS, tablefmt="simple") if rows else "No findings."
        return f"{table}\n\n{summary_line(report)}"

    def _changes(self, report: Report) -> str:
        assert report.changes is not None  # noqa: S101
        since = report.previous_snapshot.isoformat(timespec="seconds") if (
            report.previous_snapshot) else "never (no earlier snapshot)"
        if not report.changes:
            return f"No changes since the last snapshot ({since})."
        rows = [
            (c.change.value, c.record.source, _name(c.record), c.record.kind,
             ",".join(c.fields) or "-")
            for c in report.changes
        ]
        return f"Changes since the last snapshot ({since}):\n" + tabulate(
            rows, headers=("CHANGE", "SOURCE", "NAME", "KIND", "FIELDS"), tablefmt="simple")


PLUGIN: type[Reporter] = TableReporter
