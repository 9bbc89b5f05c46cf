"""Canary tests drive the CLI in-process with the same isolated home as tests/cli."""

from tests.cli.conftest import cli

__all__ = ["cli"]
