"""`keyguard check` formats: golden files per format and case, plus the contracts behind them.

Findings and rule metadata are built by hand here (not from keyguard/policies), so these
tests pin the output formats, not the rules. KEYGUARD_UPDATE_GOLDEN=1 rewrites the golden
files; review their diffs like code, they are the documented output.
"""

import csv
import io
import json
import os
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keyguard import __version__
from keyguard.model import (
    Finding,
    Fingerprint,
    Inventory,
    KeyRecord,
    KeyStatus,
    Kind,
    Provider,
    Scope,
    Severity,
    SourceFailure,
)
from keyguard.policies import Remediation, RuleMeta
from keyguard.report import CHECK_SCHEMA_VERSION, REPORTERS, Report
from keyguard.report.csv import CHECK_COLUMNS
from keyguard.report.markdown import MAX_ROWS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CHECK_SCHEMA = json.loads((ROOT / "keyguard" / "schemas" / "check.schema.json").read_text("utf-8"))
# NOTE: vendored from <repo>/../shared/reference/sarif-schema-2.1.0.json (OASIS errata01), so
# the suite runs offline and without the shared/ checkout beside the clone.
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text("utf-8"))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FORMATS = {"table": "txt", "json": "json", "csv": "csv", "sarif": "sarif", "junit": "xml",
           "markdown": "md", "ocsf": "ocsf.json"}


def meta(rule_id: str, title: str, category: str, severity: Severity, *, refs: tuple[str, ...] = (),
         cli: str = "", console: str = "") -> RuleMeta:
    return RuleMeta(
        id=rule_id, title=title, category=category, severity=severity,
        risk=f"Risk of {title.lower()}: an attacker who obtains the key keeps access.",
        remediation=Remediation(f"Fix: {title.lower()}.", cli, console), references=refs,
    )


RULES = {
    "rotation-max-age": meta(
        "rotation-max-age", "Key older than the rotation limit", "rotation", Severity.HIGH,
        refs=("https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html",),
        cli="aws iam create-access-key --user-name <user>\naws iam delete-access-key --access-key-id <old>",
        console="IAM > Users > Security credentials > Create access key"),
    "key-unused": meta("key-unused", "Key unused for too long", "unused", Severity.MEDIUM,
                       cli="keyguard inventory --source aws-secretsmanager"),
    "plaintext-key-at-rest": meta(
        "plaintext-key-at-rest", "Key stored in plaintext", "placement", Severity.HIGH,
        cli="grep -n ANTHROPIC_API_KEY .env   # then move it to a secret store",
        console="Move the value to your secret manager; load it at runtime."),
    "scope-iam-admin": meta("scope-iam-admin", "IAM key with admin rights", "scoping",
                            Severity.CRITICAL),
    "waiver-expired": meta("waiver-expired", "A waiver has expired", "policy", Severity.MEDIUM,
                           console="Edit [[policy.waivers]] in keyguard.toml."),
}

IAM = KeyRecord(
    source="aws-iam", location="arn:aws:iam::111122223333:user/ci-bot", name="ci-bot",
    provider=Provider("aws"), kind=Kind("aws-access-key"), key_id="AKIAEXAMPLEKEYID0001",
    account="111122223333", owner="ci-bot", status=KeyStatus.ACTIVE,
    created=NOW - timedelta(days=400), scope=Scope(("admin",), ("AdministratorAccess",)),
)
SECRET = KeyRecord(
    source="aws-secretsmanager",
    location="arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/payments/stripe-AbCdEf",
    name="prod/payments/stripe", field="api_key", provider=Provider("stripe"),
    kind=Kind("stripe-secret"), account="111122223333", region="eu-west-1", environment="prod",
    owner="payments", fingerprint=Fingerprint("kg1:0123456789abcdef0123456789abcdef"),
)
DOTENV = KeyRecord(
    source="dotenv", location="app/.env:3", anchor="app/.env", name="ANTHROPIC_API_KEY",
    field="ANTHROPIC_API_KEY", provider=Provider("anthropic"), kind=Kind("anthropic-api"),
    fingerprint=Fingerprint("kg1:fedcba9876543210fedcba9876543210"), plaintext=True,
)
EXAMPLE = KeyRecord(
    source="dotenv", location="examples/.env:1", anchor="examples/.env", name="OPENAI_API_KEY",
    field="OPENAI_API_KEY", provider=Provider("openai"), kind=Kind("openai-project"),
    fingerprint=Fingerprint("kg1:00112233445566778899aabbccddeeff"), plaintext=True,
)
EVIL = KeyRecord(
    source="keyring", location="keyring:Zürich-äpp/ópérateur|<img src=x onerror=alert(1)>",
    name="Zürich|<img src=x onerror=alert(1)>`*_", provider=Provider("openai"),
    kind=Kind("openai-project"), owner="données", environment="prod",
    fingerprint=Fingerprint("kg1:ffeeddccbbaa99887766554433221100"),
)
FAIL = SourceFailure("aws-ssm", "ap-south-1", "AccessDeniedException on DescribeParameters",
                     "grant ssm:DescribeParameters")


def finding(rule: str, sev: Severity, key: KeyRecord | None, message: str, **evidence: str | int,
            ) -> Finding:
    rem = RULES[rule].remediation.summary if rule in RULES else "Tag the key with owner and environment."
    if key is None:
        return Finding(rule, sev, "policy:waiver/2", message, location="policy.waivers[2]",
                       remediation=rem, evidence=evidence)
    return Finding(rule, sev, key.identity, message, fingerprint=key.fingerprint,
                   location=key.location, remediation=rem, key=key, evidence=evidence)


F_ROT = finding("rotation-max-age", Severity.CRITICAL, IAM, "access key is 400 days old (limit 90)",
                age_days=400, max_age_days=90)
F_UNUSED = finding("key-unused", Severity.MEDIUM, SECRET, "not read for 60 days (limit 45)",
                   days_unused=60)
F_PLAIN = finding("plaintext-key-at-rest", Severity.HIGH, DOTENV,
                  "anthropic-api key in plaintext file app/.env", file="app/.env", line=3)
F_WAIVER = finding("waiver-expired", Severity.MEDIUM, None,
                   "waiver #2 (rule key-unused) owned by alice expired on 2026-10-01: migration",
                   owner="alice", expires="2026-10-01", days_expired=57)
F_TAGS = finding("required-tags-missing", Severity.LOW, IAM, "missing tags: environment",
                 missing="environment")  # a rule the catalogue does not know
W_EXAMPLE = finding("plaintext-key-at-rest", Severity.HIGH, EXAMPLE,
                    "openai-project key in plaintext file examples/.env")
B_SECRET = finding("rotation-max-age", Severity.HIGH, SECRET, "secret is 120 days old (limit 90)")
F_EVIL = finding("plaintext-key-at-rest", Severity.HIGH, EVIL,
                 "ünïcødé — «quotes» & <b>bold</b> | pipe `tick`\x07 bell\nnew line")


def check_report(findings: tuple[Finding, ...], keys: tuple[KeyRecord, ...] = (), *,
                 failures: tuple[SourceFailure, ...] = (), waived: tuple[Finding, ...] = (),
                 baselined: tuple[Finding, ...] = (), fail_on: Severity = Severity.HIGH) -> Report:
    sources = tuple(sorted({k.source for k in keys} | {f.source for f in failures}))
    return Report(inventory=Inventory(keys=keys, failures=failures, sources=sources, taken_at=NOW),
                  now=NOW, findings=findings, rules=RULES, waived=waived, baselined=baselined,
                  fail_on=fail_on)


CASES = {
    "empty": check_report(()),
    "one": check_report((F_PLAIN,), (DOTENV,)),
    # deliberately not in output order: every format sorts
    "many": check_report((F_UNUSED, F_TAGS, F_PLAIN, F_ROT, F_WAIVER), (IAM, SECRET, DOTENV, EXAMPLE),
                         waived=(W_EXAMPLE,), baselined=(B_SECRET,)),
    "unicode": check_report((F_EVIL,), (EVIL,), fail_on=Severity.CRITICAL),
    "failures": check_report((F_UNUSED,), (SECRET,), failures=(FAIL,), fail_on=Severity.MEDIUM),
}


def render(fmt: str, report: Report) -> str:
    text = REPORTERS.load(fmt)().render(report)
    return (text.replace(f'"{__version__}"', '"<version>"')
            .replace(f"keyguard {__version__}", "keyguard <version>"))


def sarif(case: str) -> dict[str, Any]:
    doc = json.loads(REPORTERS.load("sarif")().render(CASES[case]))
    assert isinstance(doc, dict)
    return doc


def sarif_run(case: str) -> dict[str, Any]:
    run = sarif(case)["runs"][0]
    assert isinstance(run, dict)
    return run


def junit(case: str) -> ET.Element:
    return ET.fromstring(REPORTERS.load("junit")().render(CASES[case]))  # noqa: S314 - our own output


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(fmt: str, case: str) -> None:
    path = GOLDEN / f"check-{case}.{FORMATS[fmt]}"
    text = render(fmt, CASES[case])
    if os.environ.get("KEYGUARD_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    assert text == expected


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_output_does_not_depend_on_finding_order(fmt: str) -> None:
    base = CASES["many"]
    rng = random.Random(7)
    for _ in range(5):
        shuffled = list(base.findings or ())
        rng.shuffle(shuffled)
        assert render(fmt, replace(base, findings=tuple(shuffled))) == render(fmt, base)


@pytest.mark.parametrize("fmt", ["sarif", "junit", "markdown", "ocsf"])
def test_new_formats_render_an_inventory_report(fmt: str) -> None:
    report = Report(inventory=Inventory(keys=(IAM, DOTENV), failures=(FAIL,)), now=NOW)
    assert render(fmt, report).endswith("\n")


# --- JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_check_object_validates_against_its_schema(case: str) -> None:
    doc = json.loads(render("json", CASES[case]))
    jsonschema.validate(doc, CHECK_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert doc["schema_version"] == CHECK_SCHEMA_VERSION


def test_schema_pins_the_current_check_schema_version() -> None:
    assert CHECK_SCHEMA["properties"]["schema_version"] == {"const": CHECK_SCHEMA_VERSION}


def test_json_summary_counts_and_gate() -> None:
    doc = json.loads(render("json", CASES["many"]))
    summary = doc["summary"]
    assert summary["findings"] == 5
    assert summary["failing"] == 2  # critical + high at fail_on=high
    assert summary["by_severity"] == {"critical": 1, "high": 1, "medium": 2, "low": 1, "info": 0}
    assert summary["by_rule"]["key-unused"] == 1
    assert (summary["waived"], summary["baselined"], summary["gate"]) == (1, 1, "fail")
    assert [f["severity"] for f in doc["findings"]] == ["critical", "high", "medium", "medium", "low"]
    unknown = next(f for f in doc["findings"] if f["rule_id"] == "required-tags-missing")
    assert unknown["title"] == "required-tags-missing"
    assert unknown["remediation"]["summary"] == "Tag the key with owner and environment."
    policy = next(f for f in doc["findings"] if f["rule_id"] == "waiver-expired")
    assert policy["key"] is None
    assert policy["location"] == "policy.waivers[2]"
    assert json.loads(render("json", CASES["unicode"]))["summary"]["gate"] == "pass"


def test_json_schema_rejects_a_malformed_finding() -> None:
    doc = json.loads(render("json", CASES["one"]))
    doc["findings"][0]["severity"] = "urgent"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, CHECK_SCHEMA)


def test_json_errors_list_source_failures() -> None:
    doc = json.loads(render("json", CASES["failures"]))
    assert doc["partial"] is True
    assert doc["errors"] == [{"source": "aws-ssm", "scope": "ap-south-1",
                              "message": "AccessDeniedException on DescribeParameters",
                              "hint": "grant ssm:DescribeParameters"}]
    assert doc["summary"]["errors"] == 1


# --- SARIF --------------------------------------------------------------------------------------


def test_vendored_sarif_schema_is_the_oasis_errata01_schema() -> None:
    assert SARIF_SCHEMA["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    assert SARIF_SCHEMA["properties"]["version"]["enum"] == ["2.1.0"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_sarif_validates_against_the_2_1_0_schema(case: str) -> None:
    validator = jsonschema.validators.validator_for(SARIF_SCHEMA)(SARIF_SCHEMA)
    errors = sorted(validator.iter_errors(sarif(case)), key=str)
    assert not errors, errors[0].message


def test_sarif_validator_catches_a_bad_level() -> None:
    doc = sarif("one")
    doc["runs"][0]["results"][0]["level"] = "critical"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SARIF_SCHEMA)


def test_sarif_rules_cover_the_catalogue_with_severity_and_help() -> None:
    run = sarif_run("many")
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted([*RULES, "required-tags-missing"])
    by_id = {r["id"]: r for r in rules}
    rot = by_id["rotation-max-age"]
    assert rot["shortDescription"]["text"] == "Key older than the rotation limit"
    assert rot["fullDescription"]["text"].startswith("Risk of")
    assert rot["properties"] == {"security-severity": "8.0", "tags": ["rotation", "security"]}
    assert rot["defaultConfiguration"] == {"level": "error"}
    assert "aws iam create-access-key" in rot["help"]["text"]
    assert "```sh\naws iam create-access-key" in rot["help"]["markdown"]
    assert "IAM > Users" in rot["help"]["markdown"]
    assert rot["helpUri"].startswith("https://docs.aws.amazon.com/")
    assert by_id["scope-iam-admin"]["properties"]["security-severity"] == "9.5"
    assert by_id["key-unused"]["properties"]["security-severity"] == "5.5"


def test_sarif_results_levels_rule_index_and_suppressions() -> None:
    run = sarif_run("many")
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert isinstance(results, list)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    open_results = [r for r in results if "suppressions" not in r]
    assert [(r["ruleId"], r["level"]) for r in open_results] == [
        ("rotation-max-age", "error"), ("plaintext-key-at-rest", "error"),
        ("key-unused", "warning"), ("waiver-expired", "warning"),
        ("required-tags-missing", "note"),
    ]
    suppressed = {r["partialFingerprints"]["keyguardFindingId/v1"]: r["suppressions"]
                  for r in results if "suppressions" in r}
    assert set(suppressed) == {W_EXAMPLE.finding_id, B_SECRET.finding_id}
    for entries in suppressed.values():
        assert [(s["kind"], s["status"]) for s in entries] == [("external", "accepted")]
    assert "waiver" in suppressed[W_EXAMPLE.finding_id][0]["justification"]
    assert "baseline" in suppressed[B_SECRET.finding_id][0]["justification"]
    assert run["invocations"] == [{"executionSuccessful": True, "endTimeUtc": "2026-11-27T12:00:00Z"}]
    assert run["properties"] == {"failOn": "high", "gate": "fail", "waived": 1, "baselined": 1}


def test_sarif_locations_physical_for_files_logical_for_cloud_keys() -> None:
    results = {r["ruleId"] + "|" + r["properties"]["subject"]: r
               for r in sarif_run("many")["results"]}
    dotenv = results[f"plaintext-key-at-rest|{DOTENV.identity}"]["locations"][0]
    assert dotenv["physicalLocation"] == {"artifactLocation": {"uri": "app/.env"},
                                          "region": {"startLine": 3}}
    assert dotenv["logicalLocations"][0]["fullyQualifiedName"] == "app/.env:3"
    iam = results[f"rotation-max-age|{IAM.identity}"]["locations"][0]
    assert "physicalLocation" not in iam
    assert iam["logicalLocations"] == [{"name": "ci-bot", "fullyQualifiedName": IAM.location,
                                        "kind": "resource"}]
    policy = results["waiver-expired|policy:waiver/2"]["locations"][0]
    assert policy["logicalLocations"][0]["fullyQualifiedName"] == "policy.waivers[2]"


def test_sarif_uris_are_percent_encoded_and_absolute_paths_are_file_uris() -> None:
    spaced = replace(DOTENV, location="my app/.env:12", anchor="my app/.env")
    absolute = replace(DOTENV, location="/srv/app/.env:2", anchor="/srv/app/.env")
    report = check_report((finding("plaintext-key-at-rest", Severity.HIGH, spaced, "x"),
                           finding("plaintext-key-at-rest", Severity.HIGH, absolute, "y")))
    results = json.loads(render("sarif", report))["runs"][0]["results"]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)
    assert uris == ["file:///srv/app/.env", "my%20app/.env"]


def test_sarif_source_failures_make_execution_unsuccessful() -> None:
    invocation = sarif_run("failures")["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert "aws-ssm[ap-south-1]" in note["message"]["text"]
    assert "grant ssm:DescribeParameters" in note["message"]["text"]


def test_sarif_partial_fingerprints_are_stable_across_runs_and_line_shifts() -> None:
    def fingerprints(report: Report) -> dict[str, str]:
        results = json.loads(render("sarif", report))["runs"][0]["results"]
        return {r["properties"]["subject"] + "|" + r["ruleId"]:
                r["partialFingerprints"]["keyguardFindingId/v1"] for r in results}

    first = fingerprints(CASES["many"])
    assert len(set(first.values())) == len(first)  # distinct per finding
    # a later run: different order, one finding fixed, the .env key moved down four lines
    moved = replace(DOTENV, location="app/.env:7")
    later = check_report((F_WAIVER, finding("plaintext-key-at-rest", Severity.HIGH, moved, "m"),
                          F_ROT), waived=(W_EXAMPLE,), baselined=(B_SECRET,))
    second = fingerprints(later)
    assert second.items() <= first.items()
    assert len(second) == 5
    # a rotated value at the same place is a new finding
    rotated = replace(DOTENV, fingerprint=Fingerprint("kg1:99999999999999999999999999999999"))
    third = fingerprints(check_report((finding("plaintext-key-at-rest", Severity.HIGH, rotated, "r"),)))
    assert set(third.values()).isdisjoint(first.values())


# --- JUnit --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_junit_counts_add_up(case: str) -> None:
    root = junit(case)
    suites = root.findall("testsuite")
    for node in (root, *suites):
        cases = node.iter("testcase")
        total = fails = errs = skips = 0
        for tc in cases:
            total += 1
            fails += tc.find("failure") is not None
            errs += tc.find("error") is not None
            skips += tc.find("skipped") is not None
        assert (int(node.get("tests", "-1")), int(node.get("failures", "-1")),
                int(node.get("errors", "-1")), int(node.get("skipped", "-1"))) == (
            total, fails, errs, skips)


def test_junit_one_failure_per_finding_and_a_pass_per_clean_rule() -> None:
    root = junit("many")
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == (
        "8", "5", "2", "0")
    assert sorted(s.get("name", "") for s in root.findall("testsuite")) == [
        "keyguard.other", "keyguard.placement", "keyguard.policy", "keyguard.rotation",
        "keyguard.scoping", "keyguard.unused"]
    passed = [tc for tc in root.iter("testcase") if len(tc) == 0]
    assert [(tc.get("classname"), tc.get("name")) for tc in passed] == [
        ("scope-iam-admin", "no findings")]
    rot = next(tc for tc in root.iter("testcase") if tc.get("classname") == "rotation-max-age"
               and tc.find("failure") is not None)
    failure = rot.find("failure")
    assert failure is not None
    assert failure.get("type") == "critical"
    assert failure.get("message") == "access key is 400 days old (limit 90)"
    assert F_ROT.finding_id in (failure.text or "")


def test_junit_empty_lists_every_rule_as_passing() -> None:
    root = junit("empty")
    assert root.get("tests") == str(len(RULES))
    assert root.get("failures") == "0"


def test_junit_source_failures_are_errors() -> None:
    root = junit("failures")
    suite = next(s for s in root.findall("testsuite") if s.get("name") == "keyguard.sources")
    error = suite.find("testcase/error")
    assert error is not None
    assert error.get("message") == "AccessDeniedException on DescribeParameters"
    assert "grant ssm:DescribeParameters" in (error.text or "")
    assert root.get("errors") == "1"


def test_junit_escapes_markup_and_drops_control_characters() -> None:
    text = render("junit", CASES["unicode"])
    assert "\x07" not in text
    assert "<img" not in text
    assert "<b>" not in text
    case = next(tc for tc in junit("unicode").iter("testcase") if tc.find("failure") is not None)
    assert case.get("name") == EVIL.identity
    failure = case.find("failure")
    assert failure is not None
    assert "<b>bold</b> | pipe" in (failure.get("message") or "")
    assert "\ufffd" in (failure.get("message") or "")


# --- Markdown -----------------------------------------------------------------------------------


def test_markdown_headline_counts_and_remediation() -> None:
    text = render("markdown", CASES["many"])
    assert text.startswith("## keyguard check: ❌ gate failed (2 findings at or above high)")
    assert "| critical | 1 |" in text
    assert "| medium | 2 |" in text
    assert "1 waived, 1 in baseline" in text
    assert text.count("<details>") == 5  # one per rule that fired
    assert "```sh\naws iam create-access-key" in text
    assert render("markdown", CASES["unicode"]).startswith("## keyguard check: ✅ gate passed")


def test_markdown_escapes_store_text() -> None:
    text = render("markdown", CASES["unicode"])
    row = next(line for line in text.splitlines() if "plaintext-key-at-rest` |" in line)
    assert row.count(" | ") == 3  # the name's and message's pipes are escaped
    assert not re.search(r"(?<!\\)<(img|b>|/b>)", text)
    assert "\x07" not in text
    assert r"\<img src=x onerror=alert(1)\>" in text


def test_markdown_caps_the_findings_table() -> None:
    many = tuple(finding("key-unused", Severity.MEDIUM, replace(SECRET, name=f"k{i:03}",
                                                                 location=f"arn:x:{i:03}"), "m")
                 for i in range(MAX_ROWS + 3))
    text = render("markdown", check_report(many))
    assert sum(1 for line in text.splitlines() if line.startswith("| medium | `key-unused`")) == MAX_ROWS
    assert "_and 3 more (see the full report)_" in text


def test_markdown_lists_source_failures() -> None:
    text = render("markdown", CASES["failures"])
    assert "Partial result: 1 part(s)" in text
    assert "- **aws-ssm\\[ap-south-1\\]**: AccessDeniedException" in text


# --- OCSF ---------------------------------------------------------------------------------------


REQUIRED_OCSF = {"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time",
                 "finding_info", "metadata", "resources", "remediation", "status"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ocsf_events_carry_the_required_fields(case: str) -> None:
    events = json.loads(render("ocsf", CASES[case]))
    assert isinstance(events, list)
    report = CASES[case]
    assert len(events) == len(report.findings or ()) + len(report.waived) + len(report.baselined)
    severity_ids = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1}
    for event in events:
        assert set(event) >= REQUIRED_OCSF
        assert (event["class_uid"], event["category_uid"], event["activity_id"],
                event["type_uid"]) == (2004, 2, 1, 200401)
        assert event["severity_id"] == severity_ids[event["unmapped"]["keyguard_severity"]]
        assert event["time"] == 1_795_780_800_000  # NOW in ms
        info = event["finding_info"]
        assert re.fullmatch(r".+:[0-9a-f]{20}", info["uid"])
        assert info["title"]
        assert info["desc"]
        assert info["types"]
        assert event["metadata"]["version"] == "1.1.0"
        assert event["metadata"]["product"]["name"] == "keyguard"
        assert event["metadata"]["product"]["vendor_name"] == "keyguard"
        assert all(r["uid"] and r["type"] for r in event["resources"])
        assert event["remediation"]["desc"]


def test_ocsf_accepted_findings_are_suppressed() -> None:
    events = json.loads(render("ocsf", CASES["many"]))
    status = {e["finding_info"]["uid"]: (e["status_id"], e["status"]) for e in events}
    assert status[W_EXAMPLE.finding_id] == (3, "Suppressed")
    assert status[B_SECRET.finding_id] == (3, "Suppressed")
    assert status[F_ROT.finding_id] == (1, "New")
    assert sum(1 for s in status.values() if s == (1, "New")) == 5
    secret = next(e for e in events if e["finding_info"]["uid"] == F_UNUSED.finding_id)
    assert secret["resources"][0]["region"] == "eu-west-1"
    assert "environment:prod" in secret["resources"][0]["labels"]


# --- table and CSV ------------------------------------------------------------------------------


def test_table_groups_by_severity_and_ends_with_the_gate() -> None:
    text = render("table", CASES["many"])
    lines = text.splitlines()
    severities = [line.split()[0] for line in lines[2:7]]
    assert severities == ["CRITICAL", "HIGH", "MEDIUM", "MEDIUM", "LOW"]
    assert "aws-iam: ci-bot" in text
    assert "policy:waiver/2" in text
    assert ("5 findings (1 critical, 1 high, 2 medium, 1 low), 1 waived, 1 in baseline; "
            "gate (fail at >= high): FAIL, 2 at or above") in text
    assert render("table", CASES["empty"]) == (
        "No findings.\n\n0 findings, 0 waived, 0 in baseline; gate (fail at >= high): pass\n")
    assert "! aws-ssm[ap-south-1]: AccessDeniedException" in render("table", CASES["failures"])


def test_csv_has_one_row_per_finding_and_neutralises_formulas() -> None:
    rows = list(csv.reader(io.StringIO(render("csv", CASES["many"]))))
    assert tuple(rows[0]) == CHECK_COLUMNS
    assert len(rows) == 1 + 5
    assert {r[0] for r in rows[1:]} == {f.finding_id for f in CASES["many"].findings or ()}
    evil = replace(SECRET, name="=HYPERLINK(\"http://x\")")
    text = render("csv", check_report((finding("key-unused", Severity.MEDIUM, evil, "@SUM(1)"),)))
    assert "'=HYPERLINK" in text
    assert "'@SUM(1)" in text
    assert render("csv", CASES["empty"]) == ",".join(CHECK_COLUMNS) + "\n"


# --- never a secret -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_fingerprints_appear_only_as_kg1_ids(fmt: str, case: str) -> None:
    text = render(fmt, CASES[case])
    for match in re.finditer(r"[0-9a-f]{32,}", text):
        assert text[max(0, match.start() - 4):match.start()] == "kg1:", match.group()


# --- ready-to-copy CI integration ---------------------------------------------------------------


def _check_commands(text: str) -> list[list[str]]:
    return [line.split("keyguard check", 1)[1].split("#")[0].split()
            for line in text.splitlines() if "keyguard check --" in line]


@pytest.mark.parametrize("path", [".github/workflows/keyguard.yml", ".pre-commit-hooks.yaml",
                                  "README.md"])
def test_ci_examples_use_real_check_options_and_formats(path: str) -> None:
    import typer.main

    from keyguard.cli import app
    from keyguard.cli.check import CheckFormat

    check = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    options = {opt for param in check.params for opt in param.opts + param.secondary_opts}
    commands = _check_commands((ROOT / path).read_text(encoding="utf-8"))
    assert commands, f"no `keyguard check` command in {path}"
    for argv in commands:
        for i, token in enumerate(argv):
            if token.startswith("-"):
                assert token in options, f"{path}: unknown option {token}"
            if token in ("--format", "-f"):
                assert argv[i + 1] in {f.value for f in CheckFormat}


def test_workflow_uploads_sarif_before_failing_and_hook_checks_dotenv() -> None:
    workflow = (ROOT / ".github" / "workflows" / "keyguard.yml").read_text(encoding="utf-8")
    assert "continue-on-error: true" in workflow
    upload = workflow.index("github/codeql-action/upload-sarif@")
    assert workflow.index("--format sarif --output keyguard.sarif") < upload
    assert upload < workflow.index("if: steps.keyguard.outcome == 'failure'")
    assert "security-events: write" in workflow
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "- id: keyguard-dotenv" in hooks
    assert "entry: keyguard check --source dotenv --fail-on high" in hooks
    assert "pass_filenames: false" in hooks
    assert "files: '(^|/)\\.env'" in hooks
