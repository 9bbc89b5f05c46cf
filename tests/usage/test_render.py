"""Usage report formats: golden files (empty, one, many, unicode), schemas, shared facts.

KEYGUARD_UPDATE_GOLDEN=1 rewrites the golden files; review their diff like code.
"""

import csv
import io
import json
import os
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keyguard.model import Alert, Severity
from keyguard.usage.alerts import alert_id, sort_key
from keyguard.usage.render import ReportedAlert, SuppressedAlert, UsageReport
from keyguard.usage.render import csv as csv_format
from keyguard.usage.render import json as json_format
from keyguard.usage.render import sarif as sarif_format
from keyguard.usage.render import table as table_format
from keyguard.usage.sparkline import Volume

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SCHEMA = json.loads((ROOT / "keyguard" / "schemas" / "usage.schema.json").read_text("utf-8"))
# vendored copy of ../shared/reference/sarif-schema-2.1.0.json (also used by tests/report)
SARIF_SCHEMA_PATH = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"
NOW = datetime(2026, 3, 10, 6, tzinfo=UTC)
T0 = datetime(2026, 3, 9, 14, 5, tzinfo=UTC)
DOCS = {
    "canary": "Canary detector: any use of a canary key is critical.\n\nMethod: no baseline.",
    "geography": "Geography detector: new countries and impossible travel.\n\nMethod: per key.",
    "prompt-mix": "Prompt-mix detector: templated extraction prompts.",
}


def stats(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "files": 1, "records": 10, "events": 10, "new_events": 10, "duplicates": 0,
        "already_imported": 0, "before_since": 0, "errors": 0, "error_samples": [],
        "by_format": {"litellm": 10}, "window": {"start": "2026-03-09T00:00:00Z",
                                                 "end": "2026-03-09T23:59:00Z"},
        "detectors": sorted(DOCS), "raised": 0, "alerts_by_type": {}, "min_severity": "info",
        "below_min_severity": 0, "suppressed": 0, "suppressed_alerts": [],
        "expired_suppressions": [], "notify": None,
    }
    return {**base, **changes}


def alert(rule: str, key: str, severity: Severity, hours: int = 1, **kw: Any) -> Alert:
    evidence = kw.pop("evidence", {"events": 3, "source_ips": "7.7.7.7"})
    return Alert(rule_id=rule, severity=severity, subject=key, message=kw.pop(
        "message", f"Key {key}: {rule} anomaly (3 events from 7.7.7.7)."), evidence=evidence,
        first_seen=T0, last_seen=T0 + timedelta(hours=hours), **kw)


def reported(a: Alert) -> ReportedAlert:
    return ReportedAlert(alert_id(a), a)


GEO = alert("geography", "key_a", Severity.HIGH, key_alias="billing-prod",
            evidence={"country": "BR", "reasons": "new-country", "events": 3,
                      "source_ips": "7.7.7.7", "history_days": 21.5})
CANARY = alert("canary", "AKIAEXAMPLECANARY001", Severity.CRITICAL,
               evidence={"canary": "AKIAEXAMPLECANARY001", "matched_on": "key_id", "events": 2})
VELO = alert("velocity", "key_a", Severity.MEDIUM, hours=3,
             evidence={"reason": "spike", "metric": "requests", "ratio": 14.2})
MIX = alert("prompt-mix", "=cmd|' /C calc'!A0", Severity.HIGH,
            evidence={"reason": "extraction", "share": 0.82})
SUPPRESSED = SuppressedAlert(alert_id(MIX), replace(MIX, subject="sk-synth-1"), 0, "ml-platform",
                             "sanctioned distillation job", "2026-12-31")
VOLUME = Volume(T0.replace(minute=0) - timedelta(hours=24),
                tuple([0] * 10 + [3, 5, 4, 6, 5, 4] + [0] * 8 + [120, 90] + [0] * 22),
                frozenset({24, 25}))
UNI = alert("geography", "ключ-7", Severity.HIGH, key_alias="Ünïcödé 机器人 ✓",
            message="Key ключ-7: first use from JP (東京) after 30 days.",
            evidence={"country": "JP", "city": "東京"})


def case(alerts: list[Alert], **kw: Any) -> UsageReport:
    shown = tuple(reported(a) for a in sorted(alerts, key=sort_key))
    by_type: dict[str, int] = {}
    for r in shown:
        t = r.alert.rule_id.replace("-", "_")
        by_type[t] = by_type.get(t, 0) + 1
    extra = kw.pop("stats", {})
    suppressed = kw.pop("suppressed", ())
    return UsageReport(alerts=shown, now=NOW, suppressed=suppressed, detectors=DOCS,
                       stats=stats(raised=len(shown) + len(suppressed) + extra.get(
                           "below_min_severity", 0), alerts_by_type=by_type,
                           suppressed=len(suppressed), **extra), **kw)


CASES: dict[str, UsageReport] = {
    "empty": case([]),
    "one": case([GEO], volumes={"key_a": VOLUME}),
    "many": case([GEO, CANARY, VELO, MIX], volumes={"key_a": VOLUME},
                 suppressed=(SUPPRESSED,),
                 errors=("spend.jsonl:7: invalid JSON",),
                 stats={"below_min_severity": 2, "errors": 1,
                        "error_samples": ["spend.jsonl:7: invalid JSON"],
                        "suppressed_alerts": [{"id": SUPPRESSED.id, "type": "prompt_mix",
                                               "key": "sk-synth-1", "severity": "high",
                                               "suppression": 0, "owner": "ml-platform",
                                               "expires": "2026-12-31"}]}),
    "unicode": case([UNI]),
}
RENDERERS: dict[str, tuple[str, Callable[[UsageReport], str]]] = {
    "table": ("txt", table_format.render),
    "ascii": ("ascii.txt", lambda r: table_format.render(r, unicode=False)),
    "json": ("json", json_format.render),
    "sarif": ("sarif", sarif_format.render),
    "csv": ("csv", csv_format.render),
}


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(fmt: str, name: str) -> None:
    ext, render = RENDERERS[fmt]
    path = GOLDEN / f"usage-{name}.{ext}"
    text = render(CASES[name])
    if os.environ.get("KEYGUARD_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8", newline="\n")
    assert text == path.read_text(encoding="utf-8").replace("\r\n", "\n")


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_matches_the_schema(name: str) -> None:
    doc = json.loads(json_format.render(CASES[name]))
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_schema_rejects_a_report_without_alert_ids() -> None:
    doc = json.loads(json_format.render(CASES["one"]))
    del doc["alerts"][0]["id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sarif_matches_the_2_1_0_schema(name: str) -> None:
    schema = json.loads(SARIF_SCHEMA_PATH.read_text("utf-8"))
    jsonschema.validate(json.loads(sarif_format.render(CASES[name])), schema)


def test_sarif_rules_results_and_suppressions() -> None:
    run = json.loads(sarif_format.render(CASES["many"]))["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    # every detector that ran has a rule (with its docstring as help), plus fired types
    assert set(rules) == {"canary", "geography", "prompt_mix", "velocity"}
    assert rules["canary"]["shortDescription"]["text"].startswith("Canary detector")
    assert rules["canary"]["fullDescription"]["text"] == "Method: no baseline."
    assert rules["canary"]["properties"]["security-severity"] == "9.5"
    results = run["results"]
    assert len(results) == 5
    by_key = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r for r in results}
    canary = by_key["AKIAEXAMPLECANARY001"]
    assert canary["level"] == "error"
    assert canary["partialFingerprints"] == {"keyguardAlertId/v1": alert_id(CANARY)}
    assert by_key["key_a"]["ruleId"] in ("geography", "velocity")
    accepted = by_key["sk-synth-1"]
    assert accepted["suppressions"][0]["status"] == "accepted"
    assert "usage.suppressions[0]" in accepted["suppressions"][0]["justification"]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert rules[results[0]["ruleId"]] == run["tool"]["driver"]["rules"][results[0]["ruleIndex"]]


def test_csv_one_row_per_alert_with_json_evidence_and_no_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_format.render(CASES["many"]))))
    # most severe first, then key: "=cmd..." sorts before "key_a"
    assert [r["type"] for r in rows] == ["canary", "prompt_mix", "geography", "velocity"]
    assert json.loads(rows[2]["evidence"])["country"] == "BR"
    assert rows[1]["key"].startswith("'=")
    assert all(r["id"].startswith("ua1:") for r in rows)


def test_table_groups_by_key_with_sparkline_and_markers() -> None:
    text = table_format.render(CASES["many"])
    assert text.index("KEY AKIAEXAMPLECANARY001") < text.index("KEY key_a (billing-prod)")
    assert text.count("KEY key_a") == 1  # geography and velocity under one heading
    lines = text.splitlines()
    volume = next(i for i, line in enumerate(lines) if line.startswith("volume  |"))
    spark = lines[volume].split("|")[1]
    assert len(spark) == 48
    assert spark[24] == "█"
    assert spark[10] != " "
    assert spark[0] == " "
    assert lines[volume + 1].index("^") == lines[volume].index("|") + 1 + 24
    assert "1 alert(s) suppressed" in text
    assert "2 alert(s) below --min-severity" in text


def test_ascii_table_has_no_block_characters() -> None:
    text = table_format.render(CASES["many"], unicode=False)
    assert text.isascii()
    assert "@" in text


@pytest.mark.parametrize("fmt", ["json", "sarif", "csv", "table"])
def test_output_does_not_depend_on_input_order(fmt: str) -> None:
    _, render = RENDERERS[fmt]
    base = CASES["many"]
    alerts = [r.alert for r in base.alerts]
    for seed in range(3):
        random.Random(seed).shuffle(alerts)
        assert render(replace(base, alerts=tuple(
            reported(a) for a in sorted(alerts, key=sort_key)))) == render(base)
