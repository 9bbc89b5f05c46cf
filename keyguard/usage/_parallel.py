"""Parse one large JSONL usage file on every core: blocks of whole lines go to worker processes.

Why: parsing, prompt fingerprints and phrasing markers cost ~100-200 us of pure Python per
LiteLLM row, so a 1M-row log is CPU-bound in one process; the reader's other work (dedupe,
countries, the store) is a small share. Workers run the file's own importer on blocks of
complete lines and send back plain tuples; the caller gets the same items, in file order,
with the same line numbers as a serial read.

Invariants:

* A block ends only where one line ends with ``}`` and the next starts with ``{``. In valid
  JSON that is always between two top-level values (a nested value needs a ``,`` or ``:``
  before it, and strings hold no raw newline), so no record is cut. A stretch with no such
  boundary for ``_MAX_BLOCK`` bytes is read serially in this process instead.
* Memory is bounded: at most ``2 * workers`` blocks are in flight.
* Workers are spawned, not forked: the parent holds DuckDB's threads and locks.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import fields
from io import BytesIO
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import IMPORTERS, Importer, RowError

#: Files smaller than this are read serially: starting workers costs ~0.5 s.
MIN_BYTES = 64 * 1024 * 1024
#: Bytes read per block (cut back to the last record boundary).
BLOCK_BYTES = 4 * 1024 * 1024
_MAX_BLOCK = 64 * 1024 * 1024

_FIELDS = tuple(f.name for f in fields(UsageEvent))
_as_tuple = attrgetter(*_FIELDS)
_ORIGIN = _FIELDS.index("origin")

Item = tuple[object, ...] | RowError

_worker_importer: Importer | None = None


def workers() -> int:
    """How many worker processes to use: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def suitable(path: Path, head: bytes) -> bool:
    """True for a large, uncompressed JSONL-looking file on a machine with several cores.

    ``head`` is the file's first (decompressed) bytes; a gzip file is never split, since
    its blocks cannot be found without decompressing it all.
    """
    if workers() < 2 or not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        return False
    try:
        with path.open("rb") as raw:
            if raw.read(2) == b"\x1f\x8b":
                return False
        return path.stat().st_size >= MIN_BYTES
    except OSError:
        return False


def _init(config: UsageConfig, name: str) -> None:
    global _worker_importer  # one importer per worker process, built once
    _worker_importer = IMPORTERS.load(name)(config)


def _parse(path: str, first_line: int, block: bytes) -> list[Item]:
    """Worker: the items of one block, lines and origins shifted to the file's numbering."""
    assert _worker_importer is not None  # noqa: S101 - set by the pool initializer
    return list(_shifted(_worker_importer.read(BytesIO(block), path), path, first_line))


def _shifted(items: Iterator[UsageEvent | RowError], path: str, first_line: int
             ) -> Iterator[Item]:
    """Items as tuples (cheap to pickle) with line numbers counted from ``first_line``."""
    offset = first_line - 1
    prefix = f"{path}:"
    for item in items:
        if isinstance(item, RowError):
            yield RowError(item.path, item.line + offset if item.line else 0, item.reason)
            continue
        values = _as_tuple(item)
        origin = values[_ORIGIN]
        # NOTE: every importer writes origin as "<path>:<line>" (the store's watermarks
        # rely on it too); only that form is renumbered.
        if offset and isinstance(origin, str) and origin.startswith(prefix):
            tail = origin[len(prefix):]
            if tail.isdigit():
                values = (*values[:_ORIGIN], f"{prefix}{int(tail) + offset}",
                          *values[_ORIGIN + 1:])
        yield values


def read(path: Path, importer: Importer, config: UsageConfig) -> Iterator[UsageEvent | RowError]:
    """Every item of ``path`` as ``importer.read`` would yield it, parsed on all cores.

    Raises:
        OSError: the file cannot be read (as a serial read would).

    """
    count = workers()
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(count, mp_context=context, initializer=_init,
                               initargs=(config, importer.name))
    pending: deque[Future[list[Item]]] = deque()
    where = str(path)
    try:
        with path.open("rb") as raw:
            for first_line, block, serial in _blocks(raw):
                if serial is not None:
                    # No record boundary in _MAX_BLOCK bytes: finish what is in flight,
                    # then read the rest of the file here, in order.
                    while pending:
                        yield from _events(pending.popleft().result())
                    yield from _events(_shifted(importer.read(serial, where), where, first_line))
                    return
                pending.append(pool.submit(_parse, where, first_line, block))
                if len(pending) >= 2 * count:
                    yield from _events(pending.popleft().result())
            while pending:
                yield from _events(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _events(items: list[Item] | Iterator[Item]) -> Iterator[UsageEvent | RowError]:
    for item in items:
        yield item if isinstance(item, RowError) else UsageEvent(*item)  # type: ignore[arg-type]


def _blocks(raw: BinaryIO) -> Iterator[tuple[int, bytes, BinaryIO | None]]:
    """``(first line, block, None)`` per block of whole records, in file order.

    A stretch without a boundary ends the blocks with ``(line, b"", stream)``: ``stream``
    yields the unsplit bytes and then the rest of the file, to be read serially.
    """
    from keyguard.usage.importers._common import replay

    line = 1
    carry = b""
    while True:
        data = raw.read(BLOCK_BYTES)
        if not data:
            if carry:
                yield line, carry, None
            return
        data = carry + data
        cut = max(data.rfind(b"}\n{"), data.rfind(b"}\r\n{"))
        if cut < 0:
            if len(data) > _MAX_BLOCK:
                yield line, b"", replay(data, raw)
                return
            carry = data
            continue
        end = data.index(b"\n", cut) + 1
        block, carry = data[:end], data[end:]
        yield line, block, None
        line += block.count(b"\n")
