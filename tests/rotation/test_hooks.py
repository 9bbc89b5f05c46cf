"""Consumer hooks: no shell, no secret, failures and timeouts fail the step; webhooks too."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

import freezegun
import pytest

from keyguard.errors import UsageError
from keyguard.rotation.context import StepFailed
from keyguard.rotation.hooks import SIGNATURE_HEADER, Hook, load_hooks, run_hooks
from keyguard.rotation.plan import RotationItem, StoreCopy, with_hook_step
from tests.cli.conftest import Cli, cli
from tests.fixtures.aws import leaked_slices
from tests.rotation.world import SOURCES, assert_invariants, later, make_user, policy_file
from tests.usage.webhook_server import webhook_server

__all__ = ["cli"]  # the CLI runner fixture, shared with tests/cli


def item(*commands: list[str], timeout: float = 10) -> RotationItem:
    hooks = json.dumps([{"command": c, "timeout": timeout} for c in commands])
    return RotationItem(token="rot-1", action="rotate", rotator="aws-iam", subject="s",
                        name="alice/AKIA1", key_id="AKIA1", principal="alice", reason="r",
                        steps=("verify", "hooks", "deactivate-old"), params={"hooks": hooks})


def test_hook_sees_public_facts_only_and_runs_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    code = ("import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
            "if k.startswith('KEYGUARD_')} | {'argv': sys.argv[1:]}, open(sys.argv[1], 'w'))")
    facts = run_hooks(item([sys.executable, "-c", code, str(out), "$HOME;", "a b"]),
                      {"new_key_id": "AKIA2"})
    assert facts == {"hooks": "1"}
    seen = json.loads(out.read_text())
    assert seen["argv"] == [str(out), "$HOME;", "a b"]  # no shell expansion or splitting
    assert seen["KEYGUARD_OLD_KEY_ID"] == "AKIA1"
    assert seen["KEYGUARD_NEW_KEY_ID"] == "AKIA2"


@pytest.mark.parametrize(("command", "timeout", "message"), [
    ([sys.executable, "-c", "raise SystemExit(2)"], 10, "exited 2"),
    ([sys.executable, "-c", "import time; time.sleep(5)"], 0.3, "timed out after 0.3 s"),
    (["/nonexistent/reload"], 10, "could not start"),
])
def test_failing_hooks_fail_the_step(command: list[str], timeout: float, message: str) -> None:
    with pytest.raises(StepFailed, match=message):
        run_hooks(item(command, timeout=timeout), {})


def test_hook_step_goes_before_the_old_key_is_disabled() -> None:
    assert with_hook_step(("create", "verify", "deactivate-old")) == (
        "create", "verify", "hooks", "deactivate-old")
    assert with_hook_step(("a", "b")) == ("a", "b", "hooks")


@pytest.mark.parametrize(("text", "message"), [
    ('[[hook]]\ncommand = ["x"]\n', "'select' must be"),
    ('[[hook]]\nselect = "owner=a"\ncommand = []\n', "'command' must be"),
    ('[[hook]]\nselect = "owner=a"\ncommand = ["x"]\ntimeout = 0\n', "'timeout' must be"),
    ('[[hook]]\nselect = "colour=a"\ncommand = ["x"]\n', "unknown field"),
    ('[[hook]]\nselect = "owner=a"\ncommand = ["x"]\nshell = true\n', "allowed keys"),
    ("[[hook]\n", "cannot read hooks"),
])
def test_bad_hooks_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_hooks(path)


# -- webhook hooks (against the real local receiver in tests/usage/webhook_server.py) ------------


def url_hooks(tmp_path: Path, body: str) -> list[Hook]:
    path = tmp_path / "hooks.toml"
    path.write_text(body)
    return load_hooks(path)


def url_item(hooks: list[Hook]) -> RotationItem:
    params = {"hooks": json.dumps([h.as_param() for h in hooks])}
    return RotationItem(token="rot-7", action="rotate", rotator="aws-iam", subject="s",
                        name="alice/AKIA1", key_id="AKIA1", principal="alice", reason="r",
                        steps=("verify", "hooks", "deactivate-old"), params=params,
                        copies=(StoreCopy("aws-ssm", "arn:x", "/app/key", "eu-west-1"),))


def test_webhook_hook_posts_public_facts_and_a_verifiable_signature(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KG_HOOK_SIGNING", "s1gn-k3y-value")
    with webhook_server() as server:
        monkeypatch.setenv("KG_HOOK_URL", server.url())
        hooks = url_hooks(tmp_path, '[[hook]]\nselect = "owner=a"\nurl = "env:KG_HOOK_URL"\n'
                                    'secret = "env:KG_HOOK_SIGNING"\nretries = 0\n')
        facts = run_hooks(url_item(hooks), {"new_key_id": "AKIA2"})
    assert facts == {"hooks": "1"}
    [(path, headers, raw)] = server.received
    assert path == "/hooks/T0K3N-secret-path"
    body = json.loads(raw)
    assert body == {"source": "keyguard", "event": "keyguard.rotation.hook", "schema_version": 1,
                    "key_name": "alice/AKIA1", "rotator": "aws-iam", "old_key_id": "AKIA1",
                    "new_key_id": "AKIA2", "rotation_token": "rot-7",
                    "copies": [{"store": "aws-ssm", "name": "/app/key", "region": "eu-west-1",
                                "field": None}]}
    expected = hmac.new(b"s1gn-k3y-value", raw, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[SIGNATURE_HEADER] != "sha256=" + hmac.new(
        b"wrong", raw, hashlib.sha256).hexdigest()
    assert b"s1gn" not in raw
    assert b"T0K3N" not in raw


def test_unsigned_webhook_has_no_signature_header(tmp_path: Path) -> None:
    with webhook_server() as server:
        hooks = url_hooks(tmp_path, f'[[hook]]\nselect = "owner=a"\nurl = "{server.url()}"\n')
        run_hooks(url_item(hooks), {})
    [(_, headers, _)] = server.received
    assert SIGNATURE_HEADER not in headers


@pytest.mark.parametrize(("answers", "retries", "delay", "message", "posts"), [
    ([(500, None)], 0, 0.0, "HTTP 500 after 1 attempt", 1),
    ([(404, None)], 3, 0.0, "HTTP 404", 1),  # a 4xx does not heal by retrying
    ([(302, None)], 0, 0.0, "redirects are not followed", 1),
    ([], 0, 1.0, "timed out after 1 attempt", 1),
])
def test_failing_webhook_fails_the_step_naming_the_host_only(
        tmp_path: Path, answers: list[tuple[int, str | None]], retries: int, delay: float,
        message: str, posts: int) -> None:
    with webhook_server() as server:
        server.answers.extend(answers)
        server.delay = delay
        hooks = url_hooks(tmp_path, f'[[hook]]\nselect = "owner=a"\nurl = "{server.url()}"\n'
                                    f"timeout = 0.3\nretries = {retries}\n")
        with pytest.raises(StepFailed, match=message) as failed:
            run_hooks(url_item(hooks), {})
    assert "hook[0] (webhook 127.0.0.1)" in str(failed.value)
    assert "T0K3N" not in str(failed.value)
    assert len(server.received) == posts


def test_webhook_retries_a_5xx_then_succeeds(tmp_path: Path) -> None:
    with webhook_server() as server:
        server.answers.append((503, "0"))
        hooks = url_hooks(tmp_path, f'[[hook]]\nselect = "owner=a"\nurl = "{server.url()}"\n'
                                    "retries = 1\n")
        assert run_hooks(url_item(hooks), {}) == {"hooks": "1"}
    assert len(server.received) == 2


def test_literal_url_stays_in_the_hooks_file_and_its_host_is_pinned(tmp_path: Path) -> None:
    with webhook_server() as server, webhook_server() as other:
        hooks = url_hooks(tmp_path, f'[[hook]]\nselect = "owner=a"\nurl = "{server.url()}"\n')
        param = json.dumps([h.as_param() for h in hooks])
        assert "T0K3N" not in param
        assert str(server.port) not in param
        assert hooks[0].url == f"file:{(tmp_path / 'hooks.toml').resolve()}#0"
        run_hooks(url_item(hooks), {})
        assert len(server.received) == 1
        # same host, new port and path: still the planned host, so it is used
        (tmp_path / "hooks.toml").write_text(
            f'[[hook]]\nselect = "owner=a"\nurl = "{other.url("/v2")}"\n')
        run_hooks(url_item(hooks), {})
        assert [p for p, _, _ in other.received] == ["/v2"]
        (tmp_path / "hooks.toml").write_text(
            '[[hook]]\nselect = "owner=a"\nurl = "https://elsewhere.example/x"\n')
        with pytest.raises(StepFailed, match=r"now points at elsewhere\.example, not the planned"):
            run_hooks(url_item(hooks), {})
        (tmp_path / "hooks.toml").unlink()
        with pytest.raises(StepFailed, match=r"entry 0 of the hooks file .* is unreadable, gone"):
            run_hooks(url_item(hooks), {})


def test_reference_that_vanished_by_apply_time_fails_the_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KG_HOOK_URL", "https://reload.example/hook")
    hooks = url_hooks(tmp_path, '[[hook]]\nselect = "owner=a"\nurl = "env:KG_HOOK_URL"\n')
    monkeypatch.delenv("KG_HOOK_URL")
    with pytest.raises(StepFailed, match=r"hook\[0\] \(webhook reload.example\).*KG_HOOK_URL"):
        run_hooks(url_item(hooks), {})


@pytest.mark.parametrize(("text", "message"), [
    ('[[hook]]\nselect = "owner=a"\n', r"hook\[0\]: needs exactly one of 'command' or 'url'"),
    ('[[hook]]\nselect = "owner=a"\ncommand = ["x"]\nurl = "https://h.example/"\n',
     "needs exactly one of"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://h.example/"\ncommand_ = 1\n',
     r"unknown key\(s\) command_; allowed keys are retries, secret, select, timeout, url"),
    ('[[hook]]\nselect = "owner=a"\ncommand = ["x"]\nretries = 1\n', "unknown key.* retries"),
    ('[[hook]]\nselect = "owner=a"\nurl = "ftp://h.example/"\n',
     r"hook\[0\] url: expected an http\(s\) webhook URL"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://"\n', "not an http.s. URL with a host"),
    ('[[hook]]\nselect = "owner=a"\nurl = "env:KG_NO_SUCH_VAR_42"\n', "KG_NO_SUCH_VAR_42"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://h.example/"\nsecret = "hunter2-literal"\n',
     "'secret' must be keyring:NAME or env:VAR"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://h.example/"\nsecret = "env:KG_NO_SUCH_42"\n',
     r"hook\[0\]: secret: .*KG_NO_SUCH_42"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://h.example/"\nretries = 11\n',
     "'retries' must be a whole number"),
    ('[[hook]]\nselect = "owner=a"\nurl = "https://h.example/"\ntimeout = -1\n',
     "'timeout' must be a positive"),
    ('[[hook]]\nselect = "colour=a"\nurl = "https://h.example/"\n', "unknown field"),
    ('[[hook]]\nselect = "owner=a"\nurl = 7\n', "'url' must be"),
])
def test_bad_webhook_hooks_are_exit_2_naming_file_and_entry(tmp_path: Path, text: str,
                                                            message: str) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text('[[hook]]\nselect = "owner=b"\ncommand = ["ok"]\n' + text.replace(
        "hook[0]", "hook[1]"))
    with pytest.raises(UsageError, match=message.replace(r"hook\[0\]", r"hook\[1\]")) as bad:
        load_hooks(path)
    assert str(path) in str(bad.value)
    assert "hunter2" not in str(bad.value)


def test_rotation_with_webhooks_end_to_end_a_500_rolls_back(
        cli: Cli, rot_env: str, tmp_path: Path, unique_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_user(f"{unique_prefix}-good", [("sm", "json"), ("ssm", "plain")])
    bad = make_user(f"{unique_prefix}-bad", [("ssm", "json")])
    monkeypatch.setenv("KG_HOOK_SIGNING", "e2e-s1gn")
    with webhook_server() as ok, webhook_server() as failing:
        failing.answers.extend([(500, "0")] * 2)
        monkeypatch.setenv("KG_BAD_HOOK", failing.url())
        hooks = tmp_path / "hooks.toml"
        hooks.write_text(
            f'[[hook]]\nselect = "name~^{good.name}/"\nurl = "{ok.url()}"\n'
            'secret = "env:KG_HOOK_SIGNING"\n'
            f'[[hook]]\nselect = "name~^{bad.name}/"\nurl = "env:KG_BAD_HOOK"\nretries = 1\n')
        plan_file = tmp_path / "plan.json"
        with freezegun.freeze_time(later(40), tick=True):
            planned = cli(["rotate", "plan", "--hooks", str(hooks), "--out", str(plan_file),
                           "--policy", str(policy_file(tmp_path, 30)), "--select",
                           f"name~^{unique_prefix}", *SOURCES])
            assert planned.exit_code == 0, planned.stderr
            result = cli(["rotate", "apply", str(plan_file), "--yes", "--format", "json"])
    assert result.exit_code == 1, result.stderr
    by_key = {o["key"].split("/")[0]: o for o in json.loads(result.stdout)["outcomes"]}
    assert by_key[good.name]["status"] == "done"
    assert by_key[bad.name]["status"] == "rolled-back"
    assert "hook[0] (webhook 127.0.0.1) failed: 127.0.0.1: HTTP 500 after 2 attempt(s)" in \
        by_key[bad.name]["message"]
    new = assert_invariants(good, complete=True)
    assert_invariants(bad, complete=False)  # the old key is still the active one everywhere
    [(_, headers, raw)] = ok.received
    body = json.loads(raw)
    assert (body["old_key_id"], body["new_key_id"]) == (good.old_id, new.held_id)
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(
        b"e2e-s1gn", raw, hashlib.sha256).hexdigest()
    assert len(failing.received) == 2
    journal = cli.home / "data" / "keyguard" / "rotation" / "journal.jsonl"
    texts = [raw.decode(), *(b.decode() for _, _, b in failing.received), result.stdout,
             result.stderr, plan_file.read_text(), journal.read_text()]
    assert leaked_slices([good.old_secret, new.secrets[0], bad.old_secret], texts) == []
    for text in texts[2:]:
        assert "T0K3N" not in text
        assert "e2e-s1gn" not in text
