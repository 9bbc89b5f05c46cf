"""Invariant: a secret-looking value in a usage export never leaves keyguard in any output.

The LiteLLM log below carries a fake Anthropic key as a key alias, inside a prompt and in
a user agent; the key is a canary and is used from outside the allow-list, so every
format has alerts to render (with the alias, the agent and the summary).
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyguard.cli._shared import ExitCode
from keyguard.cli.usage import UsageFormat
from tests.cli.conftest import Cli
from tests.usage.webhook_server import webhook_server

SECRET = "sk-ant-api03-" + "Qx7v" * 23 + "kAA"  # pragma: allowlist secret
KEY_HASH = "5f0c3a0b" * 8
START = datetime(2026, 2, 2, 9, tzinfo=UTC)


def spend_log(path: Path) -> Path:
    rows = []
    for n in range(30):
        when = START + timedelta(hours=n)
        rows.append({
            "request_id": f"req-{n}", "call_type": "acompletion", "api_key": KEY_HASH,
            "startTime": when.isoformat().replace("+00:00", ""), "model": "claude-sonnet",
            "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "requester_ip_address": "3.3.3.3",
            "metadata": {"user_api_key_alias": SECRET, "user_api_key_user_id": f"ci {SECRET}"},
            "messages": [{"role": "user", "content": f"use the key {SECRET} to call the API"}],
            "proxy_server_request": {"headers": {"user-agent": f"bot/{SECRET}"}},
        })
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", list(UsageFormat))
def test_secret_from_the_export_never_appears_in_any_format(cli: Cli, fmt: UsageFormat) -> None:
    log = spend_log(cli.workdir / "spend.jsonl")
    state = cli.workdir / "state"
    target = cli.workdir / f"report.{fmt.value}"
    with webhook_server() as server:
        args = ["usage", "scan", str(log), "--state", str(state), "--canary", KEY_HASH,
                "--allow-country", "DE", "-f", fmt.value, "--notify", server.url()]
        to_stdout = cli(args)
        to_file = cli([*args, "--since", "2026-02-01", "-o", str(target)])
    assert to_stdout.exit_code == ExitCode.FINDINGS
    assert to_file.exit_code == ExitCode.FINDINGS
    report = target.read_text(encoding="utf-8")
    assert KEY_HASH in to_stdout.stdout  # the alerts are there...
    outputs = {"stdout": to_stdout.stdout, "stderr": to_stdout.stderr, "file": report,
               "stderr2": to_file.stderr,
               "webhook": b"".join(body for _, _, body in server.received).decode()}
    assert server.received
    for name, text in outputs.items():
        assert SECRET not in text, name  # ...but never the secret
        assert SECRET[:24] not in text, name
    assert "[redacted anthropic-api]" in to_stdout.stdout


def test_a_raw_key_given_as_canary_matches_its_hashed_id_and_is_never_echoed(cli: Cli) -> None:
    import hashlib

    rows = [{"request_id": f"r-{n}", "api_key": SECRET, "model": "claude-sonnet",
             "startTime": (START + timedelta(hours=n)).isoformat(), "prompt_tokens": 5}
            for n in range(3)]
    log = cli.workdir / "raw.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = cli(["usage", "scan", str(log), "--state", str(cli.workdir / "s"),
                  "--canary", SECRET, "-f", "json"])
    assert result.exit_code == ExitCode.FINDINGS, result.output
    alerts = json.loads(result.stdout)["alerts"]
    assert [(a["type"], a["key"]) for a in alerts] == [
        ("canary", hashlib.sha256(SECRET.encode()).hexdigest())]
    assert SECRET not in result.stdout + result.stderr
    assert SECRET[:20] not in result.stdout + result.stderr
