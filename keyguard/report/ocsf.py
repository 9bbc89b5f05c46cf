"""OCSF 1.1.0 Detection Finding events (class 2004) for SIEMs and security data lakes.

Output is one JSON array of events (``[]`` when there are none), not JSON Lines: the
report is a single document written atomically with ``-o``, it validates and diffs as
one unit, and it matches the array form other scanners (Prowler's ``json-ocsf``) emit,
which ingestion pipelines such as Security Lake converters already accept; ``jq -c
'.[]'`` turns it into JSON Lines when a pipeline wants those.

Remaining findings are ``status: New``; waived and baselined findings are included with
``status: Suppressed`` (status_id 3), so the SIEM sees accepted risk as accepted rather
than never hearing of it. Source failures are not findings and are not events here (the
exit code 3 and the other formats report them).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from keyguard import __version__
from keyguard.model import Finding, Severity
from keyguard.report import Report, Reporter
from keyguard.report.json import ordered, rule_meta

OCSF_VERSION = "1.1.0"
CLASS_UID = 2004  # Detection Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE  # 200401
#: keyguard severity -> (OCSF severity_id, severity caption).
SEVERITY_IDS: dict[Severity, tuple[int, str]] = {
    Severity.INFO: (1, "Informational"), Severity.LOW: (2, "Low"), Severity.MEDIUM: (3, "Medium"),
    Severity.HIGH: (4, "High"), Severity.CRITICAL: (5, "Critical"),
}
STATUS_NEW = (1, "New")
STATUS_SUPPRESSED = (3, "Suppressed")


class OcsfReporter:
    """A JSON array of OCSF Detection Finding events, most severe first."""

    name: ClassVar[str] = "ocsf"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """Events for remaining (New) and accepted (Suppressed) findings; ``[]`` for inventory."""
        accepted = {f.finding_id for f in (*report.waived, *report.baselined)}
        everything = ordered((*(report.findings or ()), *report.waived, *report.baselined))
        events = [_event(report, f, f.finding_id in accepted) for f in everything]
        return json.dumps(events, indent=2, ensure_ascii=False) + "\n"


def _event(report: Report, finding: Finding, suppressed: bool) -> dict[str, Any]:
    meta = rule_meta(report, finding)
    severity_id, severity = SEVERITY_IDS[finding.severity]
    status_id, status = STATUS_SUPPRESSED if suppressed else STATUS_NEW
    time_ms = round(report.now.timestamp() * 1000)
    finding_info: dict[str, Any] = {
        "uid": finding.finding_id,
        "title": meta.title,
        "desc": finding.message,
        "types": [meta.category],
        "analytic": {"uid": finding.rule_id, "name": finding.rule_id, "type_id": 1,
                     "type": "Rule"},
    }
    remediation: dict[str, Any] = {"desc": finding.remediation or meta.remediation.summary}
    if meta.references:
        remediation["references"] = list(meta.references)
    return {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": time_ms,
        "message": finding.message,
        "finding_info": finding_info,
        "metadata": {
            "product": {"name": "keyguard", "vendor_name": "keyguard", "version": __version__},
            "version": OCSF_VERSION,
        },
        "resources": [_resource(finding)],
        "remediation": remediation,
        "unmapped": {
            "rule_id": finding.rule_id,
            "keyguard_severity": finding.severity.label,
            "subject": finding.subject,
            "evidence": dict(sorted(finding.evidence.items())),
        },
    }


def _resource(finding: Finding) -> dict[str, Any]:
    """The key as an OCSF resource; labels carry what a SIEM filters on (``k:v``)."""
    rec = finding.key
    if rec is None:
        return {"uid": finding.location or finding.subject, "type": "keyguard-policy",
                "name": finding.subject}
    labels = [f"source:{rec.source}", f"provider:{rec.provider}"]
    labels += [f"{name}:{value}" for name, value in (
        ("environment", rec.environment), ("owner", rec.owner), ("account", rec.account),
        ("key_id", rec.key_id), ("fingerprint", rec.fingerprint or finding.fingerprint))
        if value]
    labels += [f"scope:{label}" for label in rec.scope.labels]
    resource: dict[str, Any] = {"uid": rec.location, "type": str(rec.kind), "name": rec.name}
    if rec.region:
        resource["region"] = rec.region
    resource["labels"] = labels
    return resource


PLUGIN: type[Reporter] = OcsfReporter
