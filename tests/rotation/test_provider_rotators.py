"""Provider rotators end to end: LiteLLM regenerate, assisted Anthropic and OpenAI.

Each test runs its own fake provider API (tests/fakes, real HTTP on loopback: the
session fakes are shared read-only by the source tests, and these tests change keys),
stores real copies in the rotation moto server (and OpenBao for one test), plans with the
real planner from real source records (so the copies are found through the provider's
hint / token-hash links) and applies with the real runner. A crash is simulated by a
``BaseException`` raised at the N-th journal boundary: nothing in the runner catches it,
the journal is fsync'd up to that line and the run's Scratch is lost, as with SIGKILL
(tests/cli/test_rotate_providers.py also kills a real subprocess).
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from keyguard.cli.rotate import planners
from keyguard.config import Config
from keyguard.errors import UsageError
from keyguard.fakes import fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord
from keyguard.rotation.apply import Outcome, Runner
from keyguard.rotation.context import LeakRefused, RotationContext, Scratch
from keyguard.rotation.journal import Journal
from keyguard.rotation.plan import (
    HOOK_STEP,
    Completed,
    PlanInputs,
    RotationItem,
    RotationPlan,
    StoreCopy,
    build_plan,
    item_token,
    with_hook_step,
)
from keyguard.rotation.rotators import ROTATORS
from keyguard.rotation.stores import STORES
from keyguard.rotation.supply import MAX_LENGTH, SUPPLY_PARAM, from_stream, hold, supplied
from keyguard.secret import Secret
from tests.fakes import FakeApi
from tests.fakes.anthropic_api import FakeAnthropicApi, seed_keys
from tests.fakes.litellm_api import FakeLiteLLMApi
from tests.fakes.litellm_api import seed as seed_litellm
from tests.fakes.openai_api import FakeOpenAIApi
from tests.fakes.openai_api import seed as seed_openai
from tests.fixtures.providers import FINGERPRINT_KEY, SEED_NOW, collect, context
from tests.fixtures.vault import VaultServer
from tests.rotation.world import Copy, read_copy

FP = Fingerprinter(FINGERPRINT_KEY)
OPENAI_PROJECT = "proj_001"


class Killed(BaseException):
    """The simulated SIGKILL: a BaseException, so no ``except Exception`` swallows it."""


# -- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    """One provider key under rotation: its fake API, old value, supplied value, copies."""

    provider: str
    api: FakeApi
    key_id: str
    old: str
    new: str  # the supplied key (assisted); "" for LiteLLM, which makes its own
    copies: list[Copy]


def put_copies(prefix: str, value: str, layout: Sequence[str]) -> list[Copy]:
    """Store ``value`` in moto: ``sm-json`` (field api_key, other fields kept) or ``ssm-plain``."""
    copies: list[Copy] = []
    for n, shape in enumerate(layout):
        if shape == "sm-json":
            name = f"{prefix}/c{n}/cfg"
            boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(
                {"api_key": value, "base_url": "https://llm.example.invalid", "note": "keep me"}))
            copies.append(Copy("sm", name, "json", "api_key"))
        else:
            name = f"/{prefix}/c{n}/api-key"
            boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString")
            copies.append(Copy("ssm", name, "plain", None))
    return copies


def held(copy: Copy) -> str:
    """The key a copy holds now (JSON copies must keep their other fields)."""
    raw = read_copy(copy)
    if copy.shape == "json":
        doc = json.loads(raw)
        assert doc["note"] == "keep me"
        assert doc["base_url"] == "https://llm.example.invalid"
        return str(doc["api_key"])
    return raw


def records(*sources: str, now: datetime | None = None) -> list[KeyRecord]:
    """Real source records (values inspected, so stored copies carry links)."""
    ctx = context(inspect_values=True, now=now)
    found: list[KeyRecord] = []
    for name in sources:
        got = collect(name, ctx)
        assert not got.failures, got.failures
        found.extend(got.records)
    return found


def plan_for(world: World, *extra: str) -> RotationPlan:
    """The real planner's plan for the world's key (due by fiat)."""
    keys = records(world.provider, "aws-secretsmanager", "aws-ssm", *extra)
    target = next(r for r in keys if r.source == world.provider and r.key_id == world.key_id)
    return build_plan(PlanInputs(keys=keys, due={target.identity: "test: due"},
                                 planners=planners(), writable_stores=frozenset(STORES.names()),
                                 now=datetime.now(UTC)))


def quick_plan(world: World) -> RotationPlan:
    """The rotator's own plan from the provider's record and hand-made copies.

    The crash sweeps use this: the inventory of the AWS stores costs a second per run,
    and the tests above already prove the real planner finds these copies.
    """
    (target,) = [r for r in records(world.provider) if r.key_id == world.key_id]
    copies = [StoreCopy(store="aws-secretsmanager" if c.store == "sm" else "aws-ssm",
                        location=c.name, name=c.name, region="us-east-1", field=c.field,
                        fingerprint=FP.fingerprint(Secret(world.old))) for c in world.copies]
    rotator = ROTATORS.load(world.provider)
    built = rotator.plan(target, copies, [target],
                         item_token(world.provider, target.identity, target.key_id), "test")
    assert isinstance(built, RotationItem), built
    return RotationPlan(datetime.now(UTC), 7, (built,))


def runner(tmp: Path, supplied: str = "", boundary: Callable[[], None] | None = None
           ) -> tuple[Runner, Journal]:
    """A runner as the CLI builds one: a fresh Scratch (holding the supplied key, if any)."""
    scratch = Scratch()
    if supplied:
        hold(scratch, Secret(supplied))
    journal = Journal(tmp / "journal.jsonl", guard=scratch.check)
    ctx = RotationContext(config=Config(), fingerprinter=FP, now=lambda: datetime.now(UTC),
                          sleep=lambda _s: None, verify_timeout=0)
    return Runner(ctx, journal, uuid.uuid4().hex[:6], scratch, boundary=boundary), journal


def kill_at(n: int) -> Callable[[], None]:
    """A boundary hook that "kills" the run right after the n-th journal line."""
    seen = [0]

    def hit() -> None:
        seen[0] += 1
        if seen[0] == n:
            raise Killed

    return hit


def only(plan: RotationPlan) -> RotationItem:
    """The plan's single rotation item."""
    assert len(plan.items) == 1, (plan.items, plan.skipped)
    return plan.items[0]


def no_secret_in(journal: Journal, *values: str) -> None:
    """The journal never holds a key value."""
    text = journal.path.read_text()
    for value in values:
        if value:
            assert value not in text


# -- fakes (one server per test) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropicApi]:
    api = FakeAnthropicApi(fake_key("anthropic-admin", random.Random(70)), [])
    with api.running():
        yield api


@pytest.fixture
def anthropic(anthropic_server: FakeAnthropicApi,
              provider_env: pytest.MonkeyPatch) -> FakeAnthropicApi:
    """The module's fake, reseeded: three active keys (the third in another workspace)."""
    api = anthropic_server
    api.reset()
    api.refuse_models = False
    api.keys = [dataclasses.replace(k, status="active", generation="classic", expires=None,
                                    principal=None, workspace=None if i != 2 else "wrkspc_other")
                for i, k in enumerate(seed_keys(3, random.Random(71), SEED_NOW))]
    provider_env.setenv("ANTHROPIC_ADMIN_KEY", api.admin_key)
    provider_env.setenv("ANTHROPIC_BASE_URL", api.url)
    return api


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAIApi]:
    api = FakeOpenAIApi(fake_key("openai-admin", random.Random(72)), [], [])
    with api.running():
        yield api


@pytest.fixture
def openai(openai_server: FakeOpenAIApi, provider_env: pytest.MonkeyPatch) -> FakeOpenAIApi:
    """The module's fake, reseeded: two projects (project 1: user and service-account keys)."""
    api = openai_server
    api.reset()
    api.refuse_models = False
    admin, projects = seed_openai(random.Random(72), SEED_NOW)
    api.admin, api.projects = admin, projects[:2]
    provider_env.setenv("OPENAI_ADMIN_KEY", api.admin_key)
    provider_env.setenv("OPENAI_BASE_URL", api.url + "/v1")
    return api


@pytest.fixture(scope="module")
def litellm_server() -> Iterator[FakeLiteLLMApi]:
    api = FakeLiteLLMApi("sk-master-" + uuid.uuid4().hex, [], {})
    with api.running():
        yield api


@pytest.fixture
def litellm(litellm_server: FakeLiteLLMApi, provider_env: pytest.MonkeyPatch) -> FakeLiteLLMApi:
    """The module's fake proxy, reseeded with three virtual keys."""
    api = litellm_server
    api.reset()
    api.refuse_regenerate, api.lose_regenerate_answers = None, 0
    api.rows, api.values = seed_litellm(3, random.Random(73), SEED_NOW)
    provider_env.setenv("LITELLM_MASTER_KEY", api.master_key)
    provider_env.setenv("LITELLM_BASE_URL", api.url)
    return api


def anthropic_world(api: FakeAnthropicApi, prefix: str, layout: Sequence[str],
                    workspace: str | None = None) -> World:
    """Key 0 of the fake, its copies, and a new key created "in the Console"."""
    old = api.keys[0]
    new = fake_key("anthropic-api", random.Random(prefix))
    api.console_create(new, "ci-new", workspace)
    return World("anthropic", api, old.id, old.value, new, put_copies(prefix, old.value, layout))


def openai_world(api: FakeOpenAIApi, prefix: str, layout: Sequence[str]) -> World:
    """User key 0 of project 1, its copies, and a new key created "in the dashboard"."""
    project = next(p for p in api.projects if p.id == OPENAI_PROJECT)
    key_id = str(project.keys[0]["id"])
    old = project.values[key_id]
    new = fake_key("openai-project", random.Random(prefix))
    api.dashboard_create(OPENAI_PROJECT, new, "ci-new")
    return World("openai", api, key_id, old, new, put_copies(prefix, old, layout))


def litellm_world(api: FakeLiteLLMApi, prefix: str, layout: Sequence[str], row: int = 1) -> World:
    """Row ``row`` of the fake proxy (1 has an alias, 0 none) and its copies."""
    token = str(api.rows[row]["token"])
    old = api.values[token]
    return World("litellm", api, token, old, "", put_copies(prefix, old, layout))


def assisted_state(world: World) -> str:
    """"old" or "new": the copies agree, and the provider's key states match what they hold."""
    values = {held(c) for c in world.copies}
    assert len(values) == 1, "copies disagree"
    value = values.pop()
    assert value in (world.old, world.new)
    old_live = _live(world, world.old)
    if value == world.old:
        assert old_live, "copies hold the old key, which is no longer active"
        return "old"
    assert _live(world, world.new), "copies hold a new key that does not work"
    assert not old_live, "the old key is still active after the rotation finished"
    return "new"


def _live(world: World, value: str) -> bool:
    if isinstance(world.api, FakeAnthropicApi):
        return any(k.value == value and k.status == "active" for k in world.api.keys)
    assert isinstance(world.api, FakeOpenAIApi)
    return any(v == value for p in world.api.projects for v in p.values.values())


def models_status(api: FakeApi, header: str, value: str) -> int:
    """The status ``GET /v1/models`` answers to ``value`` (a consumer's cheapest call)."""
    request = urllib.request.Request(f"{api.url}/v1/models", headers={header: value})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# -- supply ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "no key given"),
    ("  \n", "no key given"),
    ("sk-one sk-two", "expected one key"),
    ("sk-line-one\nsk-line-two\n", "expected one key"),
    ("x" * (MAX_LENGTH + 1), "more than"),
])
def test_a_supplied_value_is_one_token_and_errors_never_show_it(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        from_stream(io.StringIO(text))
    assert message in caught.value.message
    for token in text.split():
        assert token[:20] not in caught.value.message


def test_a_supplied_value_is_read_once_and_trimmed() -> None:
    stream = io.StringIO("  sk-ant-api03-abc\n")
    got = from_stream(stream)
    assert got.reveal() == "sk-ant-api03-abc"
    assert stream.read() == ""  # consumed: nothing can read it a second time
    scratch = Scratch()
    hold(scratch, got)
    assert supplied(scratch) is got
    with pytest.raises(LeakRefused):
        scratch.check('{"facts": {"x": "sk-ant-api03-abc"}}')


# -- Anthropic ---------------------------------------------------------------------------------


@pytest.fixture
def vault_env(vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch) -> VaultServer:
    monkeypatch.setenv("VAULT_ADDR", vault_server.address)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    return vault_server


def test_anthropic_assisted_rotation_stores_everywhere_verifies_and_deactivates(
        rot_env: str, vault_env: VaultServer, anthropic: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    world = anthropic_world(anthropic, unique_prefix, ["sm-json", "ssm-plain"])
    path = f"{unique_prefix}/anthropic"
    vault_env.client().secrets.kv.v2.create_or_update_secret(
        path=path, mount_point="secret", secret={"ANTHROPIC_API_KEY": world.old, "team": "ml"})
    item = only(plan_for(world, "vault"))
    # the provider record found its copies through the partial_key_hint link alone
    assert sorted(c.store for c in item.copies) == ["aws-secretsmanager", "aws-ssm", "vault"]
    assert item.steps == ("prepare", "store:0", "store:1", "store:2", "verify", "deactivate-old")
    assert item.params[SUPPLY_PARAM] == "anthropic-api"
    run, journal = runner(tmp_path, world.new)
    (out,) = run.apply(RotationPlan(datetime.now(UTC), 7, (item,)))
    assert out.status == "done", out.message
    assert assisted_state(world) == "new"
    vault_data = vault_env.client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    assert vault_data == {"ANTHROPIC_API_KEY": world.new, "team": "ml"}
    assert anthropic.status_of(world.key_id) == "inactive"
    assert out.facts == {"old_key_id": world.key_id, "new_key_id": anthropic.keys[-1].id}
    assert models_status(anthropic, "x-api-key", world.old) == 401
    no_secret_in(journal, world.old, world.new)
    assert [c.old_key_id for c in journal.completed()] == [world.key_id]


@pytest.mark.parametrize(("case", "message"), [
    ("openai-key", "is a openai-project, not anthropic-api"),
    ("old-key", "is the key being replaced"),
    ("other-org", "not one of this organization's API keys"),
    ("other-workspace", "is in workspace wrkspc_other"),
    ("none", "no new key was supplied"),
])
def test_anthropic_refuses_an_unfit_supplied_key_before_any_change(
        case: str, message: str, rot_env: str, anthropic: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    world = anthropic_world(anthropic, unique_prefix, ["sm-json"],
                            workspace="wrkspc_other" if case == "other-workspace" else None)
    supplied = {"openai-key": fake_key("openai-project", random.Random(1)), "old-key": world.old,
                "other-org": fake_key("anthropic-api", random.Random(2)), "none": ""
                }.get(case, world.new)
    plan = quick_plan(world)
    anthropic.log.clear()
    run, journal = runner(tmp_path, supplied)
    (out,) = run.apply(plan)
    assert out.status == "rolled-back"
    assert message in out.message
    assert "nothing changed" in out.message
    assert assisted_state(world) == "old"
    assert [r for r in anthropic.log if r.method == "POST"] == []
    no_secret_in(journal, world.old, world.new, supplied)


def test_anthropic_failed_verification_rolls_the_copies_back(
        rot_env: str, anthropic: FakeAnthropicApi, tmp_path: Path, unique_prefix: str) -> None:
    world = anthropic_world(anthropic, unique_prefix, ["sm-json", "ssm-plain"])
    plan = quick_plan(world)
    anthropic.refuse_models = True
    run, _ = runner(tmp_path, world.new)
    (out,) = run.apply(plan)
    assert out.status == "rolled-back"
    assert "refused the new key (HTTP 401)" in out.message
    assert assisted_state(world) == "old"
    assert anthropic.status_of(world.key_id) == "active"
    assert anthropic.status_of(anthropic.keys[-1].id) == "active"  # the supplied key is left


def test_anthropic_old_key_is_archived_after_the_grace_period(
        rot_env: str, anthropic: FakeAnthropicApi, tmp_path: Path, unique_prefix: str) -> None:
    world = anthropic_world(anthropic, unique_prefix, ["ssm-plain"])
    run, journal = runner(tmp_path, world.new)
    (out,) = run.apply(quick_plan(world))
    assert out.status == "done", out.message
    done: list[Completed] = journal.completed()
    later = datetime.now(UTC) + timedelta(days=8)
    keys = records("anthropic", now=later)
    cleanup = build_plan(PlanInputs(keys=keys, due={}, planners=planners(),
                                    writable_stores=frozenset(STORES.names()), completed=done,
                                    now=later, grace_days=7))
    (item,) = cleanup.items
    assert (item.action, item.steps, item.key_id) == ("cleanup", ("delete-old",), world.key_id)
    run2, journal2 = runner(tmp_path)
    (gone,) = run2.apply(cleanup)
    assert gone.status == "done", gone.message
    assert anthropic.status_of(world.key_id) == "archived"
    assert journal2.completed() == []


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_assisted_rotation_deletes_the_old_key_last(
        rot_env: str, openai: FakeOpenAIApi, tmp_path: Path, unique_prefix: str) -> None:
    world = openai_world(openai, unique_prefix, ["sm-json", "ssm-plain"])
    plan = plan_for(world)
    item = only(plan)
    assert item.params["project"] == OPENAI_PROJECT
    assert "deleted, irreversibly" in item.risk
    # the project's service-account key (no copy) is skipped with the API's reason
    project = next(p for p in openai.projects if p.id == OPENAI_PROJECT)
    run, journal = runner(tmp_path, world.new)
    (out,) = run.apply(plan)
    assert out.status == "done", out.message
    assert assisted_state(world) == "new"
    assert world.key_id not in openai.key_ids(OPENAI_PROJECT)
    assert out.facts["new_key_id"] == str(project.keys[-1]["id"])
    deletes = [r for r in openai.log if r.method == "DELETE"]
    verify = [n for n, r in enumerate(openai.log) if r.path == "/v1/models"]
    assert len(deletes) == 1
    assert openai.log.index(deletes[0]) > max(verify)
    no_secret_in(journal, world.old, world.new)
    assert journal.completed() == []  # deleted already: no grace-period cleanup pending


def test_openai_service_account_keys_are_skipped_with_the_reason(
        rot_env: str, openai: FakeOpenAIApi, unique_prefix: str) -> None:
    project = next(p for p in openai.projects if p.id == OPENAI_PROJECT)
    account_key = next(k for k in project.keys if k["owner"]["type"] == "service_account")  # type: ignore[index]
    value = project.values[str(account_key["id"])]
    put_copies(unique_prefix, value, ["ssm-plain"])
    world = World("openai", openai, str(account_key["id"]), value, "", [])
    plan = plan_for(world)
    assert plan.items == ()
    assert "service-account keys cannot be deleted" in plan.skipped[0].reason


def test_openai_failed_verification_keeps_the_old_key(
        rot_env: str, openai: FakeOpenAIApi, tmp_path: Path, unique_prefix: str) -> None:
    world = openai_world(openai, unique_prefix, ["sm-json"])
    plan = quick_plan(world)
    openai.refuse_models = True
    run, _ = runner(tmp_path, world.new)
    (out,) = run.apply(plan)
    assert out.status == "rolled-back"
    assert assisted_state(world) == "old"
    assert world.key_id in openai.key_ids(OPENAI_PROJECT)


# -- crash at every boundary, assisted ---------------------------------------------------------

# 1 begin, 2/3 prepare, 4/5/6 store:0 (start, note, done), 7/8/9 store:1, 10/11 verify,
# 12/13 deactivate-old, 14 done.
ASSISTED_BOUNDARIES = 14
ASSISTED_LAST_STORE_DONE = 9


#: OpenAI shares the flow (AssistedRotator); its own calls are prepare's match, verify and
#: the delete, so its sweep covers the boundaries around those.
SWEEP = [*(("anthropic", n) for n in range(1, ASSISTED_BOUNDARIES + 1)),
         *(("openai", n) for n in (2, 3, 8, 9, 11, 12, 13))]


@pytest.mark.parametrize(("provider", "at"), SWEEP)
def test_assisted_crash_at_every_boundary_then_resume_without_the_key(
        provider: str, at: int, rot_env: str, request: pytest.FixtureRequest, tmp_path: Path,
        unique_prefix: str) -> None:
    api = request.getfixturevalue(provider)
    make = anthropic_world if provider == "anthropic" else openai_world
    world = make(api, unique_prefix, ["sm-json", "ssm-plain"])
    run, journal = runner(tmp_path, world.new, kill_at(at))
    with pytest.raises(Killed):
        run.apply(quick_plan(world))
    # resume is a new process: no supplied key (stdin cannot be read twice)
    resumed, _ = runner(tmp_path)
    outcomes: list[Outcome] = resumed.resume()
    expected = "new" if at >= ASSISTED_LAST_STORE_DONE else "old"
    if at == ASSISTED_BOUNDARIES:
        assert outcomes == []
    else:
        assert [o.status for o in outcomes] == ["done" if expected == "new" else "rolled-back"]
    assert assisted_state(world) == expected
    assert journal.incomplete() == []
    no_secret_in(journal, world.old, world.new)


# -- LiteLLM -----------------------------------------------------------------------------------


def litellm_state(world: World) -> str:
    """"old" or "new": copies agree and hold the key the proxy accepts for the row now."""
    assert isinstance(world.api, FakeLiteLLMApi)
    values = {held(c) for c in world.copies}
    assert len(values) == 1, "copies disagree"
    value = values.pop()
    assert models_status(world.api, "authorization", f"Bearer {value}") == 200, "copies hold a dead key"
    return "old" if value == world.old else "new"


def test_litellm_regenerate_stores_everywhere_and_the_old_key_dies(
        rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path, unique_prefix: str) -> None:
    world = litellm_world(litellm, unique_prefix, ["sm-json", "ssm-plain"])
    item = only(plan_for(world))
    assert item.steps == ("prepare", "regenerate", "store:0", "store:1", "verify")
    assert item.risk.startswith("high (regenerate disables the old key at once")
    run, journal = runner(tmp_path)
    (out,) = run.apply(RotationPlan(datetime.now(UTC), 7, (item,)))
    assert out.status == "done", out.message
    assert litellm_state(world) == "new"
    new = litellm.value_of("svc-1-prod")
    assert {held(c) for c in world.copies} == {new}
    assert models_status(litellm, "authorization", f"Bearer {world.old}") == 401
    assert out.facts["new_key_id"] == litellm.rows[1]["token"]
    no_secret_in(journal, world.old, new)
    assert journal.completed() == []  # nothing to delete later: the old key is gone


def test_litellm_refused_regenerate_changes_nothing(
        rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path, unique_prefix: str) -> None:
    world = litellm_world(litellm, unique_prefix, ["ssm-plain"])
    plan = quick_plan(world)
    litellm.refuse_regenerate = 403
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan)
    assert out.status == "rolled-back"
    assert "LiteLLM refused (HTTP 403); nothing changed" in out.message
    assert litellm_state(world) == "old"


def test_litellm_lost_regenerate_answer_regenerates_again_for_an_aliasless_key(
        rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path, unique_prefix: str) -> None:
    world = litellm_world(litellm, unique_prefix, ["sm-json"], row=0)
    assert litellm.rows[0]["key_alias"] is None  # found again by its creation time
    plan = quick_plan(world)
    litellm.lose_regenerate_answers = 1
    run, _ = runner(tmp_path)
    (out,) = run.apply(plan)
    assert out.status == "done", out.message
    assert litellm.rows[0]["rotation_count"] == 2
    assert litellm_state(world) == "new"


# 1 begin, 2/3 prepare, 4/5 regenerate, 6/7/8 store:0, 9/10/11 store:1, 12/13 verify, 14 done.
LITELLM_BOUNDARIES = 14


@pytest.mark.parametrize("at", range(1, LITELLM_BOUNDARIES + 1))
def test_litellm_crash_at_every_boundary_then_resume_finishes(
        at: int, rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path,
        unique_prefix: str) -> None:
    world = litellm_world(litellm, unique_prefix, ["sm-json", "ssm-plain"])
    run, journal = runner(tmp_path, boundary=kill_at(at))
    with pytest.raises(Killed):
        run.apply(quick_plan(world))
    outcomes = runner(tmp_path)[0].resume()
    if at == LITELLM_BOUNDARIES:
        assert outcomes == []
    else:  # before prepare finished nothing changed; after it, always forward
        assert [o.status for o in outcomes] == ["rolled-back" if at < 3 else "done"]
    assert litellm_state(world) == ("old" if at < 3 else "new")
    assert journal.incomplete() == []
    no_secret_in(journal, world.old, litellm.value_of("svc-1-prod"))


def test_litellm_failing_consumer_hook_stops_for_resume_instead_of_rolling_back(
        rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path, unique_prefix: str) -> None:
    """After regenerate the old key is dead: a hook failure must not restore it to copies."""
    world = litellm_world(litellm, unique_prefix, ["ssm-plain"])
    flag = tmp_path / "consumer-ready"
    hook = [{"command": [sys.executable, "-c",
                         f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(flag)!r}).exists() else 3)"],
             "timeout": 20}]
    base = quick_plan(world).items[0]
    item = dataclasses.replace(base, steps=with_hook_step(base.steps),
                               params={**base.params, "hooks": json.dumps(hook)})
    assert item.steps[-1] == HOOK_STEP
    run, journal = runner(tmp_path)
    (out,) = run.apply(RotationPlan(datetime.now(UTC), 7, (item,)))
    assert out.status == "stopped"
    assert "exited 3" in out.message
    assert litellm_state(world) == "new"  # copies keep the only working key
    flag.touch()
    (again,) = runner(tmp_path)[0].resume()
    assert again.status == "done", again.message
    assert journal.incomplete() == []
