"""An IAM key stored in Vault KV v2 (real OpenBao dev server) is rotated and rolled back."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import boto3
import pytest

from keyguard.rotation.plan import StoreCopy
from keyguard.secret import Secret
from tests.fixtures.vault import VaultServer
from tests.rotation.test_apply import FP, item_for, plan_of, runner
from tests.rotation.world import User, keys_of, make_user


@pytest.fixture
def vault_env(vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch) -> VaultServer:
    monkeypatch.setenv("VAULT_ADDR", vault_server.address)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    return vault_server


def _vault_copy(server: VaultServer, user: User) -> StoreCopy:
    path = f"rot/{user.name}-{uuid.uuid4().hex[:4]}"
    server.client().secrets.kv.v2.create_or_update_secret(
        path=path, mount_point="secret",
        secret={"aws_access_key_id": user.old_id, "aws_secret_access_key": user.old_secret,
                "owner": "payments"})
    return StoreCopy(store="vault", location=f"secret/{path}", name=path,
                     field="aws_secret_access_key",
                     fingerprint=FP.fingerprint(Secret(user.old_secret)))


def _data(server: VaultServer, copy: StoreCopy, version: int | None = None) -> dict[str, str]:
    got = server.client().secrets.kv.v2.read_secret_version(
        path=copy.name, mount_point="secret", version=version, raise_on_deleted_version=True)
    return dict(got["data"]["data"])


def test_key_in_vault_and_secrets_manager_is_rotated(rot_env: str, vault_env: VaultServer,
                                                     tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json")])
    vault_copy = _vault_copy(vault_env, user)
    base = item_for(user)
    item = dataclasses.replace(base, copies=(*base.copies, vault_copy),
                               steps=(*base.steps[:3], "store:1", *base.steps[3:]))
    run, journal = runner(tmp_path)
    (out,) = run.apply(plan_of(item))
    assert out.status == "done", out.message
    new_id = out.facts["new_key_id"]
    latest = _data(vault_env, vault_copy)
    assert latest["aws_access_key_id"] == new_id
    assert latest["owner"] == "payments"
    assert latest["aws_secret_access_key"] != user.old_secret
    # KV v2 keeps the previous version readable while consumers move over
    assert _data(vault_env, vault_copy, 1)["aws_secret_access_key"] == user.old_secret
    sm_value = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=user.copies[0].name)["SecretString"])
    assert sm_value["aws_secret_access_key"] == latest["aws_secret_access_key"]
    assert keys_of(user)[user.old_id] == "Inactive"
    assert latest["aws_secret_access_key"] not in journal.path.read_text()


def test_failed_verification_restores_the_vault_copy(rot_env: str, vault_env: VaultServer,
                                                     tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [])
    vault_copy = _vault_copy(vault_env, user)
    base = item_for(user, user_arn="arn:aws:iam::123456789012:user/not-this-one")
    item = dataclasses.replace(base, copies=(vault_copy,),
                               steps=("prepare", "create", "store:0", "verify", "deactivate-old"))
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan_of(item))
    assert out.status == "rolled-back"
    latest = _data(vault_env, vault_copy)
    assert (latest["aws_access_key_id"], latest["aws_secret_access_key"]) == (user.old_id, user.old_secret)
    assert keys_of(user) == {user.old_id: "Active"}
