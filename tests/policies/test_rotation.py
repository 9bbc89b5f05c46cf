"""Rotation rules: rotation-max-age, rotation-overdue, rotation-not-configured."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.model import KeyRecord, KeyStatus, Provider, RotationSettings, Severity
from keyguard.policies import Override, Selector
from tests.policies import ago, names, rec, run, run_config

AGE_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("old created", {"created": ago(100)}, True),
    ("young created", {"created": ago(30)}, False),
    ("exactly the limit", {"created": ago(90)}, False),
    ("rotated lately, created long ago", {"created": ago(400), "last_rotated": ago(10)}, False),
    ("rotated long ago", {"created": ago(400), "last_rotated": ago(200)}, True),
    ("only last change known (SSM)", {"last_changed": ago(120)}, True),
    ("no dates at all", {}, False),
    ("inactive old key", {"created": ago(300), "status": KeyStatus.INACTIVE}, False),
    ("deleted old key", {"created": ago(300), "status": KeyStatus.DELETED}, False),
    ("expired old key", {"created": ago(300), "status": KeyStatus.EXPIRED}, False),
    ("unknown status old key", {"created": ago(300), "status": KeyStatus.UNKNOWN}, True),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), AGE_CASES, ids=[c[0] for c in AGE_CASES])
def test_rotation_max_age(case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run("rotation-max-age", [rec(case, **fields)])
    assert bool(found) is flagged
    if flagged:
        assert found[0].severity is Severity.MEDIUM
        assert found[0].evidence["max_age_days"] == 90
        assert int(found[0].evidence["age_days"]) > 90


def test_rotation_max_age_reports_what_it_counted_from() -> None:
    [finding] = run("rotation-max-age", [rec(created=ago(400), last_rotated=ago(100))])
    assert finding.evidence["since"] == "last_rotated"
    assert finding.evidence["age_days"] == 100
    assert "100 days" in finding.message


def test_rotation_max_age_overrides_per_provider_and_environment() -> None:
    keys = [rec("prod/openai", provider=Provider("openai"), environment="prod", created=ago(40)),
            rec("dev/openai", provider=Provider("openai"), environment="dev", created=ago(40)),
            rec("prod/stripe", provider=Provider("stripe"), environment="prod", created=ago(40))]
    overrides = [Override(Selector(provider="openai", environment="prod"), {"max_age_days": 30},
                          Severity.CRITICAL)]
    [finding] = run("rotation-max-age", keys, overrides=overrides)
    assert finding.key is not None
    assert finding.key.name == "prod/openai"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["max_age_days"] == 30


def test_rotation_max_age_from_toml_table() -> None:
    keys = [rec("prod/a", environment="prod", created=ago(50)),
            rec("dev/a", environment="dev", created=ago(50)),
            rec("dev/b", environment="dev", created=ago(100))]
    table = {"max_age_days": 60, "match": {"environment": "dev"}}
    assert names(run_config("rotation-max-age", table, keys)) == ["dev/b"]
    table = {"max_age_days": 120, "overrides": [
        {"match": {"environment": "prod"}, "max_age_days": 30, "severity": "high"}]}
    found = run_config("rotation-max-age", table, keys)
    assert [(f.key.name if f.key else "", f.severity) for f in found] == [("prod/a", Severity.HIGH)]


def rotating(**kw: Any) -> RotationSettings:
    return RotationSettings(supported=True, enabled=True, **kw)


OVERDUE_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("next date in the future", {"rotation": rotating(next_rotation=ago(-5))}, None),
    ("next date passed", {"rotation": rotating(next_rotation=ago(10))}, "overdue"),
    ("within grace", {"rotation": rotating(next_rotation=ago(0.5))}, None),
    ("failed rotation", {"rotation": rotating(next_rotation=ago(-5), last_failed=True)}, "failed"),
    ("interval elapsed, no date", {"rotation": rotating(interval_days=30), "last_rotated": ago(45)},
     "overdue"),
    ("interval not elapsed", {"rotation": rotating(interval_days=30), "last_rotated": ago(20)}, None),
    ("rotation disabled, date passed",
     {"rotation": RotationSettings(True, enabled=False, next_rotation=ago(30))}, None),
    ("no rotation info", {}, None),
    ("deleted", {"rotation": rotating(next_rotation=ago(10)), "status": KeyStatus.DELETED}, None),
]


@pytest.mark.parametrize(("case", "fields", "reason"), OVERDUE_CASES,
                         ids=[c[0] for c in OVERDUE_CASES])
def test_rotation_overdue(case: str, fields: dict[str, Any], reason: str | None) -> None:
    found = run("rotation-overdue", [rec(case, **fields)])
    assert [f.evidence["reason"] for f in found] == ([reason] if reason else [])
    assert all(f.severity is Severity.HIGH for f in found)


def test_rotation_overdue_grace_is_configurable() -> None:
    key = rec(rotation=rotating(next_rotation=ago(3)))
    assert run("rotation-overdue", [key])
    assert not run("rotation-overdue", [key], settings={"grace_days": 5})


NOT_CONFIGURED: list[tuple[str, RotationSettings | None, str | None]] = [
    ("never configured", RotationSettings(supported=True), "never-configured"),
    ("disabled", RotationSettings(supported=True, enabled=False), "disabled"),
    ("enabled", RotationSettings(supported=True, enabled=True), None),
    ("store cannot rotate", RotationSettings(supported=False), None),
    ("unknown", None, None),
]


@pytest.mark.parametrize(("case", "rotation", "state"), NOT_CONFIGURED,
                         ids=[c[0] for c in NOT_CONFIGURED])
def test_rotation_not_configured(case: str, rotation: RotationSettings | None,
                                 state: str | None) -> None:
    found = run("rotation-not-configured", [rec(case, rotation=rotation)])
    assert [f.evidence["rotation"] for f in found] == ([state] if state else [])


def test_rotation_not_configured_skips_deleted_and_honours_match() -> None:
    keys = [rec("prod/x", rotation=RotationSettings(True), status=KeyStatus.DELETED),
            rec("dev/y", rotation=RotationSettings(True), environment="dev"),
            rec("prod/z", rotation=RotationSettings(True), environment="prod")]
    assert names(run("rotation-not-configured", keys)) == ["dev/y", "prod/z"]
    assert names(run("rotation-not-configured", keys,
                     match=Selector(environment="prod"))) == ["prod/z"]


def test_findings_carry_metadata_remediation() -> None:
    key: KeyRecord = rec(created=ago(365))
    [finding] = run("rotation-max-age", [key])
    assert finding.rule_id == "rotation-max-age"
    assert finding.remediation.startswith("Rotate the key")
    assert finding.subject == key.identity
    assert finding.key is key
