"""``keyguard usage scan`` with a city database: travel inside one country is caught end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.conftest import Cli
from tests.fixtures.citydb import PLACES, write_city_db


def _row(i: int, when: datetime, place: str) -> str:
    return json.dumps({
        "request_id": f"req-{i}", "api_key": "a" * 64, "startTime": when.isoformat(),
        "model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5,
        "requester_ip_address": PLACES[place][0],
        "metadata": {"user_api_key_alias": "svc-travel"}})


def test_hop_from_new_york_to_san_francisco_in_minutes_alerts(cli: Cli, tmp_path: Path) -> None:
    write_city_db(cli.workdir / "City.mmdb")
    (cli.workdir / "keyguard.toml").write_text(
        '[usage.detectors.geography]\ncity-database = "City.mmdb"\n')
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows = [_row(i, start + timedelta(hours=6 * i), "nyc") for i in range(4 * 14)]
    hop = start + timedelta(days=15)
    rows += [_row(900, hop, "nyc"), _row(901, hop + timedelta(minutes=25), "sf")]
    log = tmp_path / "spend.jsonl"
    log.write_text("\n".join(rows) + "\n")
    result = cli(["usage", "scan", str(log), "--format", "json"])
    assert result.exit_code == 1, result.output  # a high alert fails the run by default
    alerts = json.loads(result.stdout)["alerts"]
    assert [(a["type"], a["evidence"]["reasons"]) for a in alerts] == [
        ("geography", "impossible-travel")]
    evidence = alerts[0]["evidence"]
    assert (evidence["travel_from"], evidence["travel_to"]) == ("New York, US", "San Francisco, US")
    assert evidence["travel_gap_minutes"] == 25.0
