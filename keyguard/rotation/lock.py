"""One rotation run at a time: an advisory ``flock`` on a file beside the journal.

Two concurrent runs could both see a user with one key, both create a second one, and
each roll the other back; the lock makes that impossible on one machine. The lock file
records the holder's pid and start time (public facts only) for the error message. An
OS-level lock dies with its process, so a SIGKILLed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from keyguard.errors import KeyguardError


class RotationLocked(KeyguardError):
    """Another rotation run holds the lock (exit 2 through the CLI's error mapping)."""


class RotationLock:
    """Exclusive lock on ``path``; ``wait`` seconds > 0 polls until it is free or time runs out."""

    def __init__(self, path: Path, wait: float = 0.0, *, stamp: str = "",
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.wait = wait
        self.stamp = stamp
        self._sleep = sleep
        self._monotonic = monotonic
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RotationLocked` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = self._monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self._monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    waited = f" after waiting {self.wait:g} s" if self.wait else ""
                    raise RotationLocked(
                        f"another keyguard rotation run holds {self.path} ({holder}){waited}",
                        "wait for it to finish, or pass --wait SECONDS to queue behind it",
                    ) from None
                self._sleep(min(0.2, max(0.0, deadline - self._monotonic())))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} {self.stamp}".strip().encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            os.close(fd)

    def __enter__(self) -> RotationLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
