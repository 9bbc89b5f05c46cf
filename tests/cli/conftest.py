"""CLI test helpers: an isolated home (config, data, keyring backend) and a runner."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keyguard.cli import app


@dataclass
class Cli:
    """Runs keyguard in-process in an isolated working directory."""

    home: Path
    workdir: Path

    def __call__(self, args: Sequence[str], input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), prog_name="keyguard", input=input)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keyring: None) -> Cli:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    # NOTE: `no_keyring` selects the fail backend (python-keyring caches its backend per
    # process, so an env var alone is not enough); the fingerprint key falls back to a 0600
    # file and CLI tests never touch a real keyring.
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(work)
    return Cli(home, work)
