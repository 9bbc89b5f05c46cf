"""`keyguard usage scan` end to end on the real CloudTrail capture (Stratus Red Team, 2900 calls).

Geography on this capture: the whole capture spans 55 minutes, so every key is inside its
7-day learning period and no new-country or impossible-travel alert is possible; only two
session keys have a public (US) source IP at all. Without --canary the scan is therefore
clean (exit 0); with --allow-country the allow-list, which is policy and needs no learning,
still applies.
"""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from keyguard.canary import Canary, CanaryKind
from keyguard.canary.store import save
from keyguard.cli._shared import ExitCode
from keyguard.state import StateDB
from tests.cli.conftest import Cli
from tests.usage.conftest import STRATUS

ROOT = Path(__file__).resolve().parents[2]
CANARY = "AKIATFQR7NSCUXC3DDDP"  # an IAM user key in the capture: 43 calls


def scan(cli: Cli, *args: str, state: Path | None = None) -> tuple[int, str, str]:
    where = state or cli.workdir / "state"
    result = cli(["usage", "scan", *args, "--state", str(where)])
    return result.exit_code, result.stdout, result.stderr


def broken_cloudtrail(tmp: Path) -> Path:
    """One real record and one with an unparseable time: a partial file."""
    first = next(iter(sorted(STRATUS.iterdir())))
    record = json.loads(first.read_text(encoding="utf-8"))["Records"][0]
    bad = {**record, "eventTime": "yesterday", "eventID": "bad-1"}
    path = tmp / "partial.json"
    path.write_text(json.dumps({"Records": [record, bad]}), encoding="utf-8")
    return path


def test_canary_in_real_cloudtrail_is_a_critical_alert_and_exit_1(cli: Cli) -> None:
    code, out, err = scan(cli, str(STRATUS), "--canary", CANARY, "--format", "json")
    assert code == ExitCode.FINDINGS
    report = json.loads(out)
    assert report["schema_version"] == 1
    assert [(a["type"], a["severity"], a["key"]) for a in report["alerts"]] == [
        ("canary", "critical", CANARY)]
    alert = report["alerts"][0]
    assert set(alert) == {"id", "key", "key_alias", "type", "severity", "start", "end",
                          "summary", "evidence"}
    assert alert["id"].startswith("ua1:")
    assert alert["start"] == "2023-07-10T11:42:18Z"
    assert alert["end"].endswith("Z")
    assert alert["evidence"]["events"] == 43
    assert alert["evidence"]["matched_on"] == "key_id"
    assert CANARY in alert["summary"]
    assert report["stats"]["alerts_by_type"] == {"canary": 1}
    assert report["stats"]["raised"] == 1
    assert "FAIL, 1 at or above it" in err


def test_real_cloudtrail_without_canary_is_clean_and_json_has_the_contract(cli: Cli) -> None:
    code, out, _ = scan(cli, str(STRATUS), "-f", "json")
    assert code == ExitCode.OK
    report = json.loads(out)
    assert set(report) == {"schema_version", "alerts", "stats", "errors"}
    assert report["alerts"] == []
    assert report["errors"] == []
    stats = report["stats"]
    for name in ("files", "records", "events", "errors", "error_samples", "by_format",
                 "alerts_by_type"):
        assert name in stats
    assert (stats["files"], stats["records"], stats["events"]) == (55, 2900, 2900)
    assert stats["by_format"] == {"cloudtrail": 2900}
    assert stats["window"] == {"start": "2023-07-10T11:42:18Z", "end": "2023-07-10T12:37:50Z"}


def test_allow_list_applies_to_real_data_without_learning(cli: Cli) -> None:
    code, out, _ = scan(cli, str(STRATUS), "-f", "json", "--allow-country", "de")
    assert code == ExitCode.FINDINGS
    alerts = json.loads(out)["alerts"]
    assert sorted(a["key"] for a in alerts) == ["ASIATFQR7NSCSHSEVYP5", "ASIATFQR7NSCWFKWOWVD"]
    assert {a["evidence"]["reasons"] for a in alerts} == {"outside-allow-list"}


def test_second_run_adds_nothing_and_does_not_repeat_alerts(cli: Cli) -> None:
    first, _, _ = scan(cli, str(STRATUS), "--canary", CANARY)
    code, out, err = scan(cli, str(STRATUS), "--canary", CANARY, "-f", "json")
    assert (first, code) == (ExitCode.FINDINGS, ExitCode.OK)
    stats = json.loads(out)["stats"]
    assert stats["new_events"] == 0
    # most skipped by the files' watermarks; rows at a watermark second fall to the id dedupe
    assert stats["already_imported"] > 2800
    assert stats["already_imported"] + stats["duplicates"] == 2900
    assert stats["window"] is None
    assert "0 new" in err
    # --since re-judges stored events: the canary use is reported again
    again, out, _ = scan(cli, str(STRATUS), "--canary", CANARY, "-f", "json",
                         "--since", "2023-07-10")
    assert again == ExitCode.FINDINGS
    assert [a["key"] for a in json.loads(out)["alerts"]] == [CANARY]


def test_table_groups_alerts_by_key_and_output_file(cli: Cli) -> None:
    target = cli.workdir / "alerts.txt"
    code, out, _ = scan(cli, str(STRATUS), "--canary", CANARY, "-o", str(target))
    assert code == ExitCode.FINDINGS
    assert out == ""
    text = target.read_text(encoding="utf-8")
    assert text.startswith(f"KEY {CANARY}\n")
    assert "critical    canary" in text


def test_fail_on_critical_lets_high_alerts_pass(cli: Cli) -> None:
    code, _, err = scan(cli, str(STRATUS), "--allow-country", "DE", "--fail-on", "critical")
    assert code == ExitCode.OK
    assert "2 alert(s)" in err


def test_missing_path_is_exit_2_before_any_work(cli: Cli) -> None:
    state = cli.workdir / "state"
    code, out, err = scan(cli, str(cli.workdir / "nope.json"), state=state)
    assert code == ExitCode.USAGE
    assert out == ""
    assert "nope.json: no such file or directory" in err
    assert not state.exists()


def test_bad_options_are_exit_2(cli: Cli) -> None:
    for args in (["--since", "last tuesday"], ["--allow-country", "USA"],
                 ["--input-format", "nope"]):
        code, _, err = scan(cli, str(STRATUS), *args)
        assert code == ExitCode.USAGE, args
        assert "keyguard: error:" in err


def test_parse_errors_are_reported_and_exit_3(cli: Cli, tmp_path: Path) -> None:
    path = broken_cloudtrail(tmp_path)
    code, out, err = scan(cli, str(path), "-f", "json")
    assert code == ExitCode.PARTIAL
    report = json.loads(out)
    assert report["stats"]["errors"] == 1
    assert report["stats"]["events"] == 1
    assert report["errors"][0].startswith(f"{path}:")
    assert "1 row(s) or file(s) could not be parsed" in err


def test_strict_stops_before_detection_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    path = broken_cloudtrail(tmp_path)
    code, out, err = scan(cli, str(path), "--strict")
    assert code == ExitCode.PARTIAL
    assert out == ""
    assert "--strict stops before detection" in err
    # nothing was stored, so a lenient run still sees the good record as new
    code, out, _ = scan(cli, str(path), "-f", "json")
    assert code == ExitCode.PARTIAL
    assert json.loads(out)["stats"]["new_events"] == 1


def test_usage_help_documents_the_command_without_importing_duckdb(cli: Cli) -> None:
    result = cli(["--help"])
    assert "usage" in result.stdout
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom keyguard.cli import app\n"
        "r = CliRunner().invoke(app, ['usage', 'scan', '--help'])\nassert r.exit_code == 0, r\n"
        "assert '--canary' in r.stdout and 'Exit codes' in r.stdout\n"
        "print(sorted(m for m in ('duckdb', 'keyguard.usage.store', 'keyguard.usage.reader')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_canary_recorded_in_the_state_database_alerts_without_the_flag(cli: Cli) -> None:
    """`keyguard canary create|register` records canaries; a scan needs no --canary for them."""
    state_db = cli.home / "data" / "keyguard" / "state.db"  # the default state database
    state_db.parent.mkdir(parents=True)
    with StateDB(state_db) as db:
        save(db, Canary(id="cn-test", kind=CanaryKind.AWS, name="sync-svc", identifier=CANARY,
                        created=datetime(2026, 11, 1, tzinfo=UTC)))
    code, out, _ = scan(cli, str(STRATUS), "--format", "json")
    assert code == 1
    [alert] = json.loads(out)["alerts"]
    assert (alert["type"], alert["severity"], alert["key"]) == ("canary", "critical", CANARY)
    assert alert["evidence"]["events"] == 43
