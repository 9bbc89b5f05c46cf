"""`keyguard usage scan` reports: every format, --min-severity, suppressions, --notify, secrets.

Runs on the real Stratus Red Team CloudTrail capture (see test_usage.py): with
``--allow-country DE`` two session keys raise one high geography alert each, and
``--canary`` on an IAM user key raises a critical one.
"""

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from keyguard.cli._shared import ExitCode
from keyguard.cli.usage import UsageFormat, _unicode_ok, render
from keyguard.model import Inventory, KeyRecord, Severity, SourceFailure
from keyguard.state import StateDB
from keyguard.usage.render import UsageReport
from tests.cli.conftest import Cli
from tests.usage.conftest import STRATUS
from tests.usage.webhook_server import webhook_server

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "keyguard" / "schemas" / "usage.schema.json").read_text("utf-8"))
SARIF_SCHEMA_PATH = Path("/work/shared/reference/sarif-schema-2.1.0.json")
CANARY = "AKIATFQR7NSCUXC3DDDP"
TRAVELLER = "ASIATFQR7NSCSHSEVYP5"
OTHER = "ASIATFQR7NSCWFKWOWVD"
ALERTING = ("--allow-country", "DE", "--canary", CANARY)
SUPPRESS = ('[[usage.suppressions]]\ntype = "geography"\nkey = "ASIATFQR7NSCSH*"\n'
            'owner = "sec-team"\nreason = "red-team exercise"\nexpires = {expires}\n')


def scan(cli: Cli, *args: str, state: Path | None = None) -> tuple[int, str, str]:
    result = cli(["usage", "scan", str(STRATUS), *args, "--state",
                  str(state or cli.workdir / "state")])
    return result.exit_code, result.stdout, result.stderr


def config(cli: Cli, text: str) -> None:
    (cli.workdir / "keyguard.toml").write_text(text, encoding="utf-8")


def keys_of(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["type"], a["key"]) for a in report["alerts"]]


# -- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(UsageFormat))
def test_every_usage_format_is_wired(cli: Cli, fmt: UsageFormat) -> None:
    target = cli.workdir / f"out.{fmt.value}"
    code, out, err = scan(cli, *ALERTING, "-f", fmt.value, "-o", str(target))
    assert code == ExitCode.FINDINGS
    assert out == ""
    text = target.read_text(encoding="utf-8")
    assert CANARY in text
    assert "3 alert(s)" in err


def test_render_is_exhaustive_over_formats() -> None:
    report = UsageReport(alerts=(), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert {fmt: bool(render(report, fmt)) for fmt in UsageFormat} == dict.fromkeys(UsageFormat, True)


def test_json_on_stdout_is_only_the_report_and_matches_the_schema(cli: Cli) -> None:
    code, out, err = scan(cli, *ALERTING, "-f", "json")
    assert code == ExitCode.FINDINGS
    report = json.loads(out)  # no summary or progress mixed in
    jsonschema.validate(report, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert keys_of(report) == [("canary", CANARY), ("geography", TRAVELLER),
                               ("geography", OTHER)]
    assert len({a["id"] for a in report["alerts"]}) == 3
    stats = report["stats"]
    assert stats["raised"] == 3
    assert stats["detectors"] == sorted(stats["detectors"])
    assert {"canary", "geography"} <= set(stats["detectors"])
    assert "gate (high and above): FAIL, 3 at or above it" in err


def test_sarif_validates_and_fingerprints_are_the_alert_ids(cli: Cli) -> None:
    _, out, _ = scan(cli, *ALERTING, "-f", "sarif")
    log = json.loads(out)
    if SARIF_SCHEMA_PATH.is_file():
        jsonschema.validate(log, json.loads(SARIF_SCHEMA_PATH.read_text("utf-8")))
    run = log["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"canary", "geography"} <= rules
    _, js, _ = scan(cli, *ALERTING, "-f", "json", "--since", "2023-07-10")
    ids = {a["id"] for a in json.loads(js)["alerts"]}
    assert {r["partialFingerprints"]["keyguardAlertId/v1"] for r in run["results"]} == ids


def test_table_groups_by_key_with_a_volume_sparkline(cli: Cli) -> None:
    code, out, _ = scan(cli, *ALERTING)
    assert code == ExitCode.FINDINGS
    blocks = out.split("\n\n")
    assert blocks[0].startswith(f"KEY {CANARY}\nvolume  |")
    spark = blocks[0].splitlines()[1].split("|")[1]
    assert len(spark) == 48
    assert set(spark) - {" "} <= set("▁▂▃▄▅▆▇█")
    assert "█" in spark  # the capture's busiest hour of that key
    assert "^" in blocks[0].splitlines()[2]


def test_ascii_fallback_when_stdout_cannot_encode_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert _unicode_ok("-") is False
    assert _unicode_ok("report.txt") is True
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert _unicode_ok("-") is True


# -- --min-severity --------------------------------------------------------------------------


def test_min_severity_hides_and_counts_lower_alerts(cli: Cli) -> None:
    code, out, err = scan(cli, *ALERTING, "-f", "json", "--min-severity", "critical")
    assert code == ExitCode.FINDINGS
    report = json.loads(out)
    assert keys_of(report) == [("canary", CANARY)]
    assert report["stats"]["below_min_severity"] == 2
    assert report["stats"]["min_severity"] == "critical"
    assert "2 below --min-severity" in err


def test_hidden_alerts_do_not_fail_the_gate(cli: Cli) -> None:
    code, out, _ = scan(cli, "--allow-country", "DE", "--min-severity", "critical")
    assert code == ExitCode.OK
    assert out.startswith("No alerts. 2 alert(s) below --min-severity not shown.")


# -- suppressions ----------------------------------------------------------------------------


def test_suppression_hides_one_alert_and_counts_it(cli: Cli) -> None:
    config(cli, SUPPRESS.format(expires="2099-12-31"))
    code, out, err = scan(cli, "--allow-country", "DE", "-f", "json")
    assert code == ExitCode.FINDINGS
    report = json.loads(out)
    assert keys_of(report) == [("geography", OTHER)]
    stats = report["stats"]
    assert (stats["raised"], stats["suppressed"]) == (2, 1)
    [accepted] = stats["suppressed_alerts"]
    assert (accepted["key"], accepted["suppression"], accepted["owner"]) == (TRAVELLER, 0,
                                                                            "sec-team")
    assert "1 suppressed" in err
    _, sarif, _ = scan(cli, "--allow-country", "DE", "-f", "sarif", "--since", "2023-07-10")
    results = json.loads(sarif)["runs"][0]["results"]
    assert [bool(r.get("suppressions")) for r in results].count(True) == 1


def test_expired_suppression_stops_suppressing_and_warns(cli: Cli) -> None:
    config(cli, SUPPRESS.format(expires="2020-01-31"))
    code, out, err = scan(cli, "--allow-country", "DE", "-f", "json")
    assert code == ExitCode.FINDINGS
    report = json.loads(out)
    assert len(report["alerts"]) == 2
    assert report["stats"]["suppressed"] == 0
    assert report["stats"]["expired_suppressions"] == [
        {"index": 0, "type": "geography", "owner": "sec-team", "reason": "red-team exercise",
         "expires": "2020-01-31"}]
    assert ("keyguard: warning: usage.suppressions[0] (geography alerts on key "
            "ASIATFQR7NSCSH*, owner sec-team) expired on 2020-01-31") in err


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('type = "geography"\nkey = "x"\nreason = "r"\nexpires = 2099-01-01\n',
         "'usage.suppressions[0]' needs owner"),
        ('type = "nope"\nkey = "x"\nowner = "o"\nreason = "r"\nexpires = 2099-01-01\n',
         "'usage.suppressions[0].type' names unknown detector 'nope'"),
        ('key = "x"\nowner = "o"\nreason = "r"\nexpires = 2099-01-01\nuntil = 1\n',
         "unknown key 'usage.suppressions[0].until'"),
    ],
)
def test_invalid_suppression_is_exit_2_before_any_work(cli: Cli, table: str, message: str) -> None:
    config(cli, "[[usage.suppressions]]\n" + table)
    state = cli.workdir / "state"
    code, out, err = scan(cli, state=state)
    assert code == ExitCode.USAGE
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not state.exists()


def red_team_record() -> KeyRecord:
    """The traveller's key as an inventory records it, tagged for a red-team exercise."""
    return KeyRecord(source="aws-iam", location="arn:aws:iam::1:user/red", name="red-team",
                     key_id=TRAVELLER, tags={"purpose": "red-team-2023"})


def test_tag_suppression_uses_the_latest_inventory_snapshot(cli: Cli) -> None:
    record = red_team_record()
    with StateDB(cli.home / "data" / "keyguard" / "state.db") as db:
        db.record_snapshot(Inventory(keys=(record,), sources=("aws-iam",)),
                           datetime(2026, 1, 1, tzinfo=UTC))
    config(cli, '[[usage.suppressions]]\ntag = "purpose=red-team*"\nowner = "sec"\n'
                'reason = "exercise"\nexpires = 2099-01-01\n')
    _, out, _ = scan(cli, "--allow-country", "DE", "-f", "json")
    report = json.loads(out)
    assert keys_of(report) == [("geography", OTHER)]
    assert report["stats"]["suppressed_alerts"][0]["key"] == TRAVELLER


def test_tags_of_keys_a_partial_inventory_could_not_read_still_apply(cli: Cli) -> None:
    record = red_team_record()
    with StateDB(cli.home / "data" / "keyguard" / "state.db") as db:
        db.record_snapshot(Inventory(keys=(record,), sources=("aws-iam",)),
                           datetime(2026, 1, 1, tzinfo=UTC))
        outage = (SourceFailure("aws-iam", "global", "throttled"),)
        db.record_snapshot(Inventory(keys=(), sources=("aws-iam",), failures=outage),
                           datetime(2026, 1, 2, tzinfo=UTC))
    config(cli, '[[usage.suppressions]]\ntag = "purpose=red-team*"\nowner = "sec"\n'
                'reason = "exercise"\nexpires = 2099-01-01\n')
    _, out, _ = scan(cli, "--allow-country", "DE", "-f", "json")
    assert keys_of(json.loads(out)) == [("geography", OTHER)]  # still suppressed


def test_tag_scopes_read_the_inventory_tags(cli: Cli) -> None:
    record = KeyRecord(source="aws-iam", location="arn:aws:iam::1:user/us", name="us-team",
                       key_id=TRAVELLER, tags={"team": "us"})
    with StateDB(cli.home / "data" / "keyguard" / "state.db") as db:
        db.record_snapshot(Inventory(keys=(record,), sources=("aws-iam",)),
                           datetime(2026, 1, 1, tzinfo=UTC))
    config(cli, '[[usage.scopes]]\ntag = "team=us"\nallow-countries = ["US"]\n')
    _, out, _ = scan(cli, "--allow-country", "DE", "-f", "json")
    # the US team's key may be used from the US; the other key still may not
    assert keys_of(json.loads(out)) == [("geography", OTHER)]


# -- --notify --------------------------------------------------------------------------------


def test_notify_posts_new_alerts_once_and_never_prints_the_url(cli: Cli) -> None:
    with webhook_server() as server:
        url = server.url()
        code, out, err = scan(cli, "--allow-country", "DE", "-f", "json", "--notify", url)
        again, out2, err2 = scan(cli, "--allow-country", "DE", "-f", "json", "--notify", url,
                                 "--since", "2023-07-10")
    assert (code, again) == (ExitCode.FINDINGS, ExitCode.FINDINGS)
    assert len(server.received) == 1
    body = server.bodies()[0]
    sent = sorted(a["id"] for a in body["alerts"])
    assert sent == sorted(a["id"] for a in json.loads(out)["alerts"])
    assert json.loads(out)["stats"]["notify"] == {"host": "127.0.0.1", "queued": 2, "sent": 2,
                                                  "pending": 0, "error": None}
    # the rescan sees the same anomalies (same ids): nothing new to send
    assert json.loads(out2)["stats"]["notify"]["queued"] == 0
    assert sorted(a["id"] for a in json.loads(out2)["alerts"]) == sent
    for text in (out, err, out2, err2):
        assert "T0K3N" not in text
    assert "notified 127.0.0.1: 2 sent, 0 pending" in err


def test_notify_failure_is_a_warning_and_exit_3_then_the_next_run_retries(cli: Cli) -> None:
    with webhook_server() as server:
        server.answers = [(503, "0")] * 4
        url = server.url()
        code, out, err = scan(cli, "--allow-country", "DE", "--fail-on", "critical",
                              "-f", "json", "--notify", url)
        assert code == ExitCode.PARTIAL
        assert json.loads(out)["stats"]["notify"]["pending"] == 2
        warning = [line for line in err.splitlines() if "could not notify" in line]
        assert warning == ["keyguard: warning: could not notify 127.0.0.1: HTTP 503 after 4 "
                           "attempt(s); 2 alert(s) stay queued and are retried by the next run"]
        assert "Traceback" not in err
        # next daily run: nothing new imported, the queued alerts go out
        code, out, _ = scan(cli, "--allow-country", "DE", "--fail-on", "critical",
                            "-f", "json", "--notify", url)
    assert code == ExitCode.OK
    assert json.loads(out)["stats"]["notify"] == {"host": "127.0.0.1", "queued": 0, "sent": 2,
                                                  "pending": 0, "error": None}
    assert len(server.bodies()[-1]["alerts"]) == 2


def test_bad_notify_values_are_exit_2_without_echoing_them(cli: Cli) -> None:
    for value in ("T0K3N-not-a-url", "keyring:slack-alerts", "env:KG_NO_SUCH_VAR"):
        state = cli.workdir / "state"
        code, out, err = scan(cli, "--notify", value, state=state)
        assert code == ExitCode.USAGE, value
        assert out == ""
        assert "T0K3N" not in err
        assert err.startswith("keyguard: error:")
        assert not state.exists()


def test_help_lists_every_detector(cli: Cli) -> None:
    result = cli(["usage", "scan", "--help"])
    assert result.exit_code == 0
    # one line per detector, not reflowed into a paragraph
    listed = [line.split()[0] for line in result.stdout.splitlines()
              if line.startswith("    ") and len(line.split()) > 1 and line.split()[0] in
              ("canary", "geography", "velocity", "prompt-mix", "coordination")]
    assert listed == ["canary", "geography", "velocity", "prompt-mix", "coordination"]
    for name in ("--min-severity", "--notify", "[[usage.suppressions]]"):
        assert name in result.stdout, name


def test_min_severity_choices_match_severities() -> None:
    from keyguard.cli.check import FailOn

    assert [f.value for f in FailOn] == [s.label for s in sorted(Severity)]
