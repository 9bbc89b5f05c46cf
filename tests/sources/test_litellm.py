"""litellm against a local fake proxy: paging, hash-only fallback, mapping, retries, failures."""

from __future__ import annotations

import time

import pytest

from keyguard.config import LiteLLMConfig, SourcesConfig
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyStatus
from keyguard.secret import Secret
from keyguard.sources._http import rfc3339
from tests.fakes.litellm_api import FakeLiteLLMApi
from tests.fixtures.providers import FINGERPRINT_KEY, collect, context

SOURCE = "litellm"

FP = Fingerprinter(FINGERPRINT_KEY)


def _cfg(**settings: object) -> SourcesConfig:
    return SourcesConfig(litellm=LiteLLMConfig(**settings))  # type: ignore[arg-type]


def test_counts_across_pages(litellm_api: FakeLiteLLMApi) -> None:
    got = collect(SOURCE, context(_cfg(page_size=5)))
    assert got.failures == []
    assert [r.key_id for r in got.records] == [row["token"] for row in litellm_api.rows]
    pages = [r for r in litellm_api.log if r.path == "/key/list"]
    assert [r.query["page"] for r in pages] == ["1", "2", "3", "4", "5"]
    assert {r.query["size"] for r in pages} == {"5"}
    assert {r.query["return_full_object"] for r in pages} == {"true"}
    assert got.progress == ["23 virtual keys"]


def test_page_size_is_capped_at_the_api_maximum(litellm_api: FakeLiteLLMApi) -> None:
    got = collect(SOURCE, context(_cfg(page_size=1000)))
    assert got.failures == []
    assert [r.query["size"] for r in litellm_api.log] == ["100"]


def test_field_mapping(litellm_api: FakeLiteLLMApi) -> None:
    by_id = {r.key_id: r for r in collect(SOURCE).records}
    for i, row in enumerate(litellm_api.rows):
        record = by_id[str(row["token"])]
        assert record.location == f"litellm:{row['token']}"
        assert (record.provider, record.kind) == ("litellm", "litellm-virtual")
        assert record.name == (row["key_alias"] or row["key_name"])
        assert record.links == (FP.fingerprint(Secret(str(row["token"]))),)
        assert record.created == rfc3339(row["created_at"])
        assert record.created is not None
        assert record.created.tzinfo is not None  # naive proxy timestamps are UTC
        assert record.last_used == rfc3339(row["last_active"])
        assert record.expires == rfc3339(row["expires"])
        assert f"spend={row['spend']:g}" in record.scope.details
        if row["max_budget"] is not None:
            assert "max-budget=100" in record.scope.details
            assert "budget-duration=30d" in record.scope.details
        if row["models"]:
            assert "models=gpt-4o-mini,claude-sonnet" in record.scope.details
            assert record.scope.labels == ()
        else:
            assert "models=all" in record.scope.details
            assert record.scope.labels == ("full-access",)
        assert record.owner == (row["user_id"] or (f"team:{row['team_id']}" if row["team_id"] else None))
        assert record.rotation is not None
        assert record.rotation.enabled is (i % 5 == 1)
        if i % 5 == 1:
            assert record.rotation.interval_days == 30
            assert record.rotation.next_rotation == rfc3339(row["key_rotation_at"])
            assert record.last_rotated == rfc3339(row["last_rotation_at"])
    assert by_id[str(litellm_api.rows[4]["token"])].status is KeyStatus.EXPIRED
    assert by_id[str(litellm_api.rows[7]["token"])].status is KeyStatus.INACTIVE
    assert "blocked=true" in by_id[str(litellm_api.rows[7]["token"])].scope.details
    assert by_id[str(litellm_api.rows[1]["token"])].status is KeyStatus.ACTIVE
    assert dict(by_id[str(litellm_api.rows[0]["token"])].tags) == {"owner-team": "ml"}


def test_hash_only_listing_falls_back_to_key_info(litellm_api: FakeLiteLLMApi) -> None:
    litellm_api.hashes_only = True
    got = collect(SOURCE, context(_cfg(page_size=10)))
    assert got.failures == []
    assert len(got.records) == 23
    assert len([r for r in litellm_api.log if r.path == "/key/info"]) == 23
    full = {r.key_id: r for r in collect(SOURCE).records}
    for record in got.records:
        assert record == full[record.key_id]


def test_retry_after_and_server_error(litellm_api: FakeLiteLLMApi) -> None:
    litellm_api.throttle(1, retry_after="1")
    litellm_api.fail(502)
    started = time.monotonic()
    got = collect(SOURCE)
    assert time.monotonic() - started >= 1.0
    assert got.failures == []
    assert len(got.records) == 23


def test_always_throttled_is_bounded(litellm_api: FakeLiteLLMApi) -> None:
    litellm_api.throttle(10_000, retry_after=None)  # no retry-after: exponential backoff
    started = time.monotonic()
    got = collect(SOURCE, context(_cfg(max_retries=2)))
    assert time.monotonic() - started < 5
    assert len(got.failures) == 1
    assert "rate limited" in got.failures[0].message
    assert len(litellm_api.log) == 3


def test_bad_master_key(litellm_api: FakeLiteLLMApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.setenv("LITELLM_MASTER_KEY", "sk-wrong-master-key-123456")
    got = collect(SOURCE)
    assert got.records == []
    assert len(got.failures) == 1
    assert "HTTP 401" in got.failures[0].message
    assert "LITELLM_MASTER_KEY" in got.failures[0].hint
    assert "sk-wrong-master-key" not in repr(got.failures)


def test_missing_settings(litellm_api: FakeLiteLLMApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.delenv("LITELLM_MASTER_KEY")
    got = collect(SOURCE)
    assert len(got.failures) == 1
    assert "LITELLM_MASTER_KEY is not set" in got.failures[0].message
    provider_env.delenv("LITELLM_BASE_URL")
    got = collect(SOURCE)
    assert len(got.failures) == 1
    assert "LITELLM_BASE_URL is not set" in got.failures[0].message
    assert litellm_api.log == []


def test_unreachable(litellm_api: FakeLiteLLMApi, unused_port: int) -> None:
    got = collect(SOURCE, context(_cfg(base_url=f"http://127.0.0.1:{unused_port}")))
    assert len(got.failures) == 1
    assert "cannot reach" in got.failures[0].message


def test_master_key_and_values_never_in_output(litellm_api: FakeLiteLLMApi,
                                               caplog: pytest.LogCaptureFixture) -> None:
    litellm_api.fail(500)
    got = collect(SOURCE)
    text = repr(got.records) + repr(got.failures) + "\n".join(got.progress) + caplog.text
    assert litellm_api.master_key not in text
    for value in litellm_api.values.values():
        assert value not in text
    assert len(got.records) == 23
