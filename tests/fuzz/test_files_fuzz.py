"""Fuzz the other files keyguard reads: .env files, rotation hooks files, the rotation journal.

* ``.env`` (the dotenv source on real files): any bytes give records or one
  SourceFailure, never an exception; a planted key among junk lines is found on its line
  in UTF-8, UTF-8 with BOM and UTF-16 with BOM, CRLF or LF; no record or failure carries
  the value.
* hooks files (``--hooks``): any TOML document, or any bytes, loads or is one UsageError
  (exit 2) on one line naming the file.
* the rotation journal: a torn last line (a crash mid-write, cut at any byte) is
  skipped and every complete event is kept; a corrupted line before the end is one
  JournalError naming ``file:line``; the journal's readers (``states``, ``incomplete``,
  ``completed``) raise nothing else on corrupted events.
"""

from __future__ import annotations

import codecs
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyguard.config import Config, DotenvConfig, SourcesConfig
from keyguard.errors import KeyguardError, UsageError
from keyguard.fakes import fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, SourceFailure
from keyguard.rotation.hooks import load_hooks
from keyguard.rotation.journal import Journal, JournalError
from keyguard.rotation.plan import RotationItem, StoreCopy
from keyguard.sources import SourceContext
from keyguard.sources.dotenv import DotenvSource
from tests.fuzz.profiles import budget
from tests.fuzz.test_config_fuzz import toml_doc

FP = Fingerprinter(b"keyguard-fuzz-fingerprint-key-02")
NOW = datetime(2026, 11, 27, tzinfo=UTC)
_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files-fuzz")


def _file(tmp: Path, data: bytes, name: str = ".env") -> Path:
    directory = tmp / f"d{next(_counter)}"
    directory.mkdir()
    path = directory / name
    path.write_bytes(data)
    return path


def _collect(path: Path, max_file_bytes: int = 1_000_000) -> list[KeyRecord | SourceFailure]:
    cfg = DotenvConfig(paths=(str(path),), max_file_bytes=max_file_bytes)
    ctx = SourceContext(config=Config(sources=SourcesConfig(dotenv=cfg)), fingerprinter=FP,
                        now=NOW)
    return list(DotenvSource(ctx).collect())


def _one_line_from(exc: BaseException, path: str) -> None:
    """The error is one line that starts with the file it is about."""
    text = str(exc)
    assert "\n" not in text, text
    assert text.startswith(path), text


# --- .env -----------------------------------------------------------------------------------

_env_line = st.one_of(
    st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=60),
    st.builds(lambda k, v: f"{k}={v}", st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True),
              st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
                      max_size=40)),
    st.sampled_from(["# comment", "export", "=", "'", '"unterminated', "A='x",
                     "\ufeff", "\u2028", "\x0c", "\x85"]),
).filter(lambda line: "\x00" not in line)  # a NUL makes the file binary: one failure
_KINDS = ("anthropic-api", "openai-project", "github-fine-grained-pat", "stripe-secret",
          "slack-bot", "gitlab-pat", "huggingface-user")


@given(data=st.binary(max_size=2048), bom=st.sampled_from([b"", codecs.BOM_UTF8,
                                                           codecs.BOM_UTF16_LE,
                                                           codecs.BOM_UTF16_BE]))
@budget(1)
def test_env_bytes_give_records_or_one_failure(tmp: Path, data: bytes, bom: bytes) -> None:
    path = _file(tmp, bom + data)
    items = _collect(path)
    failures = [i for i in items if isinstance(i, SourceFailure)]
    assert len(failures) <= 1
    for item in items:
        if isinstance(item, KeyRecord):
            line = int(item.location.rsplit(":", 1)[1])
            assert item.location == f"{path}:{line}"
            assert line >= 1
        else:
            assert "\n" not in item.message
            assert item.scope == str(path)


@given(lines=st.lists(_env_line, max_size=12), at=st.integers(0, 12),
       kind=st.sampled_from(_KINDS), seed=st.integers(0, 2**32),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
       newline=st.sampled_from(["\n", "\r\n"]), quote=st.sampled_from(["", "'", '"']))
@budget(1.5)
def test_a_planted_key_is_found_on_its_line(tmp: Path, lines: list[str], at: int, kind: str,
                                            seed: int, encoding: str, newline: str,
                                            quote: str) -> None:
    secret = fake_key(kind, random.Random(seed))
    at = min(at, len(lines))
    # Junk lines must not reassign the planted variable or swallow it.
    lines = [ln for ln in lines if "PLANTED_KEY" not in ln]
    at = min(at, len(lines))
    lines.insert(at, f"export PLANTED_KEY={quote}{secret}{quote}")
    path = _file(tmp, newline.join(lines).encode(encoding, "surrogatepass"))
    items = _collect(path)
    planted = [i for i in items if isinstance(i, KeyRecord) and i.name == "PLANTED_KEY"]
    assert [r.location for r in planted] == [f"{path}:{at + 1}"]
    assert planted[0].kind == kind
    for item in items:
        text = repr(item)
        for start in range(0, len(secret) - 11, 6):
            assert secret[start:start + 12] not in text


def test_env_huge_line_and_oversize_file(tmp: Path) -> None:
    secret = fake_key("anthropic-api", random.Random(1))
    body = ("A=" + "x" * 200_000 + "\nANTHROPIC_API_KEY=" + secret + "\n").encode()
    (record,) = (i for i in _collect(_file(tmp, body)) if isinstance(i, KeyRecord))
    assert record.location.endswith(":2")
    (failure,) = _collect(_file(tmp, body), max_file_bytes=1000)
    assert isinstance(failure, SourceFailure)
    assert "over the 1000-byte limit" in failure.message


# --- hooks files ----------------------------------------------------------------------------

_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_=:,./ ", max_size=20)
_hook_value = st.one_of(_word, st.lists(_word, max_size=3), st.integers(-5, 10**6),
                        st.floats(allow_nan=True), st.booleans(),
                        st.dictionaries(_word, _word, max_size=2))
_hook_keys = st.sampled_from(["select", "command", "timeout"]) | _word.filter(bool)


@given(doc=st.one_of(
    st.fixed_dictionaries({"hook": st.lists(st.dictionaries(_hook_keys, _hook_value,
                                                            max_size=4), max_size=3)}),
    st.dictionaries(_word.filter(bool), _hook_value, max_size=3),
))
@budget(1.5)
def test_hooks_files_load_or_are_one_usage_error(tmp: Path, doc: dict[str, object]) -> None:
    path = _file(tmp, toml_doc(doc).encode(), "hooks.toml")
    try:
        hooks = load_hooks(path)
    except UsageError as exc:
        _one_line_from(exc, str(path))
        return
    assert len(hooks) == len(doc.get("hook", []))  # type: ignore[arg-type]
    for hook in hooks:
        assert hook.command
        assert hook.timeout > 0


@given(data=st.binary(max_size=400))
@budget(0.5)
def test_hooks_file_bytes_load_or_are_one_usage_error(tmp: Path, data: bytes) -> None:
    path = _file(tmp, data, "hooks.toml")
    try:
        load_hooks(path)
    except UsageError as exc:
        _one_line_from(exc, str(path))


# --- the rotation journal -------------------------------------------------------------------

ITEM = RotationItem(token="rot-1", action="rotate", rotator="aws-iam", subject="aws-iam:x",
                    name="alice/AKIA1", key_id="AKIA1", principal="alice", reason="due",
                    steps=("prepare", "create", "store:0"),
                    copies=(StoreCopy("aws-ssm", "arn:p", "/p"),))
_STEPS = ["prepare", "create", "store:0", "verify", "hooks"]
_event = st.one_of(
    st.tuples(st.just("step-start"), st.sampled_from(_STEPS)),
    st.tuples(st.just("step-done"), st.sampled_from(_STEPS)),
    st.tuples(st.sampled_from(["done", "rolled-back", "rollback-start", "cleaned"]),
              st.just("")),
)


def _journal(tmp: Path, events: list[tuple[str, str]], tokens: int) -> Path:
    path = tmp / f"j{next(_counter)}" / "journal.jsonl"
    j = Journal(path)
    for n in range(tokens):
        j.append(NOW, f"rot-{n}", "begin", item=ITEM)
    for i, (event, step) in enumerate(events):
        facts = {"old_key_id": "AKIA1"} if event == "step-done" else None
        j.append(NOW + timedelta(seconds=i), f"rot-{i % tokens}", event, step=step, facts=facts)
    return path


def _read_all(j: Journal) -> None:
    """Every reader the CLI uses; only JournalError/KeyguardError may come out."""
    list(j.events())
    j.states()
    j.incomplete()
    j.completed()


@given(events=st.lists(_event, max_size=10), tokens=st.integers(1, 3), cut=st.floats(0, 1))
@budget(1)
def test_a_torn_last_line_is_skipped_and_complete_events_kept(tmp: Path,
                                                              events: list[tuple[str, str]],
                                                              tokens: int, cut: float) -> None:
    path = _journal(tmp, events, tokens)
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    last = lines[-1]
    # Never the closing brace: a whole event missing only its newline is still an event.
    keep = int(cut * (len(last) - 2))
    path.write_bytes(b"".join(lines[:-1]) + last[:keep])
    got = list(Journal(path).events())
    assert len(got) == len(lines) - 1
    _read_all(Journal(path))


@given(events=st.lists(_event, min_size=1, max_size=8), tokens=st.integers(1, 2),
       data=st.data())
@budget(1)
def test_a_corrupt_line_inside_is_one_journal_error(tmp: Path, events: list[tuple[str, str]],
                                                    tokens: int, data: st.DataObject) -> None:
    path = _journal(tmp, events, tokens)
    lines = path.read_bytes().splitlines(keepends=True)
    n = data.draw(st.integers(0, len(lines) - 2))
    how = data.draw(st.sampled_from(["cut", "junk", "version", "flip"]))
    if how == "cut":
        lines[n] = lines[n][: data.draw(st.integers(1, len(lines[n]) - 2))] + b"\n"
    elif how == "junk":
        lines[n] = data.draw(st.binary(min_size=1, max_size=30).filter(
            lambda b: b"\n" not in b and b.strip() != b"")) + b"\n"
    elif how == "version":
        lines[n] = json.dumps({**json.loads(lines[n]), "v": 2}).encode() + b"\n"
    else:
        at = data.draw(st.integers(0, len(lines[n]) - 2))
        lines[n] = lines[n][:at] + bytes([lines[n][at] ^ 0x80]) + lines[n][at + 1:]
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalError) as caught:
        list(Journal(path).events())
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}")
    assert f":{n + 1}:" in text or "cannot read" in text


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3), max_leaves=6)
_fields = st.sampled_from(["at", "token", "event", "step", "facts", "item", "message", "run"])


@given(events=st.lists(_event, min_size=1, max_size=6), data=st.data())
@budget(1)
def test_corrupt_event_fields_raise_only_keyguard_errors(tmp: Path,
                                                         events: list[tuple[str, str]],
                                                         data: st.DataObject) -> None:
    """Valid JSON with v=1 but a field of the wrong type or missing (a hand edit, bit rot)."""
    path = _journal(tmp, events, 1)
    lines = path.read_bytes().splitlines(keepends=True)
    n = data.draw(st.integers(0, len(lines) - 1))
    event = json.loads(lines[n])
    field = data.draw(_fields)
    if data.draw(st.booleans()):
        event.pop(field, None)
    else:
        event[field] = data.draw(_json_value)
    lines[n] = json.dumps(event).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    try:
        _read_all(Journal(path))
    except KeyguardError as exc:
        _one_line_from(exc, str(path))
