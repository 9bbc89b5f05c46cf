"""The aws-secretsmanager rotator on a real moto server: Lambda and staged rotations.

Lambda mode: moto runs RotateSecret for real (the version id comes from our token, the
AWSPENDING label appears) and "invokes" the function without running code (its docker-less
Lambda), so the rotation function's own work, createSecret + finishSecret, is played by
:class:`LambdaDouble` against the same server, as a real function would. What this leaves
untested: a real function's code, and AWS's own retry of a failed rotation.

Staged mode verifies a new Anthropic/OpenAI key with one call to the local provider fakes
(tests/fakes). Values are always read by label: moto 5.2 keeps serving its "default"
version to a GetSecretValue without VersionStage after UpdateSecretVersionStage moved
AWSCURRENT (AWS serves AWSCURRENT), and the rotator reads by label for the same reason.

The kill sweep forks a child that applies the item and is SIGKILLed by the CLI's
fault-injection hook at the N-th journal line; the test then resumes in-process (with no
supplied value in memory, as a new process would) and checks the invariants.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import signal
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import boto3
import freezegun
import pytest
from typer.testing import CliRunner, Result

from keyguard.classify import inspect_value
from keyguard.config import Config
from keyguard.fakes import fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, KeyStatus, RotationSettings
from keyguard.rotation.apply import Outcome, Runner
from keyguard.rotation.context import RotationContext, Scratch
from keyguard.rotation.journal import Journal
from keyguard.rotation.plan import (
    PlanInputs,
    RotationItem,
    RotationPlan,
    Skipped,
    build_plan,
    item_from_dict,
    item_to_dict,
    plan_to_dict,
    with_hook_step,
)
from keyguard.rotation.rotators import ORDER, ROTATORS
from keyguard.rotation.rotators.aws_secretsmanager import AwsSecretsManagerRotator as SmRotator
from keyguard.rotation.supply import SUPPLY_PARAM, hold
from keyguard.secret import Secret
from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.openai_api import FakeOpenAIApi
from tests.rotation.world import later, policy_file

FP = Fingerprinter(b"rotation-tests-key-0123456789abcd")
NOW = datetime(2026, 11, 27, tzinfo=UTC)
KIND = "anthropic-api"
CUR, PEND, PREV = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"


def new_key(seed: int) -> str:
    return fake_key(KIND, random.Random(seed))


def stages(name: str, client: object = None) -> dict[str, list[str]]:
    """Version id -> labels, for the versions that carry any label."""
    sm = client or boto3.client("secretsmanager")
    got = sm.describe_secret(SecretId=name)["VersionIdsToStages"]  # type: ignore[attr-defined]
    return {k: list(v) for k, v in got.items() if v}


def value_at(name: str, stage: str) -> str:
    got = boto3.client("secretsmanager").get_secret_value(SecretId=name, VersionStage=stage)
    return str(got["SecretString"])


def json_value(key: str) -> str:
    # spacing and order are part of the shape a consumer may rely on
    return f'{{"region": "eu-west-1",  "anthropic_api_key": "{key}", "note": "keep me"}}'


@pytest.fixture
def lambda_arn(rot_env: str) -> str:
    """A rotation function in moto (docker-less: invocations run no code)."""
    body = json.dumps({"lambda": {"use_docker": False}}).encode()
    req = urllib.request.Request(f"{rot_env}/moto-api/config", data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310  (loopback moto)
        pass
    role = boto3.client("iam").create_role(RoleName="sm-rotation", AssumeRolePolicyDocument="{}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("rotate.py", "def handler(event, context):\n    return None\n")
    fn = boto3.client("lambda").create_function(
        FunctionName="sm-rotation", Runtime="python3.12", Role=role["Role"]["Arn"],
        Handler="rotate.handler", Code={"ZipFile": buf.getvalue()})
    return str(fn["FunctionArn"])


@pytest.fixture
def mint(anthropic_api: FakeAnthropicApi) -> Callable[[int], str]:
    """Create an active Anthropic key in the fake Console (the verify call accepts it)."""

    def made(seed: int) -> str:
        value = new_key(seed)
        anthropic_api.console_create(value, f"rotated-{seed}", None)
        return value

    return made


def make_secret(name: str, value: str, lam: str | None = None) -> None:
    client = boto3.client("secretsmanager")
    client.create_secret(Name=name, SecretString=value)
    if lam is not None:  # configure rotation without rotating now
        client.rotate_secret(SecretId=name, RotationLambdaARN=lam,
                             RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
        # NOTE: moto also leaves a copy of the value labelled AWSPENDING here, which AWS
        # does not; take the label off so the secret looks as configured on AWS.
        for version, labels in stages(name).items():
            if PEND in labels and CUR not in labels:
                client.update_secret_version_stage(SecretId=name, VersionStage=PEND,
                                                   RemoveFromVersionId=version)


def records(name: str) -> list[KeyRecord]:
    """What the inventory source records for one secret (values inspected)."""
    client = boto3.client("secretsmanager")
    desc = client.describe_secret(SecretId=name)
    value = Secret(value_at(name, CUR))
    rotation = RotationSettings(supported=True, enabled=desc.get("RotationEnabled"),
                                rotator=desc.get("RotationLambdaARN"))
    return [KeyRecord(source="aws-secretsmanager", location=desc["ARN"], name=name,
                      region="us-east-1", account="123456789012", provider=m.provider,
                      kind=m.kind, field=m.field, fingerprint=m.fingerprint, rotation=rotation,
                      value_inspected=True)
            for m in inspect_value(value, FP, name=name)]


def planned(name: str) -> RotationItem:
    (rec,) = records(name)
    built = SmRotator.plan(rec, [], [rec], "", "test")
    assert isinstance(built, RotationItem), built
    return built


def runner(tmp: Path, *, value: str | None = None, sleep: Callable[[float], None] = lambda _s: None,
           timeout: float = 0.0, boundary: Callable[[], None] | None = None
           ) -> tuple[Runner, Journal]:
    scratch = Scratch()
    if value is not None:
        hold(scratch, Secret(value))
    journal = Journal(tmp / "journal.jsonl", guard=scratch.check)
    ctx = RotationContext(config=Config(), fingerprinter=FP, now=lambda: NOW, sleep=sleep,
                          verify_timeout=timeout)
    return Runner(ctx, journal, "run1", scratch, boundary=boundary), journal


def apply_one(run: Runner, item: RotationItem) -> Outcome:
    (out,) = run.apply(RotationPlan(created=NOW, grace_days=7, items=(item,)))
    return out


def short_sleep(seconds: float) -> None:
    """A fifth of the real wait: the rotation-function double answers within 50 ms."""
    threading.Event().wait(seconds / 5)


class LambdaDouble:
    """Plays a rotation function's createSecret and finishSecret against moto.

    For each version moto labelled AWSPENDING without a value, it stores ``new`` under
    that version id (createSecret), then moves AWSCURRENT to it and drops AWSPENDING
    (finishSecret; AWS also clears AWSPENDING when a rotation ends).
    """

    def __init__(self, name: str, new: str) -> None:
        self.name, self.new = name, new
        self.finished = 0
        # NOTE: made here, in the test's thread: creating boto3 clients is not thread-safe
        self.client = boto3.client("secretsmanager")

    def step(self) -> None:
        client = self.client
        st = stages(self.name, client)
        for version, labels in st.items():
            if PEND not in labels or CUR in labels:
                continue
            client.put_secret_value(SecretId=self.name, ClientRequestToken=version,
                                    SecretString=self.new, VersionStages=[PEND])
            old = next(v for v, s in st.items() if CUR in s)
            client.update_secret_version_stage(SecretId=self.name, VersionStage=CUR,
                                               MoveToVersionId=version, RemoveFromVersionId=old)
            client.update_secret_version_stage(SecretId=self.name, VersionStage=PEND,
                                               RemoveFromVersionId=version)
            self.finished += 1

    @classmethod
    @contextmanager
    def running(cls, name: str, new: str) -> Iterator[LambdaDouble]:
        """Run :meth:`step` every 50 ms in a thread (the function runs apart from keyguard)."""
        double = cls(name, new)
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(0.05):
                double.step()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield double
        finally:
            stop.set()
            thread.join(timeout=5)


def assert_staged_end(name: str, old_value: str, new: str, *, complete: bool) -> None:
    """AWSCURRENT holds a working value, no AWSPENDING is left, AWSPREVIOUS keeps the old one."""
    st = stages(name)
    assert not [v for v, s in st.items() if PEND in s], f"orphan {PEND}: {st}"
    assert sum(CUR in s for s in st.values()) == 1
    current = value_at(name, CUR)
    if complete:
        assert current == old_value.replace(_old_key(old_value), new)
        assert value_at(name, PREV) == old_value
    else:
        assert current == old_value


def _old_key(value: str) -> str:
    return str(json.loads(value)["anthropic_api_key"]) if value.startswith("{") else value


def journal_text(journal: Journal) -> str:
    return journal.path.read_text(encoding="utf-8") if journal.path.exists() else ""


# -- staged rotations ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["json", "plain"])
def test_staged_rotation_keeps_shape_and_previous(shape: str, rot_env: str, tmp_path: Path,
                                                   unique_prefix: str, mint: Callable[[int], str],
                                                   anthropic_api: FakeAnthropicApi) -> None:
    old, new = new_key(1), mint(2)
    value = json_value(old) if shape == "json" else old
    name = f"{unique_prefix}/anthropic"
    make_secret(name, value)
    first = next(iter(stages(name)))
    item = planned(name)
    assert item.steps == ("put-pending", "verify", "promote")
    assert item.params[SUPPLY_PARAM] == KIND
    run, journal = runner(tmp_path, value=new)
    out = apply_one(run, item)
    assert out.status == "done", out.message
    assert_staged_end(name, value, new, complete=True)
    models = [r for r in anthropic_api.log if r.path == "/v1/models"]
    assert [r.headers.get("x-api-key") for r in models] == [new]  # verified live, new key only
    st = stages(name)
    assert st[item.params["version_token"]] == [CUR]  # the token named the new version
    assert st[first] == [PREV]
    text = journal_text(journal)
    assert old not in text
    assert new not in text
    assert item.params["version_token"] in text  # version ids are public facts


def test_supplied_value_of_another_kind_changes_nothing(rot_env: str, tmp_path: Path,
                                                        unique_prefix: str) -> None:
    name = f"{unique_prefix}/anthropic"
    value = json_value(new_key(1))
    make_secret(name, value)
    run, _ = runner(tmp_path, value=fake_key("openai-project", random.Random(3)))
    out = apply_one(run, planned(name))
    assert out.status == "rolled-back"
    assert "not of kind anthropic-api (it is openai-project)" in out.message
    assert_staged_end(name, value, "", complete=False)
    assert len(stages(name)) == 1


def test_no_supplied_value_changes_nothing(rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    name = f"{unique_prefix}/plain"
    make_secret(name, new_key(1))
    run, _ = runner(tmp_path)
    out = apply_one(run, planned(name))
    assert out.status == "rolled-back"
    assert "no new value was supplied" in out.message
    assert len(stages(name)) == 1


def test_failed_verification_rolls_back_and_keeps_awscurrent(rot_env: str, tmp_path: Path,
                                                              unique_prefix: str) -> None:
    """Another writer takes AWSPENDING between put-pending and verify: verify fails, rollback."""
    name = f"{unique_prefix}/anthropic"
    value = json_value(new_key(1))
    make_secret(name, value)
    item = planned(name)
    seen = [0]

    def boundary() -> None:
        seen[0] += 1
        if seen[0] == 4:  # begin, put-pending start, note, put-pending done
            boto3.client("secretsmanager").put_secret_value(
                SecretId=name, SecretString=json_value(new_key(9)), VersionStages=[PEND])

    run, journal = runner(tmp_path, value=new_key(2), boundary=boundary)
    out = apply_one(run, item)
    assert out.status == "rolled-back"
    assert out.message.startswith("rolled back: verify")
    assert value_at(name, CUR) == value
    assert item.params["version_token"] not in stages(name)  # no label left on it
    events = [json.loads(line)["event"] for line in journal_text(journal).splitlines()]
    assert events[-2:] == ["rollback-start", "rolled-back"]


def with_failing_hook(item: RotationItem) -> RotationItem:
    """The item with a consumer hook that always fails (``false``), run after ``promote``."""
    hooks = json.dumps([{"command": ["false"], "timeout": 10}])
    return dataclasses.replace(item, steps=with_hook_step(item.steps),
                               params={**item.params, "hooks": hooks})


def test_failing_consumer_hook_after_promote_puts_the_old_value_back(
        rot_env: str, tmp_path: Path, unique_prefix: str, mint: Callable[[int], str]) -> None:
    name = f"{unique_prefix}/anthropic"
    value = json_value(new_key(1))
    make_secret(name, value)
    item = with_failing_hook(planned(name))
    assert item.steps[-1] == "hooks"  # consumers reload once the new value is current
    out = apply_one(runner(tmp_path, value=mint(2))[0], item)
    assert out.status == "rolled-back"
    assert "hook[0] (false) exited 1" in out.message
    assert_staged_end(name, value, "", complete=False)
    assert item.params["version_token"] not in stages(name)  # the rejected value keeps no label


def test_hook_rollback_puts_awsprevious_back_on_the_version_that_had_it(
        rot_env: str, tmp_path: Path, unique_prefix: str, mint: Callable[[int], str]) -> None:
    name = f"{unique_prefix}/anthropic"
    first, value = json_value(new_key(7)), json_value(new_key(1))
    make_secret(name, first)
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=value)
    before = stages(name)
    previous = next(v for v, labels in before.items() if PREV in labels)
    item = with_failing_hook(planned(name))
    out = apply_one(runner(tmp_path, value=mint(2))[0], item)
    assert out.status == "rolled-back"
    assert stages(name) == before
    assert value_at(name, PREV) == first
    assert PREV in stages(name)[previous]


def test_a_key_the_provider_refuses_never_goes_live(rot_env: str, tmp_path: Path,
                                                   unique_prefix: str,
                                                   anthropic_api: FakeAnthropicApi) -> None:
    name = f"{unique_prefix}/anthropic"
    value = json_value(new_key(1))
    make_secret(name, value)
    item = planned(name)
    out = apply_one(runner(tmp_path, value=new_key(777))[0], item)  # not made in the Console
    assert out.status == "rolled-back"
    assert "provider refused the new key (HTTP 401)" in out.message
    assert_staged_end(name, value, "", complete=False)
    assert item.params["version_token"] not in stages(name)


def test_openai_project_key_verified_against_the_api(rot_env: str, tmp_path: Path,
                                                     unique_prefix: str,
                                                     openai_api: FakeOpenAIApi) -> None:
    old, new = (fake_key("openai-project", random.Random(n)) for n in (1, 2))
    openai_api.dashboard_create(openai_api.projects[0].id, new, "rotated")
    name = f"{unique_prefix}/OPENAI_API_KEY"
    make_secret(name, f"OPENAI_API_KEY={old}\nOPENAI_ORG=org-1\n")
    item = planned(name)
    assert (item.params["kind"], item.params["field"]) == ("openai-project", "OPENAI_API_KEY")
    out = apply_one(runner(tmp_path, value=new)[0], item)
    assert out.status == "done", out.message
    assert value_at(name, CUR) == f"OPENAI_API_KEY={new}\nOPENAI_ORG=org-1\n"
    assert value_at(name, PREV) == f"OPENAI_API_KEY={old}\nOPENAI_ORG=org-1\n"
    assert [r.headers.get("authorization") for r in openai_api.log
            if r.path == "/v1/models"] == [f"Bearer {new}"]


def test_an_unfinished_earlier_rotation_blocks_staging(rot_env: str, tmp_path: Path,
                                                       unique_prefix: str) -> None:
    name = f"{unique_prefix}/anthropic"
    make_secret(name, new_key(1))
    item = planned(name)
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=new_key(5),
                                                    VersionStages=[PEND])
    run, _ = runner(tmp_path, value=new_key(2))
    out = apply_one(run, item)
    assert out.status == "rolled-back"
    assert "another rotation did not finish" in out.message
    assert item.params["version_token"] not in stages(name)


# -- Lambda rotations ---------------------------------------------------------------------------


def test_lambda_rotation_is_started_with_the_token_and_tracked(
        rot_env: str, lambda_arn: str, tmp_path: Path, unique_prefix: str) -> None:
    name = f"{unique_prefix}/db"
    make_secret(name, '{"password": "old-db-password-1"}', lambda_arn)
    (old_version,) = stages(name)
    item = planned(name)
    assert item.steps == ("start", "track")
    assert item.params["lambda"] == lambda_arn
    double = LambdaDouble(name, '{"password": "new-db-password-2"}')
    polls: list[float] = []

    def sleep(delay: float) -> None:  # the function finishes while keyguard waits
        polls.append(delay)
        double.step()

    run, journal = runner(tmp_path, sleep=sleep, timeout=5)
    out = apply_one(run, item)
    assert out.status == "done", out.message
    token = item.params["version_token"]
    assert stages(name) == {old_version: [PREV], token: [CUR]}
    assert value_at(name, CUR) == '{"password": "new-db-password-2"}'
    assert (double.finished, polls) == (1, [0.5])
    facts = [json.loads(line).get("facts", {}) for line in journal_text(journal).splitlines()]
    assert {"old_version": old_version, "new_version": token} in facts
    assert {"current_version": token, "previous_version": old_version} in facts


def test_lambda_that_never_finishes_is_reported_not_undone(
        rot_env: str, lambda_arn: str, tmp_path: Path, unique_prefix: str) -> None:
    name = f"{unique_prefix}/db"
    make_secret(name, '{"password": "old-db-password-1"}', lambda_arn)
    (old_version,) = stages(name)
    item = planned(name)
    waited: list[float] = []
    run, _ = runner(tmp_path, sleep=waited.append, timeout=1)
    out = apply_one(run, item)
    assert out.status == "rolled-back"
    assert "not finished within 4 s" in out.message
    assert "cannot roll a Lambda rotation back" in out.message
    assert waited == [0.5, 1.0, 2.0]  # polled with back-off up to the limit (no real sleep)
    assert value_at(name, CUR) == '{"password": "old-db-password-1"}'
    token = item.params["version_token"]
    assert stages(name) == {old_version: [CUR], token: [PEND]}  # what AWS leaves to retry
    again = apply_one(runner(tmp_path / "b")[0], item)  # same token: not started twice
    assert again.status == "rolled-back"
    assert stages(name) == {old_version: [CUR], token: [PEND]}


def test_lambda_changed_since_planning_is_refused(
        rot_env: str, lambda_arn: str, tmp_path: Path, unique_prefix: str) -> None:
    name = f"{unique_prefix}/db"
    make_secret(name, "old-db-password-1", lambda_arn)
    item = planned(name)
    boto3.client("secretsmanager").cancel_rotate_secret(SecretId=name)
    out = apply_one(runner(tmp_path)[0], item)
    assert out.status == "rolled-back"
    assert "rotation Lambda changed since planning" in out.message
    assert item.params["version_token"] not in stages(name)


# -- planning -----------------------------------------------------------------------------------

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


def rec(name: str, value: str, *, lam: str | None = None, field: str | None = None) -> KeyRecord:
    matches = [m for m in inspect_value(Secret(value), FP, name=name)
               if field is None or m.field == field]
    m = matches[0]
    return KeyRecord(source="aws-secretsmanager", location=ARN + name, name=name,
                     region="us-east-1", provider=m.provider, kind=m.kind, field=m.field,
                     key_id=m.key_id, fingerprint=m.fingerprint, value_inspected=True,
                     rotation=RotationSettings(supported=True, enabled=bool(lam) or None,
                                               rotator=lam))


def plan_for(keys: list[KeyRecord], due: list[KeyRecord]) -> RotationPlan:
    names = [n for n in ORDER if n in ("aws-iam", SmRotator.name)]
    planners = []
    for n in names:
        cls = ROTATORS.load(n)
        planners.append((n, cls.claims, cls.plan))
    return build_plan(PlanInputs(keys=keys, due={k.identity: "rotation-max-age: old" for k in due},
                                 planners=planners,
                                 writable_stores=frozenset({"aws-secretsmanager", "aws-ssm"}),
                                 now=NOW))


LAM = "arn:aws:lambda:us-east-1:123456789012:function:rotate-db"


def test_plan_lambda_staged_and_skips_with_reasons() -> None:
    lam = rec("db/creds", '{"username": "app", "password": "s3cret-Passw0rd-xyz"}', lam=LAM)
    anth = rec("app/anthropic", new_key(1))
    blob = rec("app/blob", "just-some-opaque-config-text")
    keys = [lam, anth, blob]
    plan = plan_for(keys, keys)
    items = {i.subject: i for i in plan.items}
    assert set(items) == {lam.identity, anth.identity}
    item = items[lam.identity]
    assert (item.rotator, item.steps, item.risk) == (SmRotator.name, ("start", "track"), "medium")
    assert item.params["mode"] == "lambda"
    assert "cannot roll it back" in item.reason
    staged = items[anth.identity]
    assert staged.steps == ("put-pending", "verify", "promote")
    assert (staged.params["mode"], staged.params[SUPPLY_PARAM], staged.risk) == ("staged", KIND, "low")
    assert "--from-keyring NAME or --stdin" in staged.reason
    (skip,) = plan.skipped
    assert skip.subject == blob.identity
    assert "not a recognised key" in skip.reason
    # a kind told apart by its field name only: the rotator checks it, not the CLI
    mistral = rec("app/mistral", '{"mistral_api_key": "%s"}' % ("a1" * 16))
    (offline,) = plan_for([mistral], [mistral]).items
    assert (offline.params[SUPPLY_PARAM], offline.risk) == ("any", "medium")  # no live check


def test_plan_is_deterministic_one_token_per_secret_and_round_trips() -> None:
    openai = fake_key("openai-project", random.Random(2))
    both = f'{{"anthropic_api_key": "{new_key(1)}", "openai_api_key": "{openai}"}}'
    a = rec("app/both", both, lam=LAM, field="anthropic_api_key")
    b = rec("app/both", both, lam=LAM, field="openai_api_key")
    assert a.identity != b.identity
    first = plan_for([a, b], [a, b])
    second = plan_for([b, a], [b, a])
    assert plan_to_dict(first) == plan_to_dict(second)
    assert len(first.items) == 1  # one Lambda rotation, however many fields are due
    for item in first.items:
        assert item_from_dict(item_to_dict(item), "x") == item
    # a rotated value (new fingerprint) gets a new token, so the journal does not skip it
    changed = rec("app/both", both.replace(new_key(1), new_key(3)), lam=LAM,
                  field="anthropic_api_key")
    assert plan_for([changed], [changed]).items[0].token != first.items[0].token


def test_aws_keys_go_through_iam_and_copies_elsewhere_skip() -> None:
    akia = "AKIAEXAMPLEKEYZZZZZ2"
    value = json.dumps({"aws_access_key_id": akia, "aws_secret_access_key": "A" * 40})
    copy = rec("app/aws", value)
    iam = KeyRecord(source="aws-iam", name=f"alice/{akia}", key_id=akia, provider="aws",  # type: ignore[arg-type]
                    location=f"arn:aws:iam::123456789012:user/alice:access-key/{akia}",
                    kind="aws-access-key", status=KeyStatus.ACTIVE)  # type: ignore[arg-type]
    assert plan_for([iam, copy], [copy]).items[0].rotator == "aws-iam"
    (skip,) = plan_for([copy], [copy]).skipped
    assert "rotated through its IAM user" in skip.reason
    anth = new_key(1)
    one, two = rec("app/one", anth), rec("app/two", anth)
    (skip,) = plan_for([one, two], [one]).skipped
    assert isinstance(skip, Skipped)
    assert "also stored in app/two" in skip.reason


def _cli(args: list[str], stdin: str | None = None) -> Result:
    from keyguard.cli import app

    return CliRunner().invoke(app, args, input=stdin, prog_name="keyguard")


def test_cli_plan_then_run_with_a_supplied_key(rot_env: str, lambda_arn: str, tmp_path: Path,
                                               unique_prefix: str, home: Path,
                                               mint: Callable[[int], str]) -> None:
    old, new = new_key(1), mint(2)
    make_secret(f"{unique_prefix}/db", '{"password": "old-db-password-1"}', lambda_arn)
    make_secret(f"{unique_prefix}/anthropic", json_value(old))
    make_secret(f"{unique_prefix}/blob", "opaque-config-value-123")
    common = ["--policy", str(policy_file(tmp_path, 30)), "--source", "aws-secretsmanager",
              "--region", "us-east-1"]
    plan_args = ["rotate", "plan", *common, "--select", f"name~^{unique_prefix}/"]
    with freezegun.freeze_time(later(40)):
        first = _cli(plan_args)  # (deterministic: test_plan_is_deterministic_one_token_...)
    assert first.exit_code == 0, first.stdout + first.stderr
    text = first.stdout
    assert f"ROTATE {unique_prefix}/db [aws-secretsmanager] risk=medium" in text
    assert "steps: start -> track" in text
    assert f"ROTATE {unique_prefix}/anthropic [aws-secretsmanager] risk=low" in text
    assert "steps: put-pending -> verify -> promote" in text
    assert f"SKIP aws-secretsmanager:{ARN.split(':secret:')[0]}" in text
    assert "not a recognised key" in text
    run_args = ["rotate", "run", "--due", "--apply", "--yes", *common, "--format", "json",
                "--select", f"name={unique_prefix}/anthropic"]
    with freezegun.freeze_time(later(40), tick=True):
        waiting = _cli(run_args)  # no key supplied: skipped with the reason, nothing changed
    assert waiting.exit_code == 0, waiting.stdout + waiting.stderr
    assert [o["status"] for o in json.loads(waiting.stdout)["outcomes"]] == ["skipped"]
    assert value_at(f"{unique_prefix}/anthropic", CUR) == json_value(old)
    with freezegun.freeze_time(later(40), tick=True):
        done = _cli([*run_args, "--stdin"], stdin=new + "\n")
    assert done.exit_code == 0, done.stdout + done.stderr
    assert [o["status"] for o in json.loads(done.stdout)["outcomes"]] == ["done"]
    assert value_at(f"{unique_prefix}/anthropic", CUR) == json_value(new)
    assert value_at(f"{unique_prefix}/anthropic", PREV) == json_value(old)
    journal = (home / "data" / "keyguard" / "rotation" / "journal.jsonl").read_text()
    for out in (first.stdout, waiting.stdout, waiting.stderr, done.stdout, done.stderr, journal):
        assert old not in out
        assert new not in out


# -- SIGKILL at every journal boundary, then resume ---------------------------------------------

# staged: 1 begin, 2/3/4 put-pending (start, note, done), 5/6 verify, 7/8/9 promote (start,
# note, done), 10 done
STAGED_BOUNDARIES = 10
# lambda: 1 begin, 2/3/4 start (start, note, done), 5/6 track, 7 done
LAMBDA_BOUNDARIES = 7


def _kill_at(tmp: Path, item: RotationItem, n: int, value: str | None) -> None:
    """Apply ``item`` in a forked child that SIGKILLs itself after the ``n``-th journal line.

    NOTE: fork rather than a fresh interpreter: the child is a real process killed for
    real, and it skips the ~2 s of imports per case that a subprocess pays on 2 cores.
    It uses the CLI's own fault-injection hook and makes its own AWS clients.
    """
    from keyguard.cli.rotate import KILL_AT_ENV, _boundary

    pid = os.fork()
    if pid == 0:  # pragma: no cover  (the child never returns to pytest)
        try:
            os.environ[KILL_AT_ENV] = str(n)
            run, _ = runner(tmp, value=value, sleep=short_sleep,
                            timeout=5, boundary=_boundary())
            apply_one(run, item)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), f"child was not killed (status {status})"
    assert os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("kill_at", [*range(1, STAGED_BOUNDARIES + 1), "3+put"])
def test_staged_sigkill_at_every_boundary_then_resume(kill_at: int | str, rot_env: str,
                                                      tmp_path: Path, unique_prefix: str,
                                                      mint: Callable[[int], str]) -> None:
    old, new = new_key(1), mint(2)
    name = f"{unique_prefix}/anthropic"
    value = json_value(old)
    make_secret(name, value)
    item = planned(name)
    n = int(str(kill_at).split("+")[0])
    _kill_at(tmp_path, item, n, new)
    if kill_at == "3+put":  # the PutSecretValue landed, its step-done line did not
        boto3.client("secretsmanager").put_secret_value(
            SecretId=name, ClientRequestToken=item.params["version_token"],
            SecretString=json_value(new), VersionStages=[PEND])
    run, journal = runner(tmp_path)  # a new process: no supplied value in memory
    outcomes = run.resume()
    complete = n >= 4  # the pending value was journaled as stored: finish, else roll back
    if n == STAGED_BOUNDARIES:
        assert outcomes == []
    else:
        assert [o.status for o in outcomes] == ["done" if complete else "rolled-back"]
    assert journal.incomplete() == []
    assert_staged_end(name, value, new, complete=complete)
    text = journal_text(journal)
    assert old not in text
    assert new not in text


@pytest.mark.parametrize("kill_at", range(1, LAMBDA_BOUNDARIES + 1))
def test_lambda_sigkill_at_every_boundary_then_resume(kill_at: int, rot_env: str, lambda_arn: str,
                                                      tmp_path: Path, unique_prefix: str) -> None:
    name = f"{unique_prefix}/db"
    old, new = '{"password": "old-db-password-1"}', '{"password": "new-db-password-2"}'
    make_secret(name, old, lambda_arn)
    (old_version,) = stages(name)
    item = planned(name)
    with LambdaDouble.running(name, new) as double:  # the function runs apart from keyguard
        _kill_at(tmp_path, item, kill_at, None)
        run, journal = runner(tmp_path, sleep=short_sleep, timeout=5)
        outcomes = run.resume()
        assert [o.status for o in outcomes] == ([] if kill_at == LAMBDA_BOUNDARIES else ["done"])
    assert double.finished == 1
    # resumed forward, never started twice: one new version, current; the old one previous
    assert stages(name) == {old_version: [PREV], item.params["version_token"]: [CUR]}
    assert value_at(name, CUR) == new
    assert journal.incomplete() == []
