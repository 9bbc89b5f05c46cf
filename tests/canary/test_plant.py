"""Planting locations: parsing, and .env files written and cleaned without knowing the secret."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyguard.canary import Canary, CanaryKind
from keyguard.canary.aws import AwsCanaries
from keyguard.canary.plant import (
    Planter,
    aws_credential,
    litellm_credential,
    parse_location,
)
from keyguard.errors import UsageError
from keyguard.secret import Secret

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # pragma: allowlist secret
KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret


def no_aws(_region: str | None) -> AwsCanaries:
    raise AssertionError("a file location must not touch AWS")


@pytest.mark.parametrize(("spec", "scheme", "target"), [
    ("ssm:/app/prod/aws", "ssm", "/app/prod/aws"),
    ("secretsmanager:prod/etl", "secretsmanager", "prod/etl"),
    ("file:deploy/.env", "file", "deploy/.env"),
    ("vault:secret/app/aws", "vault", "secret/app/aws"),
])
def test_locations_parse(spec: str, scheme: str, target: str) -> None:
    location = parse_location(spec)
    assert (location.scheme, location.target, location.spec) == (scheme, target, spec)


@pytest.mark.parametrize(("spec", "message"), [
    ("ssm:app/prod", "starts with '/'"),
    ("vault:secret", "mount and the path"),
    ("s3:bucket/key", "not a location"),
    ("file:", "not a location"),
    ("/etc/passwd", "not a location"),
])
def test_bad_locations_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_location(spec)


def test_aws_copy_appended_to_an_env_file_and_removed_by_key_id(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DATABASE_URL=postgres://db\nAPI_TIMEOUT=30")  # no final newline
    env.chmod(0o640)
    planter = Planter(no_aws, cwd=tmp_path)
    planted = planter.plant(parse_location("file:.env"), aws_credential(KEY_ID, Secret(SECRET)))
    assert planted.ref == str(env.resolve())
    assert not planted.created_file
    assert env.read_text() == (f"DATABASE_URL=postgres://db\nAPI_TIMEOUT=30\n"
                               f"AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    canary = Canary("cn-1", CanaryKind.AWS, "svc", KEY_ID, NOW, planted=(planted,))
    planter.remove(planted, canary)
    assert env.read_text() == "DATABASE_URL=postgres://db\nAPI_TIMEOUT=30\n"
    planter.remove(planted, canary)  # a second removal is a no-op


def test_new_file_is_private_and_deleted_when_only_the_canary_was_in_it(tmp_path: Path) -> None:
    planter = Planter(no_aws, cwd=tmp_path)
    key = Secret("sk-litellm-" + "x" * 22)
    planted = planter.plant(parse_location(f"file:{tmp_path / 'new.env'}"),
                            litellm_credential(key, "http://proxy:4000"))
    path = Path(planted.ref)
    assert planted.created_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"LITELLM_API_KEY={key.reveal()}\n"
    token = hashlib.sha256(key.reveal().encode()).hexdigest()
    planter.remove(planted, Canary("cn-2", CanaryKind.LITELLM, "svc", token, NOW))
    assert not path.exists()


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        Planter(no_aws, cwd=tmp_path).plant(parse_location("file:nowhere/.env"),
                                            aws_credential(KEY_ID, Secret(SECRET)))


def test_credential_reprs_never_show_the_secret() -> None:
    credential = aws_credential(KEY_ID, Secret(SECRET))
    assert SECRET[:12] not in repr(credential)
    assert SECRET in credential.reveal_json()
