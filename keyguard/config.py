"""keyguard.toml -> typed, validated :class:`Config`; every threshold and default lives here.

The file is validated as a whole before any work starts: an unknown key, a value of the
wrong type or malformed TOML is a :class:`ConfigError` naming the file, the dotted key and
what was expected, because a typo must never silently disable a setting.

Lookup order (see :func:`find_config`): ``--config PATH`` (must exist), then
``./keyguard.toml``, then ``<user config dir>/keyguard/keyguard.toml``; with none, the
built-in defaults apply.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from keyguard.errors import ConfigError

CONFIG_NAME = "keyguard.toml"

#: Sources `keyguard inventory` reads when neither --source nor `sources = [...]` says.
DEFAULT_SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam", "dotenv")

DEFAULT_DOTENV_EXCLUDE = (
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", "__pycache__", ".tox",
    ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages", "dist", "build",
    "vendor", "bower_components", ".terraform", ".direnv",
)


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """Where the AWS sources look. Empty lists mean "the standard AWS defaults"."""

    regions: tuple[str, ...] = ()  # default: AWS_REGION / profile region / us-east-1
    profiles: tuple[str, ...] = ()  # named profiles; empty = default credential chain
    assume_roles: tuple[str, ...] = ()  # role ARNs assumed from the base session
    endpoint_url: str | None = None  # normally AWS_ENDPOINT_URL; for moto / LocalStack
    max_workers: int = 8  # bounded pool for regions x profiles x per-item calls
    max_attempts: int = 8  # botocore adaptive retry attempts on throttling
    timeout: int = 60  # seconds an AWS call may wait for an answer before it is retried


@dataclass(frozen=True, slots=True)
class SecretsManagerConfig:
    """Settings of the ``aws-secretsmanager`` source."""

    include_planned_deletion: bool = False


@dataclass(frozen=True, slots=True)
class SsmConfig:
    """Settings of the ``aws-ssm`` source."""

    include_string: bool = False  # String/StringList parameters too, not only SecureString
    path: str = "/"
    tags: bool = True  # one ListTagsForResource call per parameter (SSM lists no tags)


@dataclass(frozen=True, slots=True)
class IamConfig:
    """Settings of the ``aws-iam`` source."""

    use_credential_report: bool = True
    credential_report_max_age_hours: int = 4
    policies: bool = True  # summarise each user's permissions as a scope


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    """One OS keyring item to inventory, by service and username."""

    service: str
    username: str


@dataclass(frozen=True, slots=True)
class KeyringConfig:
    """Settings of the ``keyring`` source."""

    entries: tuple[KeyringEntry, ...] = ()
    enumerate: bool = True  # also list every Secret Service item (Linux) when possible
    collection: str | None = None  # Secret Service collection path; default collection if unset


@dataclass(frozen=True, slots=True)
class DotenvConfig:
    """Settings of the ``dotenv`` source."""

    paths: tuple[str, ...] = (".",)
    exclude: tuple[str, ...] = DEFAULT_DOTENV_EXCLUDE
    patterns: tuple[str, ...] = (".env", ".env.*", "*.env")
    max_file_bytes: int = 1_000_000
    max_files: int = 10_000


@dataclass(frozen=True, slots=True)
class VaultConfig:
    """Settings of the ``vault`` source (HashiCorp Vault / OpenBao KV v2).

    Unset values fall back to the standard ``VAULT_*`` environment variables, as the
    ``vault``/``bao`` CLIs do. Credentials are never written here: ``token`` and
    ``secret_id`` only take references (``keyring:NAME``, ``env:VAR``), resolved by
    :func:`keyguard.credentials.resolve`.
    """

    address: str | None = None  # default VAULT_ADDR
    namespace: str | None = None  # default VAULT_NAMESPACE
    mounts: tuple[str, ...] = ()  # KV v2 mounts; empty = every KV v2 mount the token can see
    max_secrets: int = 10_000  # listing stops (with a failure) past this many secrets
    max_workers: int = 8  # concurrent metadata reads
    timeout: int = 10  # seconds per HTTP request; 0 = no limit
    verify: bool | str | None = None  # TLS: true/false or a CA bundle path; default VAULT_CACERT
    token: str | None = None  # reference ("keyring:NAME" / "env:VAR"); default VAULT_TOKEN
    role_id: str | None = None  # AppRole role id (not a secret); default VAULT_ROLE_ID
    secret_id: str | None = None  # AppRole secret id reference; default VAULT_SECRET_ID
    approle_mount: str = "approle"


@dataclass(frozen=True, slots=True)
class ProviderApiConfig:
    """Settings shared by the sources that read a provider's admin HTTP API.

    ``admin_key`` only takes a reference (``keyring:NAME`` or ``env:VAR``), resolved by
    :func:`keyguard.credentials.resolve`; unset, each source reads its standard variable
    (``ANTHROPIC_ADMIN_KEY``...). ``base_url`` unset means the provider's variable
    (``ANTHROPIC_BASE_URL``...), then its public endpoint. Retries are bounded so a
    throttled or broken API costs at most ``max_retries`` waits of ``max_retry_wait`` s.
    """

    admin_key: str | None = None
    base_url: str | None = None
    timeout: int = 20  # seconds per HTTP request
    max_retries: int = 4  # extra attempts after a 429 or 5xx answer
    max_retry_wait: int = 60  # seconds; a longer retry-after fails at once instead of waiting
    page_size: int = 100


@dataclass(frozen=True, slots=True)
class AnthropicConfig(ProviderApiConfig):
    """Settings of the ``anthropic`` source (Admin API key list)."""

    page_size: int = 1000


@dataclass(frozen=True, slots=True)
class OpenAIConfig(ProviderApiConfig):
    """Settings of the ``openai`` source (admin keys, project keys, service accounts)."""

    projects: tuple[str, ...] = ()  # project ids; empty = every non-archived project
    include_archived: bool = False


@dataclass(frozen=True, slots=True)
class LiteLLMConfig(ProviderApiConfig):
    """Settings of the ``litellm`` source (proxy virtual keys); ``admin_key`` is the master key."""


@dataclass(frozen=True, slots=True)
class GcpSecretManagerConfig:
    """Settings of the ``gcp-secretmanager`` source.

    ``access_token`` (a reference) replaces Application Default Credentials, e.g. the output
    of ``gcloud auth print-access-token`` injected by CI; ``endpoint`` targets a private or
    regional endpoint (``https://secretmanager.europe-west1.rep.googleapis.com``).
    """

    projects: tuple[str, ...] = ()  # default: GOOGLE_CLOUD_PROJECT
    endpoint: str | None = None
    access_token: str | None = None
    timeout: int = 30
    page_size: int = 250


@dataclass(frozen=True, slots=True)
class AzureKeyVaultConfig:
    """Settings of the ``azure-keyvault`` source.

    ``access_token`` (a reference) replaces ``DefaultAzureCredential`` with a fixed bearer
    token (``az account get-access-token --resource https://vault.azure.net``).
    """

    vaults: tuple[str, ...] = ()  # vault URLs, https://NAME.vault.azure.net
    access_token: str | None = None
    timeout: int = 30


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """Per-source tables, ``[sources.<name>]`` in TOML."""

    aws_secretsmanager: SecretsManagerConfig = field(default_factory=SecretsManagerConfig)
    aws_ssm: SsmConfig = field(default_factory=SsmConfig)
    aws_iam: IamConfig = field(default_factory=IamConfig)
    keyring: KeyringConfig = field(default_factory=KeyringConfig)
    dotenv: DotenvConfig = field(default_factory=DotenvConfig)
    vault: VaultConfig = field(default_factory=VaultConfig)
    anthropic: AnthropicConfig = field(default_factory=AnthropicConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    litellm: LiteLLMConfig = field(default_factory=LiteLLMConfig)
    gcp_secretmanager: GcpSecretManagerConfig = field(default_factory=GcpSecretManagerConfig)
    azure_keyvault: AzureKeyVaultConfig = field(default_factory=AzureKeyVaultConfig)


@dataclass(frozen=True, slots=True)
class LabelsConfig:
    """How keyguard derives a key's environment and owner from tags and names."""

    environment_tags: tuple[str, ...] = ("environment", "env", "stage")
    owner_tags: tuple[str, ...] = ("owner", "team")
    # environment -> regex searched (case-insensitively) in the key's name/location
    environment_patterns: Mapping[str, str] = field(
        default_factory=lambda: {
            "prod": r"(^|[/_.:-])(prod|production|prd)([/_.:-]|$)",
            "staging": r"(^|[/_.:-])(staging|stage|stg)([/_.:-]|$)",
            "dev": r"(^|[/_.:-])(dev|development|test|sandbox)([/_.:-]|$)",
        }
    )


#: A TOML table whose keys are checked later by the code that owns them (rule settings,
#: waivers): the policy engine validates them against the rule catalogue before any work.
RawTable = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """``[policy]``: the gate's thresholds, per-rule settings and waivers.

    ``rules`` and ``waivers`` are validated by :func:`keyguard.engine.load_policy` against
    the rule catalogue (unknown rule ids and settings are errors there, before any work).
    """

    fail_on: str = "high"
    fail_on_partial: bool = True  # a gate must not pass on partial coverage silently
    rules: RawTable = field(default_factory=dict)
    waivers: tuple[RawTable, ...] = ()


#: How the ``generic`` usage importer reads a timestamp column.
USAGE_TIME_FORMATS = ("auto", "iso", "unix", "unix-ms")


@dataclass(frozen=True, slots=True)
class UsageGenericConfig:
    """Column mapping of the ``generic`` usage importer, ``[usage.generic]`` in TOML.

    Each value names a CSV column or a JSON field (dotted paths such as ``meta.ip`` reach
    into nested JSON objects). ``time`` and ``key`` are required in every row; an unset
    optional column is simply not read. ``time_format`` is one of ``USAGE_TIME_FORMATS``
    ("auto" reads ISO-8601 strings and unix seconds).
    """

    time: str = "time"
    key: str = "key_id"
    key_alias: str | None = None
    ip: str | None = None
    region: str | None = None
    model: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    cached_tokens: str | None = None
    requests: str | None = None
    user_agent: str | None = None
    error_code: str | None = None
    principal: str | None = None
    event_id: str | None = None
    time_format: str = "auto"


@dataclass(frozen=True, slots=True)
class UsageConfig:
    """Usage-log import settings, ``[usage]`` in TOML.

    The limits keep memory bounded on hostile or broken input: a line or JSON record
    larger than ``max_record_bytes`` becomes one error row instead of being buffered.
    """

    max_record_bytes: int = 32 * 1024 * 1024
    max_error_samples: int = 20
    geo: bool = True  # resolve source_ip to a country with the offline iptocc table
    # LiteLLM JSONL files of at least this many MiB are loaded by DuckDB (usage/bulk.py);
    # 0 = every such file, -1 = never (row by row, every prompt analysed).
    bulk_min_mb: int = 64
    # Bulk loads analyse at most this many ordinary prompts per key and UTC day (weighted);
    # prompts that may be extraction attempts or hold trap strings are always analysed.
    # 0 = analyse every prompt.
    prompt_sample: int = 16
    generic: UsageGenericConfig = field(default_factory=UsageGenericConfig)
    # [usage.detectors]: shared detector settings plus one table per detector id; validated
    # by keyguard.usage.settings against each detector's Params (unknown keys are errors).
    detectors: RawTable = field(default_factory=dict)
    # [[usage.scopes]]: per-tag / per-key overrides (allow-lists); validated there too.
    scopes: tuple[RawTable, ...] = ()
    # [[usage.suppressions]]: accepted alerts, same owner/reason/expires rules as waivers.
    suppressions: tuple[RawTable, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    path: Path | None = None  # the file it came from, None for built-in defaults
    default_sources: tuple[str, ...] = DEFAULT_SOURCES
    state: str | None = None  # state database path; default under the user data dir
    aws: AwsConfig = field(default_factory=AwsConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)


T = TypeVar("T")


def find_config(explicit: Path | None, cwd: Path, user_config_dir: Path) -> Path | None:
    """Pick the config file: explicit path (must exist), ./keyguard.toml, then the user one."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: config file not found", "check the --config path")
        return explicit
    for candidate in (cwd / CONFIG_NAME, user_config_dir / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> Config:
    """Read and validate a config file; None gives the built-in defaults."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path | None) -> Config:
    """Validate a parsed TOML document into a Config."""
    where = str(path) if path else "config"
    built = _build(Config, raw, where, "")
    for env, pattern in built.labels.environment_patterns.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: 'labels.environment-patterns.{env}' must be a valid regular"
                              f" expression, got {_short(pattern)} ({exc})") from None
    vault = built.sources.vault
    for key, ref in (("token", vault.token), ("secret-id", vault.secret_id)):
        # NOTE: the value is probably a pasted credential, so the message never quotes it.
        if ref is not None and not ref.startswith(("keyring:", "env:")):
            raise ConfigError(f"{where}: 'sources.vault.{key}' must be a reference (keyring:NAME"
                              " or env:VAR), not the credential itself",
                              "store it with `keyguard auth set NAME`, write keyring:NAME, and "
                              "rotate the exposed value")
    time_format = built.usage.generic.time_format
    if time_format not in USAGE_TIME_FORMATS:
        raise ConfigError(f"{where}: 'usage.generic.time-format' must be one of"
                          f" {', '.join(USAGE_TIME_FORMATS)}, got {_short(time_format)}")
    return dataclasses.replace(built, path=path)


def _build(cls: type[T], table: Mapping[str, Any], where: str, prefix: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if cls is Config:
        # NOTE: Config.path records where the file came from; it is not a setting. Nested
        # tables may have a real ``path`` setting ([sources.aws-ssm] path = "/prod").
        del fields["path"]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        attr = key.replace("-", "_")
        dotted = f"{prefix}{key}"
        if attr not in fields:
            choices = ", ".join(sorted(n.replace("_", "-") for n in fields))
            raise ConfigError(f"{where}: unknown key {_scrubbed(dotted)!r}",
                              f"expected one of: {choices}")
        kwargs[attr] = _coerce(value, hints[attr], where, dotted)
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in kwargs:
            missing = f"{prefix}{name.replace('_', '-')}"
            raise ConfigError(f"{where}: missing key {missing!r}",
                              f"set it in {prefix.rstrip('.') or 'the file'}")
    return cls(**kwargs)


def build_table(cls: type[T], table: Mapping[str, Any], where: str, prefix: str) -> T:
    """Validate a TOML table into dataclass ``cls`` with this module's rules and messages.

    For settings owned by plugins (detector parameters): unknown keys, wrong types and
    missing required keys raise :class:`ConfigError` naming ``where`` and the dotted key.
    """
    return _build(cls, table, where, prefix)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is tuple:
        item = _type_name(get_args(tp)[0])
        return "a list of strings" if item == "a string" else f"a list of ({item})"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin is dict and get_args(tp)[1] is Any:
        return "a table"
    if origin is not None and issubclass(origin, Mapping):
        return "a table of strings"
    return {bool: "true/false", int: "an integer", float: "a number",
            str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, where: str, dotted: str) -> Any:
    origin = get_origin(tp)
    bad = ConfigError(f"{where}: {dotted!r} must be {_type_name(tp)}, got {type(value).__name__}"
                      f" {_short(value)}")
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, dotted)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, list):
            raise bad
        (item_tp, _ellipsis) = get_args(tp)
        return tuple(_coerce(v, item_tp, where, f"{dotted}[{i}]") for i, v in enumerate(value))
    if origin is dict and get_args(tp)[1] is Any:  # RawTable: checked later by its owner
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise bad
        return _build(tp, value, where, dotted + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: {dotted!r} must be a non-negative number, got {_short(value)}")
        return float(value)
    if tp is int:
        low = 1 if dotted.rsplit(".", 1)[-1].replace("-", "_").startswith("max_") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "a positive" if low else "a non-negative"
            raise ConfigError(f"{where}: {dotted!r} must be {kind} integer, got {_short(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad  # pragma: no cover - every annotation above is handled


def _short(value: Any) -> str:
    """A wrong value as an error message quotes it: shortened, secret-looking tokens redacted.

    NOTE: a value in the wrong place can be a key (one pasted into ``timeout``); the
    message names the setting, it must not hand out the key (issue 8).
    """
    text = _scrubbed(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _scrubbed(key: str) -> str:
    """Text for an error message (a key, a quoted value) with pasted secrets redacted."""
    from keyguard.redact import scrub

    return scrub(key)


def state_path(config: Config, override: Path | None, data_dir: Path) -> Path:
    """The state database path: --state, then config ``state``, then the user data dir."""
    if override is not None:
        return override
    if config.state:
        return Path(config.state).expanduser()
    return data_dir / "state.db"


def load_policy_file(path: Path) -> PolicyConfig:
    """Read ``--policy FILE``: a ``[policy]`` table, or the policy keys at the top level."""
    if not path.is_file():
        raise ConfigError(f"{path}: policy file not found", "check the --policy path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read policy: {exc}") from None
    table = raw["policy"] if set(raw) == {"policy"} else raw
    return parse_config({"policy": table}, path).policy
