"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers: one rule per catalogue entry.

Decisions (see also README "CI integration"):

- ``tool.driver.rules`` lists every rule of the catalogue (``report.rules``), not only the
  ones that fired, so a viewer can tell "ran and found nothing" from "unknown rule" and
  close an alert once the key is fixed. A finding whose rule is missing from the
  catalogue still gets an entry, built from the finding.
- Waived and baselined findings are emitted as results carrying ``suppressions`` of
  kind ``external`` (the waiver or baseline lives outside the scanned artifact) with
  status ``accepted``. That is SARIF 2.1.0's own model (``result.suppressions``; kind
  ``external`` = the decision lives outside the scanned artifact), so consumers that
  honour suppressions show them as suppressed and the audit trail stays in the log,
  where dropping them would make an accepted risk look like a fixed one. Only
  unsuppressed results are failures.
- Levels: critical/high -> error, medium -> warning, low/info -> note; the finer grain
  is in ``properties.security-severity`` (GitHub's scale), a string as GitHub expects.
- Locations: every result has a logical location (the key's location or ARN); a key in a
  file (``.env``) also gets a physical location (relative path URI, 1-based line).
- ``partialFingerprints["keyguardFindingId/v1"]`` is the finding id (rule + key
  fingerprint or key id + location), so alerts survive reordering and line shifts.
- A source that could not be read makes ``executionSuccessful`` false and becomes a
  ``toolExecutionNotifications`` entry: coverage gaps are visible, never silent.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from keyguard import __version__
from keyguard.model import Finding, KeyRecord, Severity
from keyguard.policies import RuleMeta
from keyguard.report import Report, Reporter
from keyguard.report.json import check_summary, ordered, rule_meta
from keyguard.serialize import iso

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
INFORMATION_URI = "https://keyguard.dev"


def driver(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``tool.driver`` object of every keyguard SARIF log (check and usage scan)."""
    return {"name": "keyguard", "version": __version__, "semanticVersion": __version__,
            "informationUri": INFORMATION_URI, "rules": rules}
FINGERPRINT_KEY = "keyguardFindingId/v1"

LEVELS: dict[Severity, Literal["error", "warning", "note"]] = {
    Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
    Severity.LOW: "note", Severity.INFO: "note",
}
#: GitHub maps > 9.0 to critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
JUSTIFICATION = {
    "waived": "accepted by a waiver ([[policy.waivers]]) in the keyguard policy",
    "baselined": "accepted in the keyguard baseline file (--baseline)",
}

_LINE = re.compile(r"^(?P<path>.+):(?P<line>[1-9][0-9]*)$")
_WINDOWS = re.compile(r"^[A-Za-z]:[\\/]")


class SarifReporter:
    """One SARIF log with one run; results sorted like every other check format."""

    name: ClassVar[str] = "sarif"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """The SARIF log as indented JSON; an inventory report gives a run without results."""
        tagged = [(f, None) for f in report.findings or ()] + \
            [(f, "waived") for f in report.waived] + [(f, "baselined") for f in report.baselined]
        order = {f.finding_id: i for i, f in enumerate(ordered(f for f, _ in tagged))}
        tagged.sort(key=lambda item: order[item[0].finding_id])

        metas: dict[str, RuleMeta] = dict(report.rules)
        for f, _ in tagged:
            metas.setdefault(f.rule_id, rule_meta(report, f))
        rule_ids = sorted(metas)
        index = {rid: i for i, rid in enumerate(rule_ids)}

        failures = report.inventory.failures
        invocation: dict[str, Any] = {"executionSuccessful": not failures,
                                      "endTimeUtc": iso(report.now)}
        if failures:
            invocation["toolExecutionNotifications"] = [
                {
                    "level": "error",
                    "message": {"text": f"could not read {f.source}"
                                        + (f"[{f.scope}]" if f.scope else "")
                                        + f": {f.message}" + (f" ({f.hint})" if f.hint else "")},
                    "descriptor": {"id": "source-failure"},
                    "properties": {"source": f.source, "scope": f.scope, "hint": f.hint},
                }
                for f in failures
            ]
        summary = check_summary(report)
        run: dict[str, Any] = {
            "tool": {"driver": driver([_rule(metas[rid]) for rid in rule_ids])},
            "invocations": [invocation],
            "results": [_result(f, status, index[f.rule_id]) for f, status in tagged],
            "properties": {
                "failOn": report.fail_on.label,
                "gate": summary["gate"],
                "waived": summary["waived"],
                "baselined": summary["baselined"],
            },
        }
        log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
        return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _rule(meta: RuleMeta) -> dict[str, Any]:
    """A reportingDescriptor: title, risk, remediation as help, severity for GitHub."""
    rem = meta.remediation
    text = [rem.summary]
    markdown = [rem.summary]
    if rem.cli:
        text.append(f"CLI:\n{rem.cli}")
        fence = "`" * max(3, _longest_backtick_run(rem.cli) + 1)
        markdown.append(f"**CLI**\n\n{fence}sh\n{rem.cli}\n{fence}")
    if rem.console:
        text.append(f"Console:\n{rem.console}")
        markdown.append(f"**Console**\n\n{rem.console}")
    rule: dict[str, Any] = {
        "id": meta.id,
        "shortDescription": {"text": meta.title},
    }
    if meta.risk:
        rule["fullDescription"] = {"text": meta.risk}
    rule["help"] = {"text": "\n\n".join(t for t in text if t),
                    "markdown": "\n\n".join(m for m in markdown if m)}
    if meta.references:
        rule["helpUri"] = meta.references[0]
    rule["defaultConfiguration"] = {"level": LEVELS[meta.severity]}
    rule["properties"] = {
        "security-severity": SECURITY_SEVERITY[meta.severity],
        "tags": [meta.category, "security"],
    }
    return rule


def _result(finding: Finding, accepted: str | None, rule_index: int) -> dict[str, Any]:
    """One result; ``accepted`` ("waived"/"baselined") adds an external suppression."""
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [_location(finding)],
        "partialFingerprints": {FINGERPRINT_KEY: finding.finding_id},
        "properties": {"severity": finding.severity.label, "subject": finding.subject},
    }
    if accepted is not None:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": JUSTIFICATION[accepted]}]
    return result


def _location(finding: Finding) -> dict[str, Any]:
    rec = finding.key
    where = rec.location if rec is not None else (finding.location or finding.subject)
    location: dict[str, Any] = {}
    position = _file_position(rec) if rec is not None else None
    if position is not None:
        path, line = position
        location["physicalLocation"] = {"artifactLocation": {"uri": _uri(path)},
                                        "region": {"startLine": line}}
    location["logicalLocations"] = [{
        "name": rec.name if rec is not None else finding.subject,
        "fullyQualifiedName": where,
        "kind": "resource",
    }]
    return location


def _file_position(rec: KeyRecord) -> tuple[str, int] | None:
    """(path, line) for a key that lives in a file, else None.

    A file-backed record's location is ``<anchor>:<line>`` (the anchor is the file), so
    the anchor is the reliable split: a path may itself contain colons.
    """
    if rec.anchor and rec.location.startswith(rec.anchor + ":"):
        tail = rec.location[len(rec.anchor) + 1:]
        if tail.isdigit() and int(tail) > 0:
            return rec.anchor, int(tail)
    if rec.source == "dotenv" and (m := _LINE.match(rec.location)):
        return m["path"], int(m["line"])
    return None


def _uri(path: str) -> str:
    """Relative paths stay relative (GitHub resolves them against the checkout); absolute ones become file: URIs."""
    posix = path.replace("\\", "/")
    if _WINDOWS.match(path):
        return "file:///" + quote(posix, safe="/:")
    if posix.startswith("/"):
        return "file://" + quote(posix, safe="/")
    return quote(posix.removeprefix("./"), safe="/")


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


PLUGIN: type[Reporter] = SarifReporter
