"""openai against a local fake of the Admin API: admin keys, projects, owners, retries, failures."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from keyguard.config import OpenAIConfig, SourcesConfig
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyStatus
from keyguard.secret import Secret
from tests.fakes.openai_api import FakeOpenAIApi
from tests.fixtures.providers import FINGERPRINT_KEY, SEED_NOW, collect, context

SOURCE = "openai"

FP = Fingerprinter(FINGERPRINT_KEY)


def _cfg(**settings: object) -> SourcesConfig:
    return SourcesConfig(openai=OpenAIConfig(**settings))  # type: ignore[arg-type]


def _ts(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) else None


def test_counts_across_pages(openai_api: FakeOpenAIApi) -> None:
    got = collect(SOURCE, context(_cfg(page_size=2)))
    assert got.failures == []
    active = [p for p in openai_api.projects if not p.archived]
    expected = len(openai_api.admin) + sum(len(p.keys) for p in active)
    assert len(got.records) == expected == 3 + 1 + 4 + 7 + 10 + 13
    assert len({r.location for r in got.records}) == expected
    key_pages = [r for r in openai_api.log if r.path.endswith("/proj_004/api_keys")]
    assert len(key_pages) == 7  # 13 keys, 2 per page
    assert key_pages[1].query["after"] == "key_4_01"
    projects = [r for r in openai_api.log if r.path == "/v1/organization/projects"]
    assert {r.query["include_archived"] for r in projects} == {"false"}
    assert not any("proj_005" in r.path for r in openai_api.log)  # archived: not read


def test_admin_key_mapping(openai_api: FakeOpenAIApi) -> None:
    by_id = {r.key_id: r for r in collect(SOURCE).records if r.kind == "openai-admin"}
    assert set(by_id) == {str(k["id"]) for k in openai_api.admin}
    for raw in openai_api.admin:
        record = by_id[str(raw["id"])]
        assert record.location == f"openai:admin/{raw['id']}"
        assert record.provider == "openai"
        assert record.name == raw["name"]
        assert record.created == _ts(raw["created_at"])
        assert record.last_used == _ts(raw["last_used_at"])
        assert record.expires == _ts(raw["expires_at"])
        assert record.owner == raw["owner"]["name"]  # type: ignore[index]
        assert record.scope.labels == ("organization", "admin")
        assert f"hint=…{str(raw['redacted_value'])[-4:]}" in record.scope.details
        assert record.links == (FP.fingerprint(Secret(str(raw["redacted_value"]))),)
        assert record.status is KeyStatus.ACTIVE
    assert by_id["key_admin0"].last_used is None


def test_project_key_mapping(openai_api: FakeOpenAIApi) -> None:
    records = {r.key_id: r for r in collect(SOURCE).records if r.kind != "openai-admin"}
    project = openai_api.projects[3]
    for raw in project.keys:
        record = records[str(raw["id"])]
        owner = raw["owner"]
        assert isinstance(owner, dict)
        assert record.location == f"openai:{project.id}/{raw['id']}"
        assert record.identity == f"openai:openai:{project.id}/{raw['id']}"
        assert record.scope.labels == ("project",)
        assert f"project={project.id}" in record.scope.details
        assert f"project-name={project.name}" in record.scope.details
        assert f"hint=…{str(raw['redacted_value'])[-4:]}" in record.scope.details
        assert record.links == (FP.fingerprint(Secret(str(raw["redacted_value"]))),)
        assert record.created == _ts(raw["created_at"])
        assert record.last_used == _ts(raw["last_used_at"])
        if owner["type"] == "service_account":
            account = owner["service_account"]
            assert record.kind == "openai-svcacct"
            assert record.owner == account["name"]
            assert f"service-account={account['id']}" in record.scope.details
            assert f"service-account-role={account['role']}" in record.scope.details
        else:
            assert record.kind == "openai-project"
            assert record.owner == owner["user"]["email"]
            assert "owner-role=member" in record.scope.details
    assert records["key_3_03"].status is KeyStatus.INACTIVE  # owner lost project access
    assert "owner-project-access=inactive" in records["key_3_03"].scope.details
    assert records["key_3_05"].status is KeyStatus.EXPIRED
    assert records["key_3_05"].expires is not None
    assert records["key_3_05"].expires < SEED_NOW
    assert records["key_3_00"].status is KeyStatus.ACTIVE


def test_selected_and_archived_projects(openai_api: FakeOpenAIApi) -> None:
    got = collect(SOURCE, context(_cfg(projects=("proj_001", "proj_005"), include_archived=True)))
    assert got.failures == []
    projects = {r.location.split(":")[1].split("/")[0] for r in got.records if r.kind != "openai-admin"}
    assert projects == {"proj_001", "proj_005"}
    assert any("project-status=archived" in r.scope.details for r in got.records)


def test_unknown_configured_project_is_a_failure(openai_api: FakeOpenAIApi) -> None:
    got = collect(SOURCE, context(_cfg(projects=("proj_999",))))
    assert len(got.failures) == 1
    assert "proj_999" in got.failures[0].message
    assert len([r for r in got.records if r.kind == "openai-admin"]) == 3


def test_forbidden_project_does_not_hide_the_others(openai_api: FakeOpenAIApi) -> None:
    openai_api.forbidden_projects.add("proj_002")
    got = collect(SOURCE)
    assert len(got.failures) == 1
    assert got.failures[0].scope == "project proj_002"
    assert "HTTP 403" in got.failures[0].message
    assert "OPENAI_ADMIN_KEY" in got.failures[0].hint
    assert not any("proj_002" in r.location for r in got.records)
    assert any("proj_004" in r.location for r in got.records)


def test_retry_after_honoured_and_5xx_recovered(openai_api: FakeOpenAIApi) -> None:
    openai_api.throttle(1, retry_after="1")
    openai_api.fail(500)
    started = time.monotonic()
    got = collect(SOURCE)
    assert time.monotonic() - started >= 1.0
    assert got.failures == []
    assert len(got.records) == 3 + 1 + 4 + 7 + 10 + 13


def test_always_throttled_is_bounded(openai_api: FakeOpenAIApi) -> None:
    openai_api.throttle(10_000, retry_after="0")
    started = time.monotonic()
    got = collect(SOURCE, context(_cfg(max_retries=2)))
    assert time.monotonic() - started < 10
    assert got.records == []
    assert {f.scope for f in got.failures} == {"admin keys", "projects"}
    assert all("rate limited (429)" in f.message for f in got.failures)


def test_bad_admin_key_is_one_scrubbed_failure(openai_api: FakeOpenAIApi,
                                               provider_env: pytest.MonkeyPatch) -> None:
    wrong = openai_api.admin_key.replace("T3BlbkFJ", "T3BlbkFX")
    provider_env.setenv("OPENAI_ADMIN_KEY", wrong)
    got = collect(SOURCE)
    assert got.records == []
    assert len(got.failures) == 1
    assert "HTTP 401" in got.failures[0].message
    assert "Incorrect API key provided: ***" in got.failures[0].message  # echoed, then scrubbed
    assert wrong[10:40] not in repr(got.failures)
    assert "OPENAI_ADMIN_KEY" in got.failures[0].hint
    assert len(openai_api.log) == 1


def test_no_admin_key(openai_api: FakeOpenAIApi, provider_env: pytest.MonkeyPatch) -> None:
    provider_env.delenv("OPENAI_ADMIN_KEY")
    got = collect(SOURCE)
    assert len(got.failures) == 1
    assert "OPENAI_ADMIN_KEY is not set" in got.failures[0].message
    assert openai_api.log == []


def test_unreachable(openai_api: FakeOpenAIApi, provider_env: pytest.MonkeyPatch, unused_port: int) -> None:
    provider_env.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{unused_port}/v1")
    got = collect(SOURCE)
    assert got.records == []
    assert got.failures
    assert all("cannot reach" in f.message for f in got.failures)


def test_admin_key_never_in_output(openai_api: FakeOpenAIApi, caplog: pytest.LogCaptureFixture) -> None:
    openai_api.fail(502)
    got = collect(SOURCE, context(_cfg(page_size=3)))
    text = repr(got.records) + repr(got.failures) + "\n".join(got.progress) + caplog.text
    assert openai_api.admin_key[9:40] not in text
    for project in openai_api.projects:
        for value in project.values.values():
            assert value[12:50] not in text
    assert len(got.records) == 38
