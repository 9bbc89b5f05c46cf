"""Registered OpenAI keys: last use comes from the admin API (the local fake of it)."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli
from tests.fakes.openai_api import FakeOpenAIApi


def test_registered_openai_keys_quiet_used_and_missing(cli: Cli, openai_api: FakeOpenAIApi) -> None:
    state = ["--state", str(cli.workdir / "s.db")]
    assert cli(["canary", "register", "openai", "key_admin0", *state]).exit_code == 0
    quiet = cli(["canary", "check", "--format", "json", *state])
    assert quiet.exit_code == 0, quiet.stderr
    assert json.loads(quiet.stdout)["canaries"][0]["status"] == "quiet"

    assert cli(["canary", "register", "openai", "key_1_01", "--name", "batch", *state]).exit_code == 0
    used = cli(["canary", "check", "--format", "json", *state])
    assert used.exit_code == 1, used.stderr
    [alert] = json.loads(used.stdout)["alerts"]
    assert alert["key"] == "key_1_01"
    assert alert["key_alias"] == "batch"
    assert alert["evidence"]["seen_by"].startswith("openai:")
    assert alert["start"] is not None

    assert cli(["canary", "register", "openai", "key_missing", *state]).exit_code == 0
    partial = cli(["canary", "check", "--format", "json", *state])
    assert partial.exit_code == 1  # a used canary outranks an unknown one
    statuses = {c["identifier"]: c["status"] for c in json.loads(partial.stdout)["canaries"]}
    assert statuses == {"key_admin0": "quiet", "key_1_01": "used", "key_missing": "unknown"}
