"""keyguard.sandbox: the moto server helper, the environment and the seed itself."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from keyguard.sandbox import SANDBOX_ACCOUNT, sandbox_env, seed, start_moto_server
from tests.fixtures.aws import AwsSandbox

REGION = "ap-southeast-2"  # a region the session seed does not use


def test_session_seed_counts_add_up(aws_sandbox: AwsSandbox) -> None:
    summary = aws_sandbox.summary
    counts = summary.counts()
    assert counts["secrets"] == 240
    assert counts["parameters"] == 120
    assert counts["users"] == 40
    assert counts["access_keys"] == sum(len(u.keys) for u in summary.users)
    assert 0 < counts["users_admin"] < counts["users"]
    assert 0 < counts["access_keys_used"] < counts["access_keys"]
    assert 0 < counts["secrets_rotated"] < counts["secrets"]
    assert 0 < counts["parameters_expiring"] < counts["parameters"]
    assert {s.region for s in summary.secrets} == set(summary.regions)
    assert "240 secrets" in summary.describe()
    assert "Secret(***)" not in repr(summary)  # values are left out of the repr entirely
    assert len({len(u.keys) for u in summary.users}) == 3  # users with 0, 1 and 2 keys


def test_seed_back_dates_and_is_readable_with_boto3(moto_endpoint: str, unique_prefix: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    summary = seed(moto_endpoint, regions=(REGION,), secrets=16, parameters=8, users=4,
                   rng=random.Random(3), now=now, prefix=f"{unique_prefix}-")
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    listed = {s["Name"]: s for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
              for s in page["SecretList"] if s["Name"].startswith(unique_prefix)}
    assert set(listed) == {s.name for s in summary.secrets}
    for secret in summary.secrets:
        created = listed[secret.name]["CreatedDate"].astimezone(UTC)
        assert abs(created - secret.created) < timedelta(seconds=90)
        assert secret.created < now
        assert listed[secret.name]["ARN"].split(":")[4] == SANDBOX_ACCOUNT
    ages = [(now - s.created).days for s in summary.secrets]
    assert max(ages) > min(ages)
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    names = {p["Name"] for p in ssm.describe_parameters(MaxResults=50)["Parameters"]}
    assert {p.name for p in summary.parameters} <= names
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    users = {u["UserName"] for u in iam.list_users()["Users"]}
    assert {u.name for u in summary.users} <= users
    assert all(u.name.startswith(f"{unique_prefix}-") for u in summary.users)


def test_seed_without_backdating_stamps_now(moto_endpoint: str, unique_prefix: str) -> None:
    now = datetime.now(UTC)
    summary = seed(moto_endpoint, regions=(REGION,), secrets=4, parameters=2, users=0,
                   rng=random.Random(4), now=now, backdate=False, prefix=f"{unique_prefix}-")
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for secret in summary.secrets:
        created = sm.describe_secret(SecretId=secret.name)["CreatedDate"].astimezone(UTC)
        assert abs(created - now) < timedelta(minutes=5)
    assert summary.backdated is False
    assert summary.users == ()


def test_the_plan_is_deterministic(moto_endpoint: str, unique_prefix: str) -> None:
    def plan(tag: str) -> list[tuple[str, tuple[str, ...]]]:
        summary = seed(moto_endpoint, regions=(REGION,), secrets=10, parameters=5, users=0,
                       rng=random.Random(99), now=datetime(2026, 1, 1, tzinfo=UTC), backdate=False,
                       prefix=f"{unique_prefix}{tag}-")
        return [(s.name.split("-", 1)[1], s.kinds) for s in summary.secrets]

    assert plan("a") == plan("b")


def test_sandbox_env_is_fake_and_isolated() -> None:
    env = sandbox_env("http://127.0.0.1:5999", region="eu-west-1")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"
    assert env["AWS_REGION"] == "eu-west-1"


def test_start_moto_server_serves_then_stops() -> None:
    # NOTE: the dashboard page, not /moto-api/data.json: that dumps every in-process backend,
    # and state left by other tests in this process can make moto answer it with a 500.
    with start_moto_server() as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5) as response:  # noqa: S310
            assert response.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2)  # noqa: S310


def test_seed_needs_a_region(moto_endpoint: str) -> None:
    with pytest.raises(ValueError, match="region"):
        seed(moto_endpoint, regions=(), secrets=1, parameters=0, users=0, rng=random.Random(0),
             now=datetime.now(UTC))
