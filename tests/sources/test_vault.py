"""The vault source against a real OpenBao dev server (``bao server -dev``, see tests/fixtures)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
import pytest
from typer.testing import CliRunner

from keyguard.config import Config, SourcesConfig, VaultConfig
from keyguard.fakes import fake_aws_pair, fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, KeyStatus, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import SOURCES, SourceContext
from keyguard.sources.vault import VaultSource
from tests.fixtures.vault import VaultServer, free_port, start_dev_server

FINGERPRINTER = Fingerprinter(bytes(range(32)))
PROD_MOUNT = "kv-prod"

READ_SECRET_ONLY = """
path "sys/mounts" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "secret/data/*" { capabilities = ["read"] }
"""
METADATA_ONLY = """
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "kv-prod/metadata/*" { capabilities = ["list", "read"] }
"""


@dataclass(frozen=True)
class Seeded:
    """What the module seeded: a unique prefix, planted values, and tokens with policies."""

    server: VaultServer
    prefix: str
    values: Mapping[str, str]  # "<mount>/<path>#<field>" -> planted value
    restricted_token: str  # reads secret/ only; cannot list kv-prod/
    metadata_token: str  # metadata of both mounts, no data, no sys/mounts

    def env(self, token: str | None = None) -> dict[str, str]:
        return {"VAULT_ADDR": self.server.address, "VAULT_TOKEN": token or self.server.root_token,
                "HOME": str(self.server.home)}

    def ours(self, records: Iterable[KeyRecord]) -> list[KeyRecord]:
        return sorted((r for r in records if f"/{self.prefix}/" in r.location),
                      key=lambda r: (r.location, r.field or ""))


def _write(client: hvac.Client, mount: str, path: str, data: Mapping[str, str]) -> None:
    client.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)


@pytest.fixture(scope="module")
def seeded(vault_server: VaultServer) -> Seeded:
    """Two KV v2 mounts with fake keys, tags, nested paths, versions and a soft delete."""
    root = vault_server.client()
    mounts = root.sys.list_mounted_secrets_engines()["data"]  # type: ignore[no-untyped-call]
    if f"{PROD_MOUNT}/" not in mounts:
        root.sys.enable_secrets_engine("kv", path=PROD_MOUNT, options={"version": "2"})
    rng = random.Random(6)
    p = f"t{uuid.uuid4().hex[:8]}"
    openai_old, openai = fake_key("openai-project", rng), fake_key("openai-project", rng)
    stripe = fake_key("stripe-secret", rng)
    aws_id, aws_secret = fake_aws_pair(rng)
    github = fake_key("github-classic-pat", rng)
    anthropic = fake_key("anthropic-api", rng)
    webhook = fake_key("slack-webhook", rng)

    _write(root, "secret", f"{p}/openai", {"api_key": openai_old})
    _write(root, "secret", f"{p}/openai", {"api_key": openai})  # version 2: a rotation
    root.secrets.kv.v2.update_metadata(path=f"{p}/openai", mount_point="secret",
                                       custom_metadata={"owner": "ml-team", "environment": "prod"})
    _write(root, "secret", f"{p}/team/nested/deep/payments",
           {"STRIPE_SECRET_KEY": stripe, "note": "billing"})
    _write(root, "secret", f"{p}/aws", {"aws_access_key_id": aws_id, "aws_secret_access_key": aws_secret})
    _write(root, "secret", f"{p}/retired", {"token": github})
    root.secrets.kv.v2.delete_latest_version_of_secret(path=f"{p}/retired", mount_point="secret")
    _write(root, "secret", f"{p}/settings", {"region": "eu-west-1"})
    _write(root, PROD_MOUNT, f"{p}/anthropic", {"ANTHROPIC_API_KEY": anthropic})
    root.secrets.kv.v2.update_metadata(path=f"{p}/anthropic", mount_point=PROD_MOUNT,
                                       cas_required=True, delete_version_after="720h",
                                       custom_metadata={"team": "research"})
    _write(root, PROD_MOUNT, f"{p}/alerts/slack", {"webhook": webhook})

    root.sys.create_or_update_policy(name="kg-read-secret", policy=READ_SECRET_ONLY)
    root.sys.create_or_update_policy(name="kg-metadata-only", policy=METADATA_ONLY)
    restricted = root.auth.token.create(policies=["kg-read-secret"], ttl="1h")["auth"]["client_token"]
    metadata = root.auth.token.create(policies=["kg-metadata-only"], ttl="1h")["auth"]["client_token"]
    values = {
        f"secret/{p}/openai#api_key": openai, f"secret/{p}/openai#old": openai_old,
        f"secret/{p}/team/nested/deep/payments#STRIPE_SECRET_KEY": stripe,
        f"secret/{p}/aws#aws_secret_access_key": aws_secret,
        f"secret/{p}/retired#token": github,
        f"{PROD_MOUNT}/{p}/anthropic#ANTHROPIC_API_KEY": anthropic,
        f"{PROD_MOUNT}/{p}/alerts/slack#webhook": webhook,
    }
    return Seeded(vault_server, p, values, restricted, metadata)


def make_ctx(inspect: bool = False, **settings: object) -> SourceContext:
    cfg = VaultConfig(**settings)  # type: ignore[arg-type]
    return SourceContext(config=Config(sources=SourcesConfig(vault=cfg)), fingerprinter=FINGERPRINTER,
                         now=datetime.now(UTC), inspect_values=inspect)


def collect(ctx: SourceContext, env: Mapping[str, str]) -> tuple[list[KeyRecord], list[SourceFailure]]:
    records: list[KeyRecord] = []
    failures: list[SourceFailure] = []
    for item in VaultSource(ctx, env=env).collect():
        if isinstance(item, SourceFailure):
            failures.append(item)
        else:
            records.append(item)
    return records, failures


def assert_no_leak(values: Iterable[str], *found: Sequence[object]) -> None:
    """No planted value, nor any 12-character slice of one, in any repr or str."""
    text = "\n".join(f"{obj!r}\n{obj}" for group in found for obj in group)
    for value in values:
        for i in range(len(value) - 11):
            assert value[i:i + 12] not in text, "a secret value leaked into a record or failure"


def by_location(records: Iterable[KeyRecord]) -> dict[str, list[KeyRecord]]:
    out: dict[str, list[KeyRecord]] = {}
    for record in records:
        out.setdefault(record.location, []).append(record)
    return out


@pytest.fixture(autouse=True)
def _no_vault_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The developer's VAULT_* variables and ~/.vault-token must not leak into a test."""
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_ROLE_ID", "VAULT_SECRET_ID",
                 "VAULT_CACERT", "VAULT_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


# -- metadata ---------------------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    cls = SOURCES.load("vault")
    assert cls is VaultSource
    assert cls.name == "vault"


def test_metadata_of_both_mounts_without_reading_values(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(), seeded.env())
    assert failures == []
    ours = by_location(seeded.ours(records))
    p = seeded.prefix
    assert sorted(ours) == sorted([
        f"secret/{p}/openai", f"secret/{p}/team/nested/deep/payments", f"secret/{p}/aws",
        f"secret/{p}/retired", f"secret/{p}/settings",
        f"{PROD_MOUNT}/{p}/anthropic", f"{PROD_MOUNT}/{p}/alerts/slack",
    ])
    flat = [r for rs in ours.values() for r in rs]
    assert len(flat) == 7  # one record per secret: nothing was classified
    assert all(not r.value_inspected and r.fingerprint is None and r.field is None for r in flat)
    host = seeded.server.address.removeprefix("http://")
    assert {r.account for r in flat} == {host}

    (openai,) = ours[f"secret/{p}/openai"]
    assert openai.name == f"{p}/openai"
    assert openai.tags == {"environment": "prod", "owner": "ml-team"}
    assert openai.status is KeyStatus.ACTIVE
    assert openai.created is not None
    assert openai.last_changed is not None
    assert openai.last_rotated is not None
    assert openai.created <= openai.last_rotated <= openai.last_changed
    assert datetime.now(UTC) - openai.created < timedelta(hours=1)
    assert {"mount=secret", "version=2", "versions=2", "cas-required=false",
            "delete-version-after=0s"} <= set(openai.scope.details)
    assert openai.rotation is not None
    assert openai.rotation.supported is False
    assert "created_time" in openai.provenance["created"]

    (payments,) = ours[f"secret/{p}/team/nested/deep/payments"]
    assert payments.last_rotated is None  # version 1 was never replaced
    assert "version=1" in payments.scope.details

    (retired,) = ours[f"secret/{p}/retired"]
    assert retired.status is KeyStatus.DELETED

    (anthropic,) = ours[f"{PROD_MOUNT}/{p}/anthropic"]
    assert anthropic.tags == {"team": "research"}
    assert {"cas-required=true", "delete-version-after=720h0m0s", f"mount={PROD_MOUNT}"} <= set(
        anthropic.scope.details)
    assert_no_leak(seeded.values.values(), records, failures)


def test_inspect_values_classifies_each_field(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(inspect=True), seeded.env())
    assert failures == []
    ours = by_location(seeded.ours(records))
    p = seeded.prefix

    (openai,) = ours[f"secret/{p}/openai"]
    assert (openai.provider, openai.kind, openai.field) == ("openai", "openai-project", "api_key")
    assert openai.value_inspected
    # The latest version is read: the fingerprint is the current value's, not version 1's.
    assert openai.fingerprint == FINGERPRINTER.fingerprint(Secret(seeded.values[f"secret/{p}/openai#api_key"]))
    assert openai.tags["owner"] == "ml-team"  # metadata survives classification

    (payments,) = ours[f"secret/{p}/team/nested/deep/payments"]
    assert (payments.kind, payments.field) == ("stripe-secret", "STRIPE_SECRET_KEY")

    (aws,) = ours[f"secret/{p}/aws"]
    assert aws.kind == "aws-access-key"
    assert aws.key_id is not None
    assert aws.key_id.startswith("AKIA")

    (retired,) = ours[f"secret/{p}/retired"]  # soft-deleted: listed, value not read
    assert retired.status is KeyStatus.DELETED
    assert not retired.value_inspected
    assert retired.fingerprint is None

    (settings,) = ours[f"secret/{p}/settings"]  # no credential in it: one unknown record
    assert settings.value_inspected
    assert settings.kind == "unknown"

    (anthropic,) = ours[f"{PROD_MOUNT}/{p}/anthropic"]
    assert (anthropic.kind, anthropic.field) == ("anthropic-api", "ANTHROPIC_API_KEY")
    (slack,) = ours[f"{PROD_MOUNT}/{p}/alerts/slack"]
    assert (slack.kind, slack.field) == ("slack-webhook", "webhook")
    assert len({r.identity for rs in ours.values() for r in rs}) == 7
    assert_no_leak(seeded.values.values(), records, failures)


def test_configured_mounts_limit_the_walk(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(mounts=(f"{PROD_MOUNT}/",)), seeded.env())
    assert failures == []
    assert records
    assert {r.location.split("/", 1)[0] for r in records} == {PROD_MOUNT}
    assert len(seeded.ours(records)) == 2


def test_configured_mount_that_is_not_kv2_or_missing_fails_alone(seeded: Seeded) -> None:
    root = seeded.server.client()
    if "kv-one/" not in root.sys.list_mounted_secrets_engines()["data"]:  # type: ignore[no-untyped-call]
        root.sys.enable_secrets_engine("kv", path="kv-one", options={"version": "1"})
    root.secrets.kv.v1.create_or_update_secret(path="legacy", secret={"k": "v"}, mount_point="kv-one")
    ctx = make_ctx(mounts=("kv-one", "no-such-mount", PROD_MOUNT))
    records, failures = collect(ctx, seeded.env())
    assert [(f.scope, f.message) for f in failures] == [
        ("kv-one", "kv-one/ is KV version 1, not KV version 2"),
        ("no-such-mount", "no mount at no-such-mount/"),
    ]
    assert len(seeded.ours(records)) == 2  # the good mount is still read


def test_max_secrets_stops_with_a_failure(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(mounts=("secret",), max_secrets=3), seeded.env())
    assert len(records) == 3
    (failure,) = failures
    assert failure.scope == "secret"
    assert "limit of 3 secrets" in failure.message
    assert "max-secrets" in failure.hint


def test_identity_is_stable_across_runs_and_addresses(seeded: Seeded) -> None:
    first, _ = collect(make_ctx(mounts=(PROD_MOUNT,)), seeded.env())
    localhost = {**seeded.env(), "VAULT_ADDR": seeded.server.address.replace("127.0.0.1", "localhost")}
    second, _ = collect(make_ctx(mounts=(PROD_MOUNT,)), localhost)
    assert sorted(r.identity for r in first) == sorted(r.identity for r in second)
    assert all(r.identity == f"vault:{r.location}" for r in first)


# -- permissions and failures -----------------------------------------------------------------


def test_mount_the_token_cannot_list_fails_alone(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(inspect=True), seeded.env(seeded.restricted_token))
    (failure,) = failures
    assert failure.scope == PROD_MOUNT
    assert "permission denied" in failure.message
    assert f"{PROD_MOUNT}/metadata/*" in failure.hint
    ours = by_location(seeded.ours(records))
    assert all(loc.startswith("secret/") for loc in ours)
    assert len(ours) == 5
    assert ours[f"secret/{seeded.prefix}/openai"][0].kind == "openai-project"
    assert seeded.restricted_token not in f"{failures!r}{records!r}"
    assert_no_leak(seeded.values.values(), records, failures)


def test_metadata_only_token_lists_but_cannot_inspect(seeded: Seeded) -> None:
    """No sys/mounts: mounts come from sys/internal/ui/mounts; no data/: values are not read."""
    env = seeded.env(seeded.metadata_token)
    records, failures = collect(make_ctx(), env)
    assert failures == []
    assert len(seeded.ours(records)) == 7

    records, failures = collect(make_ctx(inspect=True), env)
    ours = seeded.ours(records)
    assert len(ours) == 7
    assert not any(r.value_inspected for r in ours)
    assert {f.scope for f in failures} == {"secret", PROD_MOUNT}
    assert all("permission denied reading the value" in f.message for f in failures)
    assert all("/data/*" in f.hint for f in failures)


def test_bad_token_is_one_failure_without_the_token(seeded: Seeded) -> None:
    bogus = "hvs.CAESIThisIsNotARealTokenAtAll000"
    records, failures = collect(make_ctx(inspect=True), seeded.env(bogus))
    assert records == []
    (failure,) = failures
    assert "rejected the token" in failure.message
    assert "VAULT_TOKEN" in failure.hint
    assert_no_leak([bogus], failures)


def test_unreachable_address_fails_fast(seeded: Seeded) -> None:
    env = {**seeded.env(), "VAULT_ADDR": f"http://127.0.0.1:{free_port()}"}
    started = datetime.now(UTC)
    records, failures = collect(make_ctx(timeout=3), env)
    assert records == []
    (failure,) = failures
    assert "unreachable" in failure.message
    assert "VAULT_ADDR" in failure.hint
    assert datetime.now(UTC) - started < timedelta(seconds=10)


def test_tls_problems_are_one_failure(seeded: Seeded, tmp_path: Path) -> None:
    https = {**seeded.env(), "VAULT_ADDR": seeded.server.address.replace("http://", "https://")}
    records, failures = collect(make_ctx(), https)
    assert records == []
    assert [f.message for f in failures] == [
        f"TLS verification of Vault at {seeded.server.address.removeprefix('http://')} failed"]
    assert "VAULT_CACERT" in failures[0].hint

    missing = tmp_path / "no-such-ca.pem"
    _, failures = collect(make_ctx(), {**https, "VAULT_CACERT": str(missing)})
    (failure,) = failures
    assert "is not a readable file" in failure.message
    assert str(missing) in failure.message


def test_no_address_and_no_credentials(tmp_path: Path) -> None:
    _, failures = collect(make_ctx(), {"HOME": str(tmp_path)})
    assert [f.message for f in failures] == ["no Vault address configured"]
    _, failures = collect(make_ctx(address="http://127.0.0.1:1"), {"HOME": str(tmp_path)})
    assert [f.message for f in failures] == ["no Vault credentials found"]
    assert "VAULT_TOKEN" in failures[0].hint


def test_token_file_and_config_reference(seeded: Seeded, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".vault-token").write_text(seeded.server.root_token + "\n", encoding="utf-8")
    env = {"VAULT_ADDR": seeded.server.address, "HOME": str(home)}
    records, failures = collect(make_ctx(mounts=(PROD_MOUNT,)), env)
    assert failures == []
    assert len(seeded.ours(records)) == 2

    env = {"VAULT_ADDR": seeded.server.address, "HOME": str(tmp_path), "KG_VAULT": seeded.restricted_token}
    records, failures = collect(make_ctx(mounts=("secret",), token="env:KG_VAULT"), env)
    assert failures == []
    assert len(seeded.ours(records)) == 5


def test_literal_token_in_config_is_refused(seeded: Seeded) -> None:
    records, failures = collect(make_ctx(token=seeded.server.root_token), seeded.env())
    assert records == []
    (failure,) = failures
    assert "literal value" in failure.message
    assert "keyguard auth set" in failure.hint
    assert seeded.server.root_token not in f"{failure!r}"


def test_approle_login(seeded: Seeded) -> None:
    root = seeded.server.client()
    if "approle/" not in root.sys.list_auth_methods()["data"]:  # type: ignore[no-untyped-call]
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("kg-reader", token_policies=["kg-read-secret"])
    role_id = root.auth.approle.read_role_id("kg-reader")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("kg-reader")["data"]["secret_id"]
    env = {"VAULT_ADDR": seeded.server.address, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    records, failures = collect(make_ctx(mounts=("secret",)), env)
    assert failures == []
    assert len(seeded.ours(records)) == 5

    wrong = str(uuid.uuid4())
    records, failures = collect(make_ctx(), {**env, "VAULT_SECRET_ID": wrong})
    assert records == []
    (failure,) = failures
    assert "AppRole login" in failure.message
    assert wrong not in f"{failure!r}"
    assert secret_id not in f"{failure!r}"


def test_namespace_prefixes_location(seeded: Seeded) -> None:
    root = seeded.server.client()
    ns = f"ns{seeded.prefix}"
    root.sys.create_namespace(ns)  # type: ignore[no-untyped-call]
    inner = hvac.Client(url=seeded.server.address, token=seeded.server.root_token, namespace=ns)
    inner.sys.enable_secrets_engine("kv", path="team-kv", options={"version": "2"})
    _write(inner, "team-kv", f"{seeded.prefix}/db", {"password": "x" * 20})
    env = {**seeded.env(), "VAULT_NAMESPACE": ns}
    records, failures = collect(make_ctx(), env)
    assert failures == []
    assert [r.location for r in records] == [f"{ns}/team-kv/{seeded.prefix}/db"]
    assert f"namespace={ns}" in records[0].scope.details


def test_sealed_server_is_one_failure() -> None:
    with start_dev_server() as server:
        server.client().sys.seal()  # type: ignore[no-untyped-call]
        records, failures = collect(make_ctx(), {"VAULT_ADDR": server.address, "VAULT_TOKEN": server.root_token})
    assert records == []
    (failure,) = failures
    assert "sealed" in failure.message
    assert "unseal" in failure.hint


# -- through the CLI --------------------------------------------------------------------------


@pytest.fixture
def cli_env(seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keyring: None) -> Path:
    home = tmp_path / "cli-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULT_ADDR", seeded.server.address)
    monkeypatch.setenv("VAULT_TOKEN", seeded.restricted_token)
    return home


def test_inventory_cli_reports_records_and_the_failed_mount(seeded: Seeded, cli_env: Path) -> None:
    from keyguard.cli import app

    result = CliRunner().invoke(app, ["inventory", "--source", "vault", "--inspect-values", "-f", "json"],
                                prog_name="keyguard")
    assert result.exit_code == 3, result.output  # kv-prod could not be listed: partial result
    doc = json.loads(result.stdout)
    text = json.dumps(doc)
    assert f"secret/{seeded.prefix}/openai" in text
    assert "openai-project" in text
    assert PROD_MOUNT in result.stderr or PROD_MOUNT in text
    assert_no_leak(seeded.values.values(), [result.stdout, result.stderr])
    assert seeded.restricted_token not in result.output
