"""`keyguard rotate` end to end against a real moto server (its own process)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import freezegun
import pytest
from typer.testing import Result

from keyguard.canary import Canary, CanaryKind
from keyguard.canary.store import save
from keyguard.state import StateDB
from tests.cli.conftest import Cli
from tests.fixtures.aws import leaked_slices
from tests.rotation import world
from tests.rotation.world import (
    SOURCES,
    assert_invariants,
    keys_of,
    later,
    make_user,
    policy_file,
)

rotation_moto = world.rotation_moto
rot_env = world.rot_env


def _run(cli: Cli, args: list[str], days: int = 40) -> Result:
    with freezegun.freeze_time(later(days), tick=True):
        return cli(args)


def test_run_due_apply_rotates_every_copy_and_keeps_shapes(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-e2e", [("sm", "json"), ("ssm", "plain"), ("ssm", "env")])
    policy = str(policy_file(tmp_path, 30))
    result = _run(cli, ["rotate", "run", "--due", "--apply", "--yes", "--policy", policy,
                        "--select", f"name~^{user.name}/", *SOURCES, "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [o["status"] for o in report["outcomes"]] == ["done"]
    snap = assert_invariants(user, complete=True)
    assert snap.keys[user.old_id] == "Inactive"
    assert user.old_secret not in result.stdout + result.stderr


def _journal(cli: Cli) -> Path:
    return cli.home / "data" / "keyguard" / "rotation" / "journal.jsonl"


def test_plan_out_then_apply_and_dry_run_changes_nothing(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-plan", [("sm", "json"), ("ssm", "plain")])
    policy = str(policy_file(tmp_path, 30))
    sel = ["--select", f"name~^{user.name}/"]
    dry = _run(cli, ["rotate", "run", "--due", "--policy", policy, *sel, *SOURCES])
    assert dry.exit_code == 0, dry.stderr
    assert f"ROTATE {user.name}/{user.old_id}" in dry.stdout
    assert "dry run" in dry.stderr
    assert_invariants(user, complete=False)
    plan_path = tmp_path / "plan.json"
    planned = _run(cli, ["rotate", "plan", "--policy", policy, *sel, *SOURCES, "--out", str(plan_path)])
    assert planned.exit_code == 0, planned.stderr
    doc = json.loads(plan_path.read_text())
    assert [c["store"] for c in doc["items"][0]["copies"]] == ["aws-secretsmanager", "aws-ssm"]
    assert user.old_secret not in plan_path.read_text()
    refused = cli(["rotate", "apply", str(plan_path)])  # CliRunner's stdin is not a TTY
    assert refused.exit_code == 2
    assert "pass --yes" in refused.stderr
    assert_invariants(user, complete=False)
    applied = cli(["rotate", "apply", str(plan_path), "--yes"])
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    assert "done" in applied.stdout
    assert_invariants(user, complete=True)
    again = cli(["rotate", "apply", str(plan_path), "--yes", "--format", "json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["outcomes"][0]["status"] == "skipped"


def test_old_key_deleted_after_grace_on_a_later_run(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-grace", [("ssm", "env")])
    sel = ["--select", f"name~^{user.name}/", *SOURCES, "--yes", "--apply"]
    first = _run(cli, ["rotate", "run", "--due", "--policy", str(policy_file(tmp_path, 30)), *sel], 40)
    assert first.exit_code == 0, first.stderr
    new_id = assert_invariants(user, complete=True).held_id
    lenient = str(policy_file(tmp_path, 90))  # the new key is not due again
    early = _run(cli, ["rotate", "run", "--due", "--policy", lenient, *sel], 44)
    assert early.exit_code == 0
    assert user.old_id in keys_of(user)
    status = _run(cli, ["rotate", "status"], 44)
    assert status.exit_code == 0
    assert f"awaiting deletion: aws-iam old key {user.old_id}" in status.stdout
    late = _run(cli, ["rotate", "run", "--due", "--policy", lenient, *sel, "--format", "json"], 48)
    assert late.exit_code == 0, late.stderr
    outcomes = json.loads(late.stdout)["outcomes"]
    assert [(o["action"], o["status"]) for o in outcomes] == [("cleanup", "done")]
    assert keys_of(user) == {new_id: "Active"}


def test_interrupted_rotation_status_exit_4_and_resume(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-resume", [("sm", "json")])
    from keyguard.rotation.journal import Journal
    from tests.rotation.test_apply import item_for

    item = item_for(user)
    journal = Journal(_journal(cli))
    now = datetime.now(UTC)
    journal.append(now, item.token, "begin", item=item)
    journal.append(now, item.token, "step-start", step="prepare")
    status = cli(["rotate", "status"])
    assert status.exit_code == 4
    assert f"INTERRUPTED {item.token}" in status.stdout
    assert "stopped at prepare" in status.stdout
    resumed = cli(["rotate", "resume", "--yes", "--format", "json"])
    assert resumed.exit_code == 1  # rolled back: the key still needs rotating
    assert json.loads(resumed.stdout)["outcomes"][0]["status"] == "rolled-back"
    assert cli(["rotate", "status"]).exit_code == 0
    nothing = cli(["rotate", "resume"])
    assert nothing.exit_code == 0
    assert "no interrupted rotation" in nothing.stderr
    assert_invariants(user, complete=False)


def test_a_second_run_while_locked_exits_with_a_clear_message(cli: Cli, rot_env: str) -> None:
    from keyguard.rotation.lock import RotationLock

    with RotationLock(_journal(cli).parent / "lock", stamp="since test"):
        result = cli(["rotate", "resume", "--yes"])  # nothing to resume: no lock needed
        assert result.exit_code == 0
        user = make_user("rt-lock", [("sm", "json")])
        from keyguard.rotation.journal import Journal
        from tests.rotation.test_apply import item_for

        item = item_for(user)
        Journal(_journal(cli)).append(datetime.now(UTC), item.token, "begin", item=item)
        locked = cli(["rotate", "resume", "--yes"])
    assert locked.exit_code == 2
    assert locked.stderr.startswith("keyguard: error: another keyguard rotation run holds")
    assert "since test" in locked.stderr
    assert len(locked.stderr.strip().splitlines()) == 1


def test_two_active_keys_and_max_keys(cli: Cli, rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    stuck = make_user(f"{unique_prefix}-a", [("sm", "json")], spare="active")
    ok1 = make_user(f"{unique_prefix}-b", [("sm", "json")])
    ok2 = make_user(f"{unique_prefix}-c", [("ssm", "json")])
    before = keys_of(stuck)
    result = _run(cli, ["rotate", "run", "--due", "--apply", "--yes", "--max-keys", "1",
                        "--policy", str(policy_file(tmp_path, 30)), "--select",
                        f"name~^{unique_prefix}", *SOURCES])
    assert result.exit_code == 0, result.stderr
    assert keys_of(stuck) == before
    assert_invariants(ok1, complete=True)
    assert_invariants(ok2, complete=False)
    plan = _run(cli, ["rotate", "plan", "--max-keys", "1", "--policy", str(policy_file(tmp_path, 30)),
                      "--select", f"name~^{unique_prefix}", *SOURCES])
    assert "never deletes an active key" in plan.stdout
    # at +40 days ok1's new key looks 40 days old too, so two keys are due again
    assert "DEFERRED by --max-keys: 1 key(s)" in plan.stdout


def test_plan_is_deterministic(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-det", [("sm", "json"), ("ssm", "plain")])
    args = ["rotate", "plan", "--format", "json", "--policy", str(policy_file(tmp_path, 30)),
            "--select", f"name~^{user.name}/", *SOURCES]
    with freezegun.freeze_time(later(40)):
        first, second = cli(args), cli(args)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["items"][0]["token"].startswith("rot-")


@pytest.mark.parametrize(("args", "message"), [
    (["rotate", "run"], "needs --due"),
    (["rotate", "apply", "missing.json", "--yes"], "plan file not found"),
    (["rotate", "plan", "--select", "colour=red"], "unknown field"),
])
def test_usage_errors_are_one_line_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli(args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tampered_plan_is_refused(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"version": 1, "plan_id": "x", "created": "2026-11-27T00:00:00+00:00", '
                   '"grace_days": 7, "items": [], "skipped": []}')
    result = cli(["rotate", "apply", str(bad), "--yes"])
    assert result.exit_code == 2
    assert "plan_id does not match" in result.stderr


def test_no_secret_in_output_logs_or_journal(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-leak", [("sm", "json"), ("ssm", "plain"), ("sm", "env")])
    result = _run(cli, ["-vv", "rotate", "run", "--due", "--apply", "--yes", "--policy",
                        str(policy_file(tmp_path, 30)), "--select", f"name~^{user.name}/",
                        *SOURCES, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    new_secret = assert_invariants(user, complete=True).secrets[0]
    texts = [result.stdout, result.stderr, _journal(cli).read_text()]
    for secret in (user.old_secret, new_secret):
        assert leaked_slices([secret], texts) == []


def test_hooks_run_before_the_old_key_is_disabled_and_a_failing_hook_rolls_back(
        cli: Cli, rot_env: str, tmp_path: Path, unique_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    good = make_user(f"{unique_prefix}-good", [("sm", "json")])
    bad = make_user(f"{unique_prefix}-bad", [("ssm", "json"), ("sm", "plain")])
    marker = tmp_path / "reloaded.txt"
    record = ("import os, pathlib; pathlib.Path(os.environ['MARK']).write_text("
              "os.environ['KEYGUARD_OLD_KEY_ID'] + ' ' + os.environ['KEYGUARD_NEW_KEY_ID'])")
    hooks = tmp_path / "hooks.toml"
    hooks.write_text(
        f'[[hook]]\nselect = "name~^{good.name}/"\ncommand = {json.dumps([sys.executable, "-c", record])}\n'
        f'[[hook]]\nselect = "name~^{bad.name}/"\ncommand = {json.dumps([sys.executable, "-c", "raise SystemExit(3)"])}\n')
    monkeypatch.setenv("MARK", str(marker))  # hooks inherit keyguard's environment
    result = _run(cli, ["rotate", "run", "--due", "--apply", "--yes", "--hooks", str(hooks),
                        "--policy", str(policy_file(tmp_path, 30)), "--select",
                        f"name~^{unique_prefix}", *SOURCES, "--format", "json"])
    assert result.exit_code == 1, result.stderr
    by_key = {o["key"].split("/")[0]: o for o in json.loads(result.stdout)["outcomes"]}
    assert by_key[good.name]["status"] == "done"
    assert by_key[bad.name]["status"] == "rolled-back"
    assert "hook[0] (python" in by_key[bad.name]["message"]
    assert "exited 3" in by_key[bad.name]["message"]
    new_id = assert_invariants(good, complete=True).held_id
    assert marker.read_text() == f"{good.old_id} {new_id}"
    assert_invariants(bad, complete=False)


def test_bad_hooks_file_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nselect = "owner=x"\ncommand = "kubectl rollout restart"\n')
    result = cli(["rotate", "plan", "--hooks", str(hooks)])
    assert result.exit_code == 2
    assert "'command' must be a non-empty list of strings" in result.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "run", "status", "resume"])
def test_every_rotate_command_has_help(cli: Cli, command: str) -> None:
    result = cli(["rotate", command, "--help"])
    assert result.exit_code == 0
    assert "--format" in result.stdout
    assert "Exit codes" in result.stdout


def test_partial_inventory_rotates_nothing_exit_3(cli: Cli, rot_env: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user("rt-partial", [("sm", "json")])
    monkeypatch.delenv("VAULT_ADDR", raising=False)  # the vault source fails: no address
    result = _run(cli, ["rotate", "run", "--due", "--apply", "--yes", "--policy",
                        str(policy_file(tmp_path, 30)), "--select", f"name~^{user.name}/",
                        *SOURCES, "--source", "vault"])
    assert result.exit_code == 3, result.stderr
    assert "partial inventory: nothing rotated" in result.stderr
    assert_invariants(user, complete=False)


def test_apply_stops_with_exit_4_on_an_unsettled_rotation(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-stop", [("sm", "json")])
    plan_path = tmp_path / "plan.json"
    planned = _run(cli, ["rotate", "plan", "--policy", str(policy_file(tmp_path, 30)), "--select",
                         f"name~^{user.name}/", *SOURCES, "--out", str(plan_path)])
    assert planned.exit_code == 0, planned.stderr
    from keyguard.rotation.journal import Journal
    from keyguard.rotation.plan import plan_from_json

    (item,) = plan_from_json(plan_path.read_text(), "plan").items
    Journal(_journal(cli)).append(datetime.now(UTC), item.token, "begin", item=item)
    result = cli(["rotate", "apply", str(plan_path), "--yes"])
    assert result.exit_code == 4
    assert "rotate resume" in result.stderr
    assert_invariants(user, complete=False)


class _Hook:
    """A local webhook receiver: records JSON bodies, answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies: list[dict[str, object]] = []
        answer = status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rotation"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [200, 404])
def test_notify_posts_the_rotation_report(cli: Cli, rot_env: str, status: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from keyguard.rotation.journal import Journal
    from tests.rotation.test_apply import item_for

    user = make_user("rt-notify", [("sm", "json")])
    item = item_for(user)
    Journal(_journal(cli)).append(datetime.now(UTC), item.token, "begin", item=item)
    hook = _Hook(status)
    monkeypatch.setenv("ROT_HOOK", hook.url)
    try:
        result = cli(["rotate", "resume", "--yes", "--notify", "env:ROT_HOOK"])
    finally:
        hook.close()
    (body,) = hook.bodies
    assert body["kind"] == "rotation"
    outcomes = body["outcomes"]
    assert isinstance(outcomes, list)
    assert outcomes[0]["status"] == "rolled-back"
    assert user.old_secret not in json.dumps(body)
    if status == 200:
        assert result.exit_code == 1  # the rollback decides
    else:
        assert result.exit_code == 1  # rollback (1) outranks a failed notification (3)
        assert "could not notify 127.0.0.1: HTTP 404" in result.stderr
        assert hook.url not in result.stderr


def test_bad_notify_value_is_exit_2(cli: Cli) -> None:
    result = cli(["rotate", "resume", "--notify", "ftp://example.com/x"])
    assert result.exit_code == 2
    assert "--notify" in result.stderr


def test_canary_keys_and_their_planted_copies_are_never_rotated(
        cli: Cli, rot_env: str, tmp_path: Path) -> None:
    """A canary looks stale on purpose (issue 7): rotating it would hand the thief a new key."""
    canary = make_user("rt-canary", [("sm", "json")])
    ordinary = make_user("rt-plain", [("sm", "json")])
    state_db = cli.home / "data" / "keyguard" / "state.db"
    state_db.parent.mkdir(parents=True, exist_ok=True)
    with StateDB(state_db) as db:
        save(db, Canary(id="cn-rot", kind=CanaryKind.AWS, name=canary.name,
                        identifier=canary.old_id, principal=canary.arn,
                        created=datetime(2026, 11, 1, tzinfo=UTC)))
    policy = str(policy_file(tmp_path, 30))
    sel = ["--select", f"name~^({canary.name}|{ordinary.name})/"]
    planned = _run(cli, ["rotate", "plan", "--policy", policy, *sel, *SOURCES])
    assert planned.exit_code == 0, planned.stderr
    assert f"ROTATE {ordinary.name}/{ordinary.old_id}" in planned.stdout
    assert canary.old_id not in planned.stdout
    assert canary.name not in planned.stdout


def test_skip_hint_selects_a_key_by_name_when_it_has_no_key_id() -> None:
    from keyguard.cli.rotate import _select_term
    from keyguard.rotation.plan import RotationItem, StoreCopy

    base = RotationItem(token="t", action="rotate", rotator="aws-secretsmanager",
                        subject="s", name="prod/app", key_id=None, principal="",
                        reason="due", steps=("put-pending",),
                        copies=(StoreCopy("aws-secretsmanager", "arn:x", "prod/app"),))
    assert _select_term(base) == "name=prod/app"
    assert _select_term(dataclasses.replace(base, key_id="apikey_01")) == "key_id=apikey_01"
