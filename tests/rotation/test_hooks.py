"""Consumer hooks: no shell, no secret, failures and timeouts fail the step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from keyguard.errors import UsageError
from keyguard.rotation.context import StepFailed
from keyguard.rotation.hooks import load_hooks, run_hooks
from keyguard.rotation.plan import RotationItem, with_hook_step


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
