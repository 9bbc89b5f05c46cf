"""run_inventory with small in-test sources: concurrency, failures kept, labels derived."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from keyguard.config import Config, LabelsConfig
from keyguard.errors import PluginError, SourceError
from keyguard.fingerprint import Fingerprinter
from keyguard.inventory import copies_of_key_ids, duplicates, label, run_inventory
from keyguard.model import Fingerprint, KeyRecord, SourceFailure
from keyguard.registry import Registry
from keyguard.sources import Source, SourceContext

NOW = datetime(2026, 11, 27, tzinfo=UTC)


class GoodSource:
    name: ClassVar[str] = "good"
    description: ClassVar[str] = "two keys and a failed region"

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        yield KeyRecord(source="good", location="arn:x:prod/payments/stripe", name="prod/payments/stripe",
                        tags={"Owner": "payments"}, fingerprint=Fingerprint("kg1:aa"))
        yield SourceFailure("good", "eu-west-1", "AccessDenied", "grant it")
        yield KeyRecord(source="good", location="arn:x:dev/ml", name="dev/ml", key_id="AKIAX",
                        tags={"environment": "staging"}, fingerprint=Fingerprint("kg1:aa"))


class CrashingSource:
    name: ClassVar[str] = "crashing"
    description: ClassVar[str] = "raises mid-way with a value in the message"

    def __init__(self, ctx: SourceContext) -> None:
        pass

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        yield KeyRecord(source="crashing", location="a", name="a")
        raise ValueError("sk-live-SECRETVALUE-leaked-in-message")


class RaisingSource:
    name: ClassVar[str] = "raising"
    description: ClassVar[str] = "raises SourceError before yielding"

    def __init__(self, ctx: SourceContext) -> None:
        pass

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        raise SourceError("raising", "profile:ops", "expired token", "run aws sso login")


class FakeRegistry(Registry[Source]):
    def __init__(self) -> None:
        super().__init__("x", [], "keyguard.test", "source")
        self.classes: dict[str, type[Source]] = {
            "good": GoodSource, "crashing": CrashingSource, "raising": RaisingSource}

    def names(self) -> list[str]:
        return sorted(self.classes)

    def load(self, name: str) -> type[Source]:
        if name not in self.classes:
            raise PluginError(f"unknown source {name!r}")
        return self.classes[name]


@pytest.fixture
def ctx() -> SourceContext:
    return SourceContext(config=Config(), fingerprinter=Fingerprinter(b"k" * 32), now=NOW)


def test_failures_are_kept_and_other_sources_complete(ctx: SourceContext) -> None:
    inv = run_inventory(["good", "crashing", "raising"], ctx, FakeRegistry())
    assert [k.source for k in inv.keys] == ["crashing", "good", "good"]
    assert inv.partial
    scopes = {(f.source, f.scope) for f in inv.failures}
    assert scopes == {("good", "eu-west-1"), ("crashing", ""), ("raising", "profile:ops")}
    crash = next(f for f in inv.failures if f.source == "crashing")
    assert "ValueError" in crash.message
    assert "SECRETVALUE" not in crash.message
    assert inv.sources == ("good", "crashing", "raising")
    assert inv.taken_at == NOW


def test_unknown_name_fails_before_any_source_runs(ctx: SourceContext) -> None:
    with pytest.raises(PluginError, match="unknown source 'nope'"):
        run_inventory(["good", "nope"], ctx, FakeRegistry())


def test_labels_from_tags_then_names(ctx: SourceContext) -> None:
    inv = run_inventory(["good"], ctx, FakeRegistry())
    by_name = {k.name: k for k in inv.keys}
    assert by_name["prod/payments/stripe"].environment == "prod"  # naming pattern
    assert by_name["prod/payments/stripe"].owner == "payments"  # tag, case-insensitive
    assert by_name["dev/ml"].environment == "staging"  # a tag beats the name


def test_label_keeps_what_the_source_set() -> None:
    rec = KeyRecord(source="s", location="prod/x", name="prod/x", environment="dev", owner="me",
                    tags={"owner": "other"})
    assert label(rec, LabelsConfig()) is rec


def test_label_with_custom_patterns() -> None:
    cfg = LabelsConfig(environment_patterns={"live": r"\blive\b"}, owner_tags=("squad",))
    rec = label(KeyRecord(source="s", location="x", name="stripe live key",
                          tags={"squad": "core"}), cfg)
    assert rec.environment == "live"
    assert rec.owner == "core"


def test_duplicates_and_key_id_copies(ctx: SourceContext) -> None:
    inv = run_inventory(["good"], ctx, FakeRegistry())
    dups = duplicates(inv.keys)
    assert list(dups) == ["kg1:aa"]
    assert len(dups[Fingerprint("kg1:aa")]) == 2
    iam = KeyRecord(source="aws-iam", location="user/x", name="x", key_id="AKIAX")
    assert set(copies_of_key_ids([*inv.keys, iam])) == {"AKIAX"}
    assert duplicates([inv.keys[0]]) == {}


def test_builtin_registry_names_match_plugin_names() -> None:
    from keyguard.sources import SOURCES

    for name in SOURCES.names():
        cls = SOURCES.load(name)
        assert cls.name == name
        assert cls.description
    assert Path(__file__).exists()
