"""azure-keyvault through the official SDK against a local fake vault (TLS, bearer challenge)."""

from __future__ import annotations

import dataclasses
import sys
import time

import pytest

from keyguard.classify import classify_token
from keyguard.config import AzureKeyVaultConfig, SourcesConfig
from keyguard.model import KeyStatus
from keyguard.sources import SourceContext
from tests.fakes.azure_api import FakeAzureVaultApi
from tests.fixtures.providers import SEED_NOW, collect, context

SOURCE = "azure-keyvault"


def _ctx(api: FakeAzureVaultApi, *, inspect_values: bool = False, **settings: object) -> SourceContext:
    cfg = AzureKeyVaultConfig(vaults=(api.url,), access_token="env:KG_TEST_AZURE_TOKEN", timeout=5)
    cfg = dataclasses.replace(cfg, **settings)  # type: ignore[arg-type]
    return context(SourcesConfig(azure_keyvault=cfg), inspect_values=inspect_values)


def test_counts_across_pages(azure_api: FakeAzureVaultApi) -> None:
    got = collect(SOURCE, _ctx(azure_api))
    assert got.failures == []
    assert [r.name for r in got.records] == [s.name for s in azure_api.secrets]
    lists = [r for r in azure_api.log if r.path == "/secrets" and "authorization" in r.headers]
    assert len(lists) == 3  # 57 secrets, 25 per page
    assert lists[2].query["$skiptoken"] == "50"
    assert got.progress == ["127.0.0.1: 57 secrets"]
    assert any("authorization" not in r.headers for r in azure_api.log)  # challenge first


def test_field_mapping(azure_api: FakeAzureVaultApi) -> None:
    by_name = {r.name: r for r in collect(SOURCE, _ctx(azure_api)).records}
    for secret in azure_api.secrets:
        record = by_name[secret.name]
        assert record.location == f"{azure_api.url}/secrets/{secret.name}"
        assert record.account == "127"  # first label of the vault host (the vault name)
        assert record.created == secret.created
        assert record.last_changed == secret.updated
        assert record.expires == secret.expires
        assert dict(record.tags) == (secret.tags or {})
        assert record.rotation is not None
        assert record.rotation.supported is False
        if secret.expires and secret.expires <= SEED_NOW:
            assert record.status is KeyStatus.EXPIRED
        elif not secret.enabled:
            assert record.status is KeyStatus.INACTIVE
        else:
            assert record.status is KeyStatus.ACTIVE
        assert ("content-type=text/plain" in record.scope.details) == bool(secret.content_type)
        assert ("managed=true" in record.scope.details) == secret.managed
        if secret.not_before:
            assert f"not-before={secret.not_before.isoformat()}" in record.scope.details
        assert "recovery-level=Recoverable+Purgeable" in record.scope.details
        assert record.provenance["created"] == "keyvault:list_properties_of_secrets"
        assert not record.value_inspected
    assert not [r for r in azure_api.log if r.path.startswith("/secrets/")]  # no value read


def test_values_with_inspect(azure_api: FakeAzureVaultApi) -> None:
    got = collect(SOURCE, _ctx(azure_api, inspect_values=True))
    assert got.failures == []
    by_name = {r.name: r for r in got.records}
    for secret in azure_api.secrets:
        record = by_name[secret.name]
        if not secret.enabled:
            assert not record.value_inspected  # a disabled secret cannot be read
            continue
        fmt = classify_token(secret.value)
        assert fmt is not None
        assert record.value_inspected
        assert record.kind == fmt.kind
        assert record.fingerprint is not None
        assert secret.value[6:40] not in repr(record)


def test_denied_values_are_failures_and_records_stay(azure_api: FakeAzureVaultApi) -> None:
    azure_api.deny_values = True
    got = collect(SOURCE, _ctx(azure_api, inspect_values=True))
    enabled = [s for s in azure_api.secrets if s.enabled]
    assert len(got.records) == len(azure_api.secrets)
    assert len(got.failures) == len(enabled)
    assert "access denied" in got.failures[0].message
    assert "Key Vault Secrets User" in got.failures[0].hint


def test_throttling_and_server_errors_are_retried(azure_api: FakeAzureVaultApi) -> None:
    azure_api.throttle(2, retry_after="1")
    azure_api.fail(503)
    started = time.monotonic()
    got = collect(SOURCE, _ctx(azure_api))
    assert time.monotonic() - started >= 2.0  # retry-after honoured
    assert got.failures == []
    assert len(got.records) == 57


def test_always_throttled_is_bounded(azure_api: FakeAzureVaultApi) -> None:
    azure_api.throttle(10_000, retry_after="0")
    started = time.monotonic()
    got = collect(SOURCE, _ctx(azure_api))
    assert time.monotonic() - started < 10
    assert got.records == []
    assert len(got.failures) == 1
    assert "still failing after 3 retries" in got.failures[0].message


def test_bad_token(azure_api: FakeAzureVaultApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.setenv("KG_TEST_AZURE_TOKEN", "eyJ.wrong-token-0123456789abcdef")
    got = collect(SOURCE, _ctx(azure_api))
    assert got.records == []
    assert len(got.failures) == 1
    assert "credentials rejected" in got.failures[0].message
    assert "access-token" in got.failures[0].hint
    assert "wrong-token" not in repr(got.failures)


def test_plain_http_vault_is_refused(azure_api: FakeAzureVaultApi) -> None:
    got = collect(SOURCE, _ctx(azure_api, vaults=(azure_api.url.replace("https:", "http:"),)))
    assert len(got.failures) == 1
    assert "is not https" in got.failures[0].message
    assert azure_api.log == []


def test_no_vault_and_missing_token(azure_api: FakeAzureVaultApi, provider_env: pytest.MonkeyPatch) -> None:
    got = collect(SOURCE, _ctx(azure_api, vaults=()))
    assert len(got.failures) == 1
    assert "vaults" in got.failures[0].hint
    provider_env.delenv("KG_TEST_AZURE_TOKEN")
    got = collect(SOURCE, _ctx(azure_api))
    assert len(got.failures) == 1
    assert "KG_TEST_AZURE_TOKEN" in got.failures[0].message
    assert azure_api.log == []


def test_unreachable(azure_api: FakeAzureVaultApi, unused_port: int) -> None:
    started = time.monotonic()
    got = collect(SOURCE, _ctx(azure_api, vaults=(f"https://127.0.0.1:{unused_port}",)))
    assert time.monotonic() - started < 20
    assert len(got.failures) == 1
    assert "cannot reach the vault" in got.failures[0].message


def test_missing_library_is_one_failure(azure_api: FakeAzureVaultApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.keyvault.secrets", None)
    got = collect(SOURCE, _ctx(azure_api))
    assert len(got.failures) == 1
    assert "install keyguard[azure]" in got.failures[0].hint
    assert azure_api.log == []
