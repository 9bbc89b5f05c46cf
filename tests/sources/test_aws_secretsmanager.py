"""aws-secretsmanager against a real (moto) server: metadata, classification, failures.

Also covers the shared AWS error mapping in keyguard.sources._aws, since every AWS source
reports through it.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)

from keyguard.config import AwsConfig, SecretsManagerConfig, SourcesConfig
from keyguard.fakes import fake_key
from keyguard.model import KeyStatus
from keyguard.sources._aws import describe_error
from tests.fixtures.aws import (
    REGIONS,
    AwsSandbox,
    collect,
    context,
    enforced_auth,
    leaked_slices,
    limited_principal,
)

SOURCE = "aws-secretsmanager"
ACCOUNT = "123456789012"
CLOCK_SLACK = timedelta(seconds=90)  # freezegun ticks while a bucket's creates run


def test_lists_every_seeded_secret_once_in_its_region(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context())
    assert got.failures == []
    by_name: dict[str, list[str | None]] = {}
    for record in got.records:
        by_name.setdefault(record.name, []).append(record.region)
    live = [s for s in aws_sandbox.summary.secrets if not s.deleted]
    assert len(live) > 200
    for secret in live:
        assert by_name.get(secret.name) == [secret.region], secret.name
    for secret in aws_sandbox.summary.secrets:
        if secret.deleted:
            assert secret.name not in by_name  # planned deletion is hidden by default


def test_metadata_is_the_stores_not_a_guess(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = {r.name: r for r in collect(SOURCE, context()).records}
    for secret in (s for s in aws_sandbox.summary.secrets if not s.deleted):
        record = records[secret.name]
        assert record.provider == "unknown"
        assert record.kind == "unknown"
        assert record.fingerprint is None
        assert record.value_inspected is False
        assert record.status is KeyStatus.ACTIVE
        assert record.account == ACCOUNT
        assert record.location.startswith(f"arn:aws:secretsmanager:{secret.region}:{ACCOUNT}:secret:")
        assert record.created is not None
        assert abs(record.created - secret.created) < CLOCK_SLACK, secret.name
        assert dict(record.tags) == dict(secret.tags)
        assert record.provenance["created"] == "secretsmanager:ListSecrets"
        assert record.rotation is not None
        assert record.rotation.supported is True


def test_ages_are_back_dated_over_a_year(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = collect(SOURCE, context()).records
    ages = sorted((aws_sandbox.now - r.created).days for r in records
                  if r.created is not None and r.name in {s.name for s in aws_sandbox.summary.secrets})
    assert ages[0] <= 14
    assert ages[-1] >= 300


def test_rotation_settings_and_dates(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = {r.name: r for r in collect(SOURCE, context()).records}
    rotated = [s for s in aws_sandbox.summary.secrets if s.rotated is not None]
    assert len(rotated) >= 20
    for secret in rotated:
        record = records[secret.name]
        assert record.rotation is not None
        assert record.rotation.enabled is True
        assert record.rotation.interval_days == secret.rotation_days
        assert record.last_rotated is not None
        assert abs(record.last_rotated - secret.rotated) < CLOCK_SLACK  # type: ignore[operator]
        assert record.rotation.next_rotation is not None
        assert abs(record.rotation.next_rotation - record.last_rotated
                   - timedelta(days=secret.rotation_days or 0)) < timedelta(days=1)
    never = [s for s in aws_sandbox.summary.secrets if s.rotated is None and not s.deleted]
    for secret in never:
        record = records[secret.name]
        assert record.rotation is not None
        assert record.rotation.enabled is None  # never configured, not "off"
        assert record.last_rotated is None


def test_planned_deletion_is_listed_when_asked(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    deleted = {s.name for s in aws_sandbox.summary.secrets if s.deleted}
    assert deleted
    ctx = context(sources=SourcesConfig(
        aws_secretsmanager=SecretsManagerConfig(include_planned_deletion=True)))
    records = {r.name: r for r in collect(SOURCE, ctx).records}
    for name in deleted:
        assert records[name].status is KeyStatus.DELETED
        assert any(d.startswith("deletion-date=") for d in records[name].scope.details)


def test_inspect_values_classifies_each_credential(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context(inspect_values=True))
    assert got.failures == []
    found: dict[str, set[tuple[str, str | None]]] = {}
    for record in got.records:
        assert record.value_inspected is True
        assert record.fingerprint is not None
        assert record.fingerprint.startswith("kg1:")
        found.setdefault(record.name, set()).add((str(record.kind), record.field))
    for secret in (s for s in aws_sandbox.summary.secrets if not s.deleted):
        assert found[secret.name] == set(zip(secret.kinds, secret.fields, strict=True)), secret.name


def test_aws_pairs_carry_the_iam_key_id(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    records = collect(SOURCE, context(inspect_values=True)).records
    iam_ids = {k.key_id for u in aws_sandbox.summary.users for k in u.keys}
    pairs = [s for s in aws_sandbox.summary.secrets if s.key_id and not s.deleted]
    assert any(s.key_id in iam_ids for s in pairs)  # the join the inventory relies on
    for secret in pairs:
        (record,) = [r for r in records if r.name == secret.name]
        assert record.kind == "aws-access-key"
        assert record.key_id == secret.key_id
        assert record.field == "aws_secret_access_key"


def test_same_value_in_two_secrets_has_one_fingerprint(aws_env: str, unique_prefix: str) -> None:
    token = fake_key("openai-project", random.Random(5))
    sm = boto3.client("secretsmanager", region_name="us-west-2")
    sm.create_secret(Name=f"{unique_prefix}/a", SecretString=token)
    sm.create_secret(Name=f"{unique_prefix}/b", SecretString=json.dumps({"OPENAI_API_KEY": token}))
    records = [r for r in collect(SOURCE, context(inspect_values=True, regions=("us-west-2",))).records
               if r.name.startswith(unique_prefix)]
    assert {r.kind for r in records} == {"openai-project"}
    assert len({r.fingerprint for r in records}) == 1
    assert {r.field for r in records} == {None, "OPENAI_API_KEY"}


def test_no_value_in_any_record_or_failure(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    got = collect(SOURCE, context(inspect_values=True, regions=(*REGIONS, "xx-bogus-9"),
                                  aws=AwsConfig(max_attempts=1)))
    assert got.failures  # the bogus region: failure text is checked too
    texts = [repr(r) for r in got.records] + [str(r) for r in got.records]
    texts += [f"{f.message} {f.hint}" for f in got.failures]
    values = [v.reveal() for v in aws_sandbox.summary.values]
    assert len(values) > 200
    assert leaked_slices(values, texts) == []


def test_failing_region_does_not_hide_the_others(aws_sandbox: AwsSandbox, aws_env: str) -> None:
    ctx = context(aws=AwsConfig(regions=("us-east-1", "xx-bogus-9"), max_attempts=1))
    got = collect(SOURCE, ctx)
    (failure,) = got.failures
    assert failure.source == SOURCE
    assert failure.scope == "xx-bogus-9"
    assert "xx-bogus-9" in failure.message
    assert SOURCE in failure.message
    assert "\n" not in failure.message
    assert "<" not in failure.message  # moto's HTML error page is not repeated
    assert failure.hint
    seeded = {s.name for s in aws_sandbox.summary.secrets if s.region == "us-east-1" and not s.deleted}
    assert seeded <= {r.name for r in got.records}
    assert {r.region for r in got.records} == {"us-east-1"}


def test_missing_credentials_is_one_line_with_a_hint(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    got = collect(SOURCE, context())
    assert got.records == []
    (failure,) = got.failures  # one per profile, not one per region
    assert "no AWS credentials" in failure.message
    assert "AWS_PROFILE" in failure.hint
    assert "aws sso login" in failure.hint
    assert "\n" not in failure.message + failure.hint


def test_unknown_profile_is_reported(aws_env: str) -> None:
    got = collect(SOURCE, context(aws=AwsConfig(profiles=("no-such-profile",), regions=REGIONS)))
    (failure,) = got.failures
    assert failure.scope == "profile no-such-profile"
    assert "'no-such-profile' not found" in failure.message
    assert "profiles" in failure.hint


def test_unreachable_endpoint_names_the_region(aws_env: str) -> None:
    ctx = context(aws=AwsConfig(regions=("eu-west-1",), endpoint_url="http://127.0.0.1:1",
                                max_attempts=1))
    got = collect(SOURCE, ctx)
    assert got.records == []
    (failure,) = got.failures
    assert failure.scope == "eu-west-1"
    assert "cannot reach" in failure.message
    assert "AWS_ENDPOINT_URL" in failure.hint


# -- the shared error mapping (pure: botocore error objects in, SourceFailure out) ------------


def _client_error(code: str, op: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"RequestId": "r1", "HostId": "", "HTTPStatusCode": status,
                                             "HTTPHeaders": {}, "RetryAttempts": 0}}, op)


@pytest.mark.parametrize(("code", "op", "hint"), [
    ("AccessDeniedException", "ListSecrets", "grant secretsmanager:ListSecrets"),
    ("AccessDeniedException", "DescribeParameters", "grant ssm:DescribeParameters"),
    ("AccessDenied", "GetAccountAuthorizationDetails", "grant iam:GetAccountAuthorizationDetails"),
    ("UnrecognizedClientException", "ListSecrets", "aws sso login"),
    ("InvalidClientTokenId", "GetCallerIdentity", "AWS_PROFILE"),
    ("ExpiredTokenException", "ListSecrets", "aws sso login"),
    ("ThrottlingException", "ListTagsForResource", "max_attempts"),
])
def test_client_errors_map_to_hints(code: str, op: str, hint: str) -> None:
    failure = describe_error(SOURCE, "profile dev/eu-west-1", _client_error(code, op, "nope"))
    assert failure.scope == "profile dev/eu-west-1"
    assert failure.message.startswith(f"{SOURCE} [profile dev/eu-west-1]: ")
    assert op in failure.message
    assert hint in failure.hint


def test_value_operation_errors_never_repeat_aws_text() -> None:
    planted = fake_key("stripe-secret", random.Random(1))
    error = _client_error("ValidationException", "GetSecretValue", f"bad value {planted}")
    failure = describe_error(SOURCE, "us-east-1", error)
    assert planted[:12] not in failure.message + failure.hint
    assert "GetSecretValue" in failure.message


def test_html_error_pages_and_multiline_text_are_dropped() -> None:
    failure = describe_error(SOURCE, "us-east-1", _client_error(
        "500", "ListSecrets", "<!doctype html>\n<title>500 Internal Server Error</title>", 500))
    assert "<" not in failure.message
    assert "\n" not in failure.message
    assert "server error" in failure.message


def test_botocore_errors_map_to_hints() -> None:
    assert "AWS_PROFILE" in describe_error(SOURCE, "", NoCredentialsError()).hint
    missing = describe_error(SOURCE, "profile x", ProfileNotFound(profile="x"))
    assert "'x' not found" in missing.message
    endpoint = describe_error(SOURCE, "us-east-1", EndpointConnectionError(
        endpoint_url="https://user:hunter2pass@vpce.example:8443/"))
    assert "hunter2pass" not in endpoint.message
    assert "vpce.example:8443" in endpoint.message


# -- moto enforcing IAM: real rejected credentials and real denials -----------------------------


def test_rejected_credentials_fail_once_with_a_hint(aws_env: str) -> None:
    with enforced_auth(aws_env):  # the sandbox's "testing" key is not a real IAM key
        got = collect(SOURCE, context(aws=AwsConfig(regions=REGIONS, max_attempts=1)))
    assert got.records == []
    (failure,) = got.failures
    assert "credentials were rejected (InvalidClientTokenId)" in failure.message
    assert "aws sso login" in failure.hint


def test_denied_batch_get_falls_back_to_get_secret_value(
        aws_env: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("secretsmanager", region_name="us-west-1")
    token = fake_key("anthropic-api", random.Random(8))
    sm.create_secret(Name=f"{unique_prefix}/anthropic", SecretString=token)
    limited_principal(monkeypatch, f"{unique_prefix}-reader", [
        "sts:GetCallerIdentity", "secretsmanager:ListSecrets", "secretsmanager:GetSecretValue"])
    with enforced_auth(aws_env):
        got = collect(SOURCE, context(inspect_values=True,
                                      aws=AwsConfig(regions=("us-west-1",), max_attempts=1)))
    assert got.failures == []
    (record,) = [r for r in got.records if r.name.startswith(unique_prefix)]
    assert record.kind == "anthropic-api"
    assert record.value_inspected is True


def test_denied_listing_names_the_permission(
        aws_env: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    limited_principal(monkeypatch, f"{unique_prefix}-nobody", ["sts:GetCallerIdentity"])
    with enforced_auth(aws_env):
        got = collect(SOURCE, context(aws=AwsConfig(regions=("us-west-1",), max_attempts=1)))
    (failure,) = got.failures
    assert failure.scope == "us-west-1"
    assert "access denied calling ListSecrets" in failure.message
    assert failure.hint == "grant secretsmanager:ListSecrets"
