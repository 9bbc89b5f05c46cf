"""The ``dotenv`` source: credentials sitting in plaintext ``.env`` files under the configured paths.

A ``.env`` file is plaintext at rest, so unlike a secret store its values are always
classified (not only with ``--inspect-values``): the file is already a copy of the secret
on disk, and a kind is what the policies need. Records carry the fingerprint, never the
value, and are marked ``plaintext``.

The walk is bounded and never follows a path twice: excluded directory names (VCS and
dependency folders) are pruned, each real directory is entered once (a symlink loop ends
there), at most ``max_files`` files are read and none larger than ``max_file_bytes``.
Anything the walk could not read or had to stop at becomes a :class:`SourceFailure`
naming the path, so partial coverage is never silent.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import ClassVar

from keyguard.classify import scan_env_text
from keyguard.config import DotenvConfig
from keyguard.model import KeyRecord, SourceFailure
from keyguard.sources import Source, SourceContext

_HINT_PATHS = "check [sources.dotenv] paths"
_HINT_BINARY = "only text .env files are scanned; exclude the file if it is not one"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(slots=True)
class _Walk:
    """State shared by every root of one collect(): the file budget and what was seen."""

    files_read: int = 0
    stopped: bool = False
    seen_dirs: set[tuple[int, int]] = field(default_factory=set)
    seen_files: set[tuple[int, int]] = field(default_factory=set)

    def done(self) -> bool:
        """Tell whether the file budget ran out (a method, so mypy does not narrow it)."""
        return self.stopped


class DotenvSource:
    """Credentials in ``.env`` files: one record per credential, located as ``path:line``."""

    name: ClassVar[str] = "dotenv"
    description: ClassVar[str] = "Plaintext .env files under the configured paths"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg: DotenvConfig = ctx.config.sources.dotenv

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield a record per credential found and a failure per path that could not be read."""
        walk = _Walk()
        for given in self._cfg.paths:
            if walk.done():
                break
            before = walk.files_read
            yield from self._root(given, walk)
            self._ctx.progress(self.name, f"{given}: {walk.files_read - before} files read")

    def _root(self, given: str, walk: _Walk) -> Iterator[KeyRecord | SourceFailure]:
        # NOTE: a relative path resolves against the process's working directory; the CLI
        # owns that choice, so nothing here looks the directory up.
        root = Path(given).expanduser()
        try:
            info = root.stat()
        except FileNotFoundError:
            yield self._failure(given, f"{given}: no such file or directory", _HINT_PATHS)
            return
        except OSError as exc:
            yield self._failure(given, f"{given}: cannot read ({_reason(exc)})", _HINT_PATHS)
            return
        if stat.S_ISDIR(info.st_mode):
            yield from self._walk(root, info, walk)
        elif stat.S_ISREG(info.st_mode):
            # A file named explicitly is scanned whatever its name: the user asked for it.
            yield from self._file(root, walk)
        else:
            yield self._failure(given, f"{given}: not a regular file or directory", _HINT_PATHS)

    def _walk(self, root: Path, info: os.stat_result, walk: _Walk) -> Iterator[KeyRecord | SourceFailure]:
        """Walk one directory tree depth-first in name order, so output is stable run to run.

        Symbolic links are followed (a linked config directory is scanned too) but only
        after every real path under the root: a file or directory reachable both ways is
        reported under its real path, and the (device, inode) sets end symlink loops.
        """
        walk.seen_dirs.add((info.st_dev, info.st_ino))
        stack = [root]
        linked: deque[Path] = deque()
        while (stack or linked) and not walk.done():
            if not stack:
                yield from self._linked(linked.popleft(), stack, walk)
                continue
            directory = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                yield self._failure(str(directory), f"{directory}: cannot list ({_reason(exc)})", "")
                continue
            subdirs: list[Path] = []
            for entry in entries:
                if self._excluded(entry.name):
                    continue
                path = directory / entry.name
                try:
                    if entry.is_symlink():
                        if self._wanted(entry.name) or entry.is_dir():
                            linked.append(path)
                    elif entry.is_dir(follow_symlinks=False):
                        entry_stat = entry.stat(follow_symlinks=False)
                        key = (entry_stat.st_dev, entry_stat.st_ino)
                        if key not in walk.seen_dirs:  # a bind mount can loop as well
                            walk.seen_dirs.add(key)
                            subdirs.append(path)
                    elif self._wanted(entry.name):
                        yield from self._file(path, walk)
                        if walk.done():
                            return
                except OSError:
                    continue  # vanished mid-walk, or a dangling symlink: nothing to scan
            stack.extend(reversed(subdirs))

    def _linked(self, path: Path, stack: list[Path], walk: _Walk) -> Iterator[KeyRecord | SourceFailure]:
        """Follow one symbolic link found by the walk: queue its directory or read its file."""
        try:
            target = path.stat()
        except OSError:
            return  # dangling, or a loop the OS itself refuses (ELOOP)
        if stat.S_ISDIR(target.st_mode):
            key = (target.st_dev, target.st_ino)
            if key not in walk.seen_dirs:
                walk.seen_dirs.add(key)
                stack.append(path)
        else:
            yield from self._file(path, walk)

    def _file(self, path: Path, walk: _Walk) -> Iterator[KeyRecord | SourceFailure]:
        shown = str(path)
        try:
            # NOTE: O_NONBLOCK so a FIFO named ".env" cannot block open(); the fstat below
            # then skips it. Size and mtime come from the opened file, not an earlier stat.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return  # a dangling symlink or a file deleted mid-walk
        except OSError as exc:
            yield self._failure(shown, f"{shown}: cannot read ({_reason(exc)})", "")
            return
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) in walk.seen_files:
                return  # not a file, or a second path (hard or symbolic link) to one already read
            walk.seen_files.add((info.st_dev, info.st_ino))
            if walk.files_read >= self._cfg.max_files:
                walk.stopped = True
                yield self._failure(shown, f"stopped at {shown}: read the limit of "
                                           f"{self._cfg.max_files} files",
                                    "raise [sources.dotenv] max-files or narrow paths/exclude")
                return
            walk.files_read += 1
            limit = self._cfg.max_file_bytes
            if info.st_size > limit:
                yield self._over_size(shown, info.st_size)
                return
            try:
                data = fh.read(limit + 1)
            except OSError as exc:
                yield self._failure(shown, f"{shown}: cannot read ({_reason(exc)})", "")
                return
        if len(data) > limit:  # grew since fstat
            yield self._over_size(shown, len(data))
            return
        text = _decode(data)
        del data
        if text is None:
            yield self._failure(shown, f"{shown}: not UTF-8 text", _HINT_BINARY)
            return
        changed = datetime.fromtimestamp(info.st_mtime, tz=UTC)
        for match in scan_env_text(text, self._ctx.fingerprinter):
            variable = match.field or ""
            yield KeyRecord(
                source=self.name,
                location=f"{shown}:{match.line}" if match.line else shown,
                anchor=shown,
                name=variable,
                field=variable or None,
                provider=match.provider,
                kind=match.kind,
                key_id=match.key_id,
                fingerprint=match.fingerprint, links=match.links,
                plaintext=True,
                value_inspected=True,
                last_changed=changed,
                provenance={"last_changed": "file mtime"},
            )

    def _excluded(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self._cfg.exclude)

    def _wanted(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self._cfg.patterns)

    def _over_size(self, shown: str, size: int) -> SourceFailure:
        return self._failure(shown, f"{shown}: {size} bytes is over the {self._cfg.max_file_bytes}-byte "
                                    "limit; not scanned",
                             "raise [sources.dotenv] max-file-bytes or exclude the file")

    def _failure(self, scope: str, message: str, hint: str) -> SourceFailure:
        return SourceFailure(source=self.name, scope=scope, message=message, hint=hint)


def _decode(data: bytes) -> str | None:
    """Decode a .env file: UTF-8 (a BOM is dropped) or BOM-marked UTF-16; None for binary."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith(_UTF16_BOMS):
        # Windows editors ("Unicode" in Notepad) write UTF-16 with a BOM.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None  # valid UTF-8 can hold NUL, but no text .env file does
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _reason(exc: OSError) -> str:
    """Name an OS error briefly ("Permission denied"), without repeating the path."""
    return exc.strerror or type(exc).__name__


PLUGIN: type[Source] = DotenvSource
