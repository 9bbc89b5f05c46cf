"""LiteLLM canaries over real HTTP: zero budget, no models, planted, tripped, deleted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from keyguard.canary.litellm import NO_MODELS
from tests.canary.litellm_proxy import FakeProxy
from tests.cli.conftest import Cli
from tests.fixtures.aws import leaked_slices

MASTER = "sk-master-0123456789abcdef"  # pragma: allowlist secret


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProxy]:
    fake = FakeProxy(MASTER)
    with fake.running():
        monkeypatch.setenv("LITELLM_BASE_URL", fake.url)
        monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER)
        yield fake


def test_litellm_canary_lifecycle(cli: Cli, proxy: FakeProxy,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = str(cli.workdir / "s.db")
    made = cli(["canary", "create", "litellm", "--name", "reporting-batch",
                "--plant", "file:.env.production", "--state", state])
    assert made.exit_code == 0, made.stderr
    [(token, row)] = proxy.keys.items()
    assert row["max_budget"] == 0
    assert row["models"] == [NO_MODELS]
    assert row["key_alias"] == "reporting-batch"
    assert token in made.stdout
    planted = (cli.workdir / ".env.production").read_text()
    key = planted.strip().split("=", 1)[1]
    assert planted == f"LITELLM_API_KEY={key}\n"

    monkeypatch.delenv("LITELLM_BASE_URL")  # check and delete use the recorded proxy URL
    quiet = cli(["canary", "check", "--state", state])
    assert quiet.exit_code == 0, quiet.stderr
    assert "QUIET" in quiet.stdout

    proxy.use(key)
    used = cli(["canary", "check", "--format", "json", "--state", state])
    assert used.exit_code == 1
    [alert] = json.loads(used.stdout)["alerts"]
    assert alert["key"] == token
    assert alert["key_alias"] == "reporting-batch"
    assert alert["evidence"]["seen_by"] == "litellm:GET /key/info"
    assert alert["start"] == "2026-11-27T20:00:00Z"
    texts = [made.stdout, made.stderr, quiet.stdout, used.stdout, used.stderr,
             *(p.read_bytes().decode("latin-1") for p in cli.workdir.glob("s.db*"))]
    assert leaked_slices([key], texts) == []

    canary_id = made.stdout.split()[1]
    gone = cli(["canary", "delete", canary_id, "--state", state])
    assert gone.exit_code == 0, gone.stderr
    assert proxy.keys == {}
    assert not (cli.workdir / ".env.production").exists()


def test_proxy_refusing_the_master_key_is_one_line(cli: Cli, proxy: FakeProxy,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-wrong-master-key")
    result = cli(["canary", "create", "litellm", "--name", "reporting-batch",
                  "--state", str(cli.workdir / "s.db")])
    assert result.exit_code == 3
    assert "HTTP 401" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert proxy.keys == {}


def test_no_proxy_configured_is_a_usage_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_BASE_URL", raising=False)
    result = cli(["canary", "create", "litellm", "--name", "reporting-batch"])
    assert result.exit_code == 2
    assert "LITELLM_BASE_URL" in result.stderr
