"""Planting in Vault / OpenBao KV v2 against the real dev server."""

from __future__ import annotations

import json

import boto3
import hvac
import pytest

from tests.cli.conftest import Cli
from tests.fixtures.vault import VaultServer


def test_vault_copy_is_planted_like_a_real_credential_and_removed(
    cli: Cli, canary_aws: str, vault_server: VaultServer, unique_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault_server.address)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    path = f"{unique_prefix}/payments/aws"
    made = cli(["canary", "create", "aws", "--name", f"{unique_prefix}-payments-svc",
                "--plant", f"vault:secret/{path}", "--state", str(cli.workdir / "s.db")])
    assert made.exit_code == 0, made.stderr
    key_id = made.stdout.splitlines()[0].rsplit(" ", 1)[-1]
    client = vault_server.client()
    data = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                    raise_on_deleted_version=False)["data"]["data"]
    assert data["aws_access_key_id"] == key_id
    assert set(data) == {"aws_access_key_id", "aws_secret_access_key"}
    # the stolen copy works as a credential (and trips the canary)
    boto3.client("sts", aws_access_key_id=key_id,
                 aws_secret_access_key=data["aws_secret_access_key"]).get_caller_identity()
    checked = cli(["canary", "check", "-f", "json", "--state", str(cli.workdir / "s.db")])
    assert checked.exit_code == 1
    assert json.loads(checked.stdout)["alerts"][0]["key"] == key_id

    again = cli(["canary", "create", "aws", "--name", f"{unique_prefix}-payments-2",
                 "--plant", f"vault:secret/{path}", "--state", str(cli.workdir / "s.db")])
    assert again.exit_code == 2
    assert "already exists" in again.stderr

    gone = cli(["canary", "delete", made.stdout.split()[1], "--state", str(cli.workdir / "s.db")])
    assert gone.exit_code == 0, gone.stderr
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
