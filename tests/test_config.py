
"""Config loading: one tiny TOML file per case under tests/data/config/{valid,invalid}/.

Each invalid file starts with ``# expect: <message>`` (the ConfigError message after
``<path>: ``) and optionally ``# hint: <hint>``; a new file is picked up automatically and
fails until it carries its expectation. Each valid file has an entry in ``VALID`` below.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyguard.config import (
    CONFIG_NAME,
    DEFAULT_DOTENV_EXCLUDE,
    AnthropicConfig,
    AwsConfig,
    AzureKeyVaultConfig,
    Config,
    DotenvConfig,
    GcpSecretManagerConfig,
    IamConfig,
    KeyringConfig,
    KeyringEntry,
    LabelsConfig,
    LiteLLMConfig,
    OpenAIConfig,
    PolicyConfig,
    SecretsManagerConfig,
    SourcesConfig,
    SsmConfig,
    UsageConfig,
    UsageGenericConfig,
    VaultConfig,
    find_config,
    load_config,
    parse_config,
    state_path,
)
from keyguard.errors import ConfigError

DATA = Path(__file__).parent / "data" / "config"
VALID_DIR = DATA / "valid"
INVALID_DIR = DATA / "invalid"

VALID: dict[str, Config] = {
    "empty": Config(),
    "full": Config(
        default_sources=("aws-ssm", "dotenv"),
        state="~/keyguard/state.db",
        aws=AwsConfig(
            regions=("eu-west-1", "us-east-2"),
            profiles=("prod", "staging"),
            assume_roles=("arn:aws:iam::123456789012:role/KeyguardAudit",),
            endpoint_url="http://127.0.0.1:5000",
            max_workers=4,
            max_attempts=3,
            timeout=15,
        ),
        sources=SourcesConfig(
            aws_secretsmanager=SecretsManagerConfig(include_planned_deletion=True),
            aws_ssm=SsmConfig(include_string=True, path="/prod", tags=False),
            aws_iam=IamConfig(
                use_credential_report=False, credential_report_max_age_hours=0, policies=False
            ),
            keyring=KeyringConfig(
                entries=(KeyringEntry("openai", "ci-bot"), KeyringEntry("anthropic", "admin")),
                enumerate=False,
                collection="/org/freedesktop/secrets/collection/login",
            ),
            dotenv=DotenvConfig(
                paths=("services", "infra"),
                exclude=(".git",),
                patterns=(".env.production",),
                max_file_bytes=4096,
                max_files=10,
            ),
            vault=VaultConfig(
                address="https://vault.internal:8200", namespace="team-a",
                mounts=("kv-prod/", "secret"), max_secrets=500, max_workers=2, timeout=30,
                verify="/etc/ssl/vault-ca.pem", token="keyring:vault-token",
                role_id="db02de05-fa39-4855-059b-67221c5c2f63",
                secret_id="env:KG_VAULT_SECRET_ID", approle_mount="ci-approle",
            ),
            anthropic=AnthropicConfig(
                admin_key="keyring:anthropic-admin", base_url="https://anthropic-proxy.internal",
                timeout=5, max_retries=2, max_retry_wait=10, page_size=200,
            ),
            openai=OpenAIConfig(
                admin_key="env:KG_OPENAI_ADMIN", base_url="https://openai-proxy.internal/v1",
                timeout=7, max_retries=1, max_retry_wait=5, page_size=50, projects=("proj_abc",),
                include_archived=True,
            ),
            litellm=LiteLLMConfig(
                admin_key="keyring:litellm-master", base_url="https://llm-gateway.internal",
                timeout=9, max_retries=6, max_retry_wait=20, page_size=25,
            ),
            gcp_secretmanager=GcpSecretManagerConfig(
                projects=("prod-project",),
                endpoint="https://secretmanager.europe-west1.rep.googleapis.com",
                access_token="env:KG_GCP_TOKEN", timeout=12, page_size=100,
            ),
            azure_keyvault=AzureKeyVaultConfig(
                vaults=("https://prod-vault.vault.azure.net",), access_token="env:KG_AZURE_TOKEN",
                timeout=15,
            ),
        ),
        labels=LabelsConfig(
            environment_tags=("tier",),
            owner_tags=("squad",),
            environment_patterns={"prod": "-live$"},
        ),
        policy=PolicyConfig(
            fail_on="medium", fail_on_partial=False,
            rules={"rotation-max-age": {"max_age_days": 30}},
            waivers=({"rule": "key-unused", "owner": "alice",
                      "reason": "legacy batch job, decommissioned in Q1",
                      "expires": datetime.date(2027, 3, 31)},),
        ),
        usage=UsageConfig(
            max_record_bytes=1048576, max_error_samples=5, geo=False, bulk_min_mb=16,
            prompt_sample=64,
            generic=UsageGenericConfig(
                time="ts", key="api_key_id", key_alias="alias", ip="client_ip", region="region",
                model="model", input_tokens="in", output_tokens="out", cached_tokens="cached",
                requests="n", user_agent="ua", error_code="err", principal="user", event_id="id",
                time_format="unix",
            ),
            detectors={"canaries": ["AKIAEXAMPLECANARY001"], "allow-countries": ["US", "DE"],
                       "learning-days": 14, "learning-min-events": 50,
                       "geography": {"travel-within-minutes": 90}},
            scopes=({"tag": "team=eu", "allow-countries": ["DE", "FR"]},),
            suppressions=({"type": "geography", "key": "sk-travel-*", "owner": "alice",
                           "reason": "sales team travels", "expires": datetime.date(2027, 3, 31)},),
        ),
    ),
    "underscores": Config(
        default_sources=("aws-iam",),
        aws=AwsConfig(max_workers=2, assume_roles=()),
        sources=SourcesConfig(aws_ssm=SsmConfig(include_string=True)),
    ),
    "aws-ssm-path": Config(sources=SourcesConfig(aws_ssm=SsmConfig(path="/team-a/"))),
    "keyring-entries": Config(
        sources=SourcesConfig(keyring=KeyringConfig(entries=(KeyringEntry("github", "octocat"),)))
    ),
    "labels-replace-defaults": Config(
        labels=LabelsConfig(environment_patterns={"qa": "(^|/)qa(/|$)"})
    ),
    "empty-lists": Config(
        default_sources=(), sources=SourcesConfig(dotenv=DotenvConfig(paths=(), exclude=()))
    ),
}


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def _header(path: Path, tag: str) -> str | None:
    # Read as Latin-1: the non-UTF-8 case must still yield its (ASCII) header.
    for line in path.read_bytes().decode("latin-1").splitlines():
        if line.startswith(f"# {tag}: "):
            return line[len(f"# {tag}: ") :]
    return None


# --- valid files -------------------------------------------------------------------------


def test_every_valid_file_has_an_expectation_and_vice_versa() -> None:
    assert {p.stem for p in _files(VALID_DIR)} == set(VALID)


@pytest.mark.parametrize("path", _files(VALID_DIR), ids=lambda p: p.stem)
def test_valid_file_loads_into_expected_values(path: Path) -> None:
    config = load_config(path)
    assert config.path == path
    assert dataclasses.replace(config, path=None) == VALID[path.stem]


def test_valid_values_have_the_declared_types() -> None:
    config = load_config(VALID_DIR / "full.toml")
    assert isinstance(config.default_sources, tuple)
    assert isinstance(config.aws.max_workers, int)
    assert not isinstance(config.aws.max_workers, bool)
    assert isinstance(config.sources.keyring.entries[0], KeyringEntry)
    assert isinstance(config.sources.aws_ssm.tags, bool)
    assert dict(config.labels.environment_patterns) == {"prod": "-live$"}


def _leaves(obj: object, prefix: str = "") -> dict[str, object]:
    """Every non-dataclass setting in a config tree, by dotted attribute path."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(_leaves(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def test_full_file_sets_every_setting() -> None:
    """full.toml must change every default, so a new setting gets a round-trip test."""
    loaded = _leaves(load_config(VALID_DIR / "full.toml"))
    default = _leaves(Config())
    unchanged = sorted(k for k in default if k != "path" and loaded[k] == default[k])
    assert unchanged == []


# --- invalid files -----------------------------------------------------------------------


@pytest.mark.parametrize("path", _files(INVALID_DIR), ids=lambda p: p.stem)
def test_invalid_file_gives_its_one_line_error(path: Path) -> None:
    expected = _header(path, "expect")
    assert expected is not None, f"{path.name} lacks a '# expect: ' header"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.message == f"{path}: {expected}"
    hint = _header(path, "hint")
    if hint is not None:
        assert err.hint == hint
    assert "\n" not in str(err)


def test_invalid_cases_cover_each_kind_of_mistake() -> None:
    stems = {p.stem for p in _files(INVALID_DIR)}
    required = {
        "unknown-top-level-key", "unknown-nested-key", "wrong-type-bool", "wrong-type-int-string",
        "wrong-type-list", "wrong-type-table", "negative-int", "malformed-toml", "not-utf8",
    }
    assert required <= stems


def test_not_utf8_file_really_is_not_utf8() -> None:
    data = (INVALID_DIR / "not-utf8.toml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)  # a directory
    assert info.value.message.startswith(f"{tmp_path}: cannot read config: ")


def test_parse_config_without_a_path_names_the_config() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"aws": {"max-workers": -3}}, None)
    assert info.value.message == "config: 'aws.max-workers' must be a positive integer, got -3"


# --- defaults ----------------------------------------------------------------------------


def test_config_has_all_defaults() -> None:
    config = Config()
    assert config.path is None
    assert config.default_sources == ("aws-secretsmanager", "aws-ssm", "aws-iam", "dotenv")
    assert config.sources.dotenv.exclude == DEFAULT_DOTENV_EXCLUDE
    assert load_config(None) == config


def _section_types(cls: type[Any]) -> list[type[Any]]:
    hints = typing.get_type_hints(cls)
    found: list[type[Any]] = [cls]
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            found.extend(_section_types(tp))
    return found


@pytest.mark.parametrize("cls", _section_types(Config), ids=lambda c: c.__name__)
def test_every_section_field_has_a_default(cls: type[Any]) -> None:
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert missing == []
    cls()


def test_default_patterns_are_not_shared_between_instances() -> None:
    assert Config().labels.environment_patterns is not Config().labels.environment_patterns


# --- find_config -------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cwd, user = tmp_path / "project", tmp_path / "user-config"
    cwd.mkdir()
    user.mkdir()
    return cwd, user


def test_find_config_explicit_missing_path(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    (cwd / CONFIG_NAME).write_text("", encoding="utf-8")
    missing = cwd / "nope.toml"
    with pytest.raises(ConfigError) as info:
        find_config(missing, cwd, user)
    assert info.value.message == f"{missing}: config file not found"
    assert info.value.hint == "check the --config path"


def test_find_config_explicit_directory_is_not_a_config(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    with pytest.raises(ConfigError, match="config file not found"):
        find_config(cwd, cwd, user)


def test_find_config_explicit_wins_over_both(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    cwd, user = dirs
    (cwd / CONFIG_NAME).write_text("", encoding="utf-8")
    (user / CONFIG_NAME).write_text("", encoding="utf-8")
    explicit = tmp_path / "elsewhere.toml"
    explicit.write_text("", encoding="utf-8")
    assert find_config(explicit, cwd, user) == explicit


def test_find_config_cwd_before_user_dir(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    (cwd / CONFIG_NAME).write_text("", encoding="utf-8")
    (user / CONFIG_NAME).write_text("", encoding="utf-8")
    assert find_config(None, cwd, user) == cwd / CONFIG_NAME


def test_find_config_falls_back_to_user_dir(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    (user / CONFIG_NAME).write_text("", encoding="utf-8")
    assert find_config(None, cwd, user) == user / CONFIG_NAME


def test_find_config_ignores_a_directory_named_like_the_config(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    (cwd / CONFIG_NAME).mkdir()
    (user / CONFIG_NAME).write_text("", encoding="utf-8")
    assert find_config(None, cwd, user) == user / CONFIG_NAME


def test_find_config_none_found(dirs: tuple[Path, Path]) -> None:
    cwd, user = dirs
    assert find_config(None, cwd, user) is None


# --- state_path --------------------------------------------------------------------------

STATE_CASES = [
    # (override, config state, expected relative to the tmp dir; "~" is HOME)
    ("cli.db", "~/cfg.db", "cli.db"),
    (None, "~/cfg.db", "home/cfg.db"),
    (None, "/abs/cfg.db", "/abs/cfg.db"),
    (None, None, "data/state.db"),
    (None, "", "data/state.db"),
]


@pytest.mark.parametrize(("override", "state", "expected"), STATE_CASES)
def test_state_path_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    override: str | None,
    state: str | None,
    expected: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    got = state_path(
        Config(state=state), tmp_path / override if override else None, tmp_path / "data"
    )
    assert got == (Path(expected) if expected.startswith("/") else tmp_path / expected)


# --- property: arbitrary documents raise only ConfigError --------------------------------

_KNOWN_KEYS = [
    "aws", "sources", "labels", "state", "default-sources", "regions", "max-workers",
    "aws-ssm", "dotenv", "keyring", "entries", "service", "username", "path", "tags",
    "environment-patterns", "bogus",
]
_scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=8)
)
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(_KNOWN_KEYS), children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(_KNOWN_KEYS), _documents, max_size=4))
def test_arbitrary_documents_give_a_config_or_a_one_line_config_error(doc: dict[str, Any]) -> None:
    result = _parse_or_error(doc)
    if isinstance(result, ConfigError):
        assert result.message.startswith("fuzz.toml: ")
        assert "\n" not in str(result)
    else:
        assert isinstance(result, Config)


def _parse_or_error(doc: dict[str, Any]) -> Config | ConfigError:
    try:
        return parse_config(doc, Path("fuzz.toml"))
    except ConfigError as err:
        return err
