"""The reader: real CloudTrail data, gzip, AWSLogs walks, globs, detection, dedupe, bad files."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from keyguard.config import UsageConfig, UsageGenericConfig
from keyguard.errors import PluginError, UsageError
from keyguard.fakes import fake_key
from keyguard.model import UsageEvent
from keyguard.usage.reader import ImportStats, UsageReader

#: Records in the 55 CloudTrail JSON files of shared/data/cloudtrail-stratus (all unique).
STRATUS_RECORDS = 2900
STRATUS_FILES = 55


def _read(inputs: list[str | Path], config: UsageConfig | None = None,
          input_format: str | None = None) -> tuple[list[UsageEvent], ImportStats]:
    config = config or UsageConfig()
    stats = ImportStats(max_samples=config.max_error_samples)
    events = list(UsageReader(config, input_format).events(inputs, stats))
    return events, stats


def _litellm_row(i: int, ip: str = "8.8.8.8") -> dict[str, object]:
    return {"request_id": f"r{i}", "api_key": "hash", "startTime": "2025-06-01T10:00:00",
            "prompt_tokens": i, "completion_tokens": 1, "model": "m",
            "requester_ip_address": ip}


# --- real data ---------------------------------------------------------------------------


def test_every_stratus_file_reads_without_error(stratus_dir: Path) -> None:
    files = sorted(stratus_dir.glob("*.json"))
    assert len(files) == STRATUS_FILES
    events, stats = _read([stratus_dir])
    assert stats.errors == 0, stats.error_samples
    assert stats.files == STRATUS_FILES
    assert stats.files_per_format == {"cloudtrail": STRATUS_FILES}
    assert stats.records == stats.events == len(events) == STRATUS_RECORDS
    assert stats.duplicates == 0
    assert sorted(stats.skipped_files) == [str(stratus_dir / "LICENSE"),
                                          str(stratus_dir / "README.md")]
    assert all(e.source_format == "cloudtrail" and e.time.tzinfo is not None for e in events)
    assert len({e.event_id for e in events}) == STRATUS_RECORDS
    # The attack simulation's callers: mostly private IPs; service calls carry host names.
    assert {e.source_host for e in events if e.source_host} >= {
        "AWS Internal", "secretsmanager.amazonaws.com"}
    assert all(e.source_ip is None or "." in e.source_ip or ":" in e.source_ip for e in events)
    assert {e.country for e in events if e.country} == {"US"}
    # 84 records have no access key id (service events, console sign-in) and one CheckMfa
    # has an empty one: those fall back to the principal.
    assert sum(1 for e in events if e.key_id.startswith(("AKIA", "ASIA"))) == 2815


def test_reading_the_data_twice_dedupes_by_event_id(stratus_dir: Path, tmp_path: Path) -> None:
    some = sorted(stratus_dir.glob("*.json"))[:5]
    copies = []
    for f in some:
        copy = tmp_path / f"copy-{f.name}"
        shutil.copy(f, copy)
        copies.append(copy)
    events, stats = _read([*some, *copies])
    expected = sum(len(json.loads(f.read_text())["Records"]) for f in some)
    assert len(events) == stats.events == expected
    assert stats.duplicates == expected
    assert stats.records == 2 * expected


def test_awslogs_layout_gzipped_with_digests_skipped(stratus_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "bucket" / "prefix" / "AWSLogs"
    picked = sorted(stratus_dir.glob("*.json"))[:4]
    for i, f in enumerate(picked):
        day = root / "218007301253" / "CloudTrail" / "us-east-1" / "2023" / "07" / f"1{i}"
        day.mkdir(parents=True)
        (day / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    digest = root / "218007301253" / "CloudTrail-Digest" / "us-east-1" / "2023" / "07" / "10"
    digest.mkdir(parents=True)
    (digest / "x_CloudTrail-Digest_us-east-1_y.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": [{"eventVersion": "1"}]}).encode()))
    events, stats = _read([tmp_path / "bucket"])
    expected = sum(len(json.loads(f.read_text())["Records"]) for f in picked)
    assert stats.errors == 0
    assert stats.files == 4
    assert len(events) == expected


def test_gzip_is_detected_by_magic_not_extension(tmp_path: Path) -> None:
    rows = "\n".join(json.dumps(_litellm_row(i)) for i in range(3)).encode()
    disguised = tmp_path / "spend.txt"
    disguised.write_bytes(gzip.compress(rows))
    plain_named_gz = tmp_path / "plain.jsonl.gz"
    plain_named_gz.write_bytes(rows.replace(b'"r', b'"p'))
    events, stats = _read([disguised, plain_named_gz])
    assert stats.errors == 0
    assert len(events) == 6
    assert stats.files_per_format == {"litellm": 2}


def test_globs_and_missing_paths(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"s{i}.jsonl").write_text(json.dumps(_litellm_row(i)) + "\n")
    events, _stats = _read([str(tmp_path / "s*.jsonl")])
    assert [e.event_id for e in events] == ["r0", "r1", "r2"]
    events, _stats = _read([str(tmp_path / "**" / "s1.jsonl")])
    assert len(events) == 1
    with pytest.raises(UsageError, match=r"nothing\*\.csv: no file matches"):
        _read([str(tmp_path / "nothing*.csv")])
    with pytest.raises(UsageError, match=r"missing\.json: no such file or directory"):
        _read([tmp_path / "missing.json"])


def test_auto_detection_per_file_and_forced_format(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(
        {"data": [{"starting_at": "2025-06-01T00:00:00Z", "ending_at": "2025-06-02T00:00:00Z",
                   "results": [{"api_key_id": "apikey_1", "uncached_input_tokens": 5}]}]}))
    (tmp_path / "o.json").write_text(json.dumps(
        {"object": "page", "data": [{"object": "bucket", "start_time": 0, "end_time": 60,
                                     "results": [{"num_model_requests": 2}]}]}))
    (tmp_path / "l.jsonl").write_text(json.dumps(_litellm_row(1)) + "\n")
    (tmp_path / "g.csv").write_text("time,key_id\n2025-01-01T00:00:00Z,k\n")
    (tmp_path / "c.json").write_text(json.dumps({"Records": []}))
    _events, stats = _read([tmp_path])
    assert stats.files_per_format == {"anthropic-usage": 1, "openai-usage": 1, "litellm": 1,
                                      "generic": 1, "cloudtrail": 1}
    assert stats.events_per_format == {"anthropic-usage": 1, "openai-usage": 1, "litellm": 1,
                                       "generic": 1}
    # A LiteLLM log storing Anthropic responses (usage.cache_creation) is still LiteLLM.
    stored = _litellm_row(2) | {"response": {"usage": {"cache_creation": {
        "ephemeral_5m_input_tokens": 0}, "cache_read_input_tokens": 0}}}
    (tmp_path / "l2.jsonl").write_text(json.dumps(stored) + "\n")
    _events, stats = _read([tmp_path / "l2.jsonl"])
    assert stats.files_per_format == {"litellm": 1}
    # Forced: a file whose head does not say what it is.
    odd = tmp_path / "odd.csv"
    odd.write_text("ts,who\n2025-01-01T00:00:00Z,k\n")
    config = UsageConfig(generic=UsageGenericConfig(time="ts", key="who"))
    events, stats = _read([odd], config, input_format="generic")
    assert [e.key_id for e in events] == ["k"]
    events, stats = _read([odd], UsageConfig(), input_format="generic")
    assert events == []
    assert stats.error_samples == [f"{odd}:1: not a CSV with column(s) time, key_id"]
    with pytest.raises(PluginError, match="unknown importer 'nope'"):
        UsageReader(UsageConfig(), "nope")


def test_country_lookup_and_geo_switch(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text("".join(json.dumps(_litellm_row(i, ip)) + "\n" for i, ip in
                         enumerate(["8.8.8.8", "10.0.0.1", "not-an-ip", "2001:4860:4860::8888"])))
    events, _ = _read([f])
    assert [(e.source_ip, e.source_host, e.country) for e in events] == [
        ("8.8.8.8", None, "US"), ("10.0.0.1", None, None), (None, "not-an-ip", None),
        ("2001:4860:4860::8888", None, "US")]
    events, _ = _read([f], UsageConfig(geo=False))
    assert {e.country for e in events} == {None}


# --- bad files -----------------------------------------------------------------------------


def test_bad_files_are_counted_never_raised(tmp_path: Path) -> None:
    good = gzip.compress(("\n".join(json.dumps(_litellm_row(i)) for i in range(2000))).encode())
    (tmp_path / "truncated.jsonl.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    inputs = sorted(tmp_path.iterdir())
    events, stats = _read(list(inputs))
    samples = "\n".join(stats.error_samples)
    assert f"{tmp_path / 'truncated.jsonl.gz'}:0: read stopped: compressed data ends early" \
        " (truncated gzip)" in samples
    assert f"{tmp_path / 'junk.bin'}:0: unrecognised usage format" in samples
    assert f"{tmp_path / 'bad.gz'}:0: cannot read file: " in samples
    assert stats.files_per_format["empty"] == 1
    assert 0 < len(events) < 2000  # everything before the cut
    assert stats.file_errors == 3
    assert stats.errors == 3


def test_special_files_are_refused_before_reading() -> None:
    with pytest.raises(UsageError, match="/dev/zero: not a regular file or directory"):
        _read(["/dev/zero"], input_format="litellm")


def test_error_samples_are_capped_but_all_errors_counted(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text("".join("{broken\n" if i % 2 else json.dumps(_litellm_row(i)) + "\n"
                         for i in range(100)))
    events, stats = _read([f], UsageConfig(max_error_samples=3))
    assert len(events) == 50
    assert stats.errors == 50
    assert stats.records == 100
    assert stats.error_samples == [f"{f}:2: invalid JSON: Expecting property name enclosed"
                                   " in double quotes", f"{f}:4: invalid JSON: Expecting"
                                   " property name enclosed in double quotes",
                                   f"{f}:6: invalid JSON: Expecting property name enclosed"
                                   " in double quotes"]


def test_directory_walk_skips_unknown_files_explicit_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / ".hidden.jsonl").write_text(json.dumps(_litellm_row(1)) + "\n")
    events, stats = _read([tmp_path])
    assert (events, stats.errors, stats.skipped_files) == ([], 0, [str(tmp_path / "notes.txt")])
    _events, stats = _read([tmp_path / "notes.txt"])
    assert stats.errors == 1


# --- parallel parsing of large JSONL files ------------------------------------------------


def _mixed_log(path: Path) -> None:
    lines = []
    for i in range(120):
        lines.append(json.dumps(_litellm_row(i, ip=("8.8.8.8", "81.2.69.142", "10.0.0.1")[i % 3])))
        if i % 17 == 5:
            lines.append('{"request_id": "broken", "api_key": ')  # a broken line
        if i % 23 == 7:
            lines.append("")
        if i % 29 == 3:
            lines.append(json.dumps(_litellm_row(i)))  # a duplicate request id
        if i % 31 == 9:
            lines.append(json.dumps({**_litellm_row(1000 + i), "prompt_tokens": -1}))  # bad value
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("max_block", [64 * 1024 * 1024, 700])
def test_parallel_read_equals_the_serial_read(tmp_path: Path, max_block: int) -> None:
    from keyguard.usage import _parallel

    log = tmp_path / "spend.jsonl"
    _mixed_log(log)
    serial, serial_stats = _read([log])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_parallel, "MIN_BYTES", 0)
        mp.setattr(_parallel, "BLOCK_BYTES", 300)  # many blocks, some cut mid-line
        mp.setattr(_parallel, "_MAX_BLOCK", max_block)  # 700: a serial remainder too
        mp.setattr(_parallel, "workers", lambda: 2)
        assert _parallel.suitable(log, log.read_bytes()[:64])
        parallel, parallel_stats = _read([log])
    assert serial_stats.errors == 7 + 4  # broken lines and bad values, with their lines
    assert parallel == serial
    assert parallel_stats == serial_stats
    first_r119 = next(n for n, text in enumerate(log.read_text().splitlines(), 1)
                      if '"r119"' in text)
    assert parallel[-1].origin == f"{log}:{first_r119}"


def test_gzip_and_small_files_are_read_serially(tmp_path: Path) -> None:
    from keyguard.usage import _parallel

    row = json.dumps(_litellm_row(1)).encode() + b"\n"
    small = tmp_path / "small.jsonl"
    small.write_bytes(row)
    packed = tmp_path / "packed.jsonl.gz"
    packed.write_bytes(gzip.compress(row * 10))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_parallel, "workers", lambda: 2)
        assert not _parallel.suitable(small, row)
        mp.setattr(_parallel, "MIN_BYTES", 0)
        assert _parallel.suitable(small, row)
        assert not _parallel.suitable(packed, row)
        assert not _parallel.suitable(small, b"[" + row)
        mp.setattr(_parallel, "workers", lambda: 1)
        assert not _parallel.suitable(small, row)


def test_secret_looking_text_never_reaches_the_store(tmp_path: Path) -> None:
    """A pasted key in an alias, user or agent is scrubbed; a raw key id becomes its SHA-256."""
    raw = fake_key("anthropic-api", random.Random(4))
    log = tmp_path / "spend.jsonl"
    log.write_text(json.dumps({
        "request_id": "r1", "api_key": raw, "startTime": "2026-03-02T10:00:00Z",
        "model": "claude-sonnet-4-5", "prompt_tokens": 5, "completion_tokens": 1,
        "user": f"bot/{raw}", "metadata": {"user_api_key_alias": f"alias:{raw}"},
        "proxy_server_request": {"headers": {"user-agent": f"app {raw}"}},
    }) + "\n")
    [event] = list(UsageReader(UsageConfig()).events([log], ImportStats()))
    assert event.key_id == hashlib.sha256(raw.encode()).hexdigest()
    assert event.key_alias == "alias:[redacted anthropic-api]"
    assert event.principal == "bot/[redacted anthropic-api]"
    assert event.user_agent == "app [redacted anthropic-api]"
    assert raw[:12] not in repr(event)
