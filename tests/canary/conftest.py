"""Canary tests drive the CLI in-process with the same isolated home as tests/cli."""

from pathlib import Path

import pytest

from tests.cli.conftest import cli

__all__ = ["canary_aws", "cli"]


@pytest.fixture
def canary_aws(aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``aws_env`` with AWS config files of our own instead of /dev/null.

    NOTE: on this shared machine a tool that "atomically" writes to /dev/null replaces the
    device with a regular file for a moment; botocore then fails to parse AWS_CONFIG_FILE
    (ConfigParseError) and an unrelated test fails. An empty file of our own cannot change.
    """
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    return aws_env
