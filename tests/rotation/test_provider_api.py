"""ProviderApi (the rotators' HTTP client) waits what a 429's retry-after asks, within limits.

Real HTTP against the local Anthropic fake, which answers the next requests with 429 and
a chosen ``retry-after``; the context's ``sleep`` records the waits instead of sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from keyguard.config import Config, ProviderApiConfig
from keyguard.fakes import fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.rotators._provider import ProviderApi
from keyguard.secret import Secret
from keyguard.sources._http import BACKOFF_S
from tests.fakes.anthropic_api import FakeAnthropicApi

ADMIN = fake_key("anthropic-admin", random.Random(81))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropicApi]:
    api = FakeAnthropicApi(ADMIN, [])
    with api.running():
        yield api


def client(server: FakeAnthropicApi, waits: list[float], max_retries: int = 4) -> ProviderApi:
    ctx = RotationContext(config=Config(), fingerprinter=Fingerprinter(b"k" * 32),
                          now=lambda: datetime.now(UTC), sleep=waits.append, verify_timeout=0)
    headers: dict[str, str | Secret] = {"x-api-key": Secret(ADMIN),
                                        "anthropic-version": "2023-06-01"}
    return ProviderApi(ctx, server.url, headers, ProviderApiConfig(max_retries=max_retries),
                       "anthropic")


def test_a_429_waits_its_retry_after_then_succeeds(server: FakeAnthropicApi) -> None:
    server.reset()
    server.throttle(2, retry_after="3")
    waits: list[float] = []
    reply = client(server, waits).call("GET", "/v1/organizations/api_keys")
    assert reply.status == 200
    assert waits == [3.0, 3.0]


def test_a_429_without_retry_after_backs_off_doubling(server: FakeAnthropicApi) -> None:
    server.reset()
    server.throttle(2, retry_after=None)
    waits: list[float] = []
    client(server, waits).call("GET", "/v1/organizations/api_keys")
    assert waits == [BACKOFF_S, 2 * BACKOFF_S]


def test_a_retry_after_longer_than_the_limit_fails_at_once(server: FakeAnthropicApi) -> None:
    server.reset()
    server.throttle(1, retry_after="600")
    waits: list[float] = []
    with pytest.raises(StepFailed, match=r"retry after 600s, more than max-retry-wait \(60s\)"):
        client(server, waits).call("POST", "/v1/organizations/api_keys/x", body={})
    assert waits == []
    assert len(server.log) == 1  # the POST was not repeated


def test_the_retry_budget_still_bounds_the_attempts(server: FakeAnthropicApi) -> None:
    server.reset()
    server.throttle(5, retry_after="1")
    waits: list[float] = []
    with pytest.raises(StepFailed, match="HTTP 429"):
        client(server, waits, max_retries=2).call("GET", "/v1/organizations/api_keys")
    assert waits == [1.0, 1.0]
    assert len(server.log) == 3
