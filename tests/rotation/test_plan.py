"""Planning is pure: copies found by key id and fingerprint, safe skips, same inputs -> same plan."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyguard.errors import UsageError
from keyguard.model import Fingerprint, KeyRecord, KeyStatus, Kind
from keyguard.rotation.plan import (
    Completed,
    PlanInputs,
    build_plan,
    plan_from_json,
    plan_to_dict,
)
from keyguard.rotation.rotators import ROTATORS
from keyguard.rotation.schedule import parse_select

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
AKIA = "AKIAEXAMPLEKEY000001"
SPARE = "AKIAEXAMPLEKEY000002"
FP = Fingerprint("kg1:" + "ab" * 16)


def iam_key(user: str = "alice", key_id: str = AKIA, status: KeyStatus = KeyStatus.ACTIVE,
            labels: tuple[str, ...] = ()) -> KeyRecord:
    from keyguard.model import Scope

    return KeyRecord(source="aws-iam", location=f"arn:aws:iam::{ACCOUNT}:user/{user}:access-key/{key_id}",
                     name=f"{user}/{key_id}", provider="aws", kind=Kind("aws-access-key"),  # type: ignore[arg-type]
                     key_id=key_id, status=status, account=ACCOUNT, scope=Scope(labels=labels))


def sm_copy(name: str = "app/creds", key_id: str | None = AKIA, fp: Fingerprint = FP) -> KeyRecord:
    return KeyRecord(source="aws-secretsmanager",
                     location=f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}",
                     name=name, region="us-east-1", field="aws_secret_access_key",
                     kind=Kind("aws-access-key"), key_id=key_id, fingerprint=fp)


def ssm_plain(name: str = "/app/aws_secret_access_key", fp: Fingerprint = FP) -> KeyRecord:
    return KeyRecord(source="aws-ssm", location=f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{name}",
                     name=name, region="us-east-1", kind=Kind("aws-secret-key"), fingerprint=fp)


def planners() -> list[tuple[str, object, object]]:
    cls = ROTATORS.load("aws-iam")
    return [("aws-iam", cls.claims, cls.plan)]


def inputs(keys: list[KeyRecord], due: list[KeyRecord], **kw: object) -> PlanInputs:
    return PlanInputs(keys=keys, due={k.identity: "rotation-max-age: old" for k in due},
                      planners=planners(),  # type: ignore[arg-type]
                      writable_stores=frozenset({"aws-secretsmanager", "aws-ssm"}), now=NOW,
                      **kw)  # type: ignore[arg-type]


def test_a_due_copy_rotates_through_its_iam_key_with_every_copy() -> None:
    key, sm, ssm = iam_key(), sm_copy(), ssm_plain()
    # only the plain SSM copy is flagged: it reaches the IAM key through the JSON copy
    plan = build_plan(inputs([key, sm, ssm], [ssm]))
    assert len(plan.items) == 1
    item = plan.items[0]
    assert (item.rotator, item.subject, item.principal) == ("aws-iam", key.identity, "alice")
    assert [c.store for c in item.copies] == ["aws-secretsmanager", "aws-ssm"]
    assert item.steps == ("prepare", "create", "store:0", "store:1", "verify", "deactivate-old")
    assert item.params["user_arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert plan.skipped == ()


def test_plan_is_deterministic_and_tokens_are_stable() -> None:
    keys = [iam_key(f"u{i}", f"AKIAEXAMPLEKEY0000{i:02d}") for i in range(5)]
    keys += [sm_copy(f"c{i}", f"AKIAEXAMPLEKEY0000{i:02d}", Fingerprint(f"kg1:{i:032x}"))
             for i in range(5)]
    first = build_plan(inputs(keys, keys[:5]))
    second = build_plan(inputs(list(reversed(keys)), list(reversed(keys[:5]))))
    assert plan_to_dict(first) == plan_to_dict(second)
    assert [i.subject for i in first.items] == sorted(i.subject for i in first.items)
    assert len({i.token for i in first.items}) == 5


def test_copy_in_an_unwritable_store_skips_the_key() -> None:
    key = iam_key()
    dotenv = KeyRecord(source="dotenv", location="/srv/app/.env:3", name="AWS_SECRET_ACCESS_KEY",
                       key_id=AKIA, fingerprint=FP)
    plan = build_plan(inputs([key, sm_copy(), dotenv], [key]))
    assert plan.items == ()
    assert "dotenv" in plan.skipped[0].reason
    assert "strand" in plan.skipped[0].reason


def test_key_whose_secret_copy_has_its_own_rotation_lambda_is_left_to_it() -> None:
    from keyguard.model import RotationSettings

    key = iam_key()
    managed = dataclasses.replace(sm_copy(), rotation=RotationSettings(
        supported=True, enabled=True, rotator=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotate-app"))
    plan = build_plan(inputs([key, managed], [key]))
    assert plan.items == ()
    assert "app/creds rotates this key with its own Lambda" in plan.skipped[0].reason
    disabled = dataclasses.replace(managed, rotation=RotationSettings(supported=True, enabled=False))
    assert len(build_plan(inputs([key, disabled], [key])).items) == 1


def test_key_without_a_known_copy_is_skipped() -> None:
    key = iam_key()
    plan = build_plan(inputs([key], [key]))
    assert plan.items == ()
    assert "no stored copy" in plan.skipped[0].reason


def test_user_at_two_keys_inactive_spare_is_planned_active_second_key_is_not() -> None:
    key = iam_key()
    spare = iam_key(key_id=SPARE, status=KeyStatus.INACTIVE)
    plan = build_plan(inputs([key, spare, sm_copy()], [key]))
    assert plan.items[0].params["spare"] == SPARE
    active = dataclasses.replace(spare, status=KeyStatus.ACTIVE)
    plan = build_plan(inputs([key, active, sm_copy()], [key]))
    assert plan.items == ()
    assert "never deletes an active key" in plan.skipped[0].reason


def test_admin_key_is_high_risk() -> None:
    key = iam_key(labels=("admin",))
    assert build_plan(inputs([key, sm_copy()], [key])).items[0].risk == "high"


def test_max_keys_defers_the_rest_in_subject_order() -> None:
    keys = [iam_key(f"u{i}", f"AKIAEXAMPLEKEY0000{i:02d}") for i in range(4)]
    copies = [sm_copy(f"c{i}", f"AKIAEXAMPLEKEY0000{i:02d}", Fingerprint(f"kg1:{i:032x}"))
              for i in range(4)]
    plan = build_plan(inputs(keys + copies, keys, max_keys=2))
    assert [i.principal for i in plan.items] == ["u0", "u1"]
    assert plan.deferred == (keys[2].identity, keys[3].identity)


def test_select_narrows_due_keys() -> None:
    a, b = iam_key("alice"), iam_key("bob", SPARE)
    copies = [sm_copy("a"), sm_copy("b", SPARE, Fingerprint("kg1:" + "cd" * 16))]
    plan = build_plan(inputs([a, b, *copies], [a, b], select=parse_select("name~^bob/")))
    assert [i.principal for i in plan.items] == ["bob"]


def test_old_key_is_deleted_only_after_the_grace_period_and_only_if_inactive() -> None:
    old = iam_key(status=KeyStatus.INACTIVE)
    done = Completed(token="rot-x", rotator="aws-iam", subject=old.identity, principal="alice",
                     old_key_id=AKIA, finished=NOW - timedelta(days=8))
    plan = build_plan(inputs([old], [], completed=[done], grace_days=7))
    assert [(i.action, i.steps, i.key_id) for i in plan.items] == [("cleanup", ("delete-old",), AKIA)]
    early = dataclasses.replace(done, finished=NOW - timedelta(days=6))
    assert build_plan(inputs([old], [], completed=[early], grace_days=7)).items == ()
    reactivated = dataclasses.replace(old, status=KeyStatus.ACTIVE)
    plan = build_plan(inputs([reactivated], [], completed=[done], grace_days=7))
    assert plan.items == ()
    assert "re-activated" in plan.skipped[0].reason


def test_plan_file_round_trip_and_tamper_check() -> None:
    key = iam_key()
    plan = build_plan(inputs([key, sm_copy(), ssm_plain()], [key]))
    text = json.dumps(plan_to_dict(plan))
    assert plan_from_json(text, "plan.json") == plan
    doc = json.loads(text)
    doc["items"][0]["copies"].pop()
    with pytest.raises(UsageError, match="plan_id does not match"):
        plan_from_json(json.dumps(doc), "plan.json")
    with pytest.raises(UsageError, match="not a JSON plan"):
        plan_from_json("{oops", "plan.json")
    with pytest.raises(UsageError, match="version 1"):
        plan_from_json('{"version": 9}', "plan.json")


@pytest.mark.parametrize(("expr", "message"), [
    ("colour=red", "unknown field"), ("name", "cannot parse"), ("name~(", "bad regular"),
    (" , ", "empty expression"),
])
def test_bad_select_is_a_usage_error(expr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_select(expr)


def test_select_terms() -> None:
    rec = dataclasses.replace(iam_key(), owner="Payments", tags={"team": "core"})
    assert parse_select("owner=payments,tag:team=core")(rec)
    assert not parse_select("owner!=payments")(rec)
    assert parse_select("env!=prod")(rec)
    assert not parse_select("tag:team~^x")(rec)


def test_key_under_a_usage_alert_needs_approve(tmp_path: Path) -> None:
    from keyguard.rotation.schedule import load_alerted

    report = tmp_path / "usage.json"
    report.write_text(json.dumps({"schema_version": 1, "stats": {}, "errors": [], "alerts": [
        {"id": "ua1:abc", "key": AKIA, "key_alias": None, "type": "geography", "severity": "high",
         "start": "2026-11-26T00:00:00Z", "end": "2026-11-26T01:00:00Z", "summary": "x",
         "evidence": {}}]}))
    alerted = load_alerted([report])
    key = iam_key()
    held = build_plan(inputs([key, sm_copy()], [key], alerted=alerted))
    assert held.items == ()
    assert "usage alert geography ua1:abc" in held.skipped[0].reason
    assert "--approve" in held.skipped[0].reason
    approved = build_plan(inputs([key, sm_copy()], [key], alerted=alerted, approve=True))
    assert "approved despite usage alert geography" in approved.items[0].reason
    report.write_text('{"alerts": "nope"}')
    with pytest.raises(UsageError, match="not a keyguard usage scan JSON report"):
        load_alerted([report])


def test_copy_in_a_secret_scheduled_for_deletion_is_left_out() -> None:
    key = iam_key()
    gone = dataclasses.replace(sm_copy("old/creds"), status=KeyStatus.DELETED)
    plan = build_plan(inputs([key, sm_copy(), gone], [key]))
    assert [c.name for c in plan.items[0].copies] == ["app/creds"]
