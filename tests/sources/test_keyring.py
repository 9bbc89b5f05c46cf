"""The keyring source against a real gnome-keyring (private D-Bus session, see tests/fixtures)."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.core
import keyring.errors
import pytest
import secretstorage

import keyguard.sources.keyring as keyring_source
from keyguard.config import Config, KeyringConfig, KeyringEntry, SourcesConfig
from keyguard.fakes import fake_key
from keyguard.fingerprint import KEYRING_SERVICE, KEYRING_USERNAME, Fingerprinter, load_key
from keyguard.model import KeyRecord, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import SOURCES, SourceContext
from tests.fixtures.keyring_service import SECRET_SERVICE_BACKEND, KeyringService

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FINGERPRINTER = Fingerprinter(bytes(range(32)))


class Progress:
    """Collects progress messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, source: str, message: str) -> None:
        assert source == "keyring"
        self.messages.append(message)


def make_ctx(
    entries: Iterable[tuple[str, str]] = (),
    *,
    enumerate: bool = True,
    inspect: bool = False,
    collection: str | None = None,
    progress: Progress | None = None,
) -> SourceContext:
    cfg = KeyringConfig(entries=tuple(KeyringEntry(s, u) for s, u in entries),
                        enumerate=enumerate, collection=collection)
    return SourceContext(config=Config(sources=SourcesConfig(keyring=cfg)),
                         fingerprinter=FINGERPRINTER, now=NOW, inspect_values=inspect,
                         progress=progress or Progress())


def collect(ctx: SourceContext) -> tuple[list[KeyRecord], list[SourceFailure]]:
    records: list[KeyRecord] = []
    failures: list[SourceFailure] = []
    for item in SOURCES.load("keyring")(ctx).collect():
        if isinstance(item, SourceFailure):
            failures.append(item)
        else:
            records.append(item)
    return records, failures


def assert_no_leak(values: Sequence[str], *found: Sequence[object]) -> None:
    """No planted value, nor any 12-character slice of one, in any repr or str."""
    text = "\n".join(f"{obj!r}\n{obj}" for group in found for obj in group)
    for value in values:
        for i in range(len(value) - 11):
            assert value[i:i + 12] not in text, "a secret value leaked into a record or failure"


def by_location(records: Iterable[KeyRecord]) -> dict[str, KeyRecord]:
    out = {r.location: r for r in records}
    return out


def recent(moment: datetime | None) -> bool:
    """Dates from gnome-keyring are the real clock's, in UTC."""
    return moment is not None and moment.tzinfo is UTC and abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20260102)


# -- contract -----------------------------------------------------------------------------


def test_plugin_contract() -> None:
    cls = SOURCES.load("keyring")
    assert cls is keyring_source.KeyringSource
    assert cls.name == "keyring"
    assert cls.description


def test_import_keyring_inside_the_module_is_the_library() -> None:
    """keyguard/sources/keyring.py shadows nothing: its ``keyring`` is python-keyring."""
    library = vars(keyring_source)["keyring"]
    assert library is sys.modules["keyring"]
    assert library is not keyring_source
    assert Path(library.__file__ or "").parent.name == "keyring"
    assert callable(library.get_keyring)
    assert callable(library.get_password)


# -- reading the real gnome-keyring -------------------------------------------------------


def test_configured_entries_are_classified_when_inspecting(
    secret_service: KeyringService, rng: random.Random
) -> None:
    openai, admin = fake_key("openai-project", rng), fake_key("anthropic-admin", rng)
    keyring.set_password("openai", "ci-bot", openai)
    keyring.set_password("anthropic", "admin", admin)
    records, failures = collect(make_ctx([("openai", "ci-bot"), ("anthropic", "admin")],
                                         enumerate=False, inspect=True))
    assert failures == []
    found = by_location(records)
    assert sorted(found) == ["anthropic/admin", "openai/ci-bot"]
    rec = found["openai/ci-bot"]
    assert (rec.source, rec.name, rec.provider, rec.kind) == ("keyring", "openai/ci-bot", "openai", "openai-project")
    assert rec.value_inspected
    assert not rec.plaintext
    assert rec.fingerprint == FINGERPRINTER.fingerprint(Secret(openai))
    assert recent(rec.created)
    assert recent(rec.last_changed)
    assert rec.provenance == {"created": "secret-service:Item.Created",
                              "last_changed": "secret-service:Item.Modified"}
    assert rec.tags == {"application": "Python keyring library"}
    assert (found["anthropic/admin"].provider, found["anthropic/admin"].kind) == (
        "anthropic", "anthropic-admin")
    assert_no_leak([openai, admin], records, failures)


def test_without_inspect_records_are_listed_but_values_not_classified(
    secret_service: KeyringService, rng: random.Random
) -> None:
    value = fake_key("github-fine-grained-pat", rng)
    keyring.set_password("github", "release-bot", value)
    records, failures = collect(make_ctx([("github", "release-bot")], inspect=False))
    assert failures == []
    assert len(records) == 1
    rec = records[0]
    assert rec.location == "github/release-bot"
    assert not rec.value_inspected
    assert (rec.provider, rec.kind, rec.fingerprint) == ("unknown", "unknown", None)
    assert recent(rec.created)  # metadata still comes from the Secret Service
    assert_no_leak([value], records)


def test_enumeration_lists_every_item_once(secret_service: KeyringService, rng: random.Random) -> None:
    configured = fake_key("openai-svcacct", rng)
    other = fake_key("huggingface-user", rng)
    openai_in_json, stripe_in_json = fake_key("openai-project", rng), fake_key("stripe-secret", rng)
    keyring.set_password("openai", "svc", configured)
    keyring.set_password("hf", "me", other)
    keyring.set_password("payments", "prod",
                         json.dumps({"openai_api_key": openai_in_json, "stripe": {"secret": stripe_in_json}}))
    progress = Progress()
    records, failures = collect(make_ctx([("openai", "svc")], inspect=True, progress=progress))
    assert failures == []
    locations = [r.location for r in records]
    assert locations.count("openai/svc") == 1  # configured and enumerated: reported once
    assert locations[0] == "openai/svc"  # configured entries first, then the listing
    assert sorted(locations[1:]) == locations[1:]
    kinds = {(r.location, r.field): r.kind for r in records}
    assert kinds == {
        ("openai/svc", None): "openai-svcacct",
        ("hf/me", None): "huggingface-user",
        ("payments/prod", "openai_api_key"): "openai-project",
        ("payments/prod", "stripe.secret"): "stripe-secret",
    }
    assert any("2 items" in m for m in progress.messages)
    assert_no_leak([configured, other, openai_in_json, stripe_in_json], records, failures)


def test_enumerate_false_reads_only_configured_entries(
    secret_service: KeyringService, rng: random.Random
) -> None:
    keyring.set_password("wanted", "a", fake_key("groq-api", rng))
    keyring.set_password("unwanted", "b", fake_key("groq-api", rng))
    records, failures = collect(make_ctx([("wanted", "a")], enumerate=False))
    assert failures == []
    assert [r.location for r in records] == ["wanted/a"]


def test_missing_configured_entry_is_a_failure_naming_it(
    secret_service: KeyringService, rng: random.Random
) -> None:
    keyring.set_password("present", "user", fake_key("xai-api", rng))
    records, failures = collect(make_ctx([("absent", "nobody"), ("present", "user")], enumerate=False))
    assert [r.location for r in records] == ["present/user"]
    assert len(failures) == 1
    failure = failures[0]
    assert (failure.source, failure.scope) == ("keyring", "absent/nobody")
    assert "absent/nobody" in failure.message
    assert "not found" in failure.message
    assert "[sources.keyring] entries" in failure.hint


def test_keyguards_own_fingerprint_key_is_never_reported(
    secret_service: KeyringService, rng: random.Random, tmp_path: Path
) -> None:
    load_key(tmp_path, lambda message: None)
    own = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    assert own is not None  # the item exists in the collection being listed
    value = fake_key("perplexity-api", rng)
    keyring.set_password("pplx", "me", value)
    progress = Progress()
    records, failures = collect(make_ctx([(KEYRING_SERVICE, KEYRING_USERNAME)], inspect=True,
                                         progress=progress))
    assert failures == []
    assert [r.location for r in records] == ["pplx/me"]
    assert any("keyguard's own" in m for m in progress.messages)
    assert_no_leak([own, value], records, failures)


def test_item_without_service_is_named_by_label(secret_service: KeyringService, rng: random.Random) -> None:
    value = fake_key("github-classic-pat", rng)
    with secret_service.connection() as conn:
        secretstorage.Collection(conn).create_item("Deploy token", {"app": "deployer"}, value.encode())
    records, failures = collect(make_ctx(inspect=True))
    assert failures == []
    assert len(records) == 1
    rec = records[0]
    assert (rec.location, rec.name, rec.kind) == ("Deploy token", "Deploy token", "github-classic-pat")
    assert rec.tags == {"app": "deployer"}
    assert_no_leak([value], records)


def test_binary_secret_is_listed_with_a_failure(secret_service: KeyringService) -> None:
    raw = b"\xff\xfe\x00\x81binary-blob-not-text\x00\xff"
    with secret_service.connection() as conn:
        secretstorage.Collection(conn).create_item("blob", {"service": "blob", "username": "x"}, raw)
    records, failures = collect(make_ctx(inspect=True))
    assert [(r.location, r.value_inspected) for r in records] == [("blob/x", False)]
    assert len(failures) == 1
    assert "not UTF-8 text" in failures[0].message
    assert "binary-blob" not in repr(failures) + repr(records)


def test_empty_value_is_listed_as_inspected_without_fingerprint(secret_service: KeyringService) -> None:
    keyring.set_password("empty", "user", "")
    records, failures = collect(make_ctx(inspect=True))
    assert failures == []
    assert [(r.location, r.value_inspected, r.fingerprint) for r in records] == [
        ("empty/user", True, None)]


def test_collect_is_deterministic(secret_service: KeyringService, rng: random.Random) -> None:
    for name in ("zeta", "alpha", "mid"):
        keyring.set_password(name, "u", fake_key("npm-token", rng))
    first = collect(make_ctx(inspect=True))
    assert [r.location for r in first[0]] == ["alpha/u", "mid/u", "zeta/u"]
    assert collect(make_ctx(inspect=True)) == first


# -- failures: locked, missing, unreachable -----------------------------------------------


@pytest.mark.parametrize("inspect", [False, True])
def test_locked_collection_is_one_failure_without_a_prompt(
    secret_service: KeyringService, rng: random.Random, inspect: bool
) -> None:
    keyring.set_password("openai", "x", fake_key("openai-project", rng))
    keyring.set_password("groq", "y", fake_key("groq-api", rng))
    secret_service.lock()
    started = time.monotonic()
    records, failures = collect(make_ctx([("openai", "x")], inspect=inspect))
    assert time.monotonic() - started < 5
    assert records == []
    assert len(failures) == 1
    assert failures[0].scope == "/org/freedesktop/secrets/aliases/default"
    assert failures[0].message == "Secret Service collection /org/freedesktop/secrets/aliases/default is locked"
    assert "unlock the login keyring" in failures[0].hint


def test_missing_collection_is_a_failure(secret_service: KeyringService) -> None:
    path = "/org/freedesktop/secrets/collection/no_such_collection"
    records, failures = collect(make_ctx(collection=path))
    assert records == []
    assert [(f.scope, "does not exist" in f.message) for f in failures] == [(path, True)]


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_backend_is_one_failure() -> None:
    records, failures = collect(make_ctx([("openai", "x")]))
    assert records == []
    assert len(failures) == 1
    assert "no usable OS keyring backend" in failures[0].message
    assert "PYTHON_KEYRING_BACKEND" in failures[0].hint


def test_unreachable_dbus_is_one_failure(
    secret_service: KeyringService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus-here")
    records, failures = collect(make_ctx([("openai", "x")]))
    assert records == []
    assert len(failures) == 1
    assert failures[0].message.startswith("Secret Service not reachable")
    assert "DBUS_SESSION_BUS_ADDRESS" in failures[0].hint


def test_backend_that_cannot_start_is_one_line_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHON_KEYRING_BACKEND=SecretService without any D-Bus: keyring raises at selection."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", SECRET_SERVICE_BACKEND)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    records, failures = collect(make_ctx([("openai", "x")]))
    assert records == []
    assert len(failures) == 1
    assert failures[0].message.startswith("no usable OS keyring backend (RuntimeError")
    assert "\n" not in failures[0].message


# -- other backends: the portable keyring API ---------------------------------------------


class MemoryKeyring:
    """A keyring backend without a list API (like macOS Keychain through python-keyring).

    Duck-typed rather than a KeyringBackend subclass: subclasses register themselves for
    keyring's backend discovery, which would outlive this test.
    """

    def __init__(self, items: dict[tuple[str, str], str], error: Exception | None = None) -> None:
        self.items = items
        self.error = error
        self.reads: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        if self.error is not None:
            raise self.error
        return self.items.get((service, username))


def use_backend(monkeypatch: pytest.MonkeyPatch, backend: MemoryKeyring) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)


def test_other_backends_read_configured_entries(monkeypatch: pytest.MonkeyPatch, rng: random.Random) -> None:
    value = fake_key("replicate-api", rng)
    backend = MemoryKeyring({("replicate", "me"): value})
    use_backend(monkeypatch, backend)
    progress = Progress()
    records, failures = collect(make_ctx([("replicate", "me"), ("gone", "me")], inspect=True,
                                         progress=progress))
    assert [(r.location, r.kind, r.value_inspected) for r in records] == [
        ("replicate/me", "replicate-api", True)]
    assert records[0].fingerprint == FINGERPRINTER.fingerprint(Secret(value))
    assert [(f.scope, "not found" in f.message) for f in failures] == [("gone/me", True)]
    assert any("cannot list its items" in m for m in progress.messages)
    assert_no_leak([value], records, failures)


def test_other_backends_without_inspect_report_unclassified(
    monkeypatch: pytest.MonkeyPatch, rng: random.Random
) -> None:
    use_backend(monkeypatch, MemoryKeyring({("s", "u"): fake_key("replicate-api", rng)}))
    records, failures = collect(make_ctx([("s", "u")], inspect=False))
    assert failures == []
    assert [(r.location, r.kind, r.fingerprint, r.value_inspected) for r in records] == [
        ("s/u", "unknown", None, False)]


@pytest.mark.parametrize(
    ("error", "message", "hint"),
    [
        (keyring.errors.KeyringLocked("locked"), "keyring is locked; cannot read s/u", "unlock"),
        (RuntimeError("backend exploded"), "cannot read keyring entry s/u (RuntimeError: backend exploded)",
         "PYTHON_KEYRING_BACKEND"),
        (UnicodeDecodeError("utf-8", b"\xffsecret-bytes", 0, 1, "invalid start byte"),
         "keyring:s/u: value is not UTF-8 text", "binary"),
    ],
)
def test_other_backend_errors_become_failures(
    monkeypatch: pytest.MonkeyPatch, error: Exception, message: str, hint: str
) -> None:
    use_backend(monkeypatch, MemoryKeyring({}, error=error))
    records, failures = collect(make_ctx([("s", "u"), ("t", "v")]))
    assert records == []
    assert [f.scope for f in failures] == ["s/u", "t/v"]  # one bad entry does not stop the rest
    assert failures[0].message == message
    assert hint in failures[0].hint
    assert "secret-bytes" not in repr(failures)
