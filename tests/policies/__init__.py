"""Tests of the built-in rule catalogue; helpers to run one rule on handcrafted keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from keyguard.config import LabelsConfig, PolicyConfig
from keyguard.engine import evaluate, load_policy
from keyguard.model import Finding, Inventory, KeyRecord, KeyStatus
from keyguard.policies import POLICIES, Override, RuleContext, RuleSettings, Selector, load_meta

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def ago(days: float) -> datetime:
    """A time ``days`` before NOW."""
    return NOW - timedelta(days=days)


def rec(name: str = "prod/app/key", **kw: Any) -> KeyRecord:
    """A handcrafted active key; ``location`` defaults to one derived from ``name``."""
    kw.setdefault("source", "aws-secretsmanager")
    kw.setdefault("location", f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}")
    kw.setdefault("status", KeyStatus.ACTIVE)
    return KeyRecord(name=name, **kw)


def run(rule_id: str, keys: Iterable[KeyRecord], *, settings: Mapping[str, Any] | None = None,
        match: Selector | None = None, overrides: Sequence[Override] = (),
        labels: LabelsConfig | None = None, now: datetime = NOW) -> list[Finding]:
    """Evaluate one rule directly with its .toml defaults merged with ``settings``."""
    cls = POLICIES.load(rule_id)
    meta = load_meta(rule_id)
    rule_settings = RuleSettings(True, meta.severity, {**meta.settings, **(settings or {})},
                                 match, tuple(overrides))
    ctx = RuleContext(meta, rule_settings, now, labels or LabelsConfig())
    return list(cls().evaluate(Inventory(keys=tuple(keys)), ctx))


def run_config(rule_id: str, table: Mapping[str, Any], keys: Iterable[KeyRecord],
               now: datetime = NOW) -> list[Finding]:
    """Evaluate one rule through the engine, from a ``[policy.rules.<id>]`` table as in TOML."""
    rules: dict[str, Any] = {rid: {"enabled": False} for rid in POLICIES.names() if rid != rule_id}
    rules[rule_id] = dict(table)
    policy = load_policy(PolicyConfig(rules=rules), "keyguard.toml")
    return list(evaluate(Inventory(keys=tuple(keys)), policy, now).findings)


def names(findings: Iterable[Finding]) -> list[str]:
    """Sorted key names of the findings."""
    return sorted(f.key.name for f in findings if f.key is not None)
