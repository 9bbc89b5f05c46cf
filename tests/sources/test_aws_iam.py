"""aws-iam against a real (moto) server: keys, last use, credential report, scopes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from keyguard.config import AwsConfig, IamConfig, SourcesConfig
from keyguard.model import KeyRecord, KeyStatus
from keyguard.sources._aws import Account, Unit
from keyguard.sources.aws_iam import AwsIamSource, parse_credential_report
from tests.fixtures.aws import (
    REGIONS,
    AwsSandbox,
    collect,
    context,
    enforced_auth,
    leaked_slices,
    limited_principal,
)

SOURCE = "aws-iam"
ACCOUNT = "123456789012"
CLOCK_SLACK = timedelta(seconds=90)
#: Seed permission profile -> the scope label it must produce.
EXPECTED_LABEL = {"admin": "admin", "star-inline": "admin", "s3": "wildcard-actions",
                  "readonly": "read-only", "iam": "iam-write", "none": "no-permissions"}


def _seeded_records(sandbox: AwsSandbox, records: list[KeyRecord]) -> dict[str, KeyRecord]:
    ids = {k.key_id for u in sandbox.summary.users for k in u.keys}
    by_id = {r.key_id or "": r for r in records if r.key_id in ids}
    assert len(by_id) == sum(1 for r in records if r.key_id in ids)  # no duplicates
    return by_id


def test_every_key_once_even_with_two_regions(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context(aws=AwsConfig(regions=REGIONS)))
    assert got.failures == []
    records = _seeded_records(aws_sandbox, got.records)
    keys = [k for u in aws_sandbox.summary.users for k in u.keys]
    assert len(keys) >= 30
    assert set(records) == {k.key_id for k in keys}
    for record in records.values():
        assert record.provider == "aws"
        assert record.kind == "aws-access-key"
        assert record.region is None  # IAM is global
        assert record.account == ACCOUNT
        assert record.fingerprint is None  # IAM never returns the secret half


def test_key_metadata_matches_the_seed(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = _seeded_records(aws_sandbox, collect(SOURCE, context()).records)
    used = 0
    for user in aws_sandbox.summary.users:
        for key in user.keys:
            record = records[key.key_id]
            assert record.name == f"{user.name}/{key.key_id}"
            assert record.location == f"arn:aws:iam::{ACCOUNT}:user/{user.name}:access-key/{key.key_id}"
            assert record.status is (KeyStatus.ACTIVE if key.status == "Active" else KeyStatus.INACTIVE)
            assert record.created is not None
            assert abs(record.created - key.created) < CLOCK_SLACK
            assert record.last_rotated == record.created
            assert record.owner == user.tags.get("owner", user.name)
            assert dict(record.tags) == dict(user.tags)
            assert record.provenance["last_used"] == "iam:GetAccessKeyLastUsed"
            if key.last_used is None:
                assert record.last_used is None
                assert record.last_used_detail is None
            else:
                used += 1
                assert record.last_used is not None
                assert abs(record.last_used - key.last_used) < CLOCK_SLACK
                assert record.last_used_detail == f"{key.last_used_region}/sts"
    assert used >= 10


def test_scope_labels_follow_the_policies(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = _seeded_records(aws_sandbox, collect(SOURCE, context()).records)
    seen = set()
    for user in aws_sandbox.summary.users:
        for key in user.keys:
            scope = records[key.key_id].scope
            assert EXPECTED_LABEL[user.profile] in scope.labels, (user.profile, scope)
            seen.add(user.profile)
            if user.profile == "admin":
                assert any("AdministratorAccess" in d for d in scope.details)
            if user.profile == "s3":
                assert "service-scoped" in scope.labels
                assert "admin" not in scope.labels
            if user.profile == "readonly":
                assert any("group" in d and "auditors" in d for d in scope.details)
                assert "iam-write" not in scope.labels
            if user.profile == "none":
                assert scope.labels == ("no-permissions",)
    assert {"admin", "s3", "readonly", "none"} <= seen


def test_credential_report_is_used_when_fresh(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    boto3.client("iam").generate_credential_report()
    # moto stamps its report 2015-02-02, so only a huge window makes it "fresh" here.
    sources = SourcesConfig(aws_iam=IamConfig(credential_report_max_age_hours=200_000))
    records = _seeded_records(aws_sandbox, collect(SOURCE, context(sources=sources)).records)
    from_report = 0
    for user in aws_sandbox.summary.users:
        for key in user.keys:
            record = records[key.key_id]
            if record.provenance.get("last_used") == "iam:GetCredentialReport":
                from_report += 1
            if key.last_used is not None:
                assert record.last_used is not None
                assert abs(record.last_used - key.last_used) < CLOCK_SLACK
    assert from_report >= len(records) // 2  # same-second key pairs fall back, by design


def test_stale_report_falls_back_and_says_so(aws_env: str) -> None:
    notes: list[str] = []
    ctx = dataclasses.replace(context(), progress=lambda _source, message: notes.append(message))
    got = collect(SOURCE, ctx)
    assert got.failures == []  # moto's missing ListServiceSpecificCredentials is not a failure
    assert any("no fresh credential report" in n for n in notes)
    assert any("ListServiceSpecificCredentials" in n for n in notes)


def test_root_keys_from_the_report_are_labelled_root() -> None:
    header = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
              "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
              "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
              "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
              "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
              "cert_1_last_rotated,cert_2_active,cert_2_last_rotated")
    root = ("<root_account>,arn:aws:iam::111122223333:root,2019-01-01T00:00:00+00:00,not_supported,"
            "2025-01-01T00:00:00+00:00,not_supported,not_supported,true,true,2020-05-01T10:00:00+00:00,"
            "2025-03-04T12:15:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A")
    report = parse_credential_report(f"{header}\n{root}\n")
    unit = Unit(Account("", boto3.Session(region_name="us-east-1"), ("us-east-1",), "111122223333"),
                "us-east-1", is_global=True)
    source = AwsIamSource(context())
    records = [r for r in source._root(None, unit, None, report)  # type: ignore[arg-type]
               if isinstance(r, KeyRecord)]
    (record,) = records
    assert "root" in record.scope.labels
    assert "admin" in record.scope.labels
    assert record.created == datetime(2020, 5, 1, 10, tzinfo=UTC)
    assert record.last_used == datetime(2025, 3, 4, 12, 15, tzinfo=UTC)
    assert record.last_used_detail == "us-east-1/s3"
    assert record.location == "arn:aws:iam::111122223333:root:access-key/1"


def test_no_secret_access_key_in_records(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = collect(SOURCE, context()).records
    values = [v.reveal() for v in aws_sandbox.summary.values]
    assert leaked_slices(values, [repr(r) for r in records]) == []


def test_bad_profile_fails_once_for_the_account(aws_env: str) -> None:
    got = collect(SOURCE, context(aws=AwsConfig(profiles=("ghost",), regions=REGIONS)))
    assert got.records == []
    (failure,) = got.failures
    assert failure.source == SOURCE
    assert "ghost" in failure.message


def test_without_authorization_details_keys_still_come(
        aws_sandbox: AwsSandbox, aws_env: str, unique_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    limited_principal(monkeypatch, f"{unique_prefix}-auditor", [
        "sts:GetCallerIdentity", "iam:ListUsers", "iam:ListUserTags", "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed", "iam:GetAccountSummary", "iam:ListServiceSpecificCredentials"])
    with enforced_auth(aws_env):
        got = collect(SOURCE, context(aws=AwsConfig(regions=REGIONS, max_attempts=1)))
    (failure,) = got.failures
    assert "access denied calling GetAccountAuthorizationDetails" in failure.message
    assert "key scopes are unknown" in failure.message
    assert "iam:GetAccountAuthorizationDetails" in failure.hint
    records = _seeded_records(aws_sandbox, got.records)
    assert set(records) == {k.key_id for u in aws_sandbox.summary.users for k in u.keys}
    tagged = [u for u in aws_sandbox.summary.users if u.keys and u.tags]
    assert tagged
    for user in tagged:  # tags came from ListUserTags instead
        assert dict(records[user.keys[0].key_id].tags) == dict(user.tags)
    assert all(r.scope.labels == () for r in records.values())
