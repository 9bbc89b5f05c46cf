"""Plain frozen records that flow between keyguard's layers; no behaviour, no I/O.

Data moves one way: sources produce :class:`KeyRecord`, the inventory bundles them with
:class:`SourceFailure` entries, policies turn them into :class:`Finding`, usage detectors
turn :class:`UsageEvent` into :class:`Alert`. Every record here is safe to print: none of
them can hold a secret value, only a keyed fingerprint of one.

All datetimes are timezone-aware UTC. String identifiers such as ``kind`` and ``rule_id``
are API: stored baselines and state databases key on them, so add aliases, never rename.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NewType

#: Keyed, versioned fingerprint of a secret value (``kg1:<hex>``); equal values in two
#: stores give equal fingerprints, and nothing about the value can be recovered from it.
Fingerprint = NewType("Fingerprint", str)

#: Vendor of a key, lowercase (``anthropic``, ``aws``, ``github``...). ``unknown`` when the
#: classifier does not recognise the value: keyguard reports, it never guesses.
Provider = NewType("Provider", str)

#: Provider-specific key type (``anthropic-admin``, ``aws-access-key``...).
Kind = NewType("Kind", str)

UNKNOWN_PROVIDER = Provider("unknown")
UNKNOWN_KIND = Kind("unknown")


class Severity(enum.IntEnum):
    """Severity of a finding or alert; ordered so ``>=`` implements ``--fail-on``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Lowercase name as used on the command line and in reports."""
        return self.name.lower()


class KeyStatus(enum.StrEnum):
    """Lifecycle state of a key as its store or provider reports it."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    DELETED = "deleted"  # scheduled for deletion / archived at the provider
    UNKNOWN = "unknown"


class Verified(enum.StrEnum):
    """Three-valued answer to "does this key work?": keyguard never claims what it did not test."""

    TRUE = "true"
    FALSE = "false"
    UNVERIFIED = "unverified"


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """What the store knows about automatic rotation of a secret.

    ``enabled`` is ``None`` when the store supports rotation but it was never configured,
    which policies treat differently from an explicit ``False``.
    """

    supported: bool
    enabled: bool | None = None
    interval_days: int | None = None
    schedule: str | None = None  # e.g. "rate(30 days)" or a cron expression
    next_rotation: datetime | None = None
    rotator: str | None = None  # e.g. the rotation Lambda ARN
    last_failed: bool | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key is allowed to do, summarised as stable labels plus the evidence.

    ``labels`` use a small vocabulary so policies can match them: ``admin``,
    ``wildcard-actions``, ``service-scoped``, ``no-permissions``, ``root``,
    ``organization``, ``workspace``, ``project``, ``read-only``, ``full-access``.
    ``details`` says where each label came from (policy names, workspace ids).
    """

    labels: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key (or one copy of a key) found in one location of one store.

    A store entry holding several credentials (a JSON secret with an OpenAI key and a
    Stripe key) yields one record per credential, told apart by ``field``. The record
    never carries the value: ``fingerprint`` identifies it, ``key_id`` carries the
    provider's *public* identifier when one exists (an AWS access key id, an Anthropic
    ``apikey_...`` id), which lets an IAM key be joined with a stored copy of it.

    ``provenance`` maps a field name (``created``, ``last_used``...) to the API call
    that supplied it (``iam:GetAccessKeyLastUsed``), so a reader can judge each fact.
    """

    source: str
    location: str
    name: str
    provider: Provider = UNKNOWN_PROVIDER
    #: Stable position of this copy when ``location`` has a volatile part: a .env record's
    #: location is ``file:line`` for people, its anchor is the file, so inserting a line
    #: above a key does not make it look removed and re-added.
    anchor: str | None = None
    kind: Kind = UNKNOWN_KIND
    field: str | None = None
    key_id: str | None = None
    account: str | None = None
    region: str | None = None
    environment: str | None = None
    owner: str | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    status: KeyStatus = KeyStatus.UNKNOWN
    created: datetime | None = None
    last_rotated: datetime | None = None
    last_changed: datetime | None = None
    last_used: datetime | None = None
    last_used_detail: str | None = None  # e.g. "us-east-1/secretsmanager"
    last_accessed: datetime | None = None  # read from the store (not necessarily used)
    expires: datetime | None = None
    rotation: RotationSettings | None = None
    scope: Scope = dataclasses.field(default_factory=Scope)
    fingerprint: Fingerprint | None = None
    #: Keyed fingerprints of provider-side handles (partial hint, redacted value, LiteLLM
    #: token hash): equal on a stored copy and on the provider's record of the same key.
    links: tuple[Fingerprint, ...] = ()
    plaintext: bool = False  # stored unencrypted at rest (.env files)
    value_inspected: bool = False
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def identity(self) -> str:
        """Stable identity of this copy across runs: where it lives, not what it holds."""
        suffix = f"#{self.field}" if self.field else ""
        return f"{self.source}:{self.anchor or self.location}{suffix}"


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """A store, region, profile or file keyguard could not read.

    The run goes on; the report names every failure and the exit code becomes 3 so a
    CI gate never passes silently on partial coverage. ``hint`` says what to do.
    """

    source: str
    scope: str  # region, profile, file or "" for the whole source
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one inventory run found: the keys and the stores it failed to read."""

    keys: tuple[KeyRecord, ...]
    failures: tuple[SourceFailure, ...] = ()
    sources: tuple[str, ...] = ()
    taken_at: datetime | None = None

    @property
    def partial(self) -> bool:
        """True when at least one source, region or file failed."""
        return bool(self.failures)


class ChangeType(enum.StrEnum):
    """How a key differs between two inventory snapshots."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One difference between the previous snapshot and this one."""

    change: ChangeType
    identity: str
    record: KeyRecord
    fields: tuple[str, ...] = ()  # names of the fields that changed


@dataclass(frozen=True, slots=True)
class Finding:
    """A policy violation about one key copy (or about the policy itself); rendered by every reporter.

    ``finding_id`` is the stable identity used by baselines, waivers and SARIF
    ``partialFingerprints``: rule + what the key *is* (fingerprint, else public key id) +
    where it lives, so a finding survives reordering and line shifts but a rotated value
    at the same location is a new finding.
    """

    rule_id: str
    severity: Severity
    subject: str  # KeyRecord.identity, or e.g. "policy:waiver/3" for policy findings
    message: str
    fingerprint: Fingerprint | None = None
    location: str = ""
    remediation: str = ""
    key: KeyRecord | None = None
    evidence: Mapping[str, str | int | float | bool] = dataclasses.field(default_factory=dict)

    @property
    def finding_id(self) -> str:
        """Stable id: ``<rule>:<sha256(rule|fingerprint-or-key-id|subject)[:20]>``."""
        what = self.fingerprint or (self.key.key_id if self.key and self.key.key_id else "")
        digest = hashlib.sha256(f"{self.rule_id}|{what}|{self.subject}".encode()).hexdigest()
        return f"{self.rule_id}:{digest[:20]}"


@dataclass(frozen=True, slots=True)
class Alert:
    """A usage anomaly; shares Finding's core fields so reporters can render both."""

    rule_id: str
    severity: Severity
    subject: str
    message: str
    fingerprint: Fingerprint | None = None
    evidence: Mapping[str, float | int | str] = dataclasses.field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    key_alias: str | None = None  # human name of the key (``subject``) when the export has one


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One normalised request (or bucket of requests) from a provider usage export.

    Every field is a flat scalar so a columnar store (DuckDB) ingests events as rows.
    ``time`` is UTC; for aggregate exports (Anthropic/OpenAI usage reports) it is the bucket
    start and ``bucket_end`` the exclusive end, and ``requests == 0`` means "count unknown"
    (the export gives tokens, not requests). ``input_tokens`` includes cached and
    cache-write tokens; ``cached_tokens`` is the cache-read part of it. ``source_ip`` is
    always a parseable IP; a caller named by DNS or "AWS Internal" goes to ``source_host``.
    The prompt itself is never stored, only ``prompt_fingerprint`` (a SimHash) and
    ``prompt_chars``. See keyguard/usage/__init__.py for what each importer maps.
    """

    time: datetime
    key_id: str
    source_format: str
    key_alias: str | None = None
    source_ip: str | None = None
    country: str | None = None
    region: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 1
    user_agent: str | None = None
    error_code: str | None = None
    prompt_fingerprint: str | None = None
    prompt_chars: int | None = None
    principal: str | None = None  # IAM ARN, gateway user, OpenAI user_id, Anthropic workspace
    account: str | None = None  # AWS account id, OpenAI project_id, LiteLLM team_id
    source_host: str | None = None  # non-IP caller ("lambda.amazonaws.com", "AWS Internal")
    action: str | None = None  # CloudTrail eventName, LiteLLM call_type, Bedrock operation
    service: str | None = None  # CloudTrail eventSource
    event_id: str | None = None  # CloudTrail eventID / request id, unique within a format
    bucket_end: datetime | None = None  # exclusive end of an aggregate bucket
    cost_usd: float | None = None
    origin: str | None = None  # "file:line" the event came from, for alert evidence
    prompt_markers: str | None = None  # sorted phrasing classes ("reasoning,trap"), usage.prompt_markers
    # Requests of the key-day this row's prompt analysis stands for (bulk import samples
    # ordinary prompts); None = 1. Last field: _parallel.py builds events positionally.
    prompt_weight: float | None = None
