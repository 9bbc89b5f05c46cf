"""Placement rules: placement-environment-mismatch, plaintext-key-at-rest."""

from __future__ import annotations

from typing import Any

import pytest

from keyguard.config import LabelsConfig
from keyguard.model import KeyStatus, Kind, Severity
from tests.policies import names, rec, run, run_config

MISMATCH: list[tuple[str, dict[str, Any], set[str] | None]] = [
    ("prod/pay/stripe", {"tags": {"environment": "prod"}}, None),
    ("prod/pay/stripe", {"tags": {"Environment": "production"}}, None),  # normalised
    ("staging/pay/stripe", {"tags": {"env": "prod"}}, {"tag", "location"}),
    ("dev/ml/openai", {"tags": {"stage": "Production"}}, {"tag", "location"}),
    ("payments/stripe", {"tags": {"environment": "prod"}}, None),  # name says nothing
    ("staging/x", {}, None),  # no tag to compare with
    ("staging/x", {"tags": {"environment": "prod"}, "status": KeyStatus.DELETED}, None),
]


@pytest.mark.parametrize(("name", "fields", "origins"), MISMATCH,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MISMATCH)])
def test_environment_mismatch(name: str, fields: dict[str, Any], origins: set[str] | None) -> None:
    found = run("placement-environment-mismatch", [rec(name, **fields)])
    if origins is None:
        assert found == []
    else:
        [finding] = found
        assert {k.removesuffix("_environment") for k in finding.evidence} == origins
        assert finding.severity is Severity.HIGH


def test_environment_mismatch_by_account() -> None:
    keys = [rec("payments/stripe", account="111122223333", tags={"environment": "dev"}),
            rec("payments/stripe2", account="111122223333", tags={"environment": "prod"}),
            rec("dev/thing", account="111122223333"),
            rec("other", account="444455556666", tags={"environment": "dev"})]
    table = {"accounts": {"111122223333": "prod"}}
    found = run_config("placement-environment-mismatch", table, keys)
    assert names(found) == ["dev/thing", "payments/stripe"]
    by_name = {f.key.name: f.evidence for f in found if f.key is not None}
    assert by_name["payments/stripe"] == {"tag_environment": "dev", "account_environment": "prod"}
    assert by_name["dev/thing"] == {"location_environment": "dev", "account_environment": "prod"}


def test_environment_mismatch_ignores_iam_user_names() -> None:
    key = rec("dev-user-003/AKIAEXAMPLE", source="aws-iam", account="111122223333",
              location="arn:aws:iam::111122223333:user/dev-user-003:access-key/AKIAEXAMPLE",
              tags={"environment": "prod"})
    assert run("placement-environment-mismatch", [key]) == []
    assert run("placement-environment-mismatch", [key], settings={"accounts": {"111122223333": "dev"}})
    assert run("placement-environment-mismatch", [key], settings={"account_only_sources": []})


def test_environment_mismatch_uses_configured_labels() -> None:
    labels = LabelsConfig(environment_tags=("tier",),
                          environment_patterns={"live": r"(^|/)live(/|$)", "qa": r"(^|/)qa(/|$)"})
    keys = [rec("live/app", tags={"tier": "qa"}), rec("qa/app", tags={"environment": "live"})]
    assert names(run("placement-environment-mismatch", keys, labels=labels)) == ["live/app"]


PLAINTEXT: list[tuple[str, dict[str, Any], bool]] = [
    ("dotenv key", {"source": "dotenv", "plaintext": True, "kind": Kind("openai-project")}, True),
    ("ssm String", {"source": "aws-ssm", "plaintext": True}, True),
    ("ssm SecureString", {"source": "aws-ssm", "plaintext": False}, False),
    ("deleted plaintext", {"plaintext": True, "status": KeyStatus.DELETED}, False),
]


@pytest.mark.parametrize(("case", "fields", "flagged"), PLAINTEXT, ids=[c[0] for c in PLAINTEXT])
def test_plaintext_key_at_rest(case: str, fields: dict[str, Any], flagged: bool) -> None:
    assert bool(run("plaintext-key-at-rest", [rec(case, **fields)])) is flagged


def test_plaintext_require_classified_and_dotenv_severity() -> None:
    keys = [rec("OPENAI_API_KEY", source="dotenv", plaintext=True, kind=Kind("openai-project")),
            rec("/cfg/url", source="aws-ssm", plaintext=True)]
    table = {"require_classified": True,
             "overrides": [{"match": {"source": "dotenv"}, "severity": "critical"}]}
    found = run_config("plaintext-key-at-rest", table, keys)
    assert [(f.key.name if f.key else "", f.severity) for f in found] == [
        ("OPENAI_API_KEY", Severity.CRITICAL)]
    assert "openai-project" in found[0].message
