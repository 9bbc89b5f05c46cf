"""`keyguard rotate` end to end against a real moto server (its own process)."""

from __future__ import annotations

import json
from pathlib import Path

import freezegun

from tests.cli.conftest import Cli
from tests.rotation import world
from tests.rotation.world import SOURCES, assert_invariants, later, make_user, policy_file

rotation_moto = world.rotation_moto
rot_env = world.rot_env


def _run(cli: Cli, args: list[str], days: int = 40) -> object:
    with freezegun.freeze_time(later(days), tick=True):
        return cli(args)


def test_run_due_apply_rotates_every_copy_and_keeps_shapes(cli: Cli, rot_env: str, tmp_path: Path) -> None:
    user = make_user("rt-e2e", [("sm", "json"), ("ssm", "plain"), ("ssm", "env")])
    policy = str(policy_file(tmp_path, 30))
    result = _run(cli, ["rotate", "run", "--due", "--apply", "--yes", "--policy", policy,
                        "--select", f"name~^{user.name}/", *SOURCES, "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr  # type: ignore[attr-defined]
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert [o["status"] for o in report["outcomes"]] == ["done"]
    snap = assert_invariants(user, complete=True)
    assert snap.keys[user.old_id] == "Inactive"
    assert user.old_secret not in result.stdout + result.stderr  # type: ignore[attr-defined]
