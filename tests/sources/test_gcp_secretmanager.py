"""gcp-secretmanager through the official client (REST transport) against a local fake API."""

from __future__ import annotations

import dataclasses
import time

import pytest

from keyguard.classify import classify_token
from keyguard.config import GcpSecretManagerConfig, SourcesConfig
from keyguard.model import KeyStatus
from keyguard.sources import SourceContext
from tests.fakes.gcp_api import FakeGcpApi
from tests.fixtures.providers import GCP_PROJECTS, SEED_NOW, collect, context

SOURCE = "gcp-secretmanager"


def _ctx(api: FakeGcpApi, *, inspect_values: bool = False, **settings: object) -> SourceContext:
    cfg = GcpSecretManagerConfig(projects=GCP_PROJECTS, endpoint=api.url,
                                 access_token="env:KG_TEST_GCP_TOKEN", timeout=5, page_size=10)
    cfg = dataclasses.replace(cfg, **settings)  # type: ignore[arg-type]
    return context(SourcesConfig(gcp_secretmanager=cfg), inspect_values=inspect_values)


def test_counts_across_pages(gcp_api: FakeGcpApi) -> None:
    got = collect(SOURCE, _ctx(gcp_api))
    assert got.failures == []
    assert [r.location for r in got.records] == [s.name for s in gcp_api.secrets]
    lists = [r for r in gcp_api.log if r.path.endswith("/secrets")]
    assert len(lists) == 2 * 4  # 31 secrets per project, 10 per page
    assert [r.query.get("pageToken") for r in lists[:4]] == [None, "10", "20", "30"]
    assert got.progress == ["alpha-project: 31 secrets", "beta-project: 31 secrets"]


def test_field_mapping(gcp_api: FakeGcpApi) -> None:
    by_name = {r.location: r for r in collect(SOURCE, _ctx(gcp_api)).records}
    for secret in gcp_api.secrets:
        record = by_name[secret.name]
        assert record.source == SOURCE
        assert record.name == secret.id
        assert record.account == secret.project
        assert dict(record.tags) == secret.labels
        assert record.created == secret.created
        assert record.expires == secret.expires
        assert record.fingerprint is None
        assert not record.value_inspected
        enabled = [v for v in secret.versions if v[1] == "ENABLED"]
        if secret.expires and secret.expires <= SEED_NOW:
            assert record.status is KeyStatus.EXPIRED
        elif not enabled:
            assert record.status is KeyStatus.INACTIVE
            assert record.last_changed is None
        else:
            assert record.status is KeyStatus.ACTIVE
        if enabled:
            assert record.last_changed == enabled[-1][2]
            assert f"version={enabled[-1][0]}" in record.scope.details
        assert f"versions={len(secret.versions)}" in record.scope.details
        if secret.user_managed:
            assert "replication=user-managed(us-east1,europe-west1)" in record.scope.details
        else:
            assert "replication=automatic" in record.scope.details
        assert record.rotation is not None
        assert record.rotation.supported
        if secret.rotation:
            assert record.rotation.enabled is True
            assert record.rotation.interval_days == 30
            assert record.rotation.next_rotation == secret.rotation[0]
            assert f"topics={secret.topics[0]}" in record.scope.details
        else:
            assert record.rotation.enabled is None
    assert {r.status for r in by_name.values()} == {KeyStatus.ACTIVE, KeyStatus.INACTIVE, KeyStatus.EXPIRED}


def test_values_only_with_inspect(gcp_api: FakeGcpApi) -> None:
    assert not [r for r in gcp_api.log if r.path.endswith(":access")]
    got = collect(SOURCE, _ctx(gcp_api, inspect_values=True))
    assert got.failures == []
    accessed = [r for r in gcp_api.log if r.path.endswith(":access")]
    readable = [s for s in gcp_api.secrets if any(v[1] == "ENABLED" for v in s.versions)]
    assert len(accessed) == len(readable)
    by_name = {r.location: r for r in got.records}
    kinds = {"anthropic-api", "openai-project", "github-classic-pat", "stripe-secret"}
    for secret in readable:
        record = by_name[secret.name]
        assert record.value_inspected
        if secret.binary:
            assert record.fingerprint is None
        else:
            assert record.kind in kinds
            assert record.fingerprint is not None
            latest = [v for v in secret.versions if v[1] == "ENABLED"][-1]
            fmt = classify_token(latest[3])
            assert fmt is not None
            assert record.kind == fmt.kind  # the latest *enabled* version was read
    text = repr(got.records)
    for secret in gcp_api.secrets:
        for version in secret.versions:
            assert version[3][8:40] not in text


def test_same_value_same_fingerprint_as_other_stores(gcp_api: FakeGcpApi) -> None:
    records = collect(SOURCE, _ctx(gcp_api, inspect_values=True)).records
    fps = [r.fingerprint for r in records if r.fingerprint]
    assert len(fps) == len(set(fps))  # every seeded value is distinct


def test_retries_are_bounded(gcp_api: FakeGcpApi) -> None:
    gcp_api.throttle(1, retry_after="0")
    gcp_api.fail(503)
    got = collect(SOURCE, _ctx(gcp_api))
    assert got.failures == []
    assert len(got.records) == 62
    gcp_api.reset()
    gcp_api.throttle(10_000, retry_after="0")
    started = time.monotonic()
    got = collect(SOURCE, _ctx(gcp_api, timeout=2, projects=("alpha-project",)))
    assert time.monotonic() - started < 8
    assert got.records == []
    assert len(got.failures) == 1
    assert "still failing after retries" in got.failures[0].message


def test_denied_project_is_one_failure(gcp_api: FakeGcpApi) -> None:
    gcp_api.denied_projects.add("beta-project")
    got = collect(SOURCE, _ctx(gcp_api))
    assert len(got.failures) == 1
    assert got.failures[0].scope == "project beta-project"
    assert "permission denied" in got.failures[0].message
    assert "roles/secretmanager.viewer" in got.failures[0].hint
    assert {r.account for r in got.records} == {"alpha-project"}


def test_bad_token(gcp_api: FakeGcpApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.setenv("KG_TEST_GCP_TOKEN", "ya29.wrong-token-value-0123456789")
    got = collect(SOURCE, _ctx(gcp_api))
    assert got.records == []
    assert len(got.failures) == 2  # one per project
    for failure in got.failures:
        assert "credentials rejected" in failure.message
        assert "access-token" in failure.hint
        assert "wrong-token-value" not in repr(failure)


def test_missing_token_reference(gcp_api: FakeGcpApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.delenv("KG_TEST_GCP_TOKEN")
    got = collect(SOURCE, _ctx(gcp_api))
    assert len(got.failures) == 1
    assert "KG_TEST_GCP_TOKEN" in got.failures[0].message
    assert gcp_api.log == []


def test_no_project(gcp_api: FakeGcpApi) -> None:
    got = collect(SOURCE, _ctx(gcp_api, projects=()))
    assert len(got.failures) == 1
    assert "GOOGLE_CLOUD_PROJECT" in got.failures[0].hint


def test_project_from_environment(gcp_api: FakeGcpApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.setenv("GOOGLE_CLOUD_PROJECT", "beta-project")
    got = collect(SOURCE, _ctx(gcp_api, projects=()))
    assert got.failures == []
    assert {r.account for r in got.records} == {"beta-project"}


def test_unreachable(gcp_api: FakeGcpApi, unused_port: int) -> None:
    started = time.monotonic()
    got = collect(SOURCE, _ctx(gcp_api, endpoint=f"http://127.0.0.1:{unused_port}",
                              projects=("alpha-project",)))
    assert time.monotonic() - started < 8
    assert len(got.failures) == 1
    assert "cannot reach" in got.failures[0].message


def test_missing_library_is_one_failure(gcp_api: FakeGcpApi, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", None)  # import now fails
    got = collect(SOURCE, _ctx(gcp_api))
    assert got.records == []
    assert len(got.failures) == 1
    assert "install keyguard[gcp]" in got.failures[0].hint
    assert gcp_api.log == []
