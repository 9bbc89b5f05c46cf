"""Expiry rules: expiry-not-set, key-expired, expiry-soon."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.model import KeyStatus, Scope, Severity
from tests.policies import ago, names, rec, run, run_config

ADVANCED = Scope(details=("type=SecureString", "tier=Advanced", "version=1"))
STANDARD = Scope(details=("type=SecureString", "tier=Standard", "version=3"))

NOT_SET: list[tuple[str, dict[str, Any], bool]] = [
    ("advanced, no expiry", {"source": "aws-ssm", "scope": ADVANCED}, True),
    ("advanced, expiry set", {"source": "aws-ssm", "scope": ADVANCED, "expires": ago(-30)}, False),
    ("standard tier", {"source": "aws-ssm", "scope": STANDARD}, False),
    ("ssm without tier detail", {"source": "aws-ssm"}, True),
    ("store not listed", {"source": "aws-secretsmanager"}, False),
    ("deleted", {"source": "aws-ssm", "scope": ADVANCED, "status": KeyStatus.DELETED}, False),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), NOT_SET, ids=[c[0] for c in NOT_SET])
def test_expiry_not_set(case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run("expiry-not-set", [rec(case, **fields)])
    assert bool(found) is flagged
    assert all(f.severity is Severity.LOW for f in found)


def test_expiry_not_set_settings_widen_it() -> None:
    keys = [rec("std", source="aws-ssm", scope=STANDARD), rec("vault", source="vault")]
    assert names(run("expiry-not-set", keys)) == []
    assert names(run("expiry-not-set", keys, settings={"ssm_standard_tier": True})) == ["std"]
    table = {"stores": ["aws-ssm", "vault"], "ssm_standard_tier": True}
    assert names(run_config("expiry-not-set", table, keys)) == ["std", "vault"]


EXPIRED: list[tuple[str, dict[str, Any], bool]] = [
    ("past expiry", {"expires": ago(3)}, True),
    ("future expiry", {"expires": ago(-3)}, False),
    ("no expiry", {}, False),
    ("status expired, no date", {"status": KeyStatus.EXPIRED}, True),
    ("expired and deleted", {"expires": ago(3), "status": KeyStatus.DELETED}, False),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), EXPIRED, ids=[c[0] for c in EXPIRED])
def test_key_expired(case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run("key-expired", [rec(case, **fields)])
    assert bool(found) is flagged


def test_key_expired_says_how_long_ago() -> None:
    [finding] = run("key-expired", [rec(expires=ago(10))])
    assert finding.evidence["days_expired"] == 10


SOON: list[tuple[str, dict[str, Any], bool]] = [
    ("in 3 days", {"expires": ago(-3)}, True),
    ("in 14 days exactly", {"expires": ago(-14)}, True),
    ("in 30 days", {"expires": ago(-30)}, False),
    ("already expired", {"expires": ago(1)}, False),
    ("no expiry", {}, False),
    ("inactive key", {"expires": ago(-3), "status": KeyStatus.INACTIVE}, False),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), SOON, ids=[c[0] for c in SOON])
def test_expiry_soon(case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run("expiry-soon", [rec(case, **fields)])
    assert bool(found) is flagged


def test_expiry_soon_window_per_environment() -> None:
    keys = [rec("prod/a", environment="prod", expires=ago(-20)),
            rec("dev/a", environment="dev", expires=ago(-20))]
    table = {"overrides": [{"match": {"environment": "prod"}, "expiring_days": 30,
                            "severity": "high"}]}
    found = run_config("expiry-soon", table, keys)
    assert [(f.key.name if f.key else "", f.severity) for f in found] == [("prod/a", Severity.HIGH)]
    assert found[0].evidence["days_left"] == 20
