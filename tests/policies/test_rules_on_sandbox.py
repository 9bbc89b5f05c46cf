"""The catalogue on the seeded moto estate, collected through the real sources.

The seed plants what the rules look for (back-dated keys and secrets, admin users, users
with two keys, expiring and plaintext parameters, rotation on some secrets, missing tags,
Stripe/GitHub/admin tokens) and records it in the SeedSummary, so each test derives the
expected findings from the summary and compares both ways: every planted case is found
and nothing else among the seeded keys is. Ages use a margin of two days around each
threshold so the seed's back-dating jitter cannot make a case ambiguous.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from keyguard.config import LabelsConfig, SourcesConfig, SsmConfig
from keyguard.inventory import label
from keyguard.model import Finding, KeyRecord
from keyguard.sandbox import CLEARED_ENV, SANDBOX_ACCOUNT, SeededKey, sandbox_env
from tests.fixtures.aws import AwsSandbox, collect, context
from tests.policies import run

SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam")
MARGIN = timedelta(days=2)


@pytest.fixture(scope="module")
def estate(aws_sandbox: AwsSandbox, moto_endpoint: str) -> list[KeyRecord]:
    """Every record of the seeded estate (values inspected, plaintext parameters included).

    Records other tests created in the shared server are dropped by name.
    """
    summary = aws_sandbox.summary
    secrets = {s.name for s in summary.secrets}
    params = {p.name for p in summary.parameters}
    users = {u.name for u in summary.users}
    ctx = context(inspect_values=True, now=aws_sandbox.now,
                  sources=SourcesConfig(aws_ssm=SsmConfig(include_string=True)))
    records: list[KeyRecord] = []
    with pytest.MonkeyPatch.context() as mp:
        for var in CLEARED_ENV:
            mp.delenv(var, raising=False)
        for name, value in sandbox_env(moto_endpoint).items():
            mp.setenv(name, value)
        for source in SOURCES:
            got = collect(source, ctx)
            assert got.failures == [], source
            records.extend(label(r, LabelsConfig()) for r in got.records)
    mine = [r for r in records
            if (r.source == "aws-secretsmanager" and r.name in secrets)
            or (r.source == "aws-ssm" and r.name in params)
            or (r.source == "aws-iam" and r.name.split("/")[0] in users)]
    assert len(mine) >= len(secrets) - summary.counts()["secrets_deleted"] + len(params)
    return mine


def check(rule: str, estate: list[KeyRecord], now: datetime,
          settings: Mapping[str, Any] | None = None) -> list[Finding]:
    return run(rule, estate, settings=settings, now=now)


def flagged(findings: list[Finding]) -> set[str]:
    """Names flagged (IAM records by key id), as the seed summary names them."""
    return {(f.key.key_id or "") if f.key.source == "aws-iam" else f.key.name
            for f in findings if f.key is not None}


def active_keys(sandbox: AwsSandbox) -> Iterator[SeededKey]:
    for user in sandbox.summary.users:
        yield from (k for k in user.keys if k.status == "Active")


def split(items: Mapping[str, datetime], now: datetime, limit: timedelta) -> tuple[set[str], set[str]]:
    """Names clearly past ``limit`` and clearly within it (the margin band is neither)."""
    over = {n for n, t in items.items() if now - t > limit + MARGIN}
    under = {n for n, t in items.items() if now - t < limit - MARGIN}
    return over, under


def assert_split(found: set[str], over: set[str], under: set[str]) -> None:
    assert over, "the seed should plant positive cases"
    assert under, "the seed should plant negative cases"
    assert over <= found
    assert not (under & found)


def test_rotation_max_age(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    found = flagged(check("rotation-max-age", estate, now))
    ages = {k.key_id: k.created for k in active_keys(aws_sandbox)}
    ages |= {x.name: x.rotated or x.created for x in s.secrets if not x.deleted}
    ages |= {p.name: p.modified for p in s.parameters}
    assert_split(found, *split(ages, now, timedelta(days=90)))
    inactive = {k.key_id for u in s.users for k in u.keys if k.status == "Inactive"}
    assert not (inactive & found)


def test_rotation_configured_or_not(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    live = [x for x in s.secrets if not x.deleted]
    found = flagged(check("rotation-not-configured", estate, now))
    assert found == {x.name for x in live if x.rotated is None}
    assert {x.name for x in live if x.rotated is not None}.isdisjoint(found)


def test_rotation_overdue(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    due = {x.name: x.rotated + timedelta(days=x.rotation_days) for x in s.secrets
           if x.rotated is not None and x.rotation_days is not None}
    found = flagged(check("rotation-overdue", estate, now))
    late = {n for n, when in due.items() if now > when + timedelta(days=1) + MARGIN}
    on_time = {n for n, when in due.items() if when > now}
    assert late, "the seed rotates some secrets long ago"
    assert late <= found
    assert not (on_time & found)
    assert found <= set(due)


def test_unused_keys(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    now = aws_sandbox.now
    keys = list(active_keys(aws_sandbox))
    used = {k.key_id: k.last_used for k in keys if k.last_used is not None}
    assert_split(flagged(check("key-unused", estate, now)), *split(used, now, timedelta(days=45)))
    never = {k.key_id: k.created for k in keys if k.last_used is None}
    found = flagged(check("key-never-used", estate, now))
    over, under = split(never, now, timedelta(days=45))
    assert over
    assert over <= found
    assert not (under & found)
    assert not (set(used) & found)


def test_iam_two_active_keys(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    now = aws_sandbox.now
    pairs = {}
    for user in aws_sandbox.summary.users:
        active = sorted((k for k in user.keys if k.status == "Active"), key=lambda k: k.created)
        if len(active) == 2:
            pairs[active[0].key_id] = active[1].created  # the older key, when it was replaced
    found = flagged(check("iam-two-active-keys", estate, now))
    over, under = split(pairs, now, timedelta(days=7))
    assert over
    assert over <= found
    assert not (under & found)
    assert found <= set(pairs)


def test_scope_iam_admin(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    broad = {k.key_id for u in aws_sandbox.summary.users
             if u.profile in ("admin", "star-inline", "s3") for k in u.keys if k.status == "Active"}
    findings = check("scope-iam-admin", estate, aws_sandbox.now)
    assert broad
    assert flagged(findings) == broad
    admins = {k.key_id for u in aws_sandbox.summary.users if u.profile == "admin" for k in u.keys}
    assert all("admin" in str(f.evidence["labels"]) for f in findings
               if f.key is not None and f.key.key_id in admins)
    assert check("scope-root-access-key", estate, aws_sandbox.now) == []


def test_expiry(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    expiring = {p.name: p.expires for p in s.parameters if p.expires is not None}
    soon = {n for n, t in expiring.items() if t - now < timedelta(days=13)}
    later = {n for n, t in expiring.items() if t - now > timedelta(days=15)}
    found = flagged(check("expiry-soon", estate, now))
    assert soon
    assert later
    assert soon <= found
    assert not (later & found)
    assert check("key-expired", estate, now) == []
    # Every Advanced-tier parameter has an expiry; Standard ones only count when asked.
    assert check("expiry-not-set", estate, now) == []
    wide = flagged(check("expiry-not-set", estate, now, {"ssm_standard_tier": True}))
    assert wide == {p.name for p in s.parameters if p.expires is None}


def test_plaintext_parameters(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    found = flagged(check("plaintext-key-at-rest", estate, aws_sandbox.now))
    plain = {p.name for p in aws_sandbox.summary.parameters if p.type == "String"}
    assert plain
    assert found == plain


def test_required_tags(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s = aws_sandbox.summary

    def lacking(tags: Mapping[str, str]) -> bool:
        return not {"owner", "environment"} <= set(tags)

    expected = {x.name for x in s.secrets if not x.deleted and lacking(x.tags)}
    expected |= {p.name for p in s.parameters if lacking(p.tags)}
    expected |= {k.key_id for u in s.users if lacking(u.tags) for k in u.keys}
    found = flagged(check("required-tags-missing", estate, aws_sandbox.now))
    assert expected
    assert found == expected


def test_environment_placement(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    assert check("placement-environment-mismatch", estate, now) == []
    settings = {"accounts": {SANDBOX_ACCOUNT: "prod"}}
    found = flagged(check("placement-environment-mismatch", estate, now, settings))
    expected = {x.name for x in s.secrets if not x.deleted and not x.name.startswith("prod/")}
    expected |= {p.name for p in s.parameters if not p.name.startswith("/prod/")}
    expected |= {k.key_id for u in s.users if u.tags.get("environment", "prod") != "prod"
                 for k in u.keys}
    assert found == expected


def test_scoping_by_kind(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    s, now = aws_sandbox.summary, aws_sandbox.now
    stored = [(x.name, x.kinds) for x in s.secrets if not x.deleted]
    stored += [(p.name, p.kinds) for p in s.parameters]

    def with_kind(kind: str) -> set[str]:
        return {name for name, kinds in stored if kind in kinds}

    assert with_kind("github-classic-pat")
    assert flagged(check("scope-github-classic-pat", estate, now)) == with_kind("github-classic-pat")
    assert with_kind("anthropic-admin")
    assert flagged(check("scope-admin-key-placement", estate, now)) == with_kind("anthropic-admin")
    stripe = with_kind("stripe-secret")
    outside_dev = {n for n in stripe if not n.lstrip("/").startswith("dev/")}
    assert outside_dev
    assert outside_dev != stripe, "some Stripe secrets live in dev and are allowed there"
    assert flagged(check("scope-stripe-full-secret", estate, now)) == outside_dev
    assert check("scope-legacy-user-key", estate, now) == []


def test_no_duplicates_in_the_seed(estate: list[KeyRecord], aws_sandbox: AwsSandbox) -> None:
    # Stored AWS key pairs share a key id with their IAM key, but IAM is the issuer.
    pairs = [x for x in aws_sandbox.summary.secrets if x.key_id and not x.deleted]
    assert any(r.key_id in {x.key_id for x in pairs} for r in estate if r.source == "aws-iam")
    assert check("duplicate-key", estate, aws_sandbox.now) == []
