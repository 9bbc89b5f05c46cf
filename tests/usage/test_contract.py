"""Every importer plugin loads, is named after its module and honours the Importer contract."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from keyguard.config import UsageConfig
from keyguard.usage.importers import IMPORTERS

EXPECTED = ["anthropic-usage", "bedrock-invocation", "cloudtrail", "generic", "litellm",
            "openai-usage"]


def test_builtin_names() -> None:
    assert IMPORTERS.names() == EXPECTED
    assert all(IMPORTERS.builtin(name) for name in EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_plugin_matches_its_module(name: str) -> None:
    cls = IMPORTERS.load(name)
    assert cls.name == name
    assert cls.description
    assert "\n" not in cls.description
    importer = cls(UsageConfig())
    assert importer.sniff(b"", "empty") is False
    assert list(importer.read(io.BytesIO(b""), "empty")) == []


def test_generic_is_the_last_resort_of_detection() -> None:
    priorities = {name: IMPORTERS.load(name).priority for name in EXPECTED}
    assert max(priorities, key=priorities.__getitem__) == "generic"


def test_usage_package_is_import_light() -> None:
    code = ("import sys, keyguard.usage, keyguard.usage.importers; "
            "print(sorted(m for m in ('iptocc', 'duckdb', 'boto3', 'csv') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
