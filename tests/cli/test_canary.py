"""`keyguard canary` commands: register/list/delete, usage exports, webhooks, exit codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.canary.conftest import canary_aws
from tests.cli.conftest import Cli

__all__ = ["canary_aws"]  # the fixture, shared with tests/canary


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver; yields its URL and the JSON bodies it received.

    A path ending in ``/gone`` answers 404, as a deleted webhook does.
    """
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length))
            if self.path.endswith("/gone"):
                self.send_response(404)
            else:
                received.append(body)
                self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B1/tok", received
    finally:
        server.shutdown()
        server.server_close()


def state(cli: Cli) -> list[str]:
    return ["--state", str(cli.workdir / "s.db")]


def test_no_canaries_is_quiet(cli: Cli) -> None:
    listed = cli(["canary", "list", *state(cli)])
    assert listed.exit_code == 0
    assert listed.stdout == "No canaries recorded.\n"
    checked = cli(["-q", "canary", "check", *state(cli)])
    assert checked.exit_code == 0
    assert "warning: no canaries recorded" in checked.stderr  # even with -q: cron mails it


def test_register_list_and_unmark(cli: Cli) -> None:
    made = cli(["canary", "register", "anthropic", "apikey_01AbCdEfGh", "--name", "ci-summarizer",
                *state(cli)])
    assert made.exit_code == 0, made.stderr
    again = cli(["canary", "register", "anthropic", "apikey_01AbCdEfGh", *state(cli)])
    assert again.exit_code == 2
    assert "already a canary" in again.stderr
    listed = cli(["canary", "list", "--format", "json", *state(cli)])
    [entry] = json.loads(listed.stdout)["canaries"]
    assert (entry["kind"], entry["name"], entry["identifier"]) == (
        "anthropic", "ci-summarizer", "apikey_01AbCdEfGh")
    table = cli(["canary", "list", *state(cli)])
    assert "ci-summarizer" in table.stdout
    checked = cli(["canary", "check", "-f", "json", *state(cli)])  # no admin key needed
    assert checked.exit_code == 0, checked.stderr
    [status] = json.loads(checked.stdout)["canaries"]
    assert status["status"] == "quiet"
    assert "only --usage exports" in status["detail"]
    gone = cli(["canary", "delete", "ci-summarizer", *state(cli)])
    assert gone.exit_code == 0
    assert "unmarked" in gone.stdout
    assert json.loads(cli(["canary", "list", "-f", "json", *state(cli)]).stdout)["canaries"] == []


@pytest.mark.parametrize(("args", "message"), [
    (["register", "openai", "sk-proj-abcdefghijklmnop"], "looks like a key value"),
    (["register", "openai", "two words"], "is not a key id"),
    (["register", "github", "x"], "Invalid value"),
    (["delete", "cn-0000000000"], "does not exist"),
    (["check", "--usage", "missing.json"], "no such file"),
    (["check", "--notify", "ftp://host/x"], "expected an http(s) webhook URL"),
])
def test_bad_input_is_exit_2_and_one_line(cli: Cli, args: list[str], message: str) -> None:
    result = cli(["canary", *args, *state(cli)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def cloudtrail(path: Path, key_id: str, arn: str) -> None:
    record = {
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "123456789012",
                         "accessKeyId": key_id, "userName": arn.rsplit("/", 1)[-1]},
        "eventTime": "2026-11-27T03:14:15Z", "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "awsRegion": "ap-southeast-1",
        "sourceIPAddress": "8.8.8.8", "userAgent": "python-requests/2.31",
        "requestID": "r-1", "eventID": "e-1", "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }
    path.write_text(json.dumps({"Records": [record]}))


def test_usage_export_trips_a_quiet_canary_and_notifies(
    cli: Cli, canary_aws: str, unique_prefix: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    made = cli(["canary", "create", "aws", "--name", f"{unique_prefix}-sync-svc",
                "--plant", f"ssm:/{unique_prefix}/sync", *state(cli)])
    assert made.exit_code == 0, made.stderr
    canary_id, key_id = made.stdout.split()[1], made.stdout.splitlines()[0].rsplit(" ", 1)[-1]
    other = cli.workdir / "other.json"
    cloudtrail(other, "AKIAOTHERKEY00000000", "arn:aws:iam::123456789012:user/someone")
    url, received = webhook
    quiet = cli(["canary", "check", "--usage", str(other), "--notify", url, *state(cli)])
    assert quiet.exit_code == 0, quiet.stderr
    assert received == []  # nothing to say, nothing sent

    trail = cli.workdir / "trail.json"
    cloudtrail(trail, key_id, f"arn:aws:iam::123456789012:user/{unique_prefix}-sync-svc")
    result = cli(["canary", "check", "--usage", str(trail), "--format", "json", "--notify", url,
                  *state(cli)])
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    [alert] = doc["alerts"]
    assert alert["evidence"]["canary_id"] == canary_id
    assert alert["evidence"]["seen_by"] == "usage:cloudtrail"
    assert alert["evidence"]["source_ips"] == "8.8.8.8"
    assert alert["evidence"]["countries"] == "US"
    assert alert["evidence"]["regions"] == "ap-southeast-1"
    assert alert["evidence"]["first_origin"].endswith("trail.json:1")
    assert alert["start"] == "2026-11-27T03:14:15Z"
    assert doc["canaries"][0]["status"] == "used"
    [sent] = received
    assert sent["alerts"] == doc["alerts"]
    assert alert["id"].startswith("ua1:")
    assert doc["notified"] == 1
    assert "/hooks/T0/B1/tok" not in result.stderr

    # the next cron run still alerts (exit 1) but does not notify the same use again
    again = cli(["canary", "check", "--usage", str(trail), "-f", "json", "--notify", url,
                 *state(cli)])
    assert again.exit_code == 1
    assert json.loads(again.stdout)["notified"] == 0
    assert len(received) == 1


def test_failed_notification_is_retried_by_the_next_run(
    cli: Cli, canary_aws: str, unique_prefix: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    made = cli(["canary", "create", "aws", "--name", f"{unique_prefix}-queue-svc",
                "--plant", f"ssm:/{unique_prefix}/queue", *state(cli)])
    assert made.exit_code == 0, made.stderr
    key_id = made.stdout.splitlines()[0].rsplit(" ", 1)[-1]
    trail = cli.workdir / "trail.json"
    cloudtrail(trail, key_id, f"arn:aws:iam::123456789012:user/{unique_prefix}-queue-svc")
    url, received = webhook
    broken = url.rsplit("/", 1)[0] + "/gone"
    failed = cli(["canary", "check", "--usage", str(trail), "--notify", broken, *state(cli)])
    assert failed.exit_code == 1  # the alert decides the exit code, not the webhook
    assert "could not notify 127.0.0.1: HTTP 404" in failed.stderr
    assert "/hooks/T0" not in failed.stderr
    assert received == []
    retried = cli(["canary", "check", "--usage", str(trail), "--notify", url, *state(cli)])
    assert retried.exit_code == 1
    assert len(received) == 1


def test_unreadable_canary_is_unknown_exit_3_not_quiet(
    cli: Cli, canary_aws: str, unique_prefix: str
) -> None:
    name = f"{unique_prefix}-gone-svc"
    made = cli(["canary", "create", "aws", "--name", name,
                "--plant", f"ssm:/{unique_prefix}/gone", *state(cli)])
    assert made.exit_code == 0, made.stderr
    key_id = made.stdout.splitlines()[0].rsplit(" ", 1)[-1]
    boto3.client("iam").delete_access_key(UserName=name, AccessKeyId=key_id)  # by hand
    result = cli(["canary", "check", "--format", "json", *state(cli)])
    assert result.exit_code == 3, result.stderr
    doc = json.loads(result.stdout)
    assert doc["canaries"][0]["status"] == "unknown"
    assert doc["errors"]
    # delete still finishes the job with the key already gone
    gone = cli(["canary", "delete", made.stdout.split()[1], *state(cli)])
    assert gone.exit_code == 0, gone.stderr


@pytest.mark.parametrize("command", [
    ["create", "aws"], ["create", "litellm"], ["register"], ["list"], ["delete"], ["check"],
])
def test_every_canary_command_has_help(cli: Cli, command: list[str]) -> None:
    result = cli(["canary", *command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert len(result.stdout.splitlines()) > 8
