"""SIGKILL during `keyguard usage scan`, and two scans at once: the DuckDB store stays whole.

Each killed run is the real CLI in a subprocess (``python -c LAUNCHER usage scan ...``).
The launcher is test-only code: it wraps ``UsageStore.add``/``commit``/``close`` to SIGKILL
the process at a named point (mid-import, just before the commit, a timer started at the
commit, just after it, during the close's checkpoint), so no hook lives in keyguard itself.
After every kill: the store opens through keyguard's own open path, it holds either the
previous run's events or all of them (never part of a run), every event once, and the
next scan imports exactly the events the killed run did not commit: none judged twice
in the store, none lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyguard.cli import app
from keyguard.usage.store import UsageStore

ROOT = Path(__file__).resolve().parents[2]
FIRST = 2_500  # rows scanned by the baseline run
SECOND = 2_500  # rows appended afterwards; the killed run imports them
T0 = datetime(2026, 10, 1, tzinfo=UTC)

LAUNCHER = r"""
import os, signal, sys, threading, time
from keyguard.usage import store

POINT = os.environ["KG_TEST_DUR_POINT"]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def die_in(seconds):
    threading.Timer(seconds, die).start()

cls = store.UsageStore
add, commit, close = cls.add, cls.commit, cls.close

def add_(self, events, *args, **kwargs):
    def feed():
        for n, event in enumerate(events):
            if POINT == "import" and n == 1000:
                die()
            yield event
    return add(self, feed(), *args, **kwargs)

def commit_(self):
    if POINT == "hold":
        open(os.environ["KG_TEST_DUR_HOLDING"], "w").close()
        for _ in range(1200):
            if os.path.exists(os.environ["KG_TEST_DUR_RELEASE"]):
                break
            time.sleep(0.05)
    if POINT == "before-commit":
        die()
    if POINT.startswith("commit+"):
        die_in(float(POINT[len("commit+"):]))
    commit(self)
    if POINT == "after-commit":
        die()
    if POINT.startswith("commit+"):
        time.sleep(30)  # the timer kills us, during the commit or right after it

def close_(self):
    if POINT == "in-close":
        die_in(0.0)
    close(self)
    if POINT == "in-close":
        time.sleep(30)

cls.add, cls.commit, cls.close = add_, commit_, close_
from keyguard.cli import main
main()
"""


def _row(n: int) -> str:
    when = T0 + timedelta(seconds=15 * n)
    return json.dumps({
        "request_id": f"req-{n:06d}", "call_type": "acompletion", "api_key": f"{n % 7:064x}",
        "spend": 0.001, "total_tokens": 120, "prompt_tokens": 100, "completion_tokens": 20,
        "startTime": when.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "endTime": when.strftime("%Y-%m-%dT%H:%M:%S.400"), "model": "gpt-4o-mini",
        "requester_ip_address": "198.51.100.7", "metadata": {"user_api_key_alias": "svc"},
    }) + "\n"


@dataclass(frozen=True, slots=True)
class Baseline:
    """A store after one committed scan of FIRST rows, and the log grown by SECOND rows."""

    log: Path
    store_dir: Path
    env: dict[str, str]


@dataclass(frozen=True, slots=True)
class Counts:
    """What a store holds: events, distinct event ids, last run number, the log's watermark."""

    events: int
    unique: int
    last_run: int
    watermark: datetime | None


def counts(store_dir: Path) -> Counts:
    """Open the store through keyguard's own open path (what the next run does) and count."""
    with UsageStore(store_dir / "usage.duckdb") as store:
        events, unique = store.query("SELECT count(*), count(DISTINCT event_id) FROM events")[0]
        last_run = int(store.query("SELECT value FROM meta WHERE name = 'last_run'")[0][0])
        marks = store.query("SELECT max(max_time) FROM watermarks")[0][0]
    return Counts(events, unique, last_run, marks)


def _home_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYGUARD_", "AWS_"))}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": str(ROOT),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    return env


def scan_args(baseline: Baseline, store_dir: Path, report: Path) -> list[str]:
    return ["-q", "usage", "scan", str(baseline.log), "--state", str(store_dir), "--format",
            "json", "-o", str(report), "--fail-on", "critical"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    root = tmp_path_factory.mktemp("durability")
    home = root / "home"
    home.mkdir()
    log = root / "spend.jsonl"
    log.write_text("".join(_row(n) for n in range(FIRST)))
    base = Baseline(log, root / "base", _home_env(home))
    done = subprocess.run([sys.executable, "-m", "keyguard",
                           *scan_args(base, base.store_dir, root / "base.json")],
                          env=base.env, cwd=root, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert counts(base.store_dir).events == FIRST
    with log.open("a") as out:  # the export grows, as a spend log does between daily scans
        out.write("".join(_row(n) for n in range(FIRST, FIRST + SECOND)))
    return base


@pytest.fixture
def store_copy(baseline: Baseline, tmp_path: Path) -> Path:
    target = tmp_path / "state"
    shutil.copytree(baseline.store_dir, target)
    return target


def _launch(baseline: Baseline, point: str, args: list[str],
            extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**baseline.env, "KG_TEST_DUR_POINT": point, **(extra or {})}
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *args], env=env,
                            cwd=baseline.log.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


POINTS = ["import", "before-commit", "commit+0", "after-commit", "in-close"]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_during_scan_keeps_the_store_whole_and_the_next_run_goes_on(
        baseline: Baseline, store_copy: Path, tmp_path: Path, point: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = counts(store_copy)
    assert before == Counts(FIRST, FIRST, 1, before.watermark)
    killed = _launch(baseline, point, scan_args(baseline, store_copy, tmp_path / "killed.json"))
    _, stderr = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, stderr
    after = counts(store_copy)
    assert after.events == after.unique  # every event once
    if after.events == FIRST:  # the killed run left nothing behind, not even its run number
        assert after == before
    else:  # or all of it: one run, watermark at the newest row
        assert after == Counts(FIRST + SECOND, FIRST + SECOND, 2,
                               (T0 + timedelta(seconds=15 * (FIRST + SECOND - 1))
                                ).replace(tzinfo=None))
    if point in ("import", "before-commit"):
        assert after.events == FIRST
    if point in ("after-commit", "in-close"):
        assert after.events == FIRST + SECOND
    for name, value in baseline.env.items():
        monkeypatch.setenv(name, value)
    report = tmp_path / "next.json"
    result = CliRunner().invoke(app, scan_args(baseline, store_copy, report),
                                prog_name="keyguard")
    assert result.exit_code == 0, result.stderr
    stats = json.loads(report.read_text())["stats"]
    assert stats["new_events"] == FIRST + SECOND - after.events  # exactly what was not committed
    final = counts(store_copy)
    assert (final.events, final.unique) == (FIRST + SECOND, FIRST + SECOND)


def test_second_concurrent_scan_is_refused_with_one_line_exit_2(
        baseline: Baseline, store_copy: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    holding, release = tmp_path / "holding", tmp_path / "release"
    first = _launch(baseline, "hold", scan_args(baseline, store_copy, tmp_path / "first.json"),
                    {"KG_TEST_DUR_HOLDING": str(holding), "KG_TEST_DUR_RELEASE": str(release)})
    try:
        deadline = time.monotonic() + 120
        while not holding.exists():
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "keyguard",
                                 *scan_args(baseline, store_copy, tmp_path / "second.json")],
                                env=baseline.env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=120, check=False)
    finally:
        release.touch()
        _, first_err = first.communicate(timeout=120)
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"keyguard: error: {store_copy / 'usage.duckdb'}: the usage store is in use by another "
        f"keyguard run (PID {first.pid}); let it finish and retry, or pass --state to use "
        "another store"]
    assert not (tmp_path / "second.json").exists()
    assert first.returncode == 0, first_err
    assert json.loads((tmp_path / "first.json").read_text())["stats"]["new_events"] == SECOND
    assert counts(store_copy) == Counts(FIRST + SECOND, FIRST + SECOND, 2,
                                        counts(store_copy).watermark)
    for name, value in baseline.env.items():
        monkeypatch.setenv(name, value)
    again = CliRunner().invoke(app, scan_args(baseline, store_copy, tmp_path / "again.json"),
                               prog_name="keyguard")
    assert again.exit_code == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["stats"]["new_events"] == 0


def test_store_connection_draws_no_progress_bar_on_stdout(tmp_path: Path) -> None:
    # DuckDB prints a progress bar to stdout for queries over 2 s (seen on a 200k-row scan
    # under load): it would corrupt a JSON or SARIF report written to stdout.
    with UsageStore(tmp_path / "usage.duckdb") as store:
        assert store.query("SELECT current_setting('enable_progress_bar')") == [(False,)]
