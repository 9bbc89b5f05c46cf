"""``--format table``: alerts grouped by key, with a sparkline of the key's hourly volume.

Keys appear in the order of their most severe alert (the report's alert order); each
group opens with the key (and alias), then the volume line when the store had one, then
one row per alert. Suppressed alerts are only counted at the end: the table is for what
needs a human now.
"""

from __future__ import annotations

from keyguard.serialize import iso
from keyguard.usage.alerts import report_type
from keyguard.usage.render import ReportedAlert, UsageReport
from keyguard.usage.sparkline import markers, sparkline

HEADERS = ["SEVERITY", "TYPE", "START", "END", "SUMMARY"]


def render(report: UsageReport, unicode: bool = True) -> str:
    """The table; ``unicode=False`` draws the sparkline in ASCII (stdout without UTF-8)."""
    from tabulate import tabulate

    footer = _footer(report)
    if not report.alerts:
        return "No alerts." + (f" {footer}" if footer else "") + "\n"
    by_key: dict[str, list[ReportedAlert]] = {}
    for reported in report.alerts:
        by_key.setdefault(reported.alert.subject, []).append(reported)
    parts = []
    for key, group in by_key.items():
        alias = next((r.alert.key_alias for r in group if r.alert.key_alias), None)
        lines = [f"KEY {_printable(key)}" + (f" ({_printable(alias)})" if alias else "")]
        volume = report.volumes.get(key)
        if volume is not None:
            label = "volume  "
            lines.append(f"{label}|{sparkline(volume.counts, unicode)}| "
                         f"{volume.start:%Y-%m-%d %H:%M} .. {volume.end:%Y-%m-%d %H:%M} UTC, "
                         f"peak {volume.peak} req/h")
            marks = markers(volume)
            if marks:
                lines.append(" " * (len(label) + 1) + marks)
        rows = [[r.alert.severity.label, report_type(r.alert.rule_id), iso(r.alert.first_seen),
                 iso(r.alert.last_seen), _printable(r.alert.message)] for r in group]
        lines.append(tabulate(rows, headers=HEADERS, tablefmt="simple"))
        parts.append("\n".join(lines))
    text = "\n\n".join(parts) + "\n"
    return text + (f"\n{footer}\n" if footer else "")


def _printable(text: str) -> str:
    # NOTE: key ids, aliases and summaries come from exports an attacker may write to; a
    # terminal escape sequence in them must not reach the reader's terminal.
    return "".join(c if c.isprintable() else "?" for c in text)


def _footer(report: UsageReport) -> str:
    """What was raised but not shown: accepted by a suppression or below --min-severity."""
    notes = []
    if report.suppressed:
        notes.append(f"{len(report.suppressed)} alert(s) suppressed by [[usage.suppressions]]")
    below = report.stats.get("below_min_severity", 0)
    if below:
        notes.append(f"{below} alert(s) below --min-severity not shown")
    return "; ".join(notes) + ("." if notes else "")
