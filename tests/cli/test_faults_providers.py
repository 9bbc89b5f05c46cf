"""Provider admin-API faults through the real CLI: 429, 5xx, resets, hangs (issue 8).

One :class:`~tests.fixtures.faultproxy.FaultProxy` sits in front of each provider fake
(Anthropic, OpenAI, LiteLLM) and the provider's ``*_BASE_URL`` points at it, so keyguard's
``_http`` client meets the faults over real sockets. Waits are measured from the proxy's
arrival timestamps (when the retry actually reached the wire), not from the client's
clock. The source-level tests (tests/sources/test_anthropic.py and friends) already cover
a 429/5xx burst recovered and an always-throttled API giving up; these add the wire
timing of ``retry-after`` and of the exponential backoff, resets and hangs (retried since
issue 8), and what the CLI makes of a provider that stays down: exit 3 with the other
providers complete and the last full snapshot kept.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import Result

from keyguard.sources._http import BACKOFF_S
from tests.cli.conftest import Cli
from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fakes.litellm_api import FakeLiteLLMApi
from tests.fakes.openai_api import FakeOpenAIApi
from tests.fixtures.faultproxy import FaultProxy, Rule, Seen

SOURCES = ("anthropic", "openai", "litellm")
#: Key fields that differ between tests for reasons other than faults: the clock, the state
#: file, and the fingerprint key (each test's home makes its own, and provider key hints
#: are kept only as keyed fingerprints).
VOLATILE = frozenset({"age_days", "first_seen", "fingerprint", "links"})
Keys = list[dict[str, object]]
#: Scheduling slack on a loaded 2-core machine: a wait may run late, never early.
LATE = 1.5


@dataclass
class Providers:
    """The CLI pointed at the three provider fakes, each behind its own fault proxy."""

    cli: Cli
    proxies: dict[str, FaultProxy]
    secrets: list[str]
    state: Path

    def configure(self, **tables: dict[str, int]) -> None:
        """Write keyguard.toml with ``[sources.<name>]`` settings (retries, timeouts)."""
        text = "".join(f"[sources.{name}]\n" + "".join(f"{k.replace('_', '-')} = {v}\n"
                                                       for k, v in settings.items())
                       for name, settings in tables.items())
        (self.cli.workdir / "keyguard.toml").write_text(text)

    def run(self, command: str, *extra: str) -> Result:
        """``keyguard COMMAND`` over the three provider sources."""
        args = [command, *(a for s in SOURCES for a in ("--source", s)), "--state",
                str(self.state), *extra]
        result = self.cli(args)
        assert "Traceback" not in result.output
        texts = result.stdout + result.stderr
        assert [s for s in self.secrets if s in texts] == []  # admin credentials never shown
        return result

    def inventory(self, *extra: str) -> tuple[Result, dict[str, object]]:
        """``keyguard inventory -f json`` and its parsed report."""
        result = self.run("inventory", "-f", "json", *extra)
        return result, json.loads(result.stdout)


def keys(doc: dict[str, object], source: str) -> Keys:
    """One source's keys from a JSON report, without the clock-dependent fields."""
    found = doc["keys"]
    assert isinstance(found, list)
    return [{k: v for k, v in key.items() if k not in VOLATILE} for key in found
            if key["source"] == source]


def errors(doc: dict[str, object]) -> list[dict[str, str]]:
    """The report's failures."""
    found = doc["errors"]
    assert isinstance(found, list)
    return found


def retries_of(proxy: FaultProxy, path: str) -> list[Seen]:
    """Every request for ``path`` in arrival order (the first ones faulted, then the retry)."""
    return sorted(proxy.seen(path=path), key=lambda s: s.at)


def gaps(chain: list[Seen]) -> list[float]:
    """Seconds between consecutive requests of a chain, as they reached the wire."""
    return [b.at - a.at for a, b in itertools.pairwise(chain)]


@pytest.fixture
def providers(cli: Cli, anthropic_api: FakeAnthropicApi, openai_api: FakeOpenAIApi,
              litellm_api: FakeLiteLLMApi, provider_env: pytest.MonkeyPatch) -> Iterator[Providers]:
    fakes = {"anthropic": anthropic_api, "openai": openai_api, "litellm": litellm_api}
    proxies = {name: FaultProxy(fake.url, seed=11) for name, fake in fakes.items()}
    with proxies["anthropic"].running(), proxies["openai"].running(), proxies["litellm"].running():
        provider_env.setenv("ANTHROPIC_BASE_URL", proxies["anthropic"].url)
        provider_env.setenv("OPENAI_BASE_URL", proxies["openai"].url + "/v1")
        provider_env.setenv("LITELLM_BASE_URL", proxies["litellm"].url)
        yield Providers(cli, proxies, [anthropic_api.admin_key, openai_api.admin_key,
                                       litellm_api.master_key], cli.workdir / "state.db")


@pytest.fixture(scope="module")
def clean_cache() -> dict[str, Keys]:
    return {}


@pytest.fixture
def clean(providers: Providers, clean_cache: dict[str, Keys]) -> dict[str, Keys]:
    """Each provider's keys with no fault injected (read once per module)."""
    if not clean_cache:
        result, doc = providers.inventory("--no-record")
        assert result.exit_code == 0, result.stderr
        for source in SOURCES:
            clean_cache[source] = keys(doc, source)
            assert clean_cache[source], source
        for proxy in providers.proxies.values():
            assert proxy.log
            proxy.clear()
    return clean_cache


def test_retry_after_is_waited_out_as_seen_on_the_wire(providers: Providers,
                                                       clean: dict[str, Keys]) -> None:
    anthropic = providers.proxies["anthropic"].add(Rule(
        "throttle", path="/v1/organizations/api_keys", first=1, headers={"retry-after": "1"}))
    openai = providers.proxies["openai"].add(Rule(
        "throttle", path="/v1/organization/projects", first=2, headers={"retry-after": "0.5"}))
    result, doc = providers.inventory("--no-record")
    assert result.exit_code == 0, result.stderr
    assert errors(doc) == []
    assert {s: keys(doc, s) for s in SOURCES} == clean
    assert (anthropic.injected, openai.injected) == (1, 2)

    chain = retries_of(providers.proxies["anthropic"], "/v1/organizations/api_keys")
    assert [s.status for s in chain[:2]] == [429, 200]
    (waited, *_rest) = gaps(chain)
    assert 1.0 - 0.05 <= waited <= 1.0 + LATE

    chain = retries_of(providers.proxies["openai"], "/v1/organization/projects")
    assert [s.status for s in chain[:3]] == [429, 429, 200]
    for waited in gaps(chain[:3]):  # a fractional retry-after is honoured as given
        assert 0.5 - 0.05 <= waited <= 0.5 + LATE


def test_server_errors_back_off_exponentially(providers: Providers,
                                              clean: dict[str, Keys]) -> None:
    litellm = providers.proxies["litellm"].add(Rule("status", status=503, path="/key/list",
                                                    first=2))
    openai = providers.proxies["openai"].add(Rule("status", status=500,
                                                  path="/v1/organization/admin_api_keys", first=1))
    result, doc = providers.inventory("--no-record")
    assert result.exit_code == 0, result.stderr
    assert {s: keys(doc, s) for s in SOURCES} == clean
    assert (litellm.injected, openai.injected) == (2, 1)

    chain = retries_of(providers.proxies["litellm"], "/key/list")
    assert [s.status for s in chain[:3]] == [503, 503, 200]
    first, second = gaps(chain[:3])
    assert BACKOFF_S - 0.05 <= first <= BACKOFF_S + LATE
    assert 2 * BACKOFF_S - 0.05 <= second <= 2 * BACKOFF_S + LATE
    assert second > first  # doubled, not constant

    chain = retries_of(providers.proxies["openai"], "/v1/organization/admin_api_keys")
    assert [s.status for s in chain[:2]] == [500, 200]
    assert gaps(chain[:2])[0] >= BACKOFF_S - 0.05


def test_a_reset_and_a_hang_are_retried(providers: Providers, clean: dict[str, Keys]) -> None:
    """An answer that never comes or breaks off is transient, like a 5xx (fixed in issue 8)."""
    providers.configure(litellm={"timeout": 1})
    reset = providers.proxies["anthropic"].add(Rule("reset", path="/v1/organizations/api_keys",
                                                    first=1))
    hang = providers.proxies["litellm"].add(Rule("hang", path="/key/list", first=1, hang_s=30))
    result, doc = providers.inventory("--no-record")
    assert result.exit_code == 0, result.stderr
    assert {s: keys(doc, s) for s in SOURCES} == clean
    assert (reset.injected, hang.injected) == (1, 1)
    chain = retries_of(providers.proxies["litellm"], "/key/list")
    assert [s.fault for s in chain[:2]] == ["hang", None]
    # the client gave up after its 1 s timeout, then backed off: not the proxy's 30 s
    assert 1.0 + BACKOFF_S - 0.05 <= gaps(chain[:2])[0] <= 1.0 + BACKOFF_S + LATE


def snapshots(state: Path) -> list[tuple[int, list[str]]]:
    """(key count, failed sources) of every stored snapshot, oldest first."""
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT key_count, failed_sources FROM snapshots ORDER BY id")
        return [(n, json.loads(failed)) for n, failed in rows]


def test_a_provider_down_for_good_is_partial_and_bounded(providers: Providers,
                                                         clean: dict[str, Keys]) -> None:
    full, _ = providers.inventory()
    assert full.exit_code == 0, full.stderr
    total = sum(len(k) for k in clean.values())

    providers.configure(openai={"max_retries": 1}, anthropic={"timeout": 1, "max_retries": 1})
    down = providers.proxies["openai"].add(Rule("status", status=503))
    hung = providers.proxies["anthropic"].add(Rule("hang", hang_s=60))
    started = time.monotonic()
    result, doc = providers.inventory()
    # NOTE: bounded by settings, not by the faults: two 1 s attempts and one backoff for
    # Anthropic, two attempts and one backoff per OpenAI listing (the proxy hangs 60 s).
    assert time.monotonic() - started < 15
    assert result.exit_code == 3, result.stderr
    assert "partial result, exit 3" in result.stderr
    assert keys(doc, "litellm") == clean["litellm"]
    assert keys(doc, "openai") == keys(doc, "anthropic") == []
    by_source = {e["source"] for e in errors(doc)}
    assert by_source == {"openai", "anthropic"}
    for error in errors(doc):
        assert "\n" not in error["message"] + error["hint"]
        assert "still failing after 2 attempts" in error["message"]
        if error["source"] == "openai":
            assert "server error 503" in error["message"]
        else:
            assert "no answer within 1s" in error["message"]
            assert "raise timeout" in error["hint"]
    assert down.injected == 2 * len({e["scope"] for e in errors(doc) if e["source"] == "openai"})
    assert hung.injected == 2
    # the full snapshot stays; the partial one is added beside it, marked
    assert snapshots(providers.state) == [
        (total, []), (len(clean["litellm"]), ["anthropic", "openai"])]

    check = providers.run("check", "--fail-on", "critical")
    # no critical finding among the fakes' keys, so the partial read decides: exit 3
    assert check.exit_code == 3, check.stderr
    assert "server error 503" in check.stdout
    assert "no answer within 1s" in check.stdout
