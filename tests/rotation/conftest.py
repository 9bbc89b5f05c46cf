"""Rotation fixtures: the private moto world (see world.py) and an isolated home."""

from pathlib import Path

import pytest

from tests.rotation.world import rot_env, rotation_moto

__all__ = ["home", "rot_env", "rotation_moto"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keyring: None) -> Path:
    """An isolated home (journal, state, config) shared by subprocesses and in-process runs."""
    path = tmp_path / "home"
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(path / "config"))
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    return path
