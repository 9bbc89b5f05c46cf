"""Hygiene rules: required-tags-missing, iam-two-active-keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from keyguard.model import KeyRecord, KeyStatus, Kind, Provider, Scope, Severity
from tests.policies import ago, names, rec, run, run_config

TAGS: list[tuple[str, dict[str, Any], str | None]] = [
    ("both tags", {"tags": {"owner": "pay", "environment": "prod"}}, None),
    ("case-insensitive", {"tags": {"Owner": "pay", "ENVIRONMENT": "prod"}}, None),
    ("owner missing", {"tags": {"environment": "prod"}}, "owner"),
    ("empty value", {"tags": {"owner": " ", "environment": "prod"}}, "owner"),
    ("no tags", {}, "owner,environment"),
    ("untaggable source", {"source": "dotenv"}, None),
    ("root key", {"source": "aws-iam", "scope": Scope(labels=("root",))}, None),
    ("deleted", {"status": KeyStatus.DELETED}, None),
]


@pytest.mark.parametrize(("case", "fields", "missing"), TAGS, ids=[c[0] for c in TAGS])
def test_required_tags(case: str, fields: dict[str, Any], missing: str | None) -> None:
    found = run("required-tags-missing", [rec(case, **fields)])
    assert [f.evidence["missing"] for f in found] == ([missing] if missing else [])
    assert all(f.severity is Severity.LOW for f in found)


def test_required_tags_configurable() -> None:
    keys = [rec("a", tags={"owner": "x", "environment": "prod"}),
            rec("b", source="vault", tags={"owner": "x"})]
    table = {"tags": ["owner", "cost-center"], "sources": ["aws-secretsmanager", "vault"]}
    found = run_config("required-tags-missing", table, keys)
    assert names(found) == ["a", "b"]
    assert {f.evidence["missing"] for f in found} == {"cost-center"}


def key(user: str, key_id: str, created: datetime, **kw: Any) -> KeyRecord:
    kw.setdefault("status", KeyStatus.ACTIVE)
    return KeyRecord(source="aws-iam", name=f"{user}/{key_id}", key_id=key_id, created=created,
                     location=f"arn:aws:iam::123456789012:user/{user}:access-key/{key_id}",
                     provider=Provider("aws"), kind=Kind("aws-access-key"), **kw)


def test_two_active_keys_flags_the_older_one_after_grace() -> None:
    keys = [key("ci", "AKIAOLD", ago(200)), key("ci", "AKIANEW", ago(30)),
            key("etl", "AKIAOLD2", ago(200)), key("etl", "AKIANEW2", ago(3)),
            key("app", "AKIAONE", ago(200)),
            key("dev", "AKIAOLD3", ago(200), status=KeyStatus.INACTIVE),
            key("dev", "AKIANEW3", ago(30))]
    [finding] = run("iam-two-active-keys", keys)
    assert finding.key is not None
    assert finding.key.key_id == "AKIAOLD"
    assert finding.evidence["newer_key"] == "AKIANEW"
    assert finding.evidence["overlap_days"] == 30
    assert finding.severity is Severity.MEDIUM


def test_two_active_keys_grace_per_environment() -> None:
    keys = [key("ci", "AKIAOLD", ago(200), environment="prod"),
            key("ci", "AKIANEW", ago(3), environment="prod")]
    assert run("iam-two-active-keys", keys) == []
    table = {"overrides": [{"match": {"environment": "prod"}, "grace_days": 1,
                            "severity": "high"}]}
    [finding] = run_config("iam-two-active-keys", table, keys)
    assert finding.severity is Severity.HIGH


def test_two_active_keys_ignores_stored_copies() -> None:
    stored = rec("prod/deploy", key_id="AKIANEW", created=ago(30), kind=Kind("aws-access-key"),
                 location="arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/deploy")
    assert run("iam-two-active-keys", [key("ci", "AKIAOLD", ago(200)), stored]) == []
