"""Scoping rules: legacy user keys, Stripe secret keys, classic PATs, admin keys, IAM admin, root."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.model import Fingerprint, KeyRecord, KeyStatus, Kind, Provider, Scope, Severity
from keyguard.policies import Selector
from tests.policies import names, rec, run, run_config

FP = Fingerprint("kg1:00ff")


def kind(value: str) -> Kind:
    return Kind(value)


KIND_CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("scope-legacy-user-key", "legacy key", {"kind": kind("openai-legacy-user")}, True),
    ("scope-legacy-user-key", "project key", {"kind": kind("openai-project")}, False),
    ("scope-legacy-user-key", "inactive legacy",
     {"kind": kind("openai-legacy-user"), "status": KeyStatus.INACTIVE}, False),
    ("scope-github-classic-pat", "classic", {"kind": kind("github-classic-pat")}, True),
    ("scope-github-classic-pat", "fine-grained", {"kind": kind("github-fine-grained-pat")}, False),
    ("scope-github-classic-pat", "deleted classic",
     {"kind": kind("github-classic-pat"), "status": KeyStatus.DELETED}, False),
    ("scope-stripe-full-secret", "prod secret",
     {"kind": kind("stripe-secret"), "environment": "prod"}, True),
    ("scope-stripe-full-secret", "unknown env secret", {"kind": kind("stripe-secret")}, True),
    ("scope-stripe-full-secret", "dev secret",
     {"kind": kind("stripe-secret"), "environment": "dev"}, False),
    ("scope-stripe-full-secret", "prod restricted",
     {"kind": kind("stripe-restricted"), "environment": "prod"}, False),
]


@pytest.mark.parametrize(("rule", "case", "fields", "flagged"), KIND_CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in KIND_CASES])
def test_kind_based_scoping(rule: str, case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run(rule, [rec(case, **fields)])
    assert bool(found) is flagged
    assert all(f.rule_id == rule for f in found)


def test_stripe_allow_in_is_configurable() -> None:
    keys = [rec("staging/pay", kind=kind("stripe-secret"), environment="Staging"),
            rec("prod/pay", kind=kind("stripe-secret"), environment="prod")]
    assert names(run_config("scope-stripe-full-secret", {}, keys)) == ["prod/pay", "staging/pay"]
    table = {"allow_in": ["dev", "staging"]}
    assert names(run_config("scope-stripe-full-secret", table, keys)) == ["prod/pay"]


ADMIN_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("admin key in app store", {"kind": kind("anthropic-admin"), "fingerprint": FP}, True),
    ("openai admin key", {"kind": kind("openai-admin"), "fingerprint": FP}, True),
    ("tagged admin store",
     {"kind": kind("anthropic-admin"), "fingerprint": FP, "tags": {"KeyGuard:Admin": "true"}}, False),
    ("tag set to false",
     {"kind": kind("anthropic-admin"), "fingerprint": FP, "tags": {"keyguard:admin": "false"}}, True),
    ("provider listing (no value)", {"kind": kind("anthropic-admin")}, False),
    ("inference key", {"kind": kind("anthropic-api"), "fingerprint": FP}, False),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), ADMIN_CASES, ids=[c[0] for c in ADMIN_CASES])
def test_admin_key_placement(case: str, fields: dict[str, Any], flagged: bool) -> None:
    found = run("scope-admin-key-placement", [rec(case, **fields)])
    assert bool(found) is flagged


def test_admin_key_placement_allowed_locations_and_tag_name() -> None:
    keys = [rec("ops/admin/anthropic", kind=kind("anthropic-admin"), fingerprint=FP),
            rec("prod/app/anthropic", kind=kind("anthropic-admin"), fingerprint=FP,
                tags={"admin-store": "yes"})]
    assert names(run("scope-admin-key-placement", keys,
                     settings={"allowed_locations": ["*/admin/*"]})) == ["prod/app/anthropic"]
    assert names(run("scope-admin-key-placement", keys,
                     settings={"admin_tag": "admin-store"})) == ["ops/admin/anthropic"]


def iam(name: str, labels: tuple[str, ...], **kw: Any) -> KeyRecord:
    return rec(name, source="aws-iam", provider=Provider("aws"), kind=kind("aws-access-key"),
               location=f"arn:aws:iam::123456789012:user/{name}:access-key/AKIA{name.upper()}",
               scope=Scope(labels=labels, details=tuple(f"{lb}: policy x" for lb in labels)), **kw)


IAM_CASES: list[tuple[str, tuple[str, ...], dict[str, Any], bool]] = [
    ("admin", ("admin", "wildcard-actions", "iam-write"), {}, True),
    ("star inline", ("wildcard-actions",), {}, True),
    ("s3 only", ("service-scoped",), {}, False),
    ("iam writer", ("iam-write", "service-scoped"), {}, False),
    ("read only", ("read-only",), {}, False),
    ("inactive admin", ("admin",), {"status": KeyStatus.INACTIVE}, False),
    ("root is the other rule", ("root", "admin", "wildcard-actions"), {}, False),
]


@pytest.mark.parametrize(("case", "labels", "fields", "flagged"), IAM_CASES,
                         ids=[c[0] for c in IAM_CASES])
def test_iam_admin(case: str, labels: tuple[str, ...], fields: dict[str, Any], flagged: bool) -> None:
    found = run("scope-iam-admin", [iam(case.replace(" ", "-"), labels, **fields)])
    assert bool(found) is flagged
    if flagged:
        assert found[0].severity is Severity.HIGH
        assert "policy x" in str(found[0].evidence["why"])


def test_iam_admin_labels_setting_and_override() -> None:
    keys = [iam("writer", ("iam-write",), environment="prod"),
            iam("boss", ("admin",), environment="dev")]
    table = {"labels": ["admin", "wildcard-actions", "iam-write"],
             "overrides": [{"match": {"environment": "prod"}, "severity": "critical"}]}
    found = run_config("scope-iam-admin", table, keys)
    assert {(f.key.name if f.key else "", f.severity) for f in found} == {
        ("writer", Severity.CRITICAL), ("boss", Severity.HIGH)}


def test_root_access_key_is_critical_even_inactive() -> None:
    root = ("root", "admin", "wildcard-actions", "iam-write")
    keys = [iam("root-1", root, account="123456789012"),
            iam("root-2", root, status=KeyStatus.INACTIVE),
            iam("root-3", root, status=KeyStatus.DELETED),
            iam("boss", ("admin",))]
    found = run("scope-root-access-key", keys)
    assert names(found) == ["root-1", "root-2"]
    assert {f.severity for f in found} == {Severity.CRITICAL}
    assert found[0].evidence["account"] == "123456789012"


def test_match_limits_scoping_rules() -> None:
    keys = [rec("a", kind=kind("github-classic-pat"), source="vault"),
            rec("b", kind=kind("github-classic-pat"), source="aws-ssm")]
    assert names(run("scope-github-classic-pat", keys, match=Selector(source="aws-*"))) == ["b"]
