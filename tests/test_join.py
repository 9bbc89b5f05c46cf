"""Provider keys joined with stored copies: enrichment, orphan and dangling findings.

The fake Anthropic Admin API lists keys with only their partial hints; a .env file holds
full copies of some of them. Nothing but keyed fingerprints connects the two.
"""

import random
from pathlib import Path

from keyguard.config import DotenvConfig, PolicyConfig, SourcesConfig
from keyguard.engine import CheckResult, evaluate, load_policy
from keyguard.fakes import fake_key
from keyguard.inventory import run_inventory
from keyguard.model import Inventory, KeyStatus
from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fixtures.providers import context


def run(tmp_path: Path, api: FakeAnthropicApi, copies: dict[str, str]) -> tuple[Inventory, CheckResult]:
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in copies.items()))
    ctx = context(SourcesConfig(dotenv=DotenvConfig(paths=(str(tmp_path),))))
    inventory = run_inventory(["anthropic", "dotenv"], ctx)
    assert inventory.failures == ()
    policy = load_policy(PolicyConfig(), "test")
    result = evaluate(inventory, policy, ctx.now)
    return inventory, result


def test_stored_copies_join_their_provider_keys(tmp_path: Path, anthropic_api: FakeAnthropicApi) -> None:
    active = next(k for k in anthropic_api.keys if k.status == "active")
    archived = next(k for k in anthropic_api.keys if k.status == "archived")
    stranger = fake_key("anthropic-api", random.Random(77))
    inventory, result = run(tmp_path, anthropic_api, {
        "LIVE_KEY": active.value, "OLD_KEY": archived.value, "STRANGER_KEY": stranger})
    stored = {k.name: k for k in inventory.keys if k.source == "dotenv"}
    live = stored["LIVE_KEY"]
    assert live.key_id == active.id
    assert live.created == active.created
    assert live.status is KeyStatus.ACTIVE
    assert live.provenance["key_id"] == f"joined with anthropic:{active.id}"
    assert stored["OLD_KEY"].status is KeyStatus.DELETED
    assert stored["STRANGER_KEY"].key_id is None

    findings = result.findings
    dangling = {f.key.name: f for f in findings if f.rule_id == "provider-key-dangling" and f.key}
    assert set(dangling) == {"OLD_KEY", "STRANGER_KEY"}
    assert dangling["OLD_KEY"].evidence["provider_key_id"] == archived.id
    assert dangling["OLD_KEY"].evidence["provider_status"] == "deleted"
    assert dangling["STRANGER_KEY"].evidence["provider_status"] == "unknown"

    orphans = {f.key.key_id for f in findings if f.rule_id == "provider-key-orphan" and f.key}
    expected = {k.id for k in anthropic_api.keys if k.status == "active" and k.id != active.id
                and not (k.expires and k.expires <= context().now)}
    assert orphans == expected
    assert active.id not in orphans

    # nothing of any key value is in the joined records: only fingerprints
    text = repr(inventory)
    for value in (active.value, archived.value, stranger):
        assert value[13:25] not in text


def test_no_inspected_store_means_no_orphan_verdict(anthropic_api: FakeAnthropicApi) -> None:
    ctx = context()
    inventory = run_inventory(["anthropic"], ctx)
    result = evaluate(inventory, load_policy(PolicyConfig(), "test"), ctx.now)
    assert not [f for f in result.findings if f.rule_id == "provider-key-orphan"]
