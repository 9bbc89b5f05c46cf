"""Fixtures for the usage tests: the shared real CloudTrail data and small helpers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from keyguard.config import UsageConfig
from keyguard.model import UsageEvent
from keyguard.usage.importers import IMPORTERS, RowError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: CI lays a read-only copy of shared/ beside the clone.
SHARED = REPO_ROOT.parent / "shared"
STRATUS = SHARED / "data" / "cloudtrail-stratus"


@pytest.fixture(scope="session")
def stratus_dir() -> Path:
    """The real CloudTrail files of the Stratus Red Team simulation (shared/, read-only)."""
    if not STRATUS.is_dir():
        pytest.fail(f"{STRATUS} is missing: the usage tests need shared/ beside the repository "
                    "(CI copies it there); clone or link it at <repo>/../shared")
    return STRATUS


def run(name: str, data: bytes, config: UsageConfig | None = None,
        path: str = "f") -> list[UsageEvent | RowError]:
    """Everything importer ``name`` yields for ``data``."""
    importer = IMPORTERS.load(name)(config or UsageConfig())
    return list(importer.read(io.BytesIO(data), path))


def events_of(items: list[UsageEvent | RowError]) -> list[UsageEvent]:
    """Only the events."""
    return [i for i in items if isinstance(i, UsageEvent)]


def errors_of(items: list[UsageEvent | RowError]) -> list[RowError]:
    """Only the row errors."""
    return [i for i in items if isinstance(i, RowError)]

