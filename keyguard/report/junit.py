"""JUnit XML for CI test views (GitLab, Jenkins, Azure): one testsuite per rule category.

CI systems render JUnit as suites -> classes -> cases, so: a suite per category
(``keyguard.rotation``), the rule id as ``classname``, the key as the case name. Each
remaining finding is a failing case (``type`` = severity); each catalogue rule without
any finding gets one passing case, so the CI view shows what was checked, not only what
failed; waived and baselined findings are skipped cases (accepted, still visible); each
store that could not be read is an ``<error>`` case in suite ``keyguard.sources``.

Text comes from stores anyone with write access can edit, so besides XML escaping
(ElementTree) characters XML 1.0 cannot carry at all are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC
from typing import ClassVar

from keyguard.model import Finding
from keyguard.report import Report, Reporter
from keyguard.report.json import ordered, rule_meta

PASSED = "no findings"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


class JunitReporter:
    """``<testsuites>`` with one ``<testsuite>`` per category plus one for source failures."""

    name: ClassVar[str] = "junit"
    machine: ClassVar[bool] = True

    def render(self, report: Report) -> str:
        """The XML document, UTF-8 declared, indented, newline-terminated."""
        cases: dict[str, list[ET.Element]] = {}  # category -> testcases, in output order
        seen_rules: set[str] = set()
        tagged = [(f, None) for f in report.findings or ()] + \
            [(f, "waived") for f in report.waived] + [(f, "baselined") for f in report.baselined]
        order = {f.finding_id: i for i, f in enumerate(ordered(f for f, _ in tagged))}
        for finding, accepted in sorted(tagged, key=lambda t: order[t[0].finding_id]):
            meta = rule_meta(report, finding)
            seen_rules.add(finding.rule_id)
            cases.setdefault(meta.category, []).append(_finding_case(report, finding, accepted))
        for rule_id, meta in sorted(report.rules.items()):
            if rule_id not in seen_rules:
                cases.setdefault(meta.category, []).append(
                    _case(rule_id, PASSED))
        root = ET.Element("testsuites", name="keyguard check")
        stamp = report.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        for category in sorted(cases):
            _suite(root, f"keyguard.{category}", cases[category], stamp)
        if report.inventory.failures:
            errors = []
            for f in report.inventory.failures:
                where = f"{f.source}[{f.scope}]" if f.scope else f.source
                case = _case("keyguard.sources", where)
                err = ET.SubElement(case, "error", message=_clean(f.message), type="source-failure")
                err.text = _clean(f.message + (f"\nhint: {f.hint}" if f.hint else ""))
                errors.append(case)
            _suite(root, "keyguard.sources", errors, stamp)
        _count(root, root.findall("testsuite"))
        ET.indent(root)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                + ET.tostring(root, encoding="unicode") + "\n")


def _case(classname: str, name: str) -> ET.Element:
    return ET.Element("testcase", classname=_clean(classname), name=_clean(name), time="0")


def _finding_case(report: Report, finding: Finding, accepted: str | None) -> ET.Element:
    """A failing case (or a skipped one when a waiver or the baseline accepted the finding)."""
    meta = rule_meta(report, finding)
    rec = finding.key
    case = _case(finding.rule_id, finding.subject if rec is None else rec.identity)
    if accepted is not None:
        ET.SubElement(case, "skipped", message=f"{accepted}: {_clean(finding.message)}")
        return case
    lines = [
        f"{meta.title} [{finding.severity.label}]",
        finding.message,
        f"where: {rec.location if rec is not None else finding.location or finding.subject}",
        f"finding id: {finding.finding_id}",
    ]
    remediation = finding.remediation or meta.remediation.summary
    if remediation:
        lines.append(f"fix: {remediation}")
    if meta.remediation.cli:
        lines.append(f"cli: {meta.remediation.cli}")
    failure = ET.SubElement(case, "failure", message=_clean(finding.message),
                            type=finding.severity.label)
    failure.text = _clean("\n".join(lines))
    return case


def _suite(root: ET.Element, name: str, cases: list[ET.Element], stamp: str) -> None:
    suite = ET.SubElement(root, "testsuite", name=name, timestamp=stamp)
    suite.extend(cases)
    _count(suite, cases)


def _count(element: ET.Element, children: list[ET.Element]) -> None:
    """Set tests/failures/errors/skipped from the cases below (suites sum their cases)."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for child in children:
        if child.tag == "testsuite":
            for attr in totals:
                totals[attr] += int(child.get(attr, "0"))
            continue
        totals["tests"] += 1
        totals["failures"] += child.find("failure") is not None
        totals["errors"] += child.find("error") is not None
        totals["skipped"] += child.find("skipped") is not None
    for attr, value in totals.items():
        element.set(attr, str(value))
    element.set("time", "0")


PLUGIN: type[Reporter] = JunitReporter
