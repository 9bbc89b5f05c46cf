"""`keyguard rotate` for provider keys: the supplied key (stdin, keyring) and its safety rules.

Anthropic is the assisted provider here (OpenAI shares the flow and is covered in
tests/rotation/test_provider_rotators.py); LiteLLM needs no supplied key. Copies live in
the rotation moto server; the fake APIs are the rotation tests' own (module servers,
reseeded per test).
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from keyguard.cli import app
from keyguard.credentials import store
from keyguard.fakes import fake_key
from keyguard.secret import Secret
from tests.cli.conftest import Cli
from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.litellm_api import FakeLiteLLMApi
from tests.fixtures.keyring_service import KeyringService
from tests.rotation import test_provider_rotators as prov
from tests.rotation import world
from tests.rotation.test_provider_rotators import (
    World,
    anthropic_world,
    assisted_state,
    held,
    litellm_state,
    litellm_world,
)

rotation_moto = world.rotation_moto
rot_env = world.rot_env
anthropic_server = prov.anthropic_server
anthropic = prov.anthropic
litellm_server = prov.litellm_server
litellm = prov.litellm

AWS = ("--source", "aws-secretsmanager", "--source", "aws-ssm", "--region", world.REGION)


@pytest.fixture
def old_key(anthropic: FakeAnthropicApi) -> FakeAnthropicApi:
    """Make key 0 of the fake 200 days old, so a 30-day policy finds it due."""
    anthropic.keys[0] = dataclasses.replace(
        anthropic.keys[0], created=datetime.now(UTC) - timedelta(days=200))
    return anthropic


def _plan(cli: Cli, tmp: Path, w: World) -> Path:
    out = tmp / "plan.json"
    result = cli(["rotate", "plan", "--policy", str(world.policy_file(tmp, 30)),
                  "--source", "anthropic", *AWS, "--select", f"key_id={w.key_id}",
                  "--out", str(out)])
    assert result.exit_code == 0, result.stdout + result.stderr
    items = json.loads(out.read_text())["items"]
    assert [i["rotator"] for i in items] == ["anthropic"]
    return out


def _journal(home: Path) -> Path:
    return home / "data" / "keyguard" / "rotation" / "journal.jsonl"


def _no_leak(w: World, *texts: str) -> None:
    for text in texts:
        assert w.old not in text
        assert w.new not in text


def test_apply_with_stdin_rotates_and_never_shows_the_key(
        cli: Cli, rot_env: str, old_key: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    w = anthropic_world(old_key, unique_prefix, ["sm-json", "ssm-plain"])
    plan = _plan(cli, tmp_path, w)
    result = cli(["rotate", "apply", str(plan), "--stdin", "--yes", "--format", "json"],
                 input=w.new + "\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    (outcome,) = json.loads(result.stdout)["outcomes"]
    assert outcome["status"] == "done"
    assert assisted_state(w) == "new"
    assert old_key.status_of(w.key_id) == "inactive"
    _no_leak(w, result.stdout, result.stderr, plan.read_text(), _journal(cli.home).read_text())


def test_apply_without_a_supplied_key_is_refused_before_any_change(
        cli: Cli, rot_env: str, old_key: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    w = anthropic_world(old_key, unique_prefix, ["ssm-plain"])
    plan = _plan(cli, tmp_path, w)
    old_key.log.clear()
    result = cli(["rotate", "apply", str(plan), "--yes"])
    assert result.exit_code == 2
    assert "needs the new key" in result.stderr
    assert "--from-keyring NAME" in result.stderr
    assert assisted_state(w) == "old"
    assert old_key.log == []  # not even a read: refused before the run began


def test_apply_with_a_key_of_another_kind_is_refused_before_any_change(
        cli: Cli, rot_env: str, old_key: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    w = anthropic_world(old_key, unique_prefix, ["ssm-plain"])
    plan = _plan(cli, tmp_path, w)
    value = fake_key("openai-project", random.Random(5))
    result = cli(["rotate", "apply", str(plan), "--stdin", "--yes"], input=value)
    assert result.exit_code == 2
    assert "the supplied key is a openai-project, but" in result.stderr
    assert "nothing changed" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # one line, plus the hint
    assert assisted_state(w) == "old"
    assert value not in result.stdout + result.stderr


def test_no_option_takes_the_key_and_an_extra_argument_is_refused(cli: Cli) -> None:
    rotate = typer.main.get_command(app).commands["rotate"]  # type: ignore[attr-defined]
    for name in ("apply", "run", "resume"):
        options = {p.name: p for p in rotate.commands[name].params}
        valued = {n for n, p in options.items() if p.opts[0].startswith("--")
                  and not getattr(p, "is_flag", False)}
        # every option with a value names a file, a setting or a reference: never the key
        assert valued <= {"wait", "notify", "from_keyring", "output_format", "output", "state",
                          "max_keys", "policy", "source", "region", "select", "grace_days",
                          "hooks", "alerts"}, (name, valued)
        if name != "resume":
            assert options["from_keyring"].metavar == "NAME"
            assert options["stdin"].is_flag
        else:  # resume never needs the key (read back from a copy, or rolled back)
            assert "from_keyring" not in options
            assert "stdin" not in options
    key = fake_key("anthropic-api", random.Random(6))
    result = cli(["rotate", "apply", "plan.json", "--yes", key])
    assert result.exit_code == 2
    assert "unexpected extra argument" in result.stderr


def test_apply_from_keyring_with_a_real_secret_service(
        secret_service: KeyringService, rot_env: str, old_key: FakeAnthropicApi,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique_prefix: str) -> None:
    home = tmp_path / "home"
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    w = anthropic_world(old_key, unique_prefix, ["sm-json"])
    plan = _plan(Cli(home, tmp_path), tmp_path, w)
    missing = CliRunner().invoke(app, ["rotate", "apply", str(plan), "--yes",
                                       "--from-keyring", "no-such-key"], prog_name="keyguard")
    assert missing.exit_code == 2
    assert "keyguard auth set no-such-key" in missing.stderr
    store("new-anthropic", Secret(w.new))
    result = CliRunner().invoke(app, ["rotate", "apply", str(plan), "--yes",
                                      "--from-keyring", "new-anthropic"], prog_name="keyguard")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert assisted_state(w) == "new"
    _no_leak(w, result.stdout, result.stderr, _journal(home).read_text())


def test_run_skips_assisted_keys_without_a_key_and_rotates_with_one(
        cli: Cli, rot_env: str, old_key: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    w = anthropic_world(old_key, unique_prefix, ["ssm-plain"])
    args = ["rotate", "run", "--due", "--apply", "--yes", "--policy",
            str(world.policy_file(tmp_path, 30)), "--source", "anthropic", *AWS,
            "--format", "json"]
    skipped = cli(args)
    assert skipped.exit_code == 0, skipped.stdout + skipped.stderr
    (outcome,) = json.loads(skipped.stdout)["outcomes"]
    assert outcome["status"] == "skipped"
    assert f"--select key_id={w.key_id} --from-keyring NAME" in outcome["message"]
    assert assisted_state(w) == "old"
    dry = cli(["rotate", "run", "--due", "--stdin"], input=w.new)
    assert dry.exit_code == 2
    assert "only apply with --apply" in dry.stderr
    done = cli([*args, "--stdin", "--select", f"key_id={w.key_id}"], input=w.new)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert [o["status"] for o in json.loads(done.stdout)["outcomes"]] == ["done"]
    assert assisted_state(w) == "new"


def test_run_regenerates_a_litellm_key_without_any_supplied_key(
        cli: Cli, rot_env: str, litellm: FakeLiteLLMApi, tmp_path: Path,
        unique_prefix: str) -> None:
    w = litellm_world(litellm, unique_prefix, ["sm-json", "ssm-plain"])
    result = cli(["rotate", "run", "--due", "--apply", "--yes", "--policy",
                  str(world.policy_file(tmp_path, 5)), "--source", "litellm", *AWS,
                  "--select", f"key_id={w.key_id}", "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [o["status"] for o in json.loads(result.stdout)["outcomes"]] == ["done"]
    assert litellm_state(w) == "new"
    new = held(w.copies[0])
    for text in (result.stdout, result.stderr, _journal(cli.home).read_text()):
        assert w.old not in text
        assert new not in text


def test_sigkill_mid_assisted_rotation_then_resume_without_stdin(
        cli: Cli, rot_env: str, old_key: FakeAnthropicApi, tmp_path: Path,
        unique_prefix: str) -> None:
    """A real SIGKILL after verify, then resume finishes with the key read back from a copy.

    Every other boundary (and the rollback side) is swept in-process in
    tests/rotation/test_provider_rotators.py; one real kill proves the subprocess path.
    """
    kill_at, finished = 11, True
    w = anthropic_world(old_key, unique_prefix, ["sm-json", "ssm-plain"])
    plan = _plan(cli, tmp_path, w)
    env = {**world.child_env(cli.home), "KEYGUARD_TEST_KILL_AT_BOUNDARY": str(kill_at)}
    proc = subprocess.run([sys.executable, "-m", "keyguard", "rotate", "apply", str(plan),
                           "--stdin", "--yes"], input=w.new, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    status = cli(["rotate", "status"])
    assert status.exit_code == 4
    resumed = cli(["rotate", "resume", "--yes"])
    assert resumed.exit_code == (0 if finished else 1), resumed.stdout + resumed.stderr
    assert assisted_state(w) == ("new" if finished else "old")
    assert cli(["rotate", "status"]).exit_code == 0
    _no_leak(w, proc.stdout, proc.stderr, resumed.stdout, resumed.stderr,
             _journal(cli.home).read_text())
