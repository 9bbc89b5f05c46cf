"""Golden files per reporter (empty, many, unicode, failures, diff); KEYGUARD_UPDATE_GOLDEN=1 rewrites.

Review golden diffs like code: they are the documented output.
"""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from keyguard import __version__
from keyguard.model import (
    ChangeType,
    Fingerprint,
    Inventory,
    KeyChange,
    KeyRecord,
    KeyStatus,
    Kind,
    Provider,
    RotationSettings,
    Scope,
    SourceFailure,
)
from keyguard.report import REPORTERS, Report
from keyguard.serialize import record_from_dict, record_to_dict

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "keyguard" / "schemas" /
                     "inventory.schema.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

IAM = KeyRecord(
    source="aws-iam", location="arn:aws:iam::111122223333:user/ci-bot", name="ci-bot",
    provider=Provider("aws"), kind=Kind("aws-access-key"), key_id="AKIAEXAMPLEKEYID0001",
    account="111122223333", owner="ci-bot", status=KeyStatus.ACTIVE,
    created=NOW - timedelta(days=400), last_used=NOW - timedelta(days=2),
    last_used_detail="us-east-1/secretsmanager", scope=Scope(("admin",), ("AdministratorAccess",)),
    provenance={"created": "iam:ListAccessKeys", "last_used": "iam:GetCredentialReport"},
)
SECRET = KeyRecord(
    source="aws-secretsmanager",
    location="arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/payments/stripe-AbCdEf",
    name="prod/payments/stripe", field="api_key", provider=Provider("stripe"),
    kind=Kind("stripe-secret"), account="111122223333", region="eu-west-1", environment="prod",
    owner="payments", tags={"owner": "payments", "environment": "prod"},
    created=NOW - timedelta(days=120), last_changed=NOW - timedelta(days=30),
    rotation=RotationSettings(supported=True, enabled=True, interval_days=30,
                              schedule="rate(30 days)", next_rotation=NOW + timedelta(days=1)),
    fingerprint=Fingerprint("kg1:0123456789abcdef0123456789abcdef"), value_inspected=True,
)
DOTENV = KeyRecord(
    source="dotenv", location="app/.env:3", anchor="app/.env", name="ANTHROPIC_API_KEY",
    field="ANTHROPIC_API_KEY", provider=Provider("anthropic"), kind=Kind("anthropic-api"),
    fingerprint=Fingerprint("kg1:fedcba9876543210fedcba9876543210"), plaintext=True,
    value_inspected=True, last_changed=NOW - timedelta(days=3),
)
UNICODE = KeyRecord(
    source="keyring", location="keyring:Zürich-äpp/ópérateur", name="Zürich-äpp/ópérateur",
    tags={"équipe": "données"}, owner="données",
)
FAIL = SourceFailure("aws-ssm", "ap-south-1", "AccessDeniedException on DescribeParameters",
                     "grant ssm:DescribeParameters")

CASES = {
    "empty": Report(inventory=Inventory(keys=(), sources=("dotenv",), taken_at=NOW), now=NOW),
    "many": Report(
        inventory=Inventory(keys=(IAM, SECRET, DOTENV), sources=("aws-iam", "aws-secretsmanager",
                            "dotenv"), taken_at=NOW),
        now=NOW, first_seen={IAM.identity: NOW - timedelta(days=10)},
    ),
    "unicode": Report(inventory=Inventory(keys=(UNICODE,), sources=("keyring",)), now=NOW),
    "failures": Report(inventory=Inventory(keys=(SECRET,), failures=(FAIL,),
                                           sources=("aws-secretsmanager", "aws-ssm")), now=NOW),
    "diff": Report(
        inventory=Inventory(keys=(SECRET,), sources=("aws-secretsmanager",)), now=NOW,
        changes=(KeyChange(ChangeType.CHANGED, SECRET.identity, SECRET, ("fingerprint",)),
                 KeyChange(ChangeType.REMOVED, DOTENV.identity, DOTENV)),
        previous_snapshot=NOW - timedelta(days=1),
    ),
}
FORMATS = {"table": "txt", "json": "json", "csv": "csv"}


def render(fmt: str, case: str) -> str:
    text = REPORTERS.load(fmt)().render(CASES[case])
    return text.replace(f'"version": "{__version__}"', '"version": "<version>"')


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(fmt: str, case: str) -> None:
    path = GOLDEN / f"inventory-{case}.{FORMATS[fmt]}"
    text = render(fmt, case)
    if os.environ.get("KEYGUARD_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    assert text == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_reports_validate(case: str) -> None:
    jsonschema.validate(json.loads(REPORTERS.load("json")().render(CASES[case])), SCHEMA)


def test_record_round_trips_through_json() -> None:
    for record in (IAM, SECRET, DOTENV, UNICODE):
        assert record_from_dict(json.loads(json.dumps(record_to_dict(record)))) == record


def test_table_shows_ages_scope_and_short_fingerprints() -> None:
    text = render("table", "many")
    assert "400d" in text  # IAM key age
    assert "admin" in text
    assert "kg1:01234567…" in text
    assert "0123456789abcdef0123456789abcdef" not in text
    assert "app/.env:3" in text


def test_table_lists_failures_with_hints() -> None:
    text = render("table", "failures")
    assert "! aws-ssm[ap-south-1]: AccessDeniedException" in text
    assert "grant ssm:DescribeParameters" in text


def test_table_does_not_repeat_a_source_the_message_already_names() -> None:
    named = SourceFailure("aws-ssm", "us-east-1",
                          "aws-ssm [us-east-1]: reading tags (ListTagsForResource) failed", "")
    report = Report(inventory=Inventory(keys=(SECRET,), failures=(named,),
                                        sources=("aws-ssm",)), now=NOW)
    text = REPORTERS.load("table")().render(report)
    assert "  ! aws-ssm [us-east-1]: reading tags (ListTagsForResource) failed" in text
    assert "aws-ssm[us-east-1]: aws-ssm" not in text


def test_csv_neutralises_formulas() -> None:
    evil = KeyRecord(source="dotenv", location="x", name="=HYPERLINK(\"http://x\")")
    text = REPORTERS.load("csv")().render(Report(inventory=Inventory(keys=(evil,)), now=NOW))
    assert "'=HYPERLINK" in text
