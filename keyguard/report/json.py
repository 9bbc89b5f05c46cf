"""JSON report: the documented, versioned objects in schemas/inventory.schema.json and check.schema.json.

Besides the JSON reporter, this module holds the few facts every ``keyguard check`` format
must agree on (finding order, severity counts, the gate verdict, rule metadata lookup), so
SARIF, JUnit, Markdown, OCSF, CSV and the table can never disagree with the JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from keyguard import __version__
from keyguard.model import Finding, Severity
from keyguard.policies import Remediation, RuleMeta
from keyguard.report import CHECK_SCHEMA_VERSION, SCHEMA_VERSION, Report, Reporter, age_days
from keyguard.serialize import failure_to_dict, iso, record_to_dict

#: Most severe first: the order of every severity list in every check format.
SEVERITY_ORDER: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then rule, subject and id.

    Rules run in any order and sources list keys in any order; sorting here makes every
    format (and so every golden file and every PR-comment diff) independent of both.
    """
    return sorted(findings, key=lambda f: (-f.severity, f.rule_id, f.subject, f.finding_id))


def failing(report: Report) -> list[Finding]:
    """Remaining findings at or above ``fail_on``: the ones that make ``keyguard check`` exit 1."""
    return [f for f in report.findings or () if f.severity >= report.fail_on]


def gate(report: Report) -> Literal["pass", "fail"]:
    """The findings gate only; a partial inventory is reported under ``errors`` (exit 3 is the CLI's call)."""
    return "fail" if failing(report) else "pass"


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Label -> count for every severity, most severe first, zeros included (a stable shape)."""
    counts = dict.fromkeys((s.label for s in SEVERITY_ORDER), 0)
    for f in findings:
        counts[f.severity.label] += 1
    return counts


def rule_meta(report: Report, finding: Finding) -> RuleMeta:
    """The finding's rule metadata; a stand-in built from the finding if the catalogue lacks it.

    A third-party rule or a stale catalogue must not crash a reporter in the middle of a
    CI run, so an unknown rule id gets its id as title and the finding's remediation.
    """
    meta = report.rules.get(finding.rule_id)
    if meta is not None:
        return meta
    return RuleMeta(id=finding.rule_id, title=finding.rule_id, category="other",
                    severity=finding.severity, risk="",
                    remediation=Remediation(finding.remediation))


def summary_line(report: Report) -> str:
    """``3 findings (1 critical, 2 high), 1 waived, 0 in baseline; gate (fail at >= high): FAIL, 3 at or above``."""
    findings = report.findings or ()
    n = len(findings)
    text = f"{n} finding{'' if n == 1 else 's'}"
    if n:
        counts = severity_counts(findings)
        text += " (" + ", ".join(f"{c} {label}" for label, c in counts.items() if c) + ")"
    text += f", {len(report.waived)} waived, {len(report.baselined)} in baseline"
    bad = len(failing(report))
    verdict = f"FAIL, {bad} at or above" if bad else "pass"
    return f"{text}; gate (fail at >= {report.fail_on.label}): {verdict}"


def key_to_dict(finding: Finding) -> dict[str, Any] | None:
    """The key fields a reader needs to find the key; None for findings about the policy itself."""
    rec = finding.key
    if rec is None:
        return None
    return {
        "source": rec.source, "location": rec.location, "name": rec.name, "field": rec.field,
        "provider": str(rec.provider), "kind": str(rec.kind), "key_id": rec.key_id,
        "fingerprint": rec.fingerprint or finding.fingerprint, "region": rec.region,
        "account": rec.account, "environment": rec.environment, "owner": rec.owner,
    }


def finding_to_dict(report: Report, finding: Finding) -> dict[str, Any]:
    """One finding of the check object (see schemas/check.schema.json)."""
    meta = rule_meta(report, finding)
    return {
        "id": finding.finding_id,
        "rule_id": finding.rule_id,
        "severity": finding.severity.label,
        "title": meta.title,
        "category": meta.category,
        "message": finding.message,
        "subject": finding.subject,
        "location": finding.location,
        "remediation": {
            "summary": finding.remediation or meta.remediation.summary,
            "cli": meta.remediation.cli,
            "console": meta.remediation.console,
        },
        "key": key_to_dict(finding),
        "evidence": dict(sorted(finding.evidence.items())),
    }


def check_summary(report: Report) -> dict[str, Any]:
    """Counts and the gate verdict; ``by_rule`` is sorted by rule id."""
    findings = report.findings or ()
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule_id] = by_rule.get(f.rule_id, 0) + 1
    return {
        "findings": len(findings),
        "failing": len(failing(report)),
        "by_severity": severity_counts(findings),
        "by_rule": dict(sorted(by_rule.items())),
        "waived": len(report.waived),
        "baselined": len(report.baselined),
        "errors": len(report.inventory.failures),
        "gate": gate(report),
    }


class JsonReporter:
    """Inventory: ``{"schema_version": 1, "keys": [...], ...}``; check: the check object. Stable key order."""

    name: ClassVar[str] = "json"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """Serialise the report; ages are whole days relative to ``report.now``."""
        if report.findings is not None:
            return _dump(self._check(report))
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
        return _dump(doc)

    @staticmethod
    def _check(report: Report) -> dict[str, Any]:
        """Only remaining findings are listed; waived and baselined ones are counted.

        Listing accepted findings would invite scripts to treat them as failures; their
        ids already live in the policy (waivers) and the baseline file.
        """
        return {
            "schema_version": CHECK_SCHEMA_VERSION,
            "tool": {"name": "keyguard", "version": __version__},
            "generated_at": iso(report.now),
            "fail_on": report.fail_on.label,
            "sources": list(report.inventory.sources),
            "partial": report.inventory.partial,
            "summary": check_summary(report),
            "findings": [finding_to_dict(report, f) for f in ordered(report.findings or ())],
            "errors": [failure_to_dict(f) for f in report.inventory.failures],
        }


def _dump(doc: dict[str, Any]) -> str:
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
