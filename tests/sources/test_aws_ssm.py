"""aws-ssm against a real (moto) server: parameters, tags, expiry policies, values."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from keyguard.config import AwsConfig, SourcesConfig, SsmConfig
from keyguard.model import KeyStatus
from tests.fixtures.aws import (
    REGIONS,
    AwsSandbox,
    collect,
    context,
    enforced_auth,
    leaked_slices,
    limited_principal,
)

SOURCE = "aws-ssm"
ACCOUNT = "123456789012"
CLOCK_SLACK = timedelta(seconds=90)


def _ssm(cfg: SsmConfig) -> SourcesConfig:
    return SourcesConfig(aws_ssm=cfg)


def test_lists_secure_strings_only_by_default(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context())
    assert got.failures == []
    by_name = {r.name: r for r in got.records}
    secure = [p for p in aws_sandbox.summary.parameters if p.type == "SecureString"]
    plain = [p for p in aws_sandbox.summary.parameters if p.type == "String"]
    assert len(secure) > 80
    assert plain
    for param in secure:
        assert by_name[param.name].region == param.region
    assert not {p.name for p in plain} & set(by_name)
    assert len(got.records) == len(by_name)  # one record per parameter


def test_plaintext_parameters_with_include_string(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    by_name = {r.name: r for r in collect(SOURCE, context(sources=_ssm(SsmConfig(include_string=True)))).records}
    for param in aws_sandbox.summary.parameters:
        assert by_name[param.name].plaintext is (param.type == "String")
        assert f"type={param.type}" in by_name[param.name].scope.details


def test_metadata_tags_and_expiry(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    by_name = {r.name: r for r in collect(SOURCE, context()).records}
    expiring = 0
    for param in (p for p in aws_sandbox.summary.parameters if p.type == "SecureString"):
        record = by_name[param.name]
        assert record.created is None  # Parameter Store keeps no creation time
        assert record.last_changed is not None
        assert abs(record.last_changed - param.modified) < CLOCK_SLACK
        assert record.status is KeyStatus.ACTIVE
        assert record.account == ACCOUNT
        assert record.location == f"arn:aws:ssm:{param.region}:{ACCOUNT}:parameter{param.name}"
        assert dict(record.tags) == dict(param.tags)
        assert record.provenance["tags"] == "tag:GetResources"  # one scan per region
        assert record.rotation is not None
        assert record.rotation.supported is False
        assert f"tier={param.tier}" in record.scope.details
        assert record.expires == param.expires
        if param.expires is not None:
            expiring += 1
            assert record.provenance["expires"].startswith("ssm:DescribeParameters")
            assert any(d.startswith("policy=NoChangeNotification(After=90")
                       for d in record.scope.details)
    assert expiring >= 10


def test_tags_can_be_skipped(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = collect(SOURCE, context(sources=_ssm(SsmConfig(tags=False)))).records
    seeded = {p.name for p in aws_sandbox.summary.parameters if p.type == "SecureString"}
    assert seeded <= {r.name for r in records}
    assert all(not r.tags and "tags" not in r.provenance for r in records)


def test_path_filter_reads_tags_per_parameter(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = collect(SOURCE, context(sources=_ssm(SsmConfig(path="/prod")))).records
    seeded = {p.name: p for p in aws_sandbox.summary.parameters}
    expected = {name for name, p in seeded.items()
                if p.type == "SecureString" and name.startswith("/prod/")}
    assert expected
    assert {r.name for r in records if r.name in seeded} == expected
    for record in records:
        if record.name in seeded:
            # a path filter makes a region-wide tag scan wasteful: one call per parameter
            assert record.provenance["tags"] == "ssm:ListTagsForResource"
            assert dict(record.tags) == dict(seeded[record.name].tags)


def test_inspect_values_classifies(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context(inspect_values=True, sources=_ssm(SsmConfig(include_string=True))))
    assert got.failures == []
    by_name = {r.name: r for r in got.records}
    for param in aws_sandbox.summary.parameters:
        record = by_name[param.name]
        assert record.value_inspected is True
        assert (record.kind,) == param.kinds, param.name
        assert record.fingerprint is not None
    texts = [repr(r) for r in got.records]
    assert leaked_slices([v.reveal() for v in aws_sandbox.summary.values], texts) == []


def test_parameter_without_leading_slash(aws_env: str, unique_prefix: str) -> None:
    ssm = boto3.client("ssm", region_name="us-west-2")
    ssm.put_parameter(Name=f"{unique_prefix}-plain-name", Value="x" * 30, Type="SecureString")
    records = [r for r in collect(SOURCE, context(regions=("us-west-2",))).records
               if r.name.startswith(unique_prefix)]
    (record,) = records
    assert record.location == f"arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/{unique_prefix}-plain-name"


@pytest.mark.parametrize("bogus", ["xx-bogus-9"])
def test_failing_region_does_not_hide_the_others(aws_sandbox: AwsSandbox, aws_env: str, bogus: str) -> None:
    got = collect(SOURCE, context(aws=AwsConfig(regions=(REGIONS[1], bogus), max_attempts=1)))
    (failure,) = got.failures
    assert failure.scope == bogus
    assert SOURCE in failure.message
    assert bogus in failure.message
    seeded = {p.name for p in aws_sandbox.summary.parameters
              if p.region == REGIONS[1] and p.type == "SecureString"}
    assert seeded <= {r.name for r in got.records}


def test_tags_fall_back_per_parameter_when_the_tagging_api_is_denied(
        aws_env: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    region = "ca-central-1"
    ssm = boto3.client("ssm", region_name=region)
    for i in range(26):  # enough for keyguard to prefer one region-wide tag scan
        ssm.put_parameter(Name=f"/{unique_prefix}/p{i:02d}", Value=f"value-{i:02d}-xxxxxxxx",
                          Type="SecureString", Tags=[{"Key": "owner", "Value": f"team-{i % 3}"}])
    limited_principal(monkeypatch, f"{unique_prefix}-ssm", [
        "sts:GetCallerIdentity", "ssm:DescribeParameters", "ssm:ListTagsForResource"])
    notes: list[str] = []
    ctx = dataclasses.replace(context(aws=AwsConfig(regions=(region,), max_attempts=1)),
                              progress=lambda _source, message: notes.append(message))
    with enforced_auth(aws_env):
        got = collect(SOURCE, ctx)
    assert got.failures == []
    mine = [r for r in got.records if r.name.startswith(f"/{unique_prefix}/")]
    assert len(mine) == 26
    for record in mine:
        assert record.provenance["tags"] == "ssm:ListTagsForResource"
        assert record.tags == {"owner": f"team-{int(record.name[-2:]) % 3}"}
    assert any("tag:GetResources unavailable" in n for n in notes)


def test_denied_describe_names_the_permission(
        aws_env: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    limited_principal(monkeypatch, f"{unique_prefix}-none", ["sts:GetCallerIdentity"])
    with enforced_auth(aws_env):
        got = collect(SOURCE, context(aws=AwsConfig(regions=REGIONS, max_attempts=1)))
    assert got.records == []
    assert [f.scope for f in got.failures] == list(REGIONS)  # one per region
    for failure in got.failures:
        assert "access denied calling DescribeParameters" in failure.message
        assert failure.hint == "grant ssm:DescribeParameters"


def test_parameter_past_its_expiration_is_expired(aws_env: str, unique_prefix: str) -> None:
    ssm = boto3.client("ssm", region_name="us-west-2")
    policy = [{"Type": "Expiration", "Version": "1.0",
               "Attributes": {"Timestamp": "2024-01-02T03:04:05.000Z"}}]
    ssm.put_parameter(Name=f"/{unique_prefix}/old", Value="v" * 20, Type="SecureString",
                      Tier="Advanced", Policies=json.dumps(policy))
    (record,) = [r for r in collect(SOURCE, context(regions=("us-west-2",))).records
                 if r.name == f"/{unique_prefix}/old"]
    assert record.status is KeyStatus.EXPIRED
    assert record.expires == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
