"""AWS canaries end to end against the real moto server: create, plant, steal, trip, delete."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from keyguard.canary.aws import TELLTALE_WORDS
from tests.cli.conftest import Cli
from tests.fixtures.aws import leaked_slices


def create(cli: Cli, name: str, *plants: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Run `canary create aws`; returns the canary's id and access key id from stdout."""
    args = ["canary", "create", "aws", "--name", name, "--state", str(cli.workdir / "s.db")]
    for plant in plants:
        args += ["--plant", plant]
    result = cli([*args, *extra])
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("canary cn-")
    return {"id": first.split()[1], "key_id": first.rsplit(" ", 1)[-1], "stdout": result.stdout,
            "stderr": result.stderr}


def check(cli: Cli, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = cli(["canary", "check", "--format", "json", "--state", str(cli.workdir / "s.db"),
                  *extra])
    assert result.stdout, (result.stderr, result.exception)
    return result.exit_code, json.loads(result.stdout), result.stderr


def steal_from_ssm(name: str) -> dict[str, str]:
    """What a thief with read access does: read the parameter, decrypt it, parse it."""
    value = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    parsed: dict[str, str] = json.loads(value)
    return parsed


def use(creds: dict[str, str], region: str = "eu-west-1") -> None:
    """Use the stolen key: one signed STS call makes moto record the key's last use."""
    sts = boto3.client("sts", region_name=region, aws_access_key_id=creds["aws_access_key_id"],
                       aws_secret_access_key=creds["aws_secret_access_key"])
    sts.get_caller_identity()


def state_texts(cli: Cli) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in cli.workdir.glob("s.db*")]


def test_planted_canary_trips_when_used_and_is_cleaned_up(
    cli: Cli, canary_aws: str, unique_prefix: str
) -> None:
    name = f"{unique_prefix}-billing-export"
    ssm_name = f"/{unique_prefix}/prod/billing/aws"
    sm_name = f"{unique_prefix}/billing/aws"
    env_file = cli.workdir / "deploy.env"
    env_file.write_text("DATABASE_URL=postgres://db/app\n")
    made = create(cli, name, f"ssm:{ssm_name}", f"secretsmanager:{sm_name}",
                  f"file:{env_file}")

    # every planted copy holds the same real-looking credential
    creds = steal_from_ssm(ssm_name)
    assert set(creds) == {"aws_access_key_id", "aws_secret_access_key"}
    assert creds["aws_access_key_id"] == made["key_id"]
    sm_value = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=sm_name)["SecretString"])
    assert sm_value == creds
    env_text = env_file.read_text()
    assert env_text.startswith("DATABASE_URL=postgres://db/app\n")
    assert f"AWS_ACCESS_KEY_ID={made['key_id']}\n" in env_text
    assert f"AWS_SECRET_ACCESS_KEY={creds['aws_secret_access_key']}\n" in env_text

    code, doc, _ = check(cli)
    assert code == 0
    assert [c["status"] for c in doc["canaries"]] == ["quiet"]

    use(creds)
    code, doc, stderr = check(cli)
    assert code == 1, stderr
    alerts = doc["alerts"]
    assert isinstance(alerts, list)
    assert len(alerts) == 1
    assert alerts[0]["severity"] == "critical"
    assert alerts[0]["key"] == made["key_id"]
    assert alerts[0]["evidence"]["seen_by"] == "iam:GetAccessKeyLastUsed"
    assert alerts[0]["evidence"]["region"] == "eu-west-1"
    assert alerts[0]["evidence"]["service"] == "sts"
    assert alerts[0]["start"] is not None
    table = cli(["canary", "check", "--state", str(cli.workdir / "s.db")])
    assert table.exit_code == 1
    assert "USED" in table.stdout
    assert "CRITICAL" in table.stdout

    # the secret half is nowhere but the planted locations
    texts = [made["stdout"], made["stderr"], json.dumps(doc), stderr, table.stdout,
             table.stderr, *state_texts(cli)]
    assert leaked_slices([creds["aws_secret_access_key"]], texts) == []

    deleted = cli(["canary", "delete", made["id"], "--state", str(cli.workdir / "s.db")])
    assert deleted.exit_code == 0, deleted.stderr
    iam = boto3.client("iam")
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_user(UserName=name)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        boto3.client("ssm").get_parameter(Name=ssm_name)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        boto3.client("secretsmanager").describe_secret(SecretId=sm_name)
    assert env_file.read_text() == "DATABASE_URL=postgres://db/app\n"
    listed = cli(["canary", "list", "--format", "json", "--state", str(cli.workdir / "s.db")])
    assert json.loads(listed.stdout)["canaries"] == []


def test_nothing_in_iam_gives_the_canary_away(
    cli: Cli, canary_aws: str, unique_prefix: str
) -> None:
    name = f"{unique_prefix}-etl-loader"
    create(cli, name, f"ssm:/{unique_prefix}/etl/creds",
           extra=("--iam-path", "/service/", "--tag", "team=data"))
    iam = boto3.client("iam")
    user = iam.get_user(UserName=name)["User"]
    assert user["Path"] == "/service/"
    policies = iam.list_user_policies(UserName=name)["PolicyNames"]
    assert policies == ["access"]
    doc = iam.get_user_policy(UserName=name, PolicyName="access")["PolicyDocument"]
    statement = (json.loads(doc) if isinstance(doc, str) else doc)["Statement"]
    assert statement == [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
    tags = iam.list_user_tags(UserName=name)["Tags"]
    assert tags == [{"Key": "team", "Value": "data"}]
    ssm = boto3.client("ssm")
    described = ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Values": [f"/{unique_prefix}/etl/creds"]}])["Parameters"]
    visible = json.dumps([user, policies, doc, tags, described], default=str).lower()
    for word in TELLTALE_WORDS:
        assert word not in visible, word
    assert ssm.list_tags_for_resource(ResourceType="Parameter",
                                      ResourceId=f"/{unique_prefix}/etl/creds")["TagList"] == []


@pytest.mark.parametrize("option", [
    ("--name", "billing-canary"),
    ("--policy-name", "HoneyPot"),
    ("--iam-path", "/traps/"),
    ("--tag", "purpose=keyguard"),
])
def test_telltale_words_are_refused_before_anything_is_created(
    cli: Cli, canary_aws: str, unique_prefix: str, option: tuple[str, str]
) -> None:
    args = ["canary", "create", "aws", "--name", f"{unique_prefix}-svc",
            "--plant", f"ssm:/{unique_prefix}/x", "--state", str(cli.workdir / "s.db")]
    if option[0] == "--name":
        args[4] = f"{unique_prefix}-{option[1]}"
    else:
        args += list(option)
    result = cli(args)
    assert result.exit_code == 2
    assert "would give the canary away" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ClientError, match="NoSuchEntity"):
        boto3.client("iam").get_user(UserName=args[4])


def test_failed_plant_rolls_everything_back(
    cli: Cli, canary_aws: str, unique_prefix: str
) -> None:
    taken = f"/{unique_prefix}/already/there"
    boto3.client("ssm").put_parameter(Name=taken, Value="real-value", Type="SecureString")
    name = f"{unique_prefix}-report-svc"
    result = cli(["canary", "create", "aws", "--name", name,
                  "--plant", f"secretsmanager:{unique_prefix}/first",
                  "--plant", f"ssm:{taken}", "--state", str(cli.workdir / "s.db")])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    # the real value is untouched, the first copy and the user are gone, nothing recorded
    assert boto3.client("ssm").get_parameter(
        Name=taken, WithDecryption=True)["Parameter"]["Value"] == "real-value"
    with pytest.raises(ClientError, match="ResourceNotFound"):
        boto3.client("secretsmanager").describe_secret(SecretId=f"{unique_prefix}/first")
    with pytest.raises(ClientError, match="NoSuchEntity"):
        boto3.client("iam").get_user(UserName=name)
    rows = sqlite3.connect(cli.workdir / "s.db").execute("SELECT COUNT(*) FROM canaries")
    assert rows.fetchone()[0] == 0


def test_plant_is_required_and_locations_are_checked(cli: Cli, canary_aws: str) -> None:
    no_plant = cli(["canary", "create", "aws", "--name", "svc-x"])
    assert no_plant.exit_code == 2
    assert "--plant" in no_plant.stderr
    bad = cli(["canary", "create", "aws", "--name", "svc-x", "--plant", "s3:bucket/key"])
    assert bad.exit_code == 2
    assert "not a location" in bad.stderr
    bad_name = cli(["canary", "create", "aws", "--name", "svc x/y", "--plant", "ssm:/a/b"])
    assert bad_name.exit_code == 2
    assert "not a valid IAM user name" in bad_name.stderr


def test_canaries_are_excluded_from_policy_findings(
    cli: Cli, canary_aws: str, unique_prefix: str
) -> None:
    state = str(cli.workdir / "s.db")
    env_dir = cli.workdir / "app"
    env_dir.mkdir()
    made = create(cli, f"{unique_prefix}-ops-svc", f"file:{env_dir / '.env'}")
    (cli.workdir / "keyguard.toml").write_text(
        '[sources.dotenv]\npaths = ["app"]\n[policy.rules.plaintext-key-at-rest]\nseverity = "high"\n')
    result = cli(["check", "--source", "dotenv", "--source", "aws-iam", "--format", "json",
                  "--state", state, "--fail-on", "info"])
    doc = json.loads(result.stdout)
    subjects = json.dumps(doc["findings"])
    assert made["key_id"] not in subjects
    assert str(env_dir / ".env") not in subjects


def test_most_verbose_logging_never_shows_the_secret(
    cli: Cli, canary_aws: str, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYGUARD_LOG_LEVEL", "DEBUG")
    ssm_name = f"/{unique_prefix}/verbose/aws"
    result = cli(["-vvv", "canary", "create", "aws", "--name", f"{unique_prefix}-verbose-svc",
                  "--plant", f"ssm:{ssm_name}", "--state", str(cli.workdir / "s.db")])
    assert result.exit_code == 0, result.stderr
    secret = steal_from_ssm(ssm_name)["aws_secret_access_key"]
    assert leaked_slices([secret], [result.stdout, result.stderr, *state_texts(cli)]) == []
