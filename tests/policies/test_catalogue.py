"""The rule catalogue: every rule module has matching metadata, and the metadata is usable."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import keyguard.policies as policies_pkg
from keyguard.config import PolicyConfig
from keyguard.engine import load_policy
from keyguard.errors import ConfigError
from keyguard.policies import POLICIES, SEVERITIES, load_meta

PACKAGE = Path(policies_pkg.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
CATEGORIES = {"rotation", "unused", "expiry", "scoping", "placement", "duplicates", "hygiene",
              "policy"}
EXPECTED = {
    "rotation-max-age", "rotation-overdue", "rotation-not-configured", "key-unused",
    "key-never-used", "expiry-not-set", "key-expired", "expiry-soon", "scope-legacy-user-key",
    "scope-stripe-full-secret", "scope-github-classic-pat", "scope-admin-key-placement",
    "scope-iam-admin", "scope-root-access-key", "placement-environment-mismatch",
    "plaintext-key-at-rest", "duplicate-key", "required-tags-missing", "iam-two-active-keys",
    "waiver-expired",
}


def test_catalogue_lists_every_rule() -> None:
    assert set(POLICIES.names()) >= EXPECTED
    assert sorted(m.replace("_", "-") for m in MODULES) == sorted(
        n for n in POLICIES.names() if POLICIES.builtin(n))


@pytest.mark.parametrize("module", MODULES)
def test_module_toml_and_id_agree(module: str) -> None:
    rule_id = module.replace("_", "-")
    toml_path = PACKAGE / f"{module}.toml"
    assert toml_path.is_file(), f"{module}.py has no {module}.toml beside it"
    raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    assert raw["id"] == rule_id
    cls = POLICIES.load(rule_id)
    assert cls.id == rule_id
    assert cls.__module__ == f"keyguard.policies.{module}"


@pytest.mark.parametrize("module", MODULES)
def test_metadata_is_complete(module: str) -> None:
    rule_id = module.replace("_", "-")
    raw = tomllib.loads((PACKAGE / f"{module}.toml").read_text(encoding="utf-8"))
    assert raw["severity"] in SEVERITIES
    assert raw["category"] in CATEGORIES
    meta = load_meta(rule_id)
    assert meta.title.strip()
    assert len(meta.risk) > 40, "risk says why the rule matters"
    assert meta.remediation.summary
    assert meta.remediation.cli or meta.remediation.console or rule_id == "waiver-expired"
    for ref in meta.references:
        assert ref.startswith("https://")
    for name, default in meta.settings.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert name not in ("enabled", "severity", "match", "overrides")
        assert isinstance(default, bool | int | float | str | list | dict), (name, default)
        if isinstance(default, list):
            assert all(isinstance(v, str | int | float) for v in default), (name, default)


def test_ids_carry_no_threshold() -> None:
    for name in POLICIES.names():
        assert not any(part.isdigit() for part in name.split("-")), name
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), name


def test_toml_files_all_belong_to_a_module() -> None:
    tomls = sorted(p.stem for p in PACKAGE.glob("*.toml"))
    assert tomls == MODULES


def test_defaults_load_through_the_engine() -> None:
    loaded = load_policy(PolicyConfig(), "keyguard.toml")
    assert set(loaded.rules) >= EXPECTED
    for rule_id in EXPECTED - {"waiver-expired"}:
        assert loaded.rules[rule_id].settings.base == load_meta(rule_id).settings


@pytest.mark.parametrize(("rule", "setting", "bad"), [
    ("rotation-max-age", "max_age_days", "ninety"),
    ("expiry-not-set", "stores", "aws-ssm"),
    ("expiry-not-set", "ssm_standard_tier", 1),
    ("scope-admin-key-placement", "admin_tag", ["x"]),
    ("placement-environment-mismatch", "accounts", ["111122223333"]),
    ("required-tags-missing", "tags", [1, 2]),
])
def test_setting_types_are_validated_from_defaults(rule: str, setting: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_policy(PolicyConfig(rules={rule: {setting: bad}}), "keyguard.toml")

