"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards, one rule per detector.

Follows ``keyguard check``'s SARIF (:mod:`keyguard.report.sarif`) so one dashboard reads both:

- ``tool.driver.rules`` lists every detector that could run (not only those that fired),
  with the detector's module docstring (method, parameters, defaults) as help text.
  Rule ids are the report types (``prompt_mix``), as in the JSON report.
- Levels: critical/high -> error, medium -> warning, low/info -> note; a rule's
  ``security-severity`` is that of its most severe alert in this run (GitHub's scale).
- Each result has a logical location naming the key as the export names it (usage
  alerts have no file to point at) and ``partialFingerprints["keyguardAlertId/v1"]`` =
  the stable alert id, so a rescan does not open a second dashboard alert.
- Suppressed alerts are results with an ``external``/``accepted`` suppression naming the
  ``[[usage.suppressions]]`` entry, owner and reason: the audit trail stays in the log.
- Unparseable input makes ``executionSuccessful`` false, one notification per sample.
"""

from __future__ import annotations

import json
from typing import Any

from keyguard.model import Alert, Severity
from keyguard.report.sarif import (
    LEVELS,
    SARIF_SCHEMA,
    SARIF_VERSION,
    SECURITY_SEVERITY,
    driver,
)
from keyguard.serialize import iso
from keyguard.usage.alerts import report_type
from keyguard.usage.render import UsageReport, doc_summary

FINGERPRINT_KEY = "keyguardAlertId/v1"


def render(report: UsageReport) -> str:
    """The SARIF log (one run) as indented JSON, newline-terminated."""
    docs = {report_type(name): doc for name, doc in report.detectors.items()}
    tagged: list[tuple[str, Alert, dict[str, Any] | None]] = [
        (r.id, r.alert, None) for r in report.alerts]
    tagged.extend((s.id, s.alert, {
        "kind": "external", "status": "accepted",
        "justification": (f"suppressed by usage.suppressions[{s.suppression}] (owner "
                          f"{s.owner}, until {s.expires}): {s.reason}")})
        for s in report.suppressed)
    worst: dict[str, Severity] = {}
    for _, alert, _ in tagged:
        kind = report_type(alert.rule_id)
        worst[kind] = max(worst.get(kind, alert.severity), alert.severity)
        docs.setdefault(kind, "")
    rule_ids = sorted(docs)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors,
                                  "endTimeUtc": iso(report.now)}
    if report.errors:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": f"could not parse: {sample}"},
             "descriptor": {"id": "usage-parse-error"}}
            for sample in report.errors
        ]
    run: dict[str, Any] = {
        "tool": {"driver": driver([_rule(rid, docs[rid], worst.get(rid)) for rid in rule_ids])},
        "invocations": [invocation],
        "results": [_result(aid, alert, index[report_type(alert.rule_id)], suppression)
                    for aid, alert, suppression in tagged],
        "properties": {"failOn": report.fail_on.label,
                       "suppressed": len(report.suppressed),
                       "belowMinSeverity": report.stats.get("below_min_severity", 0)},
    }
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _rule(rule_id: str, doc: str, worst: Severity | None) -> dict[str, Any]:
    title, method = doc_summary(doc)
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": title or f"usage anomaly: {rule_id}"},
    }
    if method:
        rule["fullDescription"] = {"text": method}
    rule["help"] = {"text": doc.strip() or f"Alerts of the {rule_id} usage detector."}
    properties: dict[str, Any] = {"tags": ["usage-anomaly", "security"]}
    if worst is not None:
        rule["defaultConfiguration"] = {"level": LEVELS[worst]}
        properties["security-severity"] = SECURITY_SEVERITY[worst]
    rule["properties"] = properties
    return rule


def _result(alert_id: str, alert: Alert, rule_index: int,
            suppression: dict[str, Any] | None) -> dict[str, Any]:
    key = alert.subject
    result: dict[str, Any] = {
        "ruleId": report_type(alert.rule_id),
        "ruleIndex": rule_index,
        "level": LEVELS[alert.severity],
        "message": {"text": alert.message},
        "locations": [{"logicalLocations": [{
            "name": alert.key_alias or key,
            "fullyQualifiedName": key,
            "kind": "resource",
        }]}],
        "partialFingerprints": {FINGERPRINT_KEY: alert_id},
        "properties": {
            "severity": alert.severity.label,
            "key": key,
            "keyAlias": alert.key_alias,
            "start": iso(alert.first_seen),
            "end": iso(alert.last_seen),
            "evidence": dict(alert.evidence),
        },
    }
    if suppression is not None:
        result["suppressions"] = [suppression]
    return result
