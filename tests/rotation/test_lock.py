"""One rotation run at a time: a clear message, optional waiting, no stale lock after SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from keyguard.rotation.lock import RotationLock, RotationLocked


def test_second_holder_fails_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with RotationLock(path, stamp="since 2026-11-27T21:00:00+00:00"), \
            pytest.raises(RotationLocked, match=r"holds .*lock \(pid \d+ since 2026") as info:
        RotationLock(path).acquire()
    assert "--wait" in str(info.value)
    with RotationLock(path):  # released: free again
        pass


def test_wait_queues_behind_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first = RotationLock(path)
    first.acquire()
    threading.Timer(0.3, first.release).start()
    started = time.monotonic()
    with RotationLock(path, wait=10):
        assert time.monotonic() - started >= 0.2
    with pytest.raises(RotationLocked, match=r"after waiting 0\.2 s"), RotationLock(path):
        RotationLock(path, wait=0.2).acquire()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    code = ("import sys,time; from pathlib import Path; from keyguard.rotation.lock import "
            "RotationLock; RotationLock(Path(sys.argv[1])).acquire(); print('held', flush=True);"
            " time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(RotationLocked):
        RotationLock(path).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with RotationLock(path):
        pass
