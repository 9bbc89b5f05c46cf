"""SIGKILL at every journal boundary of a real rotation, then resume: the invariants hold.

A subprocess runs ``keyguard rotate run --due --apply --yes`` with the test hook
``KEYGUARD_TEST_KILL_AT_BOUNDARY=N``, which SIGKILLs it right after the N-th journal line
(every step start, note and end is a boundary). Then ``status`` must report the
interruption (exit 4) and ``resume`` must settle it: every copy holds the same active
key, no orphaned new key remains, and the old key is inactive once the rotation is
complete. A rotation is complete exactly when the kill landed after the last copy was
written; before that, resume rolls back.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.rotation.world import (
    SOURCES,
    User,
    assert_invariants,
    child_env,
    later,
    make_user,
    policy_file,
    run_frozen,
)

# Boundaries of one rotation with two copies (see the module docstring):
# 1 begin, 2/3 prepare, 4/5 create, 6/7/8 store:0 (start, note, done),
# 9/10/11 store:1, 12/13 verify, 14/15 deactivate-old, 16 done.
BOUNDARIES = 16
LAST_STORE_DONE = 11


def _rotate(user_prefix: str, home: Path, tmp: Path, kill_at: int | None,
            users: list[User]) -> int:
    env = child_env(home)
    if kill_at is not None:
        env["KEYGUARD_TEST_KILL_AT_BOUNDARY"] = str(kill_at)
    proc = run_frozen(["rotate", "run", "--due", "--apply", "--yes",
                       "--policy", str(policy_file(tmp, 30)), "--select",
                       f"name~^{user_prefix}", *SOURCES], later(40), env, tmp)
    return proc.returncode


def _settle(home: Path, tmp: Path) -> tuple[int, int]:
    env = child_env(home)
    status = run_frozen(["rotate", "status", "--format", "json"], later(40), env, tmp)
    resume = run_frozen(["rotate", "resume", "--yes"], later(40), env, tmp)
    return status.returncode, resume.returncode


@pytest.mark.parametrize("kill_at", range(1, BOUNDARIES + 1))
def test_sigkill_at_every_boundary_then_resume(kill_at: int, rot_env: str, tmp_path: Path,
                                               unique_prefix: str) -> None:
    user = make_user(f"{unique_prefix}-k{kill_at}", [("sm", "json"), ("ssm", "plain")])
    home = tmp_path / "home"
    code = _rotate(user.name, home, tmp_path, kill_at, [user])
    assert code == -signal.SIGKILL
    status_code, resume_code = _settle(home, tmp_path)
    if kill_at == BOUNDARIES:  # killed after the "done" line: nothing left to resume
        assert (status_code, resume_code) == (0, 0)
    else:  # resume exits 0 when it finishes the rotation, 1 when it rolls it back
        assert status_code == 4
        assert resume_code == (0 if kill_at >= LAST_STORE_DONE else 1)
    assert_invariants(user, complete=kill_at >= LAST_STORE_DONE)
    journal = (home / "data" / "keyguard" / "rotation" / "journal.jsonl").read_text()
    assert user.old_secret not in journal
    # after settling, a second resume has nothing to do and the journal is closed
    again = run_frozen(["rotate", "status", "--format", "json"], later(40), child_env(home),
                       tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout)["interrupted"] == []


def test_kill_mid_run_with_dozens_of_keys(rot_env: str, tmp_path: Path, unique_prefix: str) -> None:
    """24 users (one already at two keys); a kill mid-run, resume, then the next run finishes."""
    users = [make_user(f"{unique_prefix}-m{i:02d}", [("sm", "json"), ("ssm", "plain")],
                       spare="inactive" if i == 3 else None) for i in range(24)]
    home = tmp_path / "home"
    # items run in subject order; 8 full rotations then the 9th dies right after store:0
    code = _rotate(unique_prefix, home, tmp_path, 8 * BOUNDARIES + 8, users)
    assert code == -signal.SIGKILL
    status_code, resume_code = _settle(home, tmp_path)
    assert (status_code, resume_code) == (4, 1)  # the 9th is rolled back: exit 1
    done = [u for u in users if assert_invariants(u).held_id != u.old_id]
    assert len(done) == 8
    code = _rotate(unique_prefix, home, tmp_path, None, users)
    assert code == 0
    for user in users:
        assert_invariants(user, complete=True)
