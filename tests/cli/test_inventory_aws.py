"""`keyguard inventory` end to end against the real moto server: formats, failures, leaks."""

import json
import random
import sqlite3
from pathlib import Path

import jsonschema
import pytest

from keyguard.fakes import fake_key
from tests.cli.conftest import Cli
from tests.fixtures.aws import REGIONS, AwsSandbox, leaked_slices

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "keyguard" / "schemas" /
                     "inventory.schema.json").read_text(encoding="utf-8"))
ALL = ["--source", "aws-secretsmanager", "--source", "aws-ssm", "--source", "aws-iam",
       "--source", "dotenv"]


def configure(cli: Cli, regions: tuple[str, ...] = REGIONS) -> list[str]:
    """keyguard.toml for the sandbox plus a .env file; returns the planted .env values."""
    rng = random.Random(404)
    values = [fake_key("anthropic-admin", rng), fake_key("github-fine-grained-pat", rng)]
    app = cli.workdir / "app"
    app.mkdir()
    (app / ".env").write_text(f"ANTHROPIC_ADMIN_KEY={values[0]}\nGH_TOKEN={values[1]}\n")
    (cli.workdir / "keyguard.toml").write_text(
        f"[aws]\nregions = {json.dumps(list(regions))}\n[sources.dotenv]\npaths = [\"app\"]\n")
    return values


def planted(sandbox: AwsSandbox) -> list[str]:
    return [s.reveal() for s in sandbox.summary.values]


def test_every_source_every_format_no_value_anywhere(
    cli: Cli, aws_env: str, aws_sandbox: AwsSandbox
) -> None:
    values = configure(cli) + planted(aws_sandbox)
    texts: list[str] = []
    state = cli.workdir / "state.db"
    for fmt in ("table", "json", "csv"):
        result = cli(["-vv", "inventory", *ALL, "--inspect-values", "-f", fmt,
                      "--state", str(state)])
        assert result.exit_code == 0, result.stderr[-2000:]
        texts += [result.stdout, result.stderr]
        if fmt == "json":
            doc = json.loads(result.stdout)
            jsonschema.validate(doc, SCHEMA)
            by_source: dict[str, int] = {}
            for key in doc["keys"]:
                by_source[key["source"]] = by_source.get(key["source"], 0) + 1
            assert by_source["aws-iam"] >= sum(len(u.keys) for u in aws_sandbox.summary.users)
            assert by_source["aws-secretsmanager"] >= len(aws_sandbox.summary.secrets)
            assert by_source["dotenv"] == 2
            kinds = {k["kind"] for k in doc["keys"]}
            assert {"anthropic-admin", "aws-access-key", "openai-project"} <= kinds
    texts.append(state.read_bytes().decode("latin-1"))
    for wal in cli.workdir.glob("state.db-*"):
        texts.append(wal.read_bytes().decode("latin-1"))
    assert leaked_slices(values, texts) == []


def test_a_bad_region_is_reported_and_the_rest_completes(
    cli: Cli, aws_env: str, aws_sandbox: AwsSandbox
) -> None:
    configure(cli)
    result = cli(["inventory", *ALL, "--region", "us-east-1", "--region", "xx-nowhere-9",
                  "-f", "json"])
    assert result.exit_code == 3, result.stderr
    doc = json.loads(result.stdout)
    assert doc["partial"] is True
    failed_scopes = {e["scope"] for e in doc["errors"]}
    assert any("xx-nowhere-9" in s for s in failed_scopes)
    regions = {k["region"] for k in doc["keys"] if k["source"] == "aws-ssm"}
    assert regions == {"us-east-1"}
    assert {k["source"] for k in doc["keys"]} == {"aws-secretsmanager", "aws-ssm", "aws-iam",
                                                   "dotenv"}
    assert "partial result, exit 3" in result.stderr


def test_unreachable_endpoint_fails_aws_sources_only(
    cli: Cli, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(cli, regions=("us-east-1",))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = cli(["inventory", *ALL])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "GH_TOKEN" in result.stdout  # dotenv still reports
    failures = [line for line in result.stdout.splitlines() if line.startswith("  ! ")]
    assert {line.split(":")[0].split("[")[0].strip("! ") for line in failures} == {
        "aws-secretsmanager", "aws-ssm", "aws-iam"}
    assert all(len(line) < 400 for line in failures)


def test_missing_credentials_name_the_fix(
    cli: Cli, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(cli, regions=("us-east-1",))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = cli(["inventory", "--source", "aws-ssm", "--source", "dotenv", "-f", "json"])
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    (error,) = [e for e in doc["errors"] if e["source"] == "aws-ssm"]
    assert "credential" in (error["message"] + error["hint"]).lower()
    assert len(doc["keys"]) == 2


def test_diff_sees_a_rotated_secret(
    cli: Cli, aws_env: str, aws_sandbox: AwsSandbox, unique_prefix: str
) -> None:
    import boto3

    configure(cli, regions=("us-east-1",))
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    rng = random.Random(5)
    name = f"{unique_prefix}/prod/openai"
    sm.create_secret(Name=name, SecretString=fake_key("openai-project", rng))
    args = ["inventory", "--source", "aws-secretsmanager", "--inspect-values"]
    assert cli(args).exit_code == 0
    sm.put_secret_value(SecretId=name, SecretString=fake_key("openai-project", rng))
    doc = json.loads(cli([*args, "--diff", "-f", "json"]).stdout)
    mine = [c for c in doc["changes"] if c["key"]["name"] == name]
    assert len(mine) == 1
    assert mine[0]["change"] == "changed"
    assert "fingerprint" in mine[0]["fields"]
    snapshots = sqlite3.connect(cli.home / "data" / "keyguard" / "state.db").execute(
        "SELECT COUNT(*) FROM snapshots").fetchone()[0]
    assert snapshots == 2
