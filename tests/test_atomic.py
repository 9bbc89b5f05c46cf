"""atomic_write replaces regular files only; devices, FIFOs and symlinks are written through."""

import os
import stat
import threading
from pathlib import Path

from keyguard.atomic import atomic_write


def test_new_and_existing_regular_files_are_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write(target, "one\n")
    assert target.read_text() == "one\n"
    target.chmod(0o644)
    atomic_write(target, "two\n")
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # permissions of the file replaced
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    atomic_write(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert received == ["through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO: a device is never renamed over


def test_dev_null_stays_a_device() -> None:
    atomic_write(Path("/dev/null"), "discarded\n")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
