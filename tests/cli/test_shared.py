"""cli/_shared: progress line, output writing, error mapping."""

import io
from pathlib import Path

import pytest

from keyguard.cli._shared import ExitCode, Progress, exit_code_for, write_output
from keyguard.errors import (
    ConfigError,
    KeyguardError,
    PluginError,
    RotationStopped,
    SourceError,
    StateError,
    UsageError,
)


def test_progress_overwrites_one_line_and_clears(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.StringIO()
    monkeypatch.setattr("sys.stderr", fake)
    progress = Progress(enabled=True)
    progress("aws-ssm", "us-east-1: 40 keys")
    progress("aws-ssm", "eu-west-1: 2 keys")
    progress.done()
    text = fake.getvalue()
    assert text.count("\r\x1b[K") == 3
    assert "[aws-ssm] eu-west-1: 2 keys" in text
    assert "\n" not in text


def test_progress_is_silent_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.StringIO()
    monkeypatch.setattr("sys.stderr", fake)
    progress = Progress.for_terminal(quiet=False)  # StringIO is not a TTY
    progress("dotenv", "1 keys")
    progress.done()
    assert fake.getvalue() == ""


def test_write_output_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old report")
    write_output("new report\n", str(target))
    assert target.read_text() == "new report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), ExitCode.USAGE),
        (ConfigError("x"), ExitCode.USAGE),
        (PluginError("x"), ExitCode.USAGE),
        (StateError("x"), ExitCode.USAGE),
        (SourceError("s", "r", "x"), ExitCode.PARTIAL),
        (RotationStopped("x"), ExitCode.ROTATION_STOPPED),
    ],
)
def test_each_error_branch_has_one_exit_code(error: KeyguardError, code: ExitCode) -> None:
    assert exit_code_for(error) is code
