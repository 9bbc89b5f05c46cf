"""`keyguard inventory` end to end on the dotenv source: formats, state, diff, exit codes."""

import csv
import io
import json
import random
from pathlib import Path

import jsonschema
import pytest

from keyguard.cli.inventory import InventoryFormat
from keyguard.fakes import fake_key
from keyguard.report import REPORTERS
from tests.cli.conftest import Cli

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "keyguard" / "schemas" / "inventory.schema.json")
    .read_text(encoding="utf-8")
)


def write_env(cli: Cli, rng: random.Random) -> dict[str, str]:
    values = {
        "OPENAI_API_KEY": fake_key("openai-project", rng),
        "STRIPE_SECRET_KEY": fake_key("stripe-secret", rng),
        "GITHUB_TOKEN": fake_key("github-classic-pat", rng),
    }
    app = cli.workdir / "app"
    app.mkdir(exist_ok=True)
    (app / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    (cli.workdir / "keyguard.toml").write_text(
        'default_sources = ["dotenv"]\n[sources.dotenv]\npaths = ["app"]\n', encoding="utf-8")
    return values


def assert_no_secret(text: str, values: dict[str, str]) -> None:
    for value in values.values():
        for start in range(0, len(value) - 12 + 1, 6):
            assert value[start:start + 12] not in text


def test_table_lists_keys_and_hides_values(cli: Cli) -> None:
    values = write_env(cli, random.Random(1))
    result = cli(["inventory"])
    assert result.exit_code == 0, result.output
    assert "openai-project" in result.stdout
    assert "stripe-secret" in result.stdout
    assert "github-classic-pat" in result.stdout
    assert ".env:1" in result.stdout
    assert "3 keys from 1 source" in result.stderr
    assert_no_secret(result.output, values)


def test_json_report_matches_the_shipped_schema(cli: Cli) -> None:
    values = write_env(cli, random.Random(2))
    result = cli(["inventory", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema_version"] == 1
    assert doc["partial"] is False
    kinds = sorted(k["kind"] for k in doc["keys"])
    assert kinds == ["github-classic-pat", "openai-project", "stripe-secret"]
    assert all(k["fingerprint"].startswith("kg1:") for k in doc["keys"])
    assert all(k["plaintext"] for k in doc["keys"])
    assert doc["summary"]["by_provider"] == {"github": 1, "openai": 1, "stripe": 1}
    assert_no_secret(result.stdout, values)


def test_csv_has_header_and_one_row_per_key(cli: Cli) -> None:
    write_env(cli, random.Random(3))
    result = cli(["inventory", "-f", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    assert {r["provider"] for r in rows} == {"openai", "stripe", "github"}


def test_output_file_is_written_and_stdout_stays_clean(cli: Cli) -> None:
    write_env(cli, random.Random(4))
    result = cli(["inventory", "-f", "json", "-o", "out/keys.json"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    (cli.workdir / "out").mkdir()
    result = cli(["inventory", "-f", "json", "-o", "out/keys.json"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert len(json.loads((cli.workdir / "out" / "keys.json").read_text())["keys"]) == 3


def test_diff_shows_added_changed_removed(cli: Cli) -> None:
    rng = random.Random(5)
    write_env(cli, rng)
    assert cli(["inventory"]).exit_code == 0
    env = cli.workdir / "app" / ".env"
    lines = env.read_text().splitlines()
    # line 1 gets a new value (changed), line 3 disappears (removed), a new key at line 3.
    lines[0] = f"OPENAI_API_KEY={fake_key('openai-project', rng)}"
    lines[2] = f"ANTHROPIC_API_KEY={fake_key('anthropic-api', rng)}"
    env.write_text("\n".join(lines) + "\n")
    result = cli(["inventory", "--diff", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    changes = {(c["change"], c["key"]["name"]): c for c in doc["changes"]}
    assert ("changed", "OPENAI_API_KEY") in changes
    assert "fingerprint" in changes[("changed", "OPENAI_API_KEY")]["fields"]
    assert ("removed", "GITHUB_TOKEN") in changes
    assert ("added", "ANTHROPIC_API_KEY") in changes
    assert ("changed", "STRIPE_SECRET_KEY") not in changes
    assert len(doc["changes"]) == 3
    table = cli(["inventory", "--diff"])
    assert "No changes since the last snapshot" in table.stdout


def test_inserting_a_line_does_not_look_like_a_new_key(cli: Cli) -> None:
    write_env(cli, random.Random(14))
    assert cli(["inventory"]).exit_code == 0
    env = cli.workdir / "app" / ".env"
    env.write_text("# a comment pushes every key down one line\n" + env.read_text())
    doc = json.loads(cli(["inventory", "--diff", "-f", "json"]).stdout)
    assert doc["changes"] == []
    assert {k["location"].rsplit(":", 1)[1] for k in doc["keys"]} == {"2", "3", "4"}


def test_first_seen_persists_across_runs(cli: Cli) -> None:
    write_env(cli, random.Random(6))
    first = json.loads(cli(["inventory", "-f", "json"]).stdout)
    second = json.loads(cli(["inventory", "-f", "json"]).stdout)
    seen1 = {k["identity"]: k["first_seen"] for k in first["keys"]}
    seen2 = {k["identity"]: k["first_seen"] for k in second["keys"]}
    assert seen1 == seen2
    assert all(seen1.values())


def test_no_record_leaves_state_untouched(cli: Cli) -> None:
    write_env(cli, random.Random(7))
    state = cli.workdir / "s.db"
    assert cli(["inventory", "--state", str(state), "--no-record"]).exit_code == 0
    result = cli(["inventory", "--state", str(state), "--diff", "-f", "json"])
    assert {c["change"] for c in json.loads(result.stdout)["changes"]} == {"added"}


def test_missing_path_is_a_partial_result_exit_3(cli: Cli) -> None:
    write_env(cli, random.Random(8))
    (cli.workdir / "keyguard.toml").write_text(
        '[sources.dotenv]\npaths = ["app", "nowhere"]\n', encoding="utf-8")
    result = cli(["inventory", "--source", "dotenv", "-f", "json"])
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["partial"] is True
    assert len(doc["keys"]) == 3  # what worked is still reported
    assert any("nowhere" in e["message"] or "nowhere" in e["scope"] for e in doc["errors"])
    assert "partial result" in result.stderr


def test_unknown_source_is_exit_2_before_any_work(cli: Cli) -> None:
    result = cli(["inventory", "--source", "dotenv", "--source", "vaultt"])
    assert result.exit_code == 2
    assert "unknown source 'vaultt'" in result.stderr
    assert "Traceback" not in result.output
    assert not (cli.home / "data" / "keyguard" / "state.db").exists()


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[aws\nregions = 1", "invalid TOML"),
        ("[aws]\nregion = ['x']", "unknown key 'aws.region'"),
        ("[sources.dotenv]\npaths = 'x'", "'sources.dotenv.paths' must be a list of strings"),
    ],
)
def test_bad_config_is_one_line_exit_2(cli: Cli, toml: str, needle: str) -> None:
    (cli.workdir / "keyguard.toml").write_text(toml, encoding="utf-8")
    result = cli(["inventory", "--source", "dotenv"])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "keyguard.toml" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_explicit_missing_config_is_exit_2(cli: Cli) -> None:
    result = cli(["--config", "missing.toml", "inventory"])
    assert result.exit_code == 2
    assert "missing.toml: config file not found" in result.stderr


def test_user_config_dir_is_used_when_no_local_file(cli: Cli) -> None:
    write_env(cli, random.Random(9))
    cfg = (cli.workdir / "keyguard.toml").read_text().replace('"app"', f'"{cli.workdir / "app"}"')
    (cli.workdir / "keyguard.toml").unlink()
    user_cfg = cli.home / "config" / "keyguard"
    user_cfg.mkdir(parents=True)
    (user_cfg / "keyguard.toml").write_text(cfg)
    result = cli(["inventory", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["keys"]) == 3


def test_bad_state_path_is_exit_2(cli: Cli) -> None:
    write_env(cli, random.Random(10))
    (cli.workdir / "notadir").write_text("x")
    result = cli(["inventory", "--state", "notadir/state.db"])
    assert result.exit_code == 2
    assert "state database" in result.stderr


def test_corrupt_state_is_exit_2_with_hint(cli: Cli) -> None:
    write_env(cli, random.Random(11))
    (cli.workdir / "bad.db").write_bytes(b"not a database at all" * 100)
    result = cli(["inventory", "--state", "bad.db"])
    assert result.exit_code == 2
    assert "bad.db" in result.stderr
    assert "--state" in result.stderr


def test_fingerprint_key_file_fallback_warns_once(cli: Cli) -> None:
    write_env(cli, random.Random(12))
    first = cli(["inventory"])
    second = cli(["inventory"])
    assert "fingerprint key was stored" in first.stderr
    assert "fingerprint key was stored" not in second.stderr
    key_file = cli.home / "data" / "keyguard" / "fingerprint.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_quiet_suppresses_summary(cli: Cli) -> None:
    write_env(cli, random.Random(13))
    result = cli(["-q", "inventory"])
    assert result.exit_code == 0
    assert result.stderr == ""


@pytest.mark.parametrize("fmt", list(InventoryFormat))
def test_every_format_is_wired_to_a_reporter(fmt: InventoryFormat) -> None:
    reporter = REPORTERS.load(fmt.value)
    assert reporter.name == fmt.value
