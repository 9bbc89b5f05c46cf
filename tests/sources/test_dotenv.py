"""The dotenv source on real temporary trees: locations, kinds, bounds and failures."""

from __future__ import annotations

import codecs
import os
import random
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keyguard.config import Config, DotenvConfig, SourcesConfig
from keyguard.fakes import fake_aws_pair, fake_key
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import SOURCES, SourceContext
from keyguard.sources.dotenv import DotenvSource

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MTIME = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
FINGERPRINTER = Fingerprinter(bytes(range(32)))


@dataclass
class Tree:
    """A temporary project tree; remembers every value planted so leaks can be checked."""

    root: Path
    rng: random.Random
    planted: list[str] = field(default_factory=list)

    def key(self, kind: str) -> str:
        value = fake_key(kind, self.rng)
        self.planted.append(value)
        return value

    def write(self, relative: str, text: str | bytes, encoding: str = "utf-8") -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        stamp = MTIME.timestamp()
        os.utime(path, (stamp, stamp))
        return path


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "proj", random.Random(7))


def make_ctx(paths: Sequence[str | Path], *, inspect: bool = False, **settings: int) -> SourceContext:
    cfg = DotenvConfig(paths=tuple(str(p) for p in paths), **settings)  # type: ignore[arg-type]
    return SourceContext(config=Config(sources=SourcesConfig(dotenv=cfg)), fingerprinter=FINGERPRINTER,
                         now=NOW, inspect_values=inspect)


def collect(ctx: SourceContext) -> tuple[list[KeyRecord], list[SourceFailure]]:
    records: list[KeyRecord] = []
    failures: list[SourceFailure] = []
    for item in SOURCES.load("dotenv")(ctx).collect():
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


def summary(records: Iterable[KeyRecord], root: Path) -> set[tuple[str, str, str]]:
    """(location relative to root, variable, kind) per record."""
    prefix = f"{root}/"
    return {(r.location.removeprefix(prefix), r.name, r.kind) for r in records}


# -- contract -----------------------------------------------------------------------------


def test_plugin_contract() -> None:
    cls = SOURCES.load("dotenv")
    assert cls is DotenvSource
    assert cls.name == "dotenv"
    assert cls.description


# -- parsing and classification -----------------------------------------------------------


def test_env_file_records_locations_kinds_and_flags(tree: Tree) -> None:
    openai, anthropic, github = tree.key("openai-project"), tree.key("anthropic-api"), tree.key(
        "github-classic-pat")
    aws_id, aws_secret = fake_aws_pair(tree.rng)
    tree.planted.append(aws_secret)
    tree.write(".env", "\n".join([
        "# local settings",                                   # 1
        f"OPENAI_API_KEY={openai}",                           # 2
        f'export ANTHROPIC_API_KEY="{anthropic}"',            # 3
        f"GITHUB_TOKEN='{github}'  # the release bot",        # 4
        "DEBUG=true",                                         # 5
        "",                                                   # 6
        "DATABASE_PASSWORD=changeme",                         # 7
        f"AWS_ACCESS_KEY_ID={aws_id}",                        # 8
        f"AWS_SECRET_ACCESS_KEY={aws_secret}",                # 9
        "INTERNAL_SERVICE_TOKEN=q9w8e7r6t5y4u3i2o1",          # 10 pragma: allowlist secret
    ]) + "\n")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {
        (".env:2", "OPENAI_API_KEY", "openai-project"),
        (".env:3", "ANTHROPIC_API_KEY", "anthropic-api"),
        (".env:4", "GITHUB_TOKEN", "github-classic-pat"),
        (".env:9", "AWS_SECRET_ACCESS_KEY", "aws-access-key"),
        (".env:10", "INTERNAL_SERVICE_TOKEN", "unknown"),
    }
    for rec in records:
        assert rec.source == "dotenv"
        assert rec.field == rec.name
        assert rec.plaintext
        assert rec.value_inspected
        assert rec.last_changed == MTIME
        assert rec.provenance == {"last_changed": "file mtime"}
        assert rec.fingerprint is not None
        assert rec.fingerprint.startswith("kg1:")
    aws = next(r for r in records if r.kind == "aws-access-key")
    assert aws.key_id == aws_id  # the public half joins the IAM key; the secret stays out
    assert aws.fingerprint == FINGERPRINTER.fingerprint(Secret(aws_secret))
    openai_rec = next(r for r in records if r.name == "OPENAI_API_KEY")
    assert openai_rec.provider == "openai"
    assert openai_rec.fingerprint == FINGERPRINTER.fingerprint(Secret(openai))
    assert_no_leak(tree.planted, records, failures)


def test_values_are_classified_without_inspect_values(tree: Tree) -> None:
    """A .env file is plaintext already: classification is not gated on --inspect-values."""
    tree.write(".env", f"GROQ_API_KEY={tree.key('groq-api')}\n")
    for inspect in (False, True):
        records, _ = collect(make_ctx([tree.root], inspect=inspect))
        assert [(r.kind, r.value_inspected) for r in records] == [("groq-api", True)]


def test_example_files_are_scanned_but_placeholders_ignored(tree: Tree) -> None:
    tree.write(".env.example", "OPENAI_API_KEY=your-key-here\nSTRIPE_SECRET=<changeme>\nAPI_TOKEN=xxx\n"
                               "SECRET=${FROM_VAULT}\n")
    real = tree.key("stripe-secret")
    tree.write(".env.sample", f"# copied by mistake\nSTRIPE_SECRET={real}\n")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {(".env.sample:2", "STRIPE_SECRET", "stripe-secret")}


def test_bom_and_crlf(tree: Tree) -> None:
    key = tree.key("huggingface-user")
    tree.write("win/.env", codecs.BOM_UTF8 + f"# saved on Windows\r\nHF_TOKEN={key}\r\nPLAIN=1\r\n".encode())
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {("win/.env:2", "HF_TOKEN", "huggingface-user")}
    assert records[0].fingerprint == FINGERPRINTER.fingerprint(Secret(key))  # no stray \r in the value


def test_bom_on_the_first_variable(tree: Tree) -> None:
    """The BOM must not glue itself to the first name ("\\ufeffOPENAI_API_KEY")."""
    tree.write(".env", codecs.BOM_UTF8 + f"OPENAI_API_KEY={tree.key('openai-project')}\n".encode())
    records, _ = collect(make_ctx([tree.root]))
    assert [(r.name, r.location.rsplit(":", 1)[1]) for r in records] == [("OPENAI_API_KEY", "1")]


def test_utf16_with_bom(tree: Tree) -> None:
    tree.write("notepad.env", f"SENDGRID_API_KEY={tree.key('sendgrid-api')}\r\n", encoding="utf-16")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {("notepad.env:1", "SENDGRID_API_KEY", "sendgrid-api")}


# -- walking ------------------------------------------------------------------------------


def test_walk_matches_patterns_in_nested_dirs_and_skips_excluded(tree: Tree) -> None:
    tree.write("services/api/.env.production", f"OPENAI_API_KEY={tree.key('openai-project')}\n")
    tree.write("services/worker/prod.env", f"SLACK_BOT_TOKEN={tree.key('slack-bot')}\n")
    tree.write("services/worker/settings.txt", f"SLACK_BOT_TOKEN={tree.key('slack-bot')}\n")
    tree.write("node_modules/pkg/.env", f"NPM_TOKEN={tree.key('npm-token')}\n")
    tree.write(".git/.env", f"GITLAB_TOKEN={tree.key('gitlab-pat')}\n")
    tree.write("a/b/.venv/lib/.env", f"GITLAB_TOKEN={tree.key('gitlab-pat')}\n")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {
        ("services/api/.env.production:1", "OPENAI_API_KEY", "openai-project"),
        ("services/worker/prod.env:1", "SLACK_BOT_TOKEN", "slack-bot"),
    }


def test_custom_patterns_and_exclude(tree: Tree) -> None:
    tree.write("keep/secrets.conf", f"XAI_API_KEY={tree.key('xai-api')}\n")
    tree.write("skip-me/secrets.conf", f"XAI_API_KEY={tree.key('xai-api')}\n")
    tree.write(".env", f"XAI_API_KEY={tree.key('xai-api')}\n")
    cfg = DotenvConfig(paths=(str(tree.root),), patterns=("*.conf",), exclude=("skip-*",))
    ctx = SourceContext(config=Config(sources=SourcesConfig(dotenv=cfg)), fingerprinter=FINGERPRINTER,
                        now=NOW)
    records, _ = collect(ctx)
    assert summary(records, tree.root) == {("keep/secrets.conf:1", "XAI_API_KEY", "xai-api")}


def test_relative_paths_resolve_against_the_working_directory(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.write("app/.env", f"REPLICATE_API_TOKEN={tree.key('replicate-api')}\n")
    monkeypatch.chdir(tree.root)
    records, failures = collect(make_ctx(["."]))
    assert failures == []
    assert [r.location for r in records] == ["app/.env:1"]


def test_explicit_file_is_scanned_whatever_its_name(tree: Tree) -> None:
    path = tree.write("deploy/vars.txt", f"export PERPLEXITY_API_KEY={tree.key('perplexity-api')}\n")
    records, failures = collect(make_ctx([path]))
    assert failures == []
    assert [(r.location, r.kind) for r in records] == [(f"{path}:1", "perplexity-api")]


def test_symlink_loop_ends_and_no_file_is_reported_twice(tree: Tree) -> None:
    tree.write("app/.env", f"OPENROUTER_API_KEY={tree.key('openrouter-api')}\n")
    (tree.root / "app" / "loop").symlink_to(tree.root, target_is_directory=True)
    (tree.root / "app" / "self").symlink_to(".", target_is_directory=True)
    (tree.root / "linked.env").symlink_to(tree.root / "app" / ".env")
    (tree.root / "dangling.env").symlink_to(tree.root / "nowhere")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert [r.location for r in records] == [f"{tree.root}/app/.env:1"]


def test_symlinked_config_dir_is_followed(tree: Tree, tmp_path: Path) -> None:
    outside = Tree(tmp_path / "shared", tree.rng, tree.planted)
    outside.write("prod.env", f"GOOGLE_API_KEY={tree.key('google-api')}\n")
    tree.root.mkdir(parents=True)
    (tree.root / "config").symlink_to(outside.root, target_is_directory=True)
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {("config/prod.env:1", "GOOGLE_API_KEY", "google-api")}


def test_fifo_named_env_does_not_block(tree: Tree) -> None:
    tree.root.mkdir(parents=True)
    os.mkfifo(tree.root / ".env")
    tree.write("b/.env", f"GROQ_API_KEY={tree.key('groq-api')}\n")
    records, failures = collect(make_ctx([tree.root]))
    assert failures == []
    assert summary(records, tree.root) == {("b/.env:1", "GROQ_API_KEY", "groq-api")}


def test_order_is_stable(tree: Tree) -> None:
    for name in ("z", "a", "m/n"):
        tree.write(f"{name}/.env", f"NPM_TOKEN={tree.key('npm-token')}\n")
    first = collect(make_ctx([tree.root]))
    rel = [r.location.removeprefix(f"{tree.root}/") for r in first[0]]
    assert rel == ["a/.env:1", "m/n/.env:1", "z/.env:1"]
    assert collect(make_ctx([tree.root])) == first


# -- bounds and failures ------------------------------------------------------------------


def test_oversize_file_is_a_failure_naming_it(tree: Tree) -> None:
    big = tree.write("big/.env", f"OPENAI_API_KEY={tree.key('openai-project')}\n" + "# pad\n" * 200)
    tree.write("small/.env", f"GROQ_API_KEY={tree.key('groq-api')}\n")
    records, failures = collect(make_ctx([tree.root], max_file_bytes=512))
    assert summary(records, tree.root) == {("small/.env:1", "GROQ_API_KEY", "groq-api")}
    assert len(failures) == 1
    assert failures[0].scope == str(big)
    assert str(big) in failures[0].message
    assert "512-byte limit" in failures[0].message
    assert "max-file-bytes" in failures[0].hint
    assert_no_leak(tree.planted, records, failures)


def test_binary_file_is_a_failure(tree: Tree) -> None:
    blob = tree.write("bin/.env", b"\x7fELF\x02\x01\x01\x00\x00" + os.urandom(64))
    latin = tree.write("latin/.env", "PASSWORD=caf\xe9-au-lait-secret\n", encoding="latin-1")
    records, failures = collect(make_ctx([tree.root]))
    assert records == []
    assert sorted((f.scope, f.message) for f in failures) == [
        (str(blob), f"{blob}: not UTF-8 text"),
        (str(latin), f"{latin}: not UTF-8 text"),
    ]
    assert "au-lait" not in repr(failures)


def test_missing_path_is_a_failure_and_the_rest_is_scanned(tree: Tree) -> None:
    tree.write(".env", f"GROQ_API_KEY={tree.key('groq-api')}\n")
    missing = tree.root / "does-not-exist"
    records, failures = collect(make_ctx([missing, tree.root]))
    assert len(records) == 1
    assert [(f.source, f.scope) for f in failures] == [("dotenv", str(missing))]
    assert failures[0].message == f"{missing}: no such file or directory"
    assert "[sources.dotenv] paths" in failures[0].hint


def test_max_files_stops_the_walk_with_a_failure(tree: Tree) -> None:
    for name in ("a", "b", "c"):
        tree.write(f"{name}/.env", f"NPM_TOKEN={tree.key('npm-token')}\n")
    records, failures = collect(make_ctx([tree.root, tree.root / "c"], max_files=2))
    assert [r.location.removeprefix(f"{tree.root}/") for r in records] == ["a/.env:1", "b/.env:1"]
    assert len(failures) == 1
    assert "limit of 2 files" in failures[0].message
    assert failures[0].scope == f"{tree.root}/c/.env"
    assert "max-files" in failures[0].hint


def test_unopenable_file_is_a_failure(tree: Tree) -> None:
    """open() fails (a socket named .env gives ENXIO, even for root): named, and the walk goes on."""
    tree.write("ok/.env", f"GROQ_API_KEY={tree.key('groq-api')}\n")
    tree.root.joinpath("sock").mkdir()
    path = tree.root / "sock" / ".env"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        records, failures = collect(make_ctx([tree.root]))
    assert summary(records, tree.root) == {("ok/.env:1", "GROQ_API_KEY", "groq-api")}
    assert [(f.scope, f.message) for f in failures] == [
        (str(path), f"{path}: cannot read (No such device or address)")]
