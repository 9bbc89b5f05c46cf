"""Find planted secret values, or any 12-character slice of one, in outputs and files at rest.

The leak guard (tests/test_leak_guard.py) plants known values in every store and then asks
one question of everything keyguard produced: does any of it contain a piece of a planted
value? A whole value is the obvious leak; a slice matters because a "redacted" form that
keeps too much of a key (a long prefix, a hint, a truncated log line) still hands out
most of it. Encoded copies count too: a value inside a JSON string is escaped, inside a URL
it is percent-encoded, and inside a base64 blob it sits at one of three byte alignments, so
the needle set holds every 12-character slice of each of those forms.

Files are read as bytes and scanned in their printable-ASCII runs (every needle is
printable ASCII), so a multi-megabyte DuckDB file costs a regex pass, not a Python loop
over zero pages. Databases are also read through their own engine (SQLite ``iterdump``,
DuckDB ``SELECT *``), because DuckDB compresses strings on disk and a raw scan alone
would miss a value stored there.

Slices made only of a format's public prefix (``sk-ant-api03``) are not secret, so they
are not needles: a key's provider is meant to be shown.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from keyguard.classify import FORMATS

WIDTH = 12
_RUNS = re.compile(rb"[\x20-\x7e]{%d,}" % WIDTH)
#: Literal prefixes of the known formats, longest first (public by design).
_PREFIXES = sorted({f.shape[0] for f in FORMATS if f.shape and isinstance(f.shape[0], str)},
                   key=len, reverse=True)

Target = str | bytes | Path | tuple[str, str | bytes | Path]


@dataclass(frozen=True, slots=True)
class Leak:
    """One needle found: where, at which byte offset, of which planted value, in which form."""

    where: str
    offset: int
    secret: str  # the planted value's label, never the value itself
    form: str  # raw | json | url | url-plus | base64[+k] | base64url[+k]
    needle: str  # the matching slice (of a fake value: safe to show in a test failure)

    def __str__(self) -> str:
        return f"{self.where}@{self.offset}: {self.secret} ({self.form}) {self.needle!r}"


def find_leaks(planted: Mapping[str, str], targets: Iterable[Target],
               width: int = WIDTH) -> list[Leak]:
    """Every place in ``targets`` holding a ``width``-character slice of a planted value.

    ``planted`` maps a label (shown in reports) to the value. A target is text, bytes, a
    file, a directory (every file under it, databases also through their engine), or a
    ``(label, target)`` pair naming where it came from. One leak per (where, secret) is
    reported, at its first offset, so a value repeated a thousand times stays readable.
    """
    needles = _needles(planted, width)
    leaks: dict[tuple[str, str], Leak] = {}
    for where, data in _expand(targets):
        for match in _RUNS.finditer(data):
            run, base = match.group(), match.start()
            for i in range(len(run) - width + 1):
                hit = needles.get(run[i:i + width])
                if hit is not None and (where, hit[0]) not in leaks:
                    leaks[(where, hit[0])] = Leak(where, base + i, hit[0], hit[1],
                                                  run[i:i + width].decode("ascii"))
    return sorted(leaks.values(), key=lambda leak: (leak.where, leak.offset))


def _needles(planted: Mapping[str, str], width: int) -> dict[bytes, tuple[str, str]]:
    needles: dict[bytes, tuple[str, str]] = {}
    for label, value in planted.items():
        if len(value) < width or not value.isascii() or not value.isprintable():
            raise ValueError(f"planted value {label!r} must be printable ASCII of at least "
                             f"{width} characters (the scan reads printable-ASCII runs)")
        public = next((len(p) for p in _PREFIXES if value.startswith(p)), 0)
        for form, text, skip in _forms(value, public):
            for i in range(len(text) - width + 1):
                if i + width > skip:
                    needles.setdefault(text[i:i + width].encode("ascii"), (label, form))
    return needles


def _forms(value: str, public: int) -> Iterable[tuple[str, str, int]]:
    """(form name, encoded text, length of its leading public part) for one value."""
    yield "raw", value, public
    yield "json", json.dumps(value)[1:-1], public
    yield "url", urllib.parse.quote(value, safe=""), public
    yield "url-plus", urllib.parse.quote_plus(value), public
    raw = value.encode()
    for k in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\x00" * k + raw).decode("ascii")
            # NOTE: the first 4-character group mixes in the k filler bytes and the last one
            # holds padding or the next bytes of the enclosing blob; only the middle is the
            # value's own at this alignment.
            yield f"{name}+{k}", text[4 if k else 0:-4], 0


def _expand(targets: Iterable[Target]) -> Iterable[tuple[str, bytes]]:
    for n, target in enumerate(targets):
        label, item = target if isinstance(target, tuple) else (f"target[{n}]", target)
        if isinstance(item, str):
            yield label, item.encode("utf-8", "backslashreplace")
        elif isinstance(item, bytes):
            yield label, item
        else:
            files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
            for path in files:
                yield from _file(path)


def _file(path: Path) -> Iterable[tuple[str, bytes]]:
    data = path.read_bytes()
    yield str(path), data
    if data.startswith(b"SQLite format 3\x00"):
        yield f"{path} (sqlite dump)", _sqlite_dump(path)
    elif data[8:12] == b"DUCK":
        yield f"{path} (duckdb dump)", _duckdb_dump(path)


def _sqlite_dump(path: Path) -> bytes:
    # NOTE: a copy, so reading never creates or touches the -wal/-shm files under scan.
    with sqlite3.connect(":memory:") as mem:
        src = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            src.backup(mem)
        finally:
            src.close()
        return "\n".join(mem.iterdump()).encode("utf-8", "backslashreplace")


def _duckdb_dump(path: Path) -> bytes:
    import duckdb

    lines: list[str] = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        for schema, table in tables:
            query = f'SELECT * FROM "{schema}"."{table}"'  # noqa: S608  (names from the catalog)
            lines.extend(f"{table}: {row!r}" for row in con.execute(query).fetchall())
    return "\n".join(lines).encode("utf-8", "backslashreplace")
