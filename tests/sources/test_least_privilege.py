"""Least privilege (issue 8): each AWS source run as an IAM user holding exactly its documented policy.

A moto server in its own process enforces IAM (tests/fixtures/aws_iam_enforced.py). For
each AWS source, the policy in ``tests/data/iam/<source>.json`` (the one the README
documents) must give a full inventory and exit 0; each optional permission removed in
turn must cost one feature with one failure naming the permission and that feature (or
nothing at all, where keyguard has another way to the same fact); each required
permission removed must be one line naming the permission and the source, exit 3, while
another source in the same run is unaffected. Every run is the real ``keyguard
inventory`` (or ``keyguard check``) command.

NOTE: moto does not call KMS when it returns a SecureString or a secret value, so
``kms:Decrypt`` is in the documents but no scenario here can remove it meaningfully.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keyguard.cli import app
from keyguard.sandbox import CLEARED_ENV
from tests.fixtures.aws_iam_enforced import (
    PARAMETER_COUNT,
    PREFIX,
    REGION,
    EnforcedMoto,
    allowed_actions,
    enforced_moto,
)

POLICIES = Path(__file__).parent.parent / "data" / "iam"
SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam")
#: moto's credential report is always dated 2015-02-02; this age makes it count as fresh.
FRESH_REPORT = "[sources.aws-iam]\ncredential_report_max_age_hours = 200000\n"

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Run:
    """One finished CLI run: exit code, both streams, and the JSON report when asked for."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed

    def keys(self, source: str) -> list[Record]:
        """The source's records of seeded objects (not the principals tests create)."""
        return [k for k in self.doc["keys"] if k["source"] == source and PREFIX in k["name"]
                and not k["name"].startswith(f"{PREFIX}-admin")]

    @property
    def errors(self) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = self.doc["errors"]
        return errors


Runner = Callable[..., Run]


@pytest.fixture(scope="module")
def world() -> Iterator[EnforcedMoto]:
    with enforced_moto() as started:
        yield started


@pytest.fixture
def run_as(world: EnforcedMoto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           no_keyring: None) -> Runner:
    """Return ``run(policy, *args, config="")``: keyguard as a new user holding ``policy``."""
    for var in CLEARED_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)

    def run(policy: dict[str, object], *args: str, config: str = "") -> Run:
        creds = world.principal(f"lp-{uuid.uuid4().hex[:10]}", policy)
        for name, value in world.env(creds).items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "keyguard.toml"
        path.write_text(f'[aws]\nregions = ["{REGION}"]\nmax_attempts = 1\n{config}')
        result = CliRunner().invoke(app, ["--config", str(path), *args], prog_name="keyguard")
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


def policy(source: str, *, without: Sequence[str] = ()) -> dict[str, object]:
    """The documented policy of ``source`` minus the ``without`` actions (each must be in it)."""
    doc: dict[str, Any] = json.loads((POLICIES / f"{source}.json").read_text())
    missing = set(without) - set(allowed_actions(doc))
    assert not missing, f"{sorted(missing)} not in the documented {source} policy"
    statements = []
    for stmt in doc["Statement"]:
        actions = [a for a in stmt["Action"] if a not in without]
        if actions:
            statements.append({**stmt, "Action": actions})
    return {**doc, "Statement": statements}


def combined(*sources: str, without: Sequence[str] = ()) -> dict[str, object]:
    """One policy holding the documented statements of several sources (Sids made unique)."""
    statements: list[object] = []
    for source in sources:
        known = set(allowed_actions(json.loads((POLICIES / f"{source}.json").read_text())))
        doc = policy(source, without=[a for a in without if a in known])
        raw = doc["Statement"]
        assert isinstance(raw, list)
        statements.extend({**s, "Sid": s["Sid"] + source.replace("aws-", "").title().replace("-", "")}
                          for s in raw)
    return {"Version": "2012-10-17", "Statement": statements}


def inventory(run: Runner, pol: dict[str, object], *sources: str, inspect: bool = False,
              config: str = "") -> Run:
    args = ["inventory", "--format", "json", "--no-record"]
    for source in sources:
        args += ["--source", source]
    return run(pol, *args, *(["--inspect-values"] if inspect else []), config=config)


def assert_clean(result: Run) -> None:
    assert result.errors == [], result.errors
    assert result.exit_code == 0, result.stderr


def assert_one_warning(result: Run, source: str, *needles: str) -> dict[str, str]:
    """Exit 3, exactly one failure, from ``source``, on one line, naming every needle."""
    assert result.exit_code == 3, result.stderr
    (error,) = result.errors
    assert error["source"] == source
    line = f"{error['message']} ({error['hint']})"
    assert "\n" not in line
    for needle in needles:
        assert needle in line, (needle, line)
    assert "partial result, exit 3" in result.stderr
    return error


def by_name(records: list[Record]) -> dict[str, Record]:
    return {r["name"]: r for r in records}


# -- the documents themselves ------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_documented_policy_is_allow_only_and_read_only(source: str) -> None:
    doc = json.loads((POLICIES / f"{source}.json").read_text())
    assert doc["Version"] == "2012-10-17"
    assert {s["Effect"] for s in doc["Statement"]} == {"Allow"}
    verbs = {a.split(":", 1)[1] for a in allowed_actions(doc)}
    writes = {v for v in verbs if not v.startswith(("List", "Get", "Describe", "BatchGet", "Decrypt"))}
    # GenerateCredentialReport only asks IAM to refresh a read-only report.
    assert writes <= {"GenerateCredentialReport"}, writes


# -- aws-secretsmanager ------------------------------------------------------------------------


def test_secretsmanager_documented_policy_reads_everything(run_as: Runner, world: EnforcedMoto) -> None:
    result = inventory(run_as, policy("aws-secretsmanager"), "aws-secretsmanager", inspect=True)
    assert_clean(result)
    records = by_name(result.keys("aws-secretsmanager"))
    assert set(records) == set(world.seeded.secrets)
    assert records[f"{PREFIX}/ml/openai"]["kind"] == "openai-project"
    assert records[f"{PREFIX}/payments/stripe"]["kind"] == "stripe-secret"
    for record in records.values():
        assert record["value_inspected"] is True
        assert record["tags"]["environment"] == "prod"
        assert record["created"] is not None
    for value in world.seeded.values:
        assert value not in result.stdout + result.stderr


def test_secretsmanager_without_batch_reads_values_one_by_one(run_as: Runner, world: EnforcedMoto) -> None:
    pol = policy("aws-secretsmanager", without=["secretsmanager:BatchGetSecretValue"])
    result = inventory(run_as, pol, "aws-secretsmanager", inspect=True)
    assert_clean(result)  # the batch call is only an optimisation
    records = result.keys("aws-secretsmanager")
    assert len(records) == len(world.seeded.secrets)
    assert all(r["value_inspected"] for r in records)


def test_secretsmanager_without_value_permissions_keeps_metadata(run_as: Runner, world: EnforcedMoto) -> None:
    pol = policy("aws-secretsmanager", without=["secretsmanager:BatchGetSecretValue",
                                                "secretsmanager:GetSecretValue"])
    result = inventory(run_as, pol, "aws-secretsmanager", inspect=True)
    assert_one_warning(result, "aws-secretsmanager", "reading secret values",
                       "secretsmanager:GetSecretValue")
    records = result.keys("aws-secretsmanager")
    assert len(records) == len(world.seeded.secrets)
    for record in records:
        assert record["value_inspected"] is False
        assert record["kind"] == "unknown"
        assert record["tags"]["owner"]
        assert record["created"] is not None
    # Without --inspect-values, ListSecrets alone is the whole job.
    assert_clean(inventory(run_as, pol, "aws-secretsmanager"))


# -- aws-ssm -----------------------------------------------------------------------------------


def test_ssm_documented_policy_reads_everything(run_as: Runner, world: EnforcedMoto) -> None:
    result = inventory(run_as, policy("aws-ssm"), "aws-ssm", inspect=True)
    assert_clean(result)
    records = by_name(result.keys("aws-ssm"))
    assert set(records) == set(world.seeded.parameters)
    for name, record in records.items():
        assert record["tags"] == {"owner": f"team-{int(name.split('-')[-1][:2]) % 3}"}
        assert record["provenance"]["tags"] == "tag:GetResources"  # one call for 30 parameters
        assert record["value_inspected"] is True
        assert record["last_changed"] is not None
    for value in world.seeded.values:
        assert value not in result.stdout + result.stderr


@pytest.mark.parametrize(("without", "config", "tags_from"), [
    pytest.param(["tag:GetResources"], "", "ssm:ListTagsForResource", id="no-tagging-api"),
    pytest.param(["ssm:ListTagsForResource"], "", "tag:GetResources", id="no-per-parameter-tags"),
    pytest.param(["ssm:ListTagsForResource", "tag:GetResources"],
                 "[sources.aws-ssm]\ntags = false\n", None, id="tags-off"),
])
def test_ssm_tags_need_either_tag_permission(run_as: Runner, world: EnforcedMoto, without: list[str],
                                             config: str, tags_from: str | None) -> None:
    result = inventory(run_as, policy("aws-ssm", without=without), "aws-ssm", config=config)
    assert_clean(result)
    records = result.keys("aws-ssm")
    assert len(records) == PARAMETER_COUNT
    for record in records:
        assert record["provenance"].get("tags") == tags_from
        assert bool(record["tags"]) is (tags_from is not None)


def test_ssm_path_filter_needs_per_parameter_tags(run_as: Runner) -> None:
    # Under a path the region-wide tag scan is not used, so ListTagsForResource is the one.
    result = inventory(run_as, policy("aws-ssm", without=["ssm:ListTagsForResource"]), "aws-ssm",
                       config=f'[sources.aws-ssm]\npath = "/{PREFIX}"\n')
    assert_one_warning(result, "aws-ssm", "reading tags", "ssm:ListTagsForResource",
                       "tags = false")
    records = result.keys("aws-ssm")
    assert len(records) == PARAMETER_COUNT
    assert all(r["tags"] == {} and "tags" not in r["provenance"] for r in records)
    assert all(r["last_changed"] is not None for r in records)


def test_ssm_without_any_tag_permission_loses_only_tags(run_as: Runner) -> None:
    pol = policy("aws-ssm", without=["ssm:ListTagsForResource", "tag:GetResources"])
    result = inventory(run_as, pol, "aws-ssm")
    error = assert_one_warning(result, "aws-ssm", "reading tags", "failed for 30 of 30",
                               "ssm:ListTagsForResource")
    assert error["scope"] == REGION
    records = result.keys("aws-ssm")
    assert len(records) == PARAMETER_COUNT
    assert all(r["tags"] == {} and r["last_changed"] is not None for r in records)


def test_ssm_without_get_parameters_keeps_metadata(run_as: Runner) -> None:
    result = inventory(run_as, policy("aws-ssm", without=["ssm:GetParameters"]), "aws-ssm", inspect=True)
    assert_one_warning(result, "aws-ssm", "reading parameter values", "failed for 3 of 3",
                       "ssm:GetParameters")
    records = result.keys("aws-ssm")
    assert len(records) == PARAMETER_COUNT
    assert all(not r["value_inspected"] and r["tags"] for r in records)


# -- aws-iam -----------------------------------------------------------------------------------


def seeded_keys(result: Run, world: EnforcedMoto) -> dict[str, Record]:
    """The seeded users' key records by user name; every seeded key must be there."""
    records = {r["name"].split("/")[0]: r for r in result.keys("aws-iam")}
    assert {r["key_id"] for r in records.values()} == set(world.seeded.user_keys.values())
    for record in records.values():
        assert record["status"] == "active"
        assert record["created"] is not None
    return records


def test_iam_documented_policy_reads_everything(run_as: Runner, world: EnforcedMoto) -> None:
    result = inventory(run_as, policy("aws-iam"), "aws-iam")
    assert_clean(result)
    keys = seeded_keys(result, world)
    alice, bob = keys[f"{PREFIX}-alice"], keys[f"{PREFIX}-bob"]
    assert alice["owner"] == "ml"
    assert bob["owner"] == "payments"
    assert "admin" in bob["scope"]["labels"]
    assert "read-only" in alice["scope"]["labels"]
    for key in (alice, bob):
        assert key["last_used"] is not None
        assert key["last_used_detail"] == f"{REGION}/sts"


def test_iam_report_gives_last_use_without_per_key_calls(run_as: Runner, world: EnforcedMoto) -> None:
    pol = policy("aws-iam", without=["iam:GetAccessKeyLastUsed"])
    result = inventory(run_as, pol, "aws-iam", config=FRESH_REPORT)
    assert_clean(result)
    for key in seeded_keys(result, world).values():
        assert key["last_used"] is not None
        assert key["provenance"]["last_used"] == "iam:GetCredentialReport"


@pytest.mark.parametrize(("without", "config"), [
    pytest.param(["iam:GetCredentialReport"], FRESH_REPORT, id="no-report"),
    pytest.param(["iam:GenerateCredentialReport"], "", id="no-report-refresh"),
    pytest.param(["iam:GetCredentialReport", "iam:GenerateCredentialReport"], "", id="no-report-at-all"),
])
def test_iam_without_the_report_reads_last_use_key_by_key(
        run_as: Runner, world: EnforcedMoto, without: list[str], config: str) -> None:
    result = inventory(run_as, policy("aws-iam", without=without), "aws-iam", config=config)
    assert_clean(result)
    for key in seeded_keys(result, world).values():
        assert key["last_used"] is not None
        assert key["provenance"]["last_used"] == "iam:GetAccessKeyLastUsed"


@pytest.mark.parametrize(("without", "needles", "lost"), [
    pytest.param(["iam:GetAccessKeyLastUsed"],
                 ("reading last use", "iam:GetAccessKeyLastUsed"), "last_used", id="last-use"),
    pytest.param(["iam:GetAccountSummary"],
                 ("iam:GetAccountSummary", "root access keys unknown"), None, id="root-keys"),
    pytest.param(["iam:ListServiceSpecificCredentials"],
                 ("iam:ListServiceSpecificCredentials", "Bedrock API keys"), None, id="service-credentials"),
])
def test_iam_missing_optional_permission_costs_one_feature(
        run_as: Runner, world: EnforcedMoto, without: list[str], needles: tuple[str, ...],
        lost: str | None) -> None:
    result = inventory(run_as, policy("aws-iam", without=without), "aws-iam")
    assert_one_warning(result, "aws-iam", *needles)
    keys = seeded_keys(result, world)
    alice, bob = keys[f"{PREFIX}-alice"], keys[f"{PREFIX}-bob"]
    assert (alice["last_used"] is None) is (lost == "last_used")
    assert (bob["scope"]["labels"] == []) is (lost == "scope")
    # Tags (and so owners) survive every one of these.
    assert (alice["owner"], bob["owner"]) == ("ml", "payments")


def test_iam_tags_without_authorization_details_come_from_list_user_tags(
        run_as: Runner, world: EnforcedMoto) -> None:
    with_tags = policy("aws-iam", without=["iam:GetAccountAuthorizationDetails"])
    statements = with_tags["Statement"]
    assert isinstance(statements, list)
    statements.append({"Sid": "KeyguardTagsFallback", "Effect": "Allow",
                       "Action": ["iam:ListUserTags"], "Resource": "*"})
    result = inventory(run_as, with_tags, "aws-iam")
    assert_one_warning(result, "aws-iam", "key scopes are unknown")
    keys = seeded_keys(result, world)
    assert keys[f"{PREFIX}-alice"]["owner"] == "ml"
    assert keys[f"{PREFIX}-alice"]["provenance"]["tags"] == "iam:ListUserTags"

    # Neither: scopes and tags are both unknown, each said once; the keys are still listed.
    result = inventory(run_as, policy("aws-iam", without=["iam:GetAccountAuthorizationDetails"]),
                       "aws-iam")
    assert result.exit_code == 3
    messages = [e["message"] for e in result.errors]
    assert len(messages) == 2
    assert any("key scopes are unknown" in m for m in messages)
    assert any("reading user tags (ListUserTags)" in m for m in messages)
    keys = seeded_keys(result, world)
    assert keys[f"{PREFIX}-alice"]["owner"] == f"{PREFIX}-alice"  # the user name, no tag


# -- a required permission removed -------------------------------------------------------------


@pytest.mark.parametrize(("source", "action", "other"), [
    pytest.param("aws-secretsmanager", "secretsmanager:ListSecrets", "aws-ssm", id="list-secrets"),
    pytest.param("aws-ssm", "ssm:DescribeParameters", "aws-secretsmanager", id="describe-parameters"),
    pytest.param("aws-iam", "iam:ListUsers", "aws-ssm", id="list-users"),
    pytest.param("aws-iam", "iam:ListAccessKeys", "aws-ssm", id="list-access-keys"),
])
def test_missing_required_permission_fails_that_source_only(
        run_as: Runner, world: EnforcedMoto, source: str, action: str, other: str) -> None:
    result = inventory(run_as, combined(source, other, without=[action]), source, other)
    error = assert_one_warning(result, source, action, action.split(":")[1])
    assert error["hint"] == f"grant {action}"
    assert "access denied" in error["message"]
    assert result.keys(source) == []
    expected = {"aws-ssm": PARAMETER_COUNT, "aws-secretsmanager": len(world.seeded.secrets)}[other]
    assert len(result.keys(other)) == expected

    table = run_as(combined(source, other, without=[action]), "inventory", "--source", source,
                   "--no-record")
    assert table.exit_code == 3
    lines = [line for line in table.stdout.splitlines() if line.strip().startswith("!")]
    assert len(lines) == 1
    assert source in lines[0]
    assert f"grant {action}" in lines[0]


# -- keyguard check ----------------------------------------------------------------------------


def test_check_sees_admin_keys_only_with_authorization_details(run_as: Runner) -> None:
    args = ("check", "--source", "aws-iam", "--format", "json", "--fail-on", "critical")
    full = run_as(policy("aws-iam"), *args)
    admin_findings = [f for f in full.doc["findings"]
                      if f["rule_id"] == "scope-iam-admin" and f"{PREFIX}-bob" in f["subject"]]
    assert admin_findings, full.doc["findings"]
    assert full.doc["errors"] == []

    blind = run_as(policy("aws-iam", without=["iam:GetAccountAuthorizationDetails"]), *args)
    assert not [f for f in blind.doc["findings"] if f["rule_id"] == "scope-iam-admin"]
    assert [e for e in blind.doc["errors"] if "key scopes are unknown" in e["message"]]
    assert blind.exit_code == 3  # the gate does not pass on a partial view


# -- the README documents exactly these policies -----------------------------------------------

README = Path(__file__).parent.parent.parent / "README.md"


def readme_policies(text: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each ``### `source``` of "Minimal IAM permissions": its table text and its JSON policy."""
    marker = "\n## Minimal IAM permissions\n"
    assert marker in text, "README has no 'Minimal IAM permissions' section"
    section = text.split(marker, 1)[1].split("\n## ", 1)[0]
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for part in section.split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        table, _, rest = body.partition("```json\n")
        found[heading.strip().strip("`")] = (table, json.loads(rest.split("\n```", 1)[0]))
    return found


def test_readme_documents_the_tested_policies() -> None:
    documented = readme_policies(README.read_text(encoding="utf-8"))
    assert set(documented) == set(SOURCES)
    for source, (table, doc) in documented.items():
        assert doc == json.loads((POLICIES / f"{source}.json").read_text()), source
        for action in allowed_actions(doc):  # every granted permission is explained
            assert f"| `{action}` |" in table, (source, action)
