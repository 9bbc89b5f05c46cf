"""Streaming JSON records with bounded memory and line numbers (JSON, JSONL, concatenated JSON).

Why not ``json.load``: a LiteLLM spend-log export can be gigabytes in one JSON array, and a
CloudTrail file is one line of tens of MB. This reader keeps a sliding text buffer and
decodes one value at a time with :meth:`json.JSONDecoder.raw_decode` (the C scanner), so
memory is bounded by the largest single record (``max_record`` characters), not the file.

What counts as a record:

* a top-level array: each element;
* a top-level object holding a *container* key (``Records`` for CloudTrail, ``data`` for
  usage-report pages) whose value is an array: each element of that array;
* any other top-level object (a JSONL row, a bare bucket): the object itself.

Small objects (< 1 MiB) are decoded in one C call; only larger ones are walked key by key.
After a syntax error the reader reports it and resynchronises at the next line that starts
with ``{`` or ``[``, so one broken JSONL line costs one error row, not the file.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from keyguard.usage.importers import RowError
from keyguard.usage.importers._common import peek_head, replay

_CHUNK = 1 << 16
_FAST_LIMIT = 1 << 20  # objects up to this size are decoded whole (fast C path)
_NON_WS = re.compile(r"[^ \t\r\n]")
_RESYNC = re.compile(r"\n[ \t\r]*[\[{]")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
_DECODER = json.JSONDecoder()
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # 19+ digits may not fit 64 bits


class _Bad(Exception):
    """A record that cannot be decoded; the caller reports it and resynchronises."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class _Unclosed(_Bad):
    """An array never closed before the next record: reported, and reading goes on there."""


class _TooBigForFastPath(Exception):
    """The value is larger than the fast-path limit; walk it key by key instead."""


class _Buffer:
    """Decoded text window over a byte stream, with the line number of ``pos``."""

    def __init__(self, stream: BinaryIO, max_record: int) -> None:
        self._stream = stream
        # NOTE: JSON must be UTF-8 (RFC 8259); bytes that are not become U+FFFD rather than
        # failing the whole file, so a stray Latin-1 byte costs a character, not a row.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.max_record = max_record
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.consumed = 0  # characters consumed so far (positions shift when compacting)
        self._started = False

    def fill(self, want: int) -> bool:
        """Append at least ``want`` more bytes (or up to EOF); False when nothing was added."""
        if self.eof:
            return False
        if self.pos and self.pos >= len(self.text) // 2:
            self.text = self.text[self.pos :]
            self.pos = 0
        data = self._stream.read(max(want, _CHUNK))
        added = self._decoder.decode(data, final=not data)
        if not data:
            self.eof = True
        if not self._started and added:
            self._started = True
            added = added.removeprefix("\ufeff")
        self.text += added
        return bool(added) or not self.eof

    def advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.consumed += to - self.pos
        self.pos = to

    def peek(self) -> str | None:
        """Skip whitespace; the next character, or None at end of input."""
        while True:
            found = _NON_WS.search(self.text, self.pos)
            if found is not None:
                self.advance(found.start())
                return self.text[self.pos]
            self.advance(len(self.text))
            if not self.fill(0):
                return None

    def value(self, limit: int | None = None) -> object:
        """Decode the next JSON value, reading more input as needed (at most ``limit`` chars)."""
        cap = self.max_record if limit is None else min(limit, self.max_record)
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                near_end = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.text) - 16
                if not self.eof and near_end:
                    self._grow(cap, limit is not None)
                    continue
                raise _Bad(f"invalid JSON: {exc.msg}", self._error_line(exc.pos)) from None
            except RecursionError:
                raise _Bad("JSON nested too deeply", self.line) from None
            if not self.eof and (
                end >= len(self.text)
                or (isinstance(obj, int | float) and _NUMBER_TAIL.fullmatch(self.text, end))
            ):
                # NOTE: a number may continue in the next chunk: "1" or "0." at the end of
                # the buffer decodes as a shorter number, so read on and decode again.
                self._grow(cap, limit is not None)
                continue
            if end - self.pos > cap:
                # NOTE: the buffer may already hold a value larger than the cap (read while
                # an enclosing value was tried whole); the cap still applies to it.
                if limit is not None:
                    raise _TooBigForFastPath
                raise _Bad(f"record larger than {self.max_record} bytes", self.line)
            self.advance(end)
            return obj

    def _error_line(self, at: int) -> int:
        """The line a decode error at ``at`` is reported on: the last line of the bad record.

        The decoder notices a torn JSONL line (``{"a": 1,`` cut by a crash) only on a later
        line, or at the end of the file; that later line is a good record the resync reads
        again. So the error stops before the next line that starts a record, and lands on
        the last character before the point where decoding failed.
        """
        stop = at
        following = _RESYNC.search(self.text, self.pos, at + 1)
        if following is not None:
            stop = following.start()
        while stop > self.pos and self.text[stop - 1] in " \t\r\n":
            stop -= 1
        return self.line + self.text.count("\n", self.pos, stop)

    def _grow(self, cap: int, fast: bool) -> None:
        pending = len(self.text) - self.pos
        if pending >= cap:
            if fast:
                raise _TooBigForFastPath
            raise _Bad(f"record larger than {self.max_record} bytes", self.line)
        # Geometric growth: re-decoding a large value costs O(size) per attempt, so doubling
        # keeps the total linear.
        self.fill(max(pending, _CHUNK))

    def resync(self) -> None:
        """Drop input up to the next line starting with ``{`` or ``[`` (or to EOF)."""
        while True:
            found = _RESYNC.search(self.text, self.pos)
            if found is not None:
                self.advance(found.start() + 1)
                return
            last_nl = self.text.rfind("\n", self.pos)
            if last_nl >= 0:
                self.advance(last_nl)  # keep the newline: the match may span chunks
            else:
                # No newline at all: discard without counting, memory stays bounded.
                self.text, self.pos = "", 0
            if not self.fill(0):
                self.advance(len(self.text))
                return

    def expect(self, chars: str, what: str) -> str:
        ch = self.peek()
        if ch is None or ch not in chars:
            got = "end of file" if ch is None else repr(ch)
            raise _Bad(f"invalid JSON: expected {what}, got {got}", self.line)
        self.advance(self.pos + 1)
        return ch


def iter_json_records(
    stream: BinaryIO, path: str, containers: frozenset[str], max_record: int
) -> Iterator[tuple[int, object] | RowError]:
    """Yield ``(line, record)`` for every record, and a RowError for every undecodable one.

    JSONL of one object per line (a LiteLLM spend log, a generic export) goes through a
    fast path: each line is decoded by orjson from bytes, with no text buffer. The first
    line that is anything else (an array, a pretty-printed object, a broken or over-long
    line, JSON that orjson refuses such as ``NaN``) hands the rest of the file, from that
    line, to the general reader below, so errors, line numbers and records are the same
    as without the fast path.
    """
    head, stream = peek_head(stream, 64)
    if not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        yield from _general(stream, path, containers, max_record, 1)  # an array, say
        return
    limit = min(_FAST_LIMIT, max_record)
    line = 0
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if not line:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        line += 1
        if raw.lstrip()[:1] == b"{" and (len(raw) <= limit or raw.endswith(b"\n")):
            obj = _line_object(raw)
            if obj is not None:
                yield from _records_of(line, obj, containers)
                continue
        elif not raw.strip():
            continue
        yield from _general(replay(raw, stream), path, containers, max_record, line)
        return


def _line_object(raw: bytes) -> dict[str, object] | None:
    """The object on one JSONL line, decoded as the general reader would; None if not one.

    orjson reads integers beyond 64 bits as floats (an id of 20 digits would lose its
    identity) and refuses what ``json`` accepts (``NaN``, lone surrogates, bad UTF-8), so
    a line with a long digit run or one orjson refuses is decoded by ``json`` instead.
    """
    obj: object = None
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
    if obj is None:
        try:
            obj = json.loads(raw.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            return None
    return obj if isinstance(obj, dict) else None


def _records_of(
    line: int, obj: dict[str, object], containers: frozenset[str]
) -> Iterator[tuple[int, object]]:
    """The records of one decoded top-level object: its container arrays' items, or itself."""
    items = [v for k, v in obj.items() if k in containers and isinstance(v, list)]
    if not items:
        yield line, obj
        return
    for item_list in items:
        for item in item_list:
            yield line, item


def _general(
    stream: BinaryIO, path: str, containers: frozenset[str], max_record: int, line: int
) -> Iterator[tuple[int, object] | RowError]:
    """Any JSON, JSONL or concatenated JSON, starting at ``line`` of the file."""
    buf = _Buffer(stream, max_record)
    buf.line = line
    while True:
        try:
            ch = buf.peek()
            if ch is None:
                return
            if ch == "[":
                yield from _array(buf)
            elif ch == "{":
                yield from _object(buf, containers)
            else:
                line = buf.line
                buf.value()
                yield RowError(path, line, "expected a JSON object or array")
        except _Unclosed as bad:
            yield RowError(path, bad.line, bad.reason)
        except _Bad as bad:
            yield RowError(path, bad.line, bad.reason)
            buf.resync()


def _array(buf: _Buffer) -> Iterator[tuple[int, object]]:
    opened = buf.line
    buf.advance(buf.pos + 1)
    if buf.peek() == "]":
        buf.advance(buf.pos + 1)
        return
    while True:
        buf.peek()
        line = buf.line
        yield line, buf.value()
        if buf.peek() in ("{", "["):
            # NOTE: an element followed by a new value and no ',' is an array left open (a
            # stray "[" line in a JSONL log): the value starts the next record, so it is not
            # consumed and no resync skips it.
            raise _Unclosed(f"invalid JSON: the array opened on line {opened} is not closed",
                            opened)
        if buf.expect(",]", "',' or ']'") == "]":
            return


def _object(buf: _Buffer, containers: frozenset[str]) -> Iterator[tuple[int, object]]:
    line = buf.line
    try:
        obj = buf.value(limit=_FAST_LIMIT)
    except _TooBigForFastPath:
        # NOTE: value() consumes nothing until it succeeds, so buf.pos is still the '{'.
        yield from _stream_object(buf, containers, line)
        return
    if isinstance(obj, dict):
        yield from _records_of(line, obj, containers)
        return
    yield line, obj


def _stream_object(
    buf: _Buffer, containers: frozenset[str], line: int
) -> Iterator[tuple[int, object]]:
    """Walk a large object key by key, streaming container arrays element by element."""
    buf.advance(buf.pos + 1)
    envelope: dict[str, object] = {}
    envelope_size = 0
    streamed = False
    if buf.peek() == "}":
        buf.advance(buf.pos + 1)
        yield line, envelope
        return
    while True:
        if buf.peek() != '"':
            raise _Bad("invalid JSON: expected a property name", buf.line)
        key = buf.value()
        buf.expect(":", "':'")
        if isinstance(key, str) and key in containers and buf.peek() == "[":
            streamed = True
            yield from _array(buf)
        else:
            before = buf.consumed
            envelope[str(key)] = buf.value()
            envelope_size += buf.consumed - before
            if envelope_size > buf.max_record:
                raise _Bad(f"record larger than {buf.max_record} bytes", line)
        if buf.expect(",}", "',' or '}'") == "}":
            break
    if not streamed:
        yield line, envelope
