"""Atomic file writes: a report, baseline or plan is either the old file or the new one."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename over ``path``.

    Only regular files are replaced. A symlink is followed (the link stays, its target gets
    the new content), and anything that is not a regular file (``/dev/null``, a FIFO, a
    terminal, ``/dev/stdout``) is written in place: renaming over a device as root would
    turn ``/dev/null`` into a regular file for the whole machine.
    """
    path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with path.open("w", encoding="utf-8") as fh:
            fh.write(text)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            Path(tmp).chmod(stat.S_IMODE(mode))  # keep the permissions of the file replaced
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
