"""The step runner against real moto: rollbacks, the two-keys limit, idempotency, clean-up."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from keyguard.config import Config
from keyguard.fingerprint import Fingerprinter
from keyguard.rotation.apply import Runner
from keyguard.rotation.context import RotationContext, Scratch
from keyguard.rotation.journal import Journal
from keyguard.rotation.plan import RotationItem, RotationPlan, StoreCopy, item_token
from keyguard.secret import Secret
from tests.rotation.world import Copy, User, assert_invariants, keys_of, make_user, read_copy

FP = Fingerprinter(b"rotation-tests-key-0123456789abcd")
NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _copy(c: Copy, user: User) -> StoreCopy:
    store = "aws-secretsmanager" if c.store == "sm" else "aws-ssm"
    return StoreCopy(store=store, location=c.name, name=c.name, region="us-east-1", field=c.field,
                     fingerprint=FP.fingerprint(Secret(user.old_secret)))


def item_for(user: User, **params: str) -> RotationItem:
    copies = tuple(_copy(c, user) for c in user.copies)
    return RotationItem(
        token=item_token("aws-iam", user.arn, user.old_id), action="rotate", rotator="aws-iam",
        subject=f"aws-iam:{user.arn}:access-key/{user.old_id}", name=f"{user.name}/{user.old_id}",
        key_id=user.old_id, principal=user.name, reason="test",
        steps=("prepare", "create", *(f"store:{i}" for i in range(len(copies))), "verify",
               "deactivate-old"),
        copies=copies, params={"user_arn": user.arn, **params})


def runner(tmp: Path) -> tuple[Runner, Journal]:
    scratch = Scratch()
    journal = Journal(tmp / "journal.jsonl", guard=scratch.check)
    ctx = RotationContext(config=Config(), fingerprinter=FP, now=lambda: NOW,
                          sleep=lambda _s: None, verify_timeout=0)
    return Runner(ctx, journal, "run1", scratch), journal


def plan_of(*items: RotationItem) -> RotationPlan:
    return RotationPlan(created=NOW, grace_days=7, items=items)


def test_rotation_end_to_end_three_copies(rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json"), ("ssm", "plain"), ("sm", "env")])
    run, journal = runner(tmp_path)
    (out,) = run.apply(plan_of(item_for(user)))
    assert out.status == "done", out.message
    snap = assert_invariants(user, complete=True)
    assert out.facts == {"old_key_id": user.old_id, "new_key_id": snap.held_id}
    # the JSON copy kept its other fields and order
    doc = json.loads(read_copy(user.copies[0]))
    assert list(doc) == ["aws_access_key_id", "aws_secret_access_key", "region", "note"]
    assert doc["note"] == "keep me"
    # moto recorded the new key's use by the STS verification
    last = boto3.client("iam").get_access_key_last_used(AccessKeyId=snap.held_id)
    assert "LastUsedDate" in last["AccessKeyLastUsed"]
    text = journal.path.read_text()
    assert user.old_secret not in text
    assert snap.secrets[0] not in text


def test_failed_verification_rolls_back(rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json"), ("ssm", "plain")])
    run, journal = runner(tmp_path)
    # the new key will authenticate as the user, not as this other principal
    item = item_for(user, user_arn="arn:aws:iam::123456789012:user/someone-else")
    (out,) = run.apply(plan_of(item))
    assert out.status == "rolled-back"
    assert "authenticates as" in out.message
    assert_invariants(user, complete=False)
    assert keys_of(user) == {user.old_id: "Active"}
    sm = boto3.client("secretsmanager").describe_secret(SecretId=user.copies[0].name)
    assert sum("AWSCURRENT" in s for s in sm["VersionIdsToStages"].values()) == 1
    events = [json.loads(line)["event"] for line in journal.path.read_text().splitlines()]
    assert events[-2:] == ["rollback-start", "rolled-back"]


def test_copy_gone_mid_rotation_restores_the_written_ones(rot_env: str, tmp_path: Path,
                                                          unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json"), ("ssm", "env"), ("ssm", "plain")])
    item = item_for(user)
    boto3.client("ssm").delete_parameter(Name=user.copies[2].name)
    user.copies.pop()
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan_of(item))
    assert out.status == "rolled-back"
    assert "ParameterNotFound" in out.message
    assert_invariants(user, complete=False)
    assert keys_of(user) == {user.old_id: "Active"}


def test_user_at_two_keys_inactive_spare_is_deleted_first(rot_env: str, tmp_path: Path,
                                                          unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json")], spare="inactive")
    spare = next(k for k in keys_of(user) if k != user.old_id)
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan_of(item_for(user, spare=spare)))
    assert out.status == "done", out.message
    snap = assert_invariants(user, complete=True)
    assert spare not in snap.keys


@pytest.mark.parametrize("status", ["active", "inactive"])
def test_unplanned_second_key_stops_before_anything_changes(
        status: str, rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("sm", "json")], spare=status)
    before = keys_of(user)
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan_of(item_for(user)))  # the plan did not name a spare
    assert out.status == "rolled-back"
    assert "did not expect" in out.message
    assert keys_of(user) == before  # never deletes a key it was not told about


def test_same_plan_twice_is_a_no_op_and_cleanup_deletes_only_inactive(
        rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    user = make_user(unique_prefix, [("ssm", "json")])
    run, journal = runner(tmp_path)
    plan = plan_of(item_for(user))
    assert run.apply(plan)[0].status == "done"
    again = run.apply(plan)[0]
    assert again.status == "skipped"
    assert "already done" in again.message
    assert len(keys_of(user)) == 2
    (done,) = journal.completed()
    cleanup = RotationItem(token=item_token("aws-iam", "x", user.old_id, "cleanup"), action="cleanup",
                           rotator="aws-iam", subject="x", name=user.name, key_id=user.old_id,
                           principal=user.name, reason="grace", steps=("delete-old",),
                           params={"rotation": done.token})
    boto3.client("iam").update_access_key(UserName=user.name, AccessKeyId=user.old_id, Status="Active")
    refused = run.apply(plan_of(cleanup))[0]
    assert refused.status == "rolled-back"
    assert "not deleting an active key" in refused.message
    assert user.old_id in keys_of(user)
    boto3.client("iam").update_access_key(UserName=user.name, AccessKeyId=user.old_id, Status="Inactive")
    retry = dataclasses.replace(cleanup, token=cleanup.token + "b")
    assert run.apply(plan_of(retry))[0].status == "done"
    assert user.old_id not in keys_of(user)
    assert journal.completed() == []


def test_failure_after_the_new_key_is_live_stops_then_resume_finishes(
        rot_env: str, tmp_path: Path, unique_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user(unique_prefix, [("sm", "json")])
    scratch = Scratch()
    journal = Journal(tmp_path / "journal.jsonl", guard=scratch.check)
    ctx = RotationContext(config=Config(), fingerprinter=FP, now=lambda: NOW,
                          sleep=lambda _s: None, verify_timeout=0)
    seen = [0]

    def boundary() -> None:  # AWS becomes unreachable just before the old key is disabled
        seen[0] += 1
        if seen[0] == 11:  # begin, prepare x2, create x2, store:0 x3, verify x2, deactivate start
            ctx.clients.clear()
            monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    (out,) = Runner(ctx, journal, "run1", scratch, boundary=boundary).apply(plan_of(item_for(user)))
    assert out.status == "stopped"
    assert "resume" in out.message
    (state,) = journal.incomplete()
    assert state.interrupted_step == "deactivate-old"
    monkeypatch.setenv("AWS_ENDPOINT_URL", rot_env)
    assert keys_of(user)[user.old_id] == "Active"  # not rolled back: every copy has the new key
    run, _ = runner(tmp_path)  # a fresh run on the same journal file
    (done,) = run.resume()
    assert done.status == "done", done.message
    assert_invariants(user, complete=True)
