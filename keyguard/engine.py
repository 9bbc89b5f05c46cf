"""Policy engine: validate the policy, run every enabled rule, apply waivers and the baseline.

``load_policy`` checks the whole ``[policy]`` table against the rule catalogue before any
store is read: an unknown rule id, an unknown setting, a setting of the wrong type, a
selector field that does not exist or a waiver without owner, reason or expiry is a
:class:`ConfigError` naming the file and the dotted key. ``evaluate`` is pure (``now`` is
passed in): same inventory, policy and clock, same findings, in a stable order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyguard.config import LabelsConfig, PolicyConfig
from keyguard.errors import ConfigError
from keyguard.model import Finding, Inventory, Severity
from keyguard.policies import (
    POLICIES,
    SEVERITIES,
    Override,
    Policy,
    RuleContext,
    RuleMeta,
    RuleSettings,
    Selector,
    load_meta,
)
from keyguard.registry import Registry
from keyguard.waivers import check_keys, is_expired, parse_acceptance

#: Setting names every rule accepts; the rest come from the rule's ``[settings]`` defaults.
RESERVED = ("enabled", "severity", "match", "overrides")
WAIVER_RULE = "waiver-expired"
WAIVER_KEYS = ("rule", "finding", "match", "owner", "reason", "expires")


@dataclass(frozen=True, slots=True)
class Waiver:
    """An accepted risk: which findings, who owns the decision, why, and until when."""

    index: int  # position in [[policy.waivers]], for messages
    owner: str
    reason: str
    expires: dt.date
    rule: str = "*"
    finding: str | None = None  # a finding_id
    match: Selector | None = None

    def covers(self, finding: Finding) -> bool:
        """True when this waiver is about ``finding`` (ignoring expiry)."""
        if self.finding is not None and self.finding != finding.finding_id:
            return False
        if self.rule != "*" and self.rule != finding.rule_id:
            return False
        if self.match is not None:
            return finding.key is not None and self.match.matches(finding.key)
        return True

    def expired(self, now: dt.datetime) -> bool:
        """A waiver is valid through its expiry date (UTC) and expired the day after."""
        return is_expired(self.expires, now)


@dataclass(frozen=True, slots=True)
class LoadedRule:
    """One catalogue rule with its metadata and validated settings."""

    cls: type[Policy]
    meta: RuleMeta
    settings: RuleSettings


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy, ready to evaluate."""

    rules: Mapping[str, LoadedRule]
    waivers: tuple[Waiver, ...] = ()
    fail_on: Severity = Severity.HIGH
    fail_on_partial: bool = True

    @property
    def catalogue(self) -> dict[str, RuleMeta]:
        """Rule id -> metadata, for reporters."""
        return {rid: rule.meta for rid, rule in self.rules.items()}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Findings split by what happened to them."""

    findings: tuple[Finding, ...]  # remaining: these decide the gate
    waived: tuple[Finding, ...] = ()
    baselined: tuple[Finding, ...] = ()
    rules_run: tuple[str, ...] = field(default=())

    def failing(self, threshold: Severity) -> list[Finding]:
        """Remaining findings at or above the threshold."""
        return [f for f in self.findings if f.severity >= threshold]


def catalogue(registry: Registry[Policy] = POLICIES) -> dict[str, tuple[type[Policy], RuleMeta]]:
    """Every registered rule with its metadata (imports the rule modules)."""
    out: dict[str, tuple[type[Policy], RuleMeta]] = {}
    for name in registry.names():
        cls = registry.load(name)
        out[name] = (cls, load_meta(name, cls.__module__.rsplit(".", 1)[0]))
    return out


def parse_severity(value: object, where: str, dotted: str) -> Severity:
    """A severity name (info, low, medium, high, critical) or a ConfigError."""
    if isinstance(value, str) and value.lower() in SEVERITIES:
        return SEVERITIES[value.lower()]
    raise ConfigError(f"{where}: {dotted!r} must be one of {', '.join(SEVERITIES)}, got {value!r}")


def load_policy(
    cfg: PolicyConfig, where: str, registry: Registry[Policy] = POLICIES
) -> LoadedPolicy:
    """Validate ``cfg`` against the catalogue and resolve every rule's settings."""
    rules_cat = catalogue(registry)
    for rule_id in cfg.rules:
        if rule_id not in rules_cat:
            raise ConfigError(f"{where}: unknown rule 'policy.rules.{rule_id}'",
                              "`keyguard rules` lists the rule ids")
    loaded: dict[str, LoadedRule] = {}
    for rule_id, (cls, meta) in rules_cat.items():
        table = cfg.rules.get(rule_id, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: 'policy.rules.{rule_id}' must be a table")
        loaded[rule_id] = LoadedRule(cls, meta, _rule_settings(meta, table, where))
    waivers = tuple(_waiver(i, raw, where, rules_cat) for i, raw in enumerate(cfg.waivers))
    return LoadedPolicy(loaded, waivers, parse_severity(cfg.fail_on, where, "policy.fail_on"),
                        cfg.fail_on_partial)


def _rule_settings(meta: RuleMeta, table: Mapping[str, Any], where: str) -> RuleSettings:
    prefix = f"policy.rules.{meta.id}"
    for key in table:
        if key not in RESERVED and key.replace("-", "_") not in meta.settings:
            known = ", ".join([*RESERVED, *(k.replace("_", "-") for k in meta.settings)])
            raise ConfigError(f"{where}: unknown setting '{prefix}.{key}'", f"expected one of: {known}")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: '{prefix}.enabled' must be true/false, got {enabled!r}")
    severity = parse_severity(table["severity"], where, f"{prefix}.severity") \
        if "severity" in table else meta.severity
    base = {**meta.settings, **_settings(meta, table, where, prefix)}
    match = _selector(table["match"], where, f"{prefix}.match") if "match" in table else None
    overrides_raw = table.get("overrides", [])
    if not isinstance(overrides_raw, list):
        raise ConfigError(f"{where}: '{prefix}.overrides' must be a list of tables "
                          f"([[{prefix}.overrides]])")
    overrides = []
    for i, raw in enumerate(overrides_raw):
        dotted = f"{prefix}.overrides[{i}]"
        if not isinstance(raw, Mapping) or "match" not in raw:
            raise ConfigError(f"{where}: '{dotted}' needs a match = {{...}} selector")
        for key in raw:
            if key not in ("match", "severity") and key.replace("-", "_") not in meta.settings:
                raise ConfigError(f"{where}: unknown setting '{dotted}.{key}'",
                                  "expected match, severity or one of: "
                                  + ", ".join(k.replace("_", "-") for k in meta.settings))
        overrides.append(Override(
            match=_selector(raw["match"], where, f"{dotted}.match"),
            settings=_settings(meta, raw, where, dotted),
            severity=parse_severity(raw["severity"], where, f"{dotted}.severity")
            if "severity" in raw else None,
        ))
    return RuleSettings(enabled, severity, base, match, tuple(overrides))


def _settings(meta: RuleMeta, table: Mapping[str, Any], where: str, prefix: str) -> dict[str, Any]:
    """The rule-specific settings of a table, type-checked against the defaults."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if key in RESERVED or name not in meta.settings:
            continue
        default = meta.settings[name]
        if not _same_type(value, default):
            raise ConfigError(f"{where}: '{prefix}.{key}' must be {_describe(default)}, "
                              f"got {type(value).__name__} {value!r}"[:300])
        out[name] = value
    return out


def _same_type(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and value >= 0
    if isinstance(default, list):
        return isinstance(value, list) and (
            not default or all(isinstance(v, type(default[0])) for v in value))
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def _describe(default: object) -> str:
    if isinstance(default, bool):
        return "true/false"
    if isinstance(default, int | float):
        return "a non-negative number"
    if isinstance(default, list):
        return "a list" + (f" of {type(default[0]).__name__}" if default else "")
    if isinstance(default, dict):
        return "a table"
    return f"a {type(default).__name__}"


def _selector(raw: object, where: str, dotted: str) -> Selector:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: '{dotted}' must be a table like {{ provider = \"openai\" }}")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in Selector.FIELDS:
            raise ConfigError(f"{where}: unknown selector field '{dotted}.{key}'",
                              f"expected one of: {', '.join(Selector.FIELDS)}")
        if key == "tags":
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"{where}: '{dotted}.tags' must be a table of tag = \"glob\"")
            kwargs[key] = dict(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: '{dotted}.{key}' must be a string (a glob)")
        else:
            kwargs[key] = value
    return Selector(**kwargs)


def _waiver(index: int, raw: Mapping[str, Any], where: str,
            rules_cat: Mapping[str, object]) -> Waiver:
    dotted = f"policy.waivers[{index}]"
    check_keys(raw, WAIVER_KEYS, where, dotted)
    accepted = parse_acceptance(raw, where, dotted, "waiver")
    rule = raw.get("rule", "*")
    if not isinstance(rule, str) or (rule != "*" and rule not in rules_cat):
        raise ConfigError(f"{where}: '{dotted}.rule' names unknown rule {rule!r}",
                          "`keyguard rules` lists the rule ids; use \"*\" for any rule")
    finding = raw.get("finding")
    if finding is not None and not isinstance(finding, str):
        raise ConfigError(f"{where}: '{dotted}.finding' must be a finding id string")
    if finding is None and "match" not in raw and rule == "*":
        raise ConfigError(f"{where}: '{dotted}' waives everything",
                          "give a rule, a finding id or a match selector")
    match = _selector(raw["match"], where, f"{dotted}.match") if "match" in raw else None
    return Waiver(index, accepted.owner, accepted.reason, accepted.expires, rule, finding, match)


def evaluate(
    inventory: Inventory,
    policy: LoadedPolicy,
    now: dt.datetime,
    labels: LabelsConfig | None = None,
    baseline: Iterable[str] = (),
) -> CheckResult:
    """Run every enabled rule, then apply waivers (valid ones) and the baseline (finding ids).

    Expired waivers stop suppressing and become ``waiver-expired`` findings themselves.
    """
    labels = labels or LabelsConfig()
    found: list[Finding] = []
    ran: list[str] = []
    for rule_id, rule in sorted(policy.rules.items()):
        if not rule.settings.enabled or rule_id == WAIVER_RULE:
            continue
        ran.append(rule_id)
        ctx = RuleContext(rule.meta, rule.settings, now, labels)
        found.extend(rule.cls().evaluate(inventory, ctx))
    found.extend(_expired_waivers(policy, now))
    accepted = set(baseline)
    remaining: list[Finding] = []
    waived: list[Finding] = []
    baselined: list[Finding] = []
    active = [w for w in policy.waivers if not w.expired(now)]
    for finding in _dedupe(found):
        if finding.rule_id != WAIVER_RULE and any(w.covers(finding) for w in active):
            waived.append(finding)
        elif finding.finding_id in accepted:
            baselined.append(finding)
        else:
            remaining.append(finding)
    order = _sort_key
    return CheckResult(tuple(sorted(remaining, key=order)), tuple(sorted(waived, key=order)),
                       tuple(sorted(baselined, key=order)), tuple(ran))


def _expired_waivers(policy: LoadedPolicy, now: dt.datetime) -> list[Finding]:
    rule = policy.rules.get(WAIVER_RULE)
    if rule is None or not rule.settings.enabled:
        return []
    out = []
    for w in policy.waivers:
        if w.expired(now):
            what = w.finding or (f"rule {w.rule}" if w.rule != "*" else "any rule")
            out.append(Finding(
                rule_id=WAIVER_RULE, severity=rule.settings.severity,
                subject=f"policy:waiver/{w.index}",
                message=(f"waiver #{w.index} ({what}) owned by {w.owner} expired on "
                         f"{w.expires.isoformat()}: {w.reason}"),
                location=f"policy.waivers[{w.index}]",
                remediation=rule.meta.remediation.summary,
                evidence={"owner": w.owner, "expires": w.expires.isoformat(),
                          "days_expired": (now.date() - w.expires).days},
            ))
    return out


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.finding_id not in seen:
            seen.add(f.finding_id)
            out.append(f)
    return out


def _sort_key(f: Finding) -> tuple[int, str, str]:
    return (-int(f.severity), f.rule_id, f.subject)
