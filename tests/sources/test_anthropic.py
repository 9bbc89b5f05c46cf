"""anthropic against a local fake of the Admin API: paging, both schemas, retries, failures."""

from __future__ import annotations

import time

import pytest

from keyguard.classify import links_of
from keyguard.config import AnthropicConfig, SourcesConfig
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyStatus
from tests.fakes.anthropic_api import FakeAnthropicApi
from tests.fixtures.providers import FINGERPRINT_KEY, collect, context

SOURCE = "anthropic"

FP = Fingerprinter(FINGERPRINT_KEY)


def test_lists_every_key_across_pages(anthropic_api: FakeAnthropicApi) -> None:
    got = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(page_size=10))))
    assert got.failures == []
    assert [r.key_id for r in got.records] == [k.id for k in anthropic_api.keys]
    lists = [r for r in anthropic_api.log if r.path == "/v1/organizations/api_keys"]
    assert len(lists) == 6  # 57 keys, 10 per page
    assert [r.query.get("limit") for r in lists] == ["10"] * 6
    assert lists[1].query["after_id"] == anthropic_api.keys[9].id
    assert got.progress == ["57 API keys"]


def test_default_page_size_is_the_maximum(anthropic_api: FakeAnthropicApi) -> None:
    got = collect(SOURCE)
    assert len(got.records) == len(anthropic_api.keys)
    assert [r.query["limit"] for r in anthropic_api.log] == ["1000"]


def test_field_mapping_both_schema_generations(anthropic_api: FakeAnthropicApi) -> None:
    by_id = {r.key_id: r for r in collect(SOURCE).records}
    statuses = {"active": KeyStatus.ACTIVE, "inactive": KeyStatus.INACTIVE,
                "archived": KeyStatus.DELETED, "expired": KeyStatus.EXPIRED}
    seen_generations = set()
    for key in anthropic_api.keys:
        record = by_id[key.id]
        seen_generations.add(key.generation)
        assert record.source == "anthropic"
        assert record.location == f"anthropic:{key.id}"
        assert record.identity == f"anthropic:anthropic:{key.id}"
        assert record.name == key.name
        assert (record.provider, record.kind) == ("anthropic", "anthropic-api")
        assert record.status is statuses[key.status]
        assert record.created == key.created
        assert record.expires == key.expires
        assert record.owner == key.creator
        assert f"hint=…{key.hint[-4:]}" in record.scope.details
        assert key.hint not in repr(record)  # only a keyed fingerprint of the hint is kept
        assert record.links == links_of(key.value, FP)[1:]  # joins a stored copy of the key
        assert record.fingerprint is None
        assert not record.value_inspected
        assert record.provenance["created"] == "anthropic:GET /v1/organizations/api_keys"
        if key.generation == "classic":
            assert record.scope.labels == ("workspace",)
            assert f"workspace={key.workspace or 'default'}" in record.scope.details
        elif key.principal and key.workspace is None:
            assert record.scope.labels == ("organization",)
        else:
            assert record.scope.labels == ("workspace",)
            assert f"workspace={key.workspace or 'wrkspc_default0'}" in record.scope.details
        if key.principal:
            kind = "user_actor" if key.principal.startswith("user_") else "service_account_actor"
            assert f"principal={kind}:{key.principal}" in record.scope.details
        if key.creator is None:
            assert not any(d.startswith("created-by=") for d in record.scope.details)
    assert seen_generations == {"classic", "newer"}
    assert {r.status for r in by_id.values()} == set(statuses.values())
    assert any(r.scope.labels == ("organization",) for r in by_id.values())


def test_active_key_past_its_expiry_is_expired(anthropic_api: FakeAnthropicApi) -> None:
    expiring = [k for k in anthropic_api.keys if k.expires and k.status == "active"]
    assert expiring
    ctx = context(now=max(k.expires for k in expiring if k.expires))
    by_id = {r.key_id: r for r in collect(SOURCE, ctx).records}
    for key in expiring:
        assert by_id[key.id].status is KeyStatus.EXPIRED


def test_retry_after_is_honoured(anthropic_api: FakeAnthropicApi) -> None:
    anthropic_api.throttle(2, retry_after="1")
    started = time.monotonic()
    got = collect(SOURCE)
    elapsed = time.monotonic() - started
    assert got.failures == []
    assert len(got.records) == len(anthropic_api.keys)
    assert len(anthropic_api.log) == 3
    assert elapsed >= 2.0  # waited the two announced seconds


def test_always_throttled_gives_a_failure_not_a_hang(anthropic_api: FakeAnthropicApi) -> None:
    anthropic_api.throttle(1000, retry_after="0")
    started = time.monotonic()
    got = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(max_retries=3))))
    assert time.monotonic() - started < 5
    assert got.records == []
    assert len(got.failures) == 1
    assert "rate limited (429)" in got.failures[0].message
    assert "after 4 attempts" in got.failures[0].message
    assert len(anthropic_api.log) == 4


def test_long_retry_after_fails_at_once(anthropic_api: FakeAnthropicApi) -> None:
    anthropic_api.throttle(1, retry_after="3600")
    started = time.monotonic()
    got = collect(SOURCE)
    assert time.monotonic() - started < 2
    assert len(got.failures) == 1
    assert "retry after 3600s" in got.failures[0].message


def test_server_error_is_retried(anthropic_api: FakeAnthropicApi) -> None:
    anthropic_api.fail(503, 500)
    got = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(page_size=20))))
    assert got.failures == []
    assert len(got.records) == len(anthropic_api.keys)
    assert len(anthropic_api.log) == 2 + 3


def test_bad_admin_key_is_one_failure_with_hint(anthropic_api: FakeAnthropicApi,
                                                provider_env: pytest.MonkeyPatch) -> None:
    wrong = anthropic_api.admin_key[:-6] + "XXXXAA"
    provider_env.setenv("ANTHROPIC_ADMIN_KEY", wrong)
    got = collect(SOURCE)
    assert got.records == []
    assert len(got.failures) == 1
    failure = got.failures[0]
    assert failure.source == "anthropic"
    assert "HTTP 401" in failure.message
    assert "invalid x-api-key" in failure.message
    assert "ANTHROPIC_ADMIN_KEY" in failure.hint
    assert "\n" not in failure.message
    assert wrong[14:40] not in repr(failure)
    assert len(anthropic_api.log) == 1  # auth errors are not retried


def test_no_admin_key_names_the_variable(anthropic_api: FakeAnthropicApi,
                                         provider_env: pytest.MonkeyPatch) -> None:
    provider_env.delenv("ANTHROPIC_ADMIN_KEY")
    got = collect(SOURCE)
    assert got.records == []
    assert len(got.failures) == 1
    assert "ANTHROPIC_ADMIN_KEY" in got.failures[0].message
    assert "admin-key" in got.failures[0].hint
    assert anthropic_api.log == []


def test_admin_key_from_an_env_reference(anthropic_api: FakeAnthropicApi,
                                         provider_env: pytest.MonkeyPatch) -> None:
    provider_env.delenv("ANTHROPIC_ADMIN_KEY")
    provider_env.setenv("KG_TEST_ANTHROPIC", anthropic_api.admin_key)
    got = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(admin_key="env:KG_TEST_ANTHROPIC"))))
    assert got.failures == []
    assert len(got.records) == len(anthropic_api.keys)


def test_literal_admin_key_in_config_is_refused(anthropic_api: FakeAnthropicApi) -> None:
    got = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(admin_key=anthropic_api.admin_key))))
    assert len(got.failures) == 1
    assert "literal value" in got.failures[0].message
    assert anthropic_api.admin_key[14:40] not in repr(got.failures)
    assert anthropic_api.log == []


def test_unreachable_url(anthropic_api: FakeAnthropicApi, provider_env: pytest.MonkeyPatch,
                         unused_port: int) -> None:
    provider_env.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{unused_port}")
    started = time.monotonic()
    got = collect(SOURCE)
    assert time.monotonic() - started < 5
    assert len(got.failures) == 1
    assert "cannot reach http://127.0.0.1:" in got.failures[0].message
    assert got.failures[0].scope == f"http://127.0.0.1:{unused_port}"


def test_not_json_is_a_failure(anthropic_api: FakeAnthropicApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.setenv("ANTHROPIC_BASE_URL", anthropic_api.url + "/nowhere")
    got = collect(SOURCE)
    assert len(got.failures) == 1
    assert "HTTP 404" in got.failures[0].message


def test_admin_key_never_appears_in_output(anthropic_api: FakeAnthropicApi,
                                           caplog: pytest.LogCaptureFixture) -> None:
    anthropic_api.throttle(1, retry_after="0")
    anthropic_api.fail(502)
    ok = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(page_size=7))))
    anthropic_api.throttle(100, retry_after="0")
    bad = collect(SOURCE, context(SourcesConfig(anthropic=AnthropicConfig(max_retries=1))))
    texts = [repr(ok.records), repr(ok.failures), repr(bad.failures), *ok.progress, caplog.text]
    secret = anthropic_api.admin_key
    for text in texts:
        assert secret not in text
        assert secret[14:34] not in text
    for key in anthropic_api.keys:  # the stored values are never sent, so never seen
        assert key.value[20:60] not in repr(ok.records)
    assert len(ok.records) == len(anthropic_api.keys)
    assert len(bad.failures) == 1
