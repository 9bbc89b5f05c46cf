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

import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyguard.cli import app
from keyguard.rotation.journal import Journal
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
            users: list[User]) -> tuple[int, str]:
    env = child_env(home)
    if kill_at is not None:
        env["KEYGUARD_TEST_KILL_AT_BOUNDARY"] = str(kill_at)
    proc = run_frozen(["rotate", "run", "--due", "--apply", "--yes",
                       "--policy", str(policy_file(tmp, 30)), "--select",
                       f"name~^{user_prefix}", *SOURCES], later(40), env, tmp)
    return proc.returncode, proc.stderr


def _settle(home: Path) -> tuple[int, int]:
    """``status`` then ``resume --yes``, in-process (the subprocess start-up is the slow part)."""
    status = CliRunner().invoke(app, ["rotate", "status"], prog_name="keyguard")
    resume = CliRunner().invoke(app, ["rotate", "resume", "--yes"], prog_name="keyguard")
    return status.exit_code, resume.exit_code


def _journal(home: Path) -> Journal:
    return Journal(home / "data" / "keyguard" / "rotation" / "journal.jsonl")


@pytest.mark.parametrize("kill_at", range(1, BOUNDARIES + 1))
def test_sigkill_at_every_boundary_then_resume(kill_at: int, rot_env: str, tmp_path: Path,
                                               unique_prefix: str, home: Path) -> None:
    user = make_user(f"{unique_prefix}-k{kill_at}", [("sm", "json"), ("ssm", "plain")])
    code, stderr = _rotate(user.name, home, tmp_path, kill_at, [user])
    assert code == -signal.SIGKILL, stderr
    status_code, resume_code = _settle(home)
    if kill_at == BOUNDARIES:  # killed after the "done" line: nothing left to resume
        assert (status_code, resume_code) == (0, 0)
    else:  # resume exits 0 when it finishes the rotation, 1 when it rolls it back
        assert status_code == 4
        assert resume_code == (0 if kill_at >= LAST_STORE_DONE else 1)
    assert_invariants(user, complete=kill_at >= LAST_STORE_DONE)
    journal = _journal(home)
    assert user.old_secret not in journal.path.read_text()
    assert journal.incomplete() == []  # settled: nothing left for the next run


def test_kill_mid_run_with_dozens_of_keys(rot_env: str, tmp_path: Path, unique_prefix: str,
                                          home: Path) -> None:
    """24 users (one already at two keys); a kill mid-run, resume, then the next run finishes."""
    users = [make_user(f"{unique_prefix}-m{i:02d}", [("sm", "json"), ("ssm", "plain")],
                       spare="inactive" if i == 3 else None) for i in range(24)]
    # items run in subject order; 8 full rotations then the 9th dies right after store:0
    code, stderr = _rotate(unique_prefix, home, tmp_path, 8 * BOUNDARIES + 8, users)
    assert code == -signal.SIGKILL, stderr
    status_code, resume_code = _settle(home)
    assert (status_code, resume_code) == (4, 1)  # the 9th is rolled back: exit 1
    done = [u for u in users if assert_invariants(u).held_id != u.old_id]
    assert len(done) == 8
    # the clock is moved forward, so the new keys look old too: rotate only the rest
    rest = [u for u in users if u not in done]
    code, stderr = _rotate(f"({'|'.join(u.name for u in rest)})/", home, tmp_path, None, users)
    assert code == 0, stderr
    for user in users:
        assert_invariants(user, complete=True)
