"""Markdown for PR comments and CI job summaries (``$GITHUB_STEP_SUMMARY``, GitLab notes).

A reviewer reads it in a few seconds: headline with the gate verdict, counts per
severity, the top findings (at most :data:`MAX_ROWS`, so a large estate does not hit
comment size limits), remediation folded per rule, then stores that could not be read.

Everything that comes from a store (names, locations, messages) is escaped: a key named
``x|<img src=...>`` must neither break the table nor inject markup into the PR page.
"""

from __future__ import annotations

import html
import re
from typing import ClassVar

from keyguard import __version__
from keyguard.model import Finding
from keyguard.report import Report, Reporter
from keyguard.report.json import failing, ordered, rule_meta, severity_counts

#: Rows in the findings table; the rest is counted ("and N more").
MAX_ROWS = 50
# NOTE: only what is special inline; "(" needs no escape once "[" is escaped, "#" and "+"
# only matter at line start and every escaped string here is mid-line.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def md(text: str) -> str:
    """Inline-safe Markdown text: one line, control characters dropped, specials backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", _CONTROL.sub("", " ".join(text.split())))


def _code_fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


class MarkdownReporter:
    """GitHub-flavoured Markdown; collapsible sections use ``<details>``."""

    name: ClassVar[str] = "markdown"
    machine: ClassVar[bool] = False

    def render(self, report: Report) -> str:
        """Check report; an inventory report gets a one-table key summary."""
        if report.findings is None:
            return self._inventory(report)
        findings = ordered(report.findings)
        bad = len(failing(report))
        threshold = report.fail_on.label
        if bad:
            head = f"## keyguard check: ❌ gate failed ({bad} finding{'' if bad == 1 else 's'} " \
                   f"at or above {threshold})"
        else:
            head = f"## keyguard check: ✅ gate passed (nothing at or above {threshold})"
        out = [head, ""]
        failures = report.inventory.failures
        if failures:
            out += [f"> [!WARNING]\n> Partial result: {len(failures)} part(s) of the stores "
                    "could not be read (see below).", ""]
        out += ["| severity | findings |", "|---|---:|"]
        out += [f"| {label} | {count} |" for label, count in severity_counts(findings).items()]
        out += ["", f"{len(findings)} finding(s) remain; {len(report.waived)} waived, "
                f"{len(report.baselined)} in baseline.", ""]
        if findings:
            out += ["### Findings", "", "| severity | rule | key | message |", "|---|---|---|---|"]
            out += [_row(f) for f in findings[:MAX_ROWS]]
            if len(findings) > MAX_ROWS:
                out += ["", f"_and {len(findings) - MAX_ROWS} more (see the full report)_"]
            out += ["", "### Remediation", ""]
            out += self._remediation(report, findings)
        if failures:
            out += ["### Could not read", ""]
            for f in failures:
                where = f"{f.source}[{f.scope}]" if f.scope else f.source
                out.append(f"- **{md(where)}**: {md(f.message)}"
                           + (f" (hint: {md(f.hint)})" if f.hint else ""))
            out.append("")
        out.append(f"<sub>keyguard {__version__}; finding ids for waivers are in --format json "
                   "and SARIF; --update-baseline accepts today's findings.</sub>")
        return "\n".join(out) + "\n"

    @staticmethod
    def _remediation(report: Report, findings: list[Finding]) -> list[str]:
        """One ``<details>`` per rule that fired, in order of first appearance (most severe first)."""
        out: list[str] = []
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.rule_id] = counts.get(f.rule_id, 0) + 1
        by_rule = {f.rule_id: f for f in reversed(findings)}  # first finding of each rule
        for rule_id in counts:
            meta = rule_meta(report, by_rule[rule_id])
            rem = meta.remediation
            out += [f"<details><summary><code>{html.escape(rule_id)}</code>: "
                    f"{html.escape(meta.title)} ({counts[rule_id]})</summary>", ""]
            if rem.summary:
                out += [md(rem.summary), ""]
            if rem.cli:
                fence = _code_fence(rem.cli)
                out += [f"{fence}sh", rem.cli, fence, ""]
            if rem.console:
                out += [f"Console: {md(rem.console)}", ""]
            out += ["</details>", ""]
        return out

    @staticmethod
    def _inventory(report: Report) -> str:
        keys = report.inventory.keys
        out = [f"## keyguard inventory: {len(keys)} key(s)", ""]
        if keys:
            out += ["| source | name | provider | kind | environment | owner |",
                    "|---|---|---|---|---|---|"]
            out += [f"| {md(r.source)} | {md(r.name)} | {md(r.provider)} | {md(r.kind)} | "
                    f"{md(r.environment or '-')} | {md(r.owner or '-')} |" for r in keys]
            out.append("")
        for f in report.inventory.failures:
            out.append(f"- could not read **{md(f.source)}** {md(f.scope)}: {md(f.message)}")
        return "\n".join(out) + "\n"


def _row(f: Finding) -> str:
    rec = f.key
    key = f.subject if rec is None else f"{rec.source}: {rec.name}" + (
        f"#{rec.field}" if rec.field and rec.field != rec.name else "")
    return f"| {f.severity.label} | `{f.rule_id}` | {md(key)} | {md(f.message)} |"


PLUGIN: type[Reporter] = MarkdownReporter
