"""Engine: policy validation, selectors and overrides, waivers and their expiry, baseline."""

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import tests.engine_rules as engine_rules
from keyguard.baseline import load_baseline, render_baseline, write_baseline
from keyguard.config import PolicyConfig, load_policy_file
from keyguard.engine import LoadedPolicy, evaluate, load_policy
from keyguard.errors import ConfigError, UsageError
from keyguard.model import Fingerprint, Inventory, KeyRecord, Provider, Severity
from keyguard.policies import Policy, Selector
from keyguard.registry import Registry

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
RULES: Registry[Policy] = Registry(engine_rules.__name__, engine_rules.__path__,
                                   "keyguard.test-rules", "rule")


def key(name: str, days: int, **kw: Any) -> KeyRecord:
    return KeyRecord(source="aws-ssm", location=f"arn:{name}", name=name,
                     created=NOW - dt.timedelta(days=days), **kw)


def policy(**raw: Any) -> LoadedPolicy:
    return load_policy(PolicyConfig(**raw), "keyguard.toml", RULES)


INV = Inventory(keys=(
    key("prod/openai", 100, provider=Provider("openai"), environment="prod",
        fingerprint=Fingerprint("kg1:aa")),
    key("dev/openai", 100, provider=Provider("openai"), environment="dev"),
    key("prod/stripe", 40, provider=Provider("stripe"), environment="prod", tags={"Team": "pay"}),
    KeyRecord(source="dotenv", location="app/.env:1", anchor="app/.env", name="X", plaintext=True),
))


def test_defaults_come_from_the_rule_metadata() -> None:
    result = evaluate(INV, policy(), NOW)
    assert sorted((f.rule_id, f.key.name if f.key else "") for f in result.findings) == [
        ("old-key", "dev/openai"), ("old-key", "prod/openai"), ("plaintext", "X")]
    assert [f.severity for f in result.findings] == [Severity.HIGH, Severity.HIGH, Severity.MEDIUM]
    assert result.findings[0].remediation == "Rotate it."
    assert set(result.rules_run) == {"old-key", "plaintext"}


def test_overrides_first_match_wins_and_can_change_severity() -> None:
    loaded = policy(rules={"old-key": {"max_age_days": 120, "overrides": [
        {"match": {"environment": "prod", "tags": {"team": "p*"}}, "max_age_days": 30,
         "severity": "critical"},
        {"match": {"environment": "prod"}, "max_age_days": 60},
    ]}})
    found = {f.key.name: f.severity for f in evaluate(INV, loaded, NOW).findings
             if f.key and f.rule_id == "old-key"}
    assert found == {"prod/stripe": Severity.CRITICAL, "prod/openai": Severity.HIGH}


def test_match_limits_a_rule_and_enabled_false_disables_it() -> None:
    loaded = policy(rules={"old-key": {"match": {"name": "dev/*"}}, "plaintext": {"enabled": False}})
    names = [f.key.name for f in evaluate(INV, loaded, NOW).findings if f.key]
    assert names == ["dev/openai"]


def test_unknown_setting_hint_names_settings_as_they_are_written() -> None:
    with pytest.raises(ConfigError) as caught:
        policy(rules={"old-key": {"max-age-dayz": 3}})
    assert "max-age-days" in caught.value.hint
    assert "max_age_days" not in caught.value.hint
    with pytest.raises(ConfigError) as caught:
        policy(rules={"old-key": {"overrides": [{"match": {}, "max-agedays": 3}]}})
    assert caught.value.hint == "expected match, severity or one of: max-age-days"


def test_fail_on_is_validated() -> None:
    assert policy(fail_on="medium").fail_on is Severity.MEDIUM
    with pytest.raises(ConfigError, match=r"'policy\.fail_on' must be one of"):
        policy(fail_on="urgent")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"old-keys": {}}, "unknown rule 'policy.rules.old-keys'"),
        ({"old-key": {"max_age": 3}}, "unknown setting 'policy.rules.old-key.max_age'"),
        ({"old-key": {"max_age_days": "90"}}, "'policy.rules.old-key.max_age_days' must be a non-negative number"),
        ({"old-key": {"max_age_days": -1}}, "must be a non-negative number"),
        ({"old-key": {"enabled": "yes"}}, "'policy.rules.old-key.enabled' must be true/false"),
        ({"old-key": {"severity": "urgent"}}, "'policy.rules.old-key.severity' must be one of"),
        ({"old-key": {"match": {"team": "x"}}}, "unknown selector field 'policy.rules.old-key.match.team'"),
        ({"old-key": {"overrides": [{"max_age_days": 3}]}}, "'policy.rules.old-key.overrides[0]' needs a match"),
        ({"old-key": {"overrides": {"match": {}}}}, "must be a list of tables"),
        ({"old-key": {"overrides": [{"match": {}, "max_agedays": 3}]}}, "unknown setting 'policy.rules.old-key.overrides[0].max_agedays'"),
        ({"plaintext": {"allowed_paths": "x"}}, "must be a list of str"),
    ],
)
def test_invalid_rule_settings_are_one_line_errors(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        policy(rules=rules)
    assert message in str(info.value)
    assert str(info.value).startswith("keyguard.toml: ")
    assert "\n" not in str(info.value)


WAIVER = {"owner": "alice", "reason": "decommissioned next sprint", "expires": dt.date(2026, 12, 31)}


def test_valid_waiver_moves_findings_to_waived() -> None:
    loaded = policy(waivers=({**WAIVER, "rule": "old-key", "match": {"environment": "dev"}},))
    result = evaluate(INV, loaded, NOW)
    assert [f.key.name for f in result.waived if f.key] == ["dev/openai"]
    assert "dev/openai" not in [f.key.name for f in result.findings if f.key]


def test_waiver_by_finding_id() -> None:
    target = next(f for f in evaluate(INV, policy(), NOW).findings if f.rule_id == "plaintext")
    loaded = policy(waivers=({**WAIVER, "finding": target.finding_id},))
    result = evaluate(INV, loaded, NOW)
    assert [f.finding_id for f in result.waived] == [target.finding_id]


def test_expired_waiver_stops_waiving_and_is_a_finding() -> None:
    expired = {**WAIVER, "rule": "plaintext", "expires": "2026-11-26"}
    result = evaluate(INV, policy(waivers=(expired,)), NOW)
    assert "plaintext" in [f.rule_id for f in result.findings]
    (finding,) = [f for f in result.findings if f.rule_id == "waiver-expired"]
    assert "alice" in finding.message
    assert "2026-11-26" in finding.message
    assert finding.evidence["days_expired"] == 1
    # valid through its expiry day
    on_the_day = {**WAIVER, "rule": "plaintext", "expires": "2026-11-27"}
    assert not [f for f in evaluate(INV, policy(waivers=(on_the_day,)), NOW).findings
                if f.rule_id in ("plaintext", "waiver-expired")]


@pytest.mark.parametrize(
    ("waiver", "message"),
    [
        ({"rule": "old-key", "owner": "a", "reason": "r"}, "needs expires"),
        ({"rule": "old-key", "reason": "r", "expires": "2027-01-01"}, "needs owner"),
        ({"rule": "old-key", "owner": " ", "reason": "r", "expires": "2027-01-01"}, "non-empty string"),
        ({"rule": "old-key", "owner": "a", "reason": "r", "expires": "soon"}, "must be a date"),
        ({"rule": "nope", "owner": "a", "reason": "r", "expires": "2027-01-01"}, "unknown rule 'nope'"),
        ({"owner": "a", "reason": "r", "expires": "2027-01-01"}, "waives everything"),
        ({"rule": "old-key", "owner": "a", "reason": "r", "expires": "2027-01-01", "until": 1}, "unknown key 'policy.waivers[0].until'"),
    ],
)
def test_invalid_waivers(waiver: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        policy(waivers=(waiver,))


def test_baseline_round_trip_and_only_new_findings_remain(tmp_path: Path) -> None:
    first = evaluate(INV, policy(), NOW)
    path = tmp_path / "baseline.json"
    write_baseline(path, first.findings, NOW)
    accepted = load_baseline(path)
    assert accepted == {f.finding_id for f in first.findings}
    grown = Inventory(keys=(*reversed(INV.keys), key("prod/new", 200)))
    second = evaluate(grown, policy(), NOW, baseline=accepted)
    assert [f.key.name for f in second.findings if f.key] == ["prod/new"]
    assert len(second.baselined) == len(first.findings)


def test_rotated_value_at_same_location_is_a_new_finding() -> None:
    before = evaluate(INV, policy(), NOW).findings
    rotated = Inventory(keys=(key("prod/openai", 100, fingerprint=Fingerprint("kg1:bb"),
                                  environment="prod"),))
    after = evaluate(rotated, policy(), NOW).findings
    assert after[0].finding_id not in {f.finding_id for f in before}


def test_baseline_is_sorted_and_versioned() -> None:
    text = render_baseline(evaluate(INV, policy(), NOW).findings, NOW)
    assert '"keyguard_baseline": 1' in text
    ids = [line for line in text.splitlines() if '"id"' in line]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline not found"),
        ("{not json", "not a readable baseline"),
        ('{"findings": []}', "not a keyguard baseline"),
        ('{"keyguard_baseline": 99, "findings": []}', "newer than this keyguard"),
        ('{"keyguard_baseline": 1}', "no findings list"),
    ],
)
def test_bad_baselines(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_baseline(path)


def test_policy_file_with_or_without_policy_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[policy]\nfail_on = "low"\n')
    (tmp_path / "b.toml").write_text('fail_on = "critical"\n[rules.old-key]\nmax_age_days = 5\n')
    assert load_policy_file(tmp_path / "a.toml").fail_on == "low"
    b = load_policy_file(tmp_path / "b.toml")
    assert b.rules == {"old-key": {"max_age_days": 5}}
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy_file(tmp_path / "missing.toml")
    (tmp_path / "c.toml").write_text("fail_on = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_policy_file(tmp_path / "c.toml")


def test_selector_globs_and_tags() -> None:
    rec = key("prod/payments/stripe", 1, provider=Provider("stripe"), tags={"Team": "payments"})
    assert Selector(name="prod/*", provider="stripe", tags={"team": "pay*"}).matches(rec)
    assert not Selector(tags={"owner": "*"}).matches(rec)
    assert not Selector(region="us-*").matches(rec)
