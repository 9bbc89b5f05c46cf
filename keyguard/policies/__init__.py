"""The policy contract: rule modules with metadata beside them, selectors, per-key settings.

A rule is one module ``keyguard/policies/<id with _>.py`` exposing ``PLUGIN`` plus a
same-named ``.toml`` holding its metadata (id, title, category, default severity, risk,
remediation) and its default settings, like prowler's metadata files: reporters take
remediation text from the metadata, never from code, and a test asserts that module name,
``.toml`` file and ``id`` agree. Rule ids say what is checked and never carry a threshold
(``rotation-max-age``, not ``rotation-90-days``); they are API (baselines and waivers
key on them), so add aliases, never rename.

Rules are pure: they read an :class:`Inventory` and a :class:`RuleContext` (``now`` and the
settings resolved for each key) and yield :class:`Finding`; they never call an API, read
the environment or the clock.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, ClassVar, Protocol

from keyguard.config import LabelsConfig
from keyguard.model import Finding, Inventory, KeyRecord, KeyStatus, Severity
from keyguard.registry import Registry

SEVERITIES = {s.label: s for s in Severity}


@dataclass(frozen=True, slots=True)
class Remediation:
    """How to fix a finding: one sentence, plus CLI and console steps."""

    summary: str
    cli: str = ""
    console: str = ""


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """A rule's metadata, loaded from its ``.toml`` file."""

    id: str
    title: str
    category: str  # rotation, unused, expiry, scoping, placement, duplicates, hygiene, policy
    severity: Severity
    risk: str
    remediation: Remediation
    settings: Mapping[str, Any] = field(default_factory=dict)  # defaults; their types validate config
    references: tuple[str, ...] = ()


def load_meta(rule_id: str, package: str = __name__) -> RuleMeta:
    """Read ``<package>/<rule_id with _>.toml`` into a RuleMeta (raises ValueError if malformed)."""
    module = rule_id.replace("-", "_")
    text = resources.files(package).joinpath(f"{module}.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    rem = raw.get("remediation", {})
    return RuleMeta(
        id=str(raw["id"]),
        title=str(raw["title"]),
        category=str(raw["category"]),
        severity=SEVERITIES[str(raw["severity"])],
        risk=str(raw["risk"]).strip(),
        remediation=Remediation(str(rem.get("summary", "")).strip(), str(rem.get("cli", "")).strip(),
                                str(rem.get("console", "")).strip()),
        settings=dict(raw.get("settings", {})),
        references=tuple(raw.get("references", ())),
    )


@dataclass(frozen=True, slots=True)
class Selector:
    """Which keys a rule setting, override or waiver applies to; every given field must match.

    String fields are shell globs (``prod*``, ``*/payments/*``), compared case-sensitively
    except provider/kind/environment/source, which are lowercase identifiers anyway. ``tags``
    maps a tag name to a glob its value must match (``{ team = "ml*" }``).
    """

    provider: str | None = None
    kind: str | None = None
    source: str | None = None
    environment: str | None = None
    owner: str | None = None
    account: str | None = None
    region: str | None = None
    name: str | None = None
    location: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = ("provider", "kind", "source", "environment", "owner",
                                         "account", "region", "name", "location", "tags")

    def matches(self, key: KeyRecord) -> bool:
        """True when every field set on this selector matches the key."""
        for name in self.FIELDS[:-1]:
            pattern = getattr(self, name)
            if pattern is None:
                continue
            value = getattr(key, name)
            if value is None or not fnmatch.fnmatchcase(str(value), pattern):
                return False
        lowered = {k.lower(): v for k, v in key.tags.items()}
        for tag, pattern in self.tags.items():
            value = lowered.get(tag.lower())
            if value is None or not fnmatch.fnmatchcase(value, pattern):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Override:
    """Settings (and optionally severity) that replace the rule's for keys a selector matches."""

    match: Selector
    settings: Mapping[str, Any]
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """A rule's validated configuration: defaults merged with ``[policy.rules.<id>]``."""

    enabled: bool
    severity: Severity
    base: Mapping[str, Any]
    match: Selector | None = None  # the rule only applies to keys this selects
    overrides: tuple[Override, ...] = ()

    def for_key(self, key: KeyRecord) -> tuple[Mapping[str, Any], Severity] | None:
        """Effective (settings, severity) for one key; None when the rule does not apply.

        The first override whose selector matches wins (order as written in the policy).
        """
        if not self.enabled or (self.match is not None and not self.match.matches(key)):
            return None
        for override in self.overrides:
            if override.match.matches(key):
                merged = {**self.base, **override.settings}
                return merged, override.severity or self.severity
        return self.base, self.severity


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may know besides the inventory: its metadata, settings and the clock."""

    meta: RuleMeta
    settings: RuleSettings
    now: datetime
    #: Global labels config (environment tags/patterns), for rules that compare environments.
    labels: LabelsConfig = field(default_factory=LabelsConfig)

    def for_key(self, key: KeyRecord) -> tuple[Mapping[str, Any], Severity] | None:
        """Shorthand for ``settings.for_key``."""
        return self.settings.for_key(key)

    def finding(self, key: KeyRecord, message: str, severity: Severity | None = None,
                **evidence: str | int | float | bool) -> Finding:
        """A finding about ``key`` with this rule's id, severity and remediation filled in."""
        return Finding(
            rule_id=self.meta.id,
            severity=severity or self.settings.severity,
            subject=key.identity,
            message=message,
            fingerprint=key.fingerprint,
            location=key.location,
            remediation=self.meta.remediation.summary,
            key=key,
            evidence=evidence,
        )


class Policy(Protocol):
    """One rule: reads the inventory, yields findings."""

    #: Rule id (module name with "-"); API, never renamed.
    id: ClassVar[str]

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield a finding for every key (or group of keys) that violates the rule."""
        ...


#: Keys that cannot authenticate any more: rules about exposure and hygiene of working
#: keys skip them (a deleted key is skipped by every rule).
NOT_USABLE = frozenset({KeyStatus.DELETED, KeyStatus.INACTIVE, KeyStatus.EXPIRED})
DELETED = frozenset({KeyStatus.DELETED})


def applicable(
    inventory: Inventory, ctx: RuleContext, *, skip: frozenset[KeyStatus] = DELETED
) -> Iterator[tuple[KeyRecord, Mapping[str, Any], Severity]]:
    """Each key the rule applies to, with its effective settings and severity.

    Keys whose status is in ``skip`` (deleted ones by default: scheduled for deletion,
    nothing left to fix) and keys the rule's ``match``/``enabled`` exclude are left out.
    """
    for key in inventory.keys:
        if key.status in skip:
            continue
        resolved = ctx.for_key(key)
        if resolved is not None:
            yield key, resolved[0], resolved[1]


POLICIES: Registry[Policy] = Registry(__name__, __path__, "keyguard.policies", "rule")
