"""The journal: fsync'd JSONL, torn last line tolerated, states folded, never a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyguard.rotation.context import LeakRefused, Scratch
from keyguard.rotation.journal import Journal, JournalError
from keyguard.rotation.plan import RotationItem, StoreCopy
from keyguard.secret import Secret

T0 = datetime(2026, 11, 27, tzinfo=UTC)
ITEM = RotationItem(token="rot-1", action="rotate", rotator="aws-iam", subject="aws-iam:x",
                    name="alice/AKIA1", key_id="AKIA1", principal="alice", reason="due",
                    steps=("prepare", "create", "store:0"),
                    copies=(StoreCopy("aws-ssm", "arn:p", "/p"),))


def test_events_fold_into_states(tmp_path: Path) -> None:
    j = Journal(tmp_path / "r" / "journal.jsonl")
    j.append(T0, "rot-1", "begin", item=ITEM)
    j.append(T0, "rot-1", "step-start", step="prepare")
    j.append(T0, "rot-1", "step-done", step="prepare", facts={"before": "AKIA1", "old_key_id": "AKIA1"})
    j.append(T0, "rot-1", "step-start", step="create")
    state = j.states()["rot-1"]
    assert state.item == ITEM
    assert (state.status, state.done_steps, state.interrupted_step) == ("in-progress", ["prepare"], "create")
    assert [s.token for s in j.incomplete()] == ["rot-1"]
    j.append(T0, "rot-1", "step-done", step="create", facts={"new_key_id": "AKIA2"})
    j.append(T0 + timedelta(hours=1), "rot-1", "done")
    assert j.incomplete() == []
    (done,) = j.completed()
    assert (done.old_key_id, done.finished) == ("AKIA1", T0 + timedelta(hours=1))
    assert oct((tmp_path / "r" / "journal.jsonl").stat().st_mode & 0o777) == "0o600"


def test_retry_after_rollback_is_a_new_attempt(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.append(T0, "rot-1", "begin", item=ITEM)
    j.append(T0, "rot-1", "rolled-back", message="verify failed")
    j.append(T0, "rot-1", "begin", item=ITEM)
    state = j.states()["rot-1"]
    assert (state.attempt, state.status, state.done_steps) == (2, "in-progress", [])


def test_torn_last_line_is_ignored_but_corruption_inside_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.append(T0, "rot-1", "begin", item=ITEM)
    with path.open("a") as fh:
        fh.write('{"v": 1, "at": "2026-11-27T00:00:00+00:00", "tok')  # killed mid-write
    assert j.states()["rot-1"].status == "in-progress"
    with path.open("a") as fh:
        fh.write("\n")
    j.append(T0, "rot-1", "done")
    with pytest.raises(JournalError, match=r"j.jsonl:2: corrupt journal line"):
        j.states()


def test_guard_refuses_a_line_holding_a_secret(tmp_path: Path) -> None:
    scratch = Scratch()
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz"
    scratch.put("new_secret", Secret(secret))
    j = Journal(tmp_path / "j.jsonl", guard=scratch.check)
    with pytest.raises(LeakRefused):
        j.append(T0, "rot-1", "note", facts={"oops": secret})
    assert not (tmp_path / "j.jsonl").exists()
    j.append(T0, "rot-1", "note", facts={"fine": "AKIA1"})
    assert secret not in (tmp_path / "j.jsonl").read_text()


def test_each_append_is_a_complete_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    for n in range(20):
        j.append(T0, f"rot-{n}", "begin", item=ITEM)
    data = (tmp_path / "j.jsonl").read_bytes()
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 20
    assert (tmp_path / "j.jsonl").stat().st_size == len(data)
