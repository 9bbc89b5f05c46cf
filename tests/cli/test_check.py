"""`keyguard check` through the CLI: exit codes, waivers, baseline, policy errors, formats."""

import json
import random
from pathlib import Path

import jsonschema
import pytest

from keyguard.cli.check import CheckFormat
from keyguard.fakes import fake_key
from keyguard.report import REPORTERS
from tests.cli.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
POLICY = '[policy.rules.plaintext-key-at-rest]\nseverity = "high"\n'


def setup(cli: Cli, extra: str = "", keys: int = 2) -> None:
    rng = random.Random(keys)
    app = cli.workdir / "app"
    app.mkdir(exist_ok=True)
    lines = [f"OPENAI_API_KEY_{i}={fake_key('openai-project', rng)}" for i in range(keys)]
    (app / ".env").write_text("\n".join(lines) + "\n")
    (cli.workdir / "keyguard.toml").write_text(
        'default_sources = ["dotenv"]\n[sources.dotenv]\npaths = ["app"]\n' + POLICY + extra)


def test_findings_at_or_above_fail_on_exit_1(cli: Cli) -> None:
    setup(cli)
    result = cli(["check"])
    assert result.exit_code == 1, result.output
    assert "plaintext-key-at-rest" in result.stdout
    assert "gate (high and above): FAIL" in result.stderr
    assert cli(["check", "--fail-on", "critical"]).exit_code == 0


def test_json_findings_match_schema(cli: Cli) -> None:
    setup(cli)
    result = cli(["check", "-f", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    schema = json.loads((ROOT / "keyguard" / "schemas" / "check.schema.json").read_text())
    jsonschema.validate(doc, schema)
    rules = {f["rule_id"] for f in doc["findings"]}
    assert "plaintext-key-at-rest" in rules
    plaintext = [f for f in doc["findings"] if f["rule_id"] == "plaintext-key-at-rest"]
    assert len(plaintext) == 2
    assert all(f["key"]["fingerprint"].startswith("kg1:") for f in plaintext)


def test_waiver_passes_the_gate_and_expired_waiver_fails_it(cli: Cli) -> None:
    waiver = ('[[policy.waivers]]\nrule = "plaintext-key-at-rest"\nowner = "alice"\n'
              'reason = "local dev only"\nexpires = {}\n')
    setup(cli, waiver.format("2099-01-01"))
    result = cli(["check"])
    assert result.exit_code == 0, result.output
    assert "2 waived" in result.stderr
    setup(cli, waiver.format("2020-01-01"))
    result = cli(["check", "-f", "json"])
    assert result.exit_code == 1
    rules = [f["rule_id"] for f in json.loads(result.stdout)["findings"]]
    assert "waiver-expired" in rules
    assert rules.count("plaintext-key-at-rest") == 2


def test_baseline_fails_only_on_new_findings(cli: Cli) -> None:
    setup(cli, keys=2)
    baseline = cli.workdir / "baseline.json"
    result = cli(["check", "--baseline", str(baseline), "--update-baseline"])
    assert result.exit_code == 0, result.output
    assert "baseline written" in result.stderr
    assert len(json.loads(baseline.read_text())["findings"]) >= 2
    assert cli(["check", "--baseline", str(baseline)]).exit_code == 0
    env = cli.workdir / "app" / ".env"
    env.write_text(env.read_text() + f"NEW_KEY={fake_key('anthropic-api', random.Random(9))}\n")
    result = cli(["check", "--baseline", str(baseline), "-f", "json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert {f["key"]["name"] for f in findings} == {"NEW_KEY"}


def test_missing_baseline_is_exit_2(cli: Cli) -> None:
    setup(cli)
    result = cli(["check", "--baseline", "nope.json"])
    assert result.exit_code == 2
    assert "baseline not found" in result.stderr
    assert "--update-baseline" in result.stderr


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ('[policy.rules.rotaton-max-age]\nmax_age_days = 3\n', "unknown rule 'policy.rules.rotaton-max-age'"),
        ('[policy.rules.rotation-max-age]\nmax_age_day = 3\n', "unknown setting"),
        ('[policy]\nfail_on = "urgent"\n', "'policy.fail_on' must be one of"),
        ('[[policy.waivers]]\nrule = "key-unused"\nowner = "a"\nreason = "r"\n', "needs expires"),
    ],
)
def test_bad_policy_is_exit_2_before_any_work(cli: Cli, policy: str, needle: str) -> None:
    setup(cli)
    (cli.workdir / "p.toml").write_text(policy)
    result = cli(["check", "--policy", "p.toml"])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "p.toml" in result.stderr
    assert not (cli.home / "data" / "keyguard" / "state.db").exists()


def test_missing_policy_file_is_exit_2(cli: Cli) -> None:
    setup(cli)
    result = cli(["check", "--policy", "missing.toml"])
    assert result.exit_code == 2
    assert "missing.toml: policy file not found" in result.stderr


def test_partial_coverage_fails_the_gate_unless_told_otherwise(cli: Cli) -> None:
    setup(cli)
    (cli.workdir / "keyguard.toml").write_text(
        '[sources.dotenv]\npaths = ["app", "gone"]\n'
        '[policy.rules.plaintext-key-at-rest]\nseverity = "low"\n')
    assert cli(["check", "--source", "dotenv"]).exit_code == 3
    assert cli(["check", "--source", "dotenv", "--no-fail-on-partial"]).exit_code == 0


@pytest.mark.parametrize("fmt", list(CheckFormat))
def test_every_check_format_is_wired(cli: Cli, fmt: CheckFormat) -> None:
    assert REPORTERS.load(fmt.value).name == fmt.value
    setup(cli)
    result = cli(["check", "-f", fmt.value, "-o", f"out.{fmt.value}"])
    assert result.exit_code == 1, result.output
    assert (cli.workdir / f"out.{fmt.value}").stat().st_size > 0


def test_rules_lists_and_explains(cli: Cli) -> None:
    result = cli(["rules"])
    assert result.exit_code == 0
    assert "rotation-max-age" in result.stdout
    assert "plaintext-key-at-rest" in result.stdout
    shown = cli(["rules", "show", "rotation-max-age"])
    assert shown.exit_code == 0
    assert "Risk:" in shown.stdout
    assert "Remediation:" in shown.stdout
    assert "max_age_days" in shown.stdout
    unknown = cli(["rules", "show", "nope"])
    assert unknown.exit_code == 2
    assert "unknown rule 'nope'" in unknown.stderr
    doc = json.loads(cli(["rules", "-f", "json"]).stdout)
    assert all(r["remediation"]["summary"] for r in doc)
