"""``[[usage.suppressions]]``: accepted alerts, with an owner, a reason and an expiry date.

Why: some keys are *meant* to look anomalous (a sanctioned distillation or synthetic-data
job whose templated prompts trip prompt-mix, a sales key that travels). Switching a
detector off would hide real attacks on every other key, so a suppression accepts one
alert type on the keys it picks, for a limited time, under a named owner: the same
mechanism as ``[[policy.waivers]]`` of ``keyguard check`` (:mod:`keyguard.waivers`).

TOML shape::

    [[usage.suppressions]]
    type = "prompt-mix"            # detector id (prompt_mix works too) or "*" (default)
    key = "sk-synth-*"             # glob on the key id as the export names it
    alias = "distill-*"            # glob on the key alias
    tag = "job=synthetic"          # inventory tag: name=value (value may be a glob) or name
    owner = "ml-platform"
    reason = "sanctioned synthetic-data job, templated prompts expected"
    expires = 2027-03-31           # valid through this day (UTC)

A suppression picks alerts of its type whose key matches *every* selector it gives (key,
alias, tag); it must give at least one, so no suppression silences a whole detector (that
is ``enabled = false`` in ``[usage.detectors.<id>]``, visible as such). The whole list is
validated before any work: an unknown key, a missing owner/reason/expiry or an unknown
type is one ConfigError naming ``usage.suppressions[i].<key>``.

Suppressed alerts are counted in the report (``stats.suppressed``), never silently
dropped. An expired suppression stops suppressing and is reported (stats and a warning),
like ``waiver-expired`` in ``keyguard check``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyguard.errors import ConfigError
from keyguard.model import Alert
from keyguard.waivers import Acceptance, check_keys, parse_acceptance

SUPPRESSION_KEYS = ("type", "key", "alias", "tag", "owner", "reason", "expires")
ANY_TYPE = "*"
#: ``(key_id, alias) -> inventory tags``, e.g. ``DetectorSettings.tags_of``.
TagLookup = Callable[[str, str | None], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Suppression:
    """One validated ``[[usage.suppressions]]`` entry."""

    index: int  # position in [[usage.suppressions]], for messages and stats
    acceptance: Acceptance
    type: str = ANY_TYPE  # detector id (dash spelling) or "*"
    key: str | None = None  # fnmatch glob on Alert.subject
    alias: str | None = None  # fnmatch glob on Alert.key_alias
    tag: str | None = None  # "name=value-glob" or "name"

    @property
    def where(self) -> str:
        """The dotted config path of this entry."""
        return f"usage.suppressions[{self.index}]"

    def covers(self, alert: Alert, tags: Mapping[str, str]) -> bool:
        """True when this suppression is about ``alert`` (ignoring expiry).

        ``tags`` are the inventory tags of the alert's key (empty when unknown, so a
        tag suppression never matches a key keyguard has no inventory record of).
        """
        if self.type != ANY_TYPE and self.type != alert.rule_id:
            return False
        if self.key is not None and not fnmatch.fnmatchcase(alert.subject, self.key):
            return False
        if self.alias is not None and (
                alert.key_alias is None or not fnmatch.fnmatchcase(alert.key_alias, self.alias)):
            return False
        if self.tag is not None:
            name, sep, value = self.tag.partition("=")
            if name not in tags or (sep and not fnmatch.fnmatchcase(tags[name], value)):
                return False
        return True

    def describe(self) -> str:
        """What it picks, for messages: ``prompt-mix on key sk-synth-*``."""
        picks = [f"{label} {glob}" for label, glob in
                 (("key", self.key), ("alias", self.alias), ("tag", self.tag)) if glob]
        what = "any alert" if self.type == ANY_TYPE else f"{self.type} alerts"
        return f"{what} on " + ", ".join(picks)


def load_suppressions(raw: Iterable[Mapping[str, Any]], where: str,
                      known_types: Iterable[str]) -> tuple[Suppression, ...]:
    """Validate every entry before any work; ``known_types`` are the detector ids.

    Raises:
        ConfigError: one line naming ``where`` and ``usage.suppressions[i].<key>``.

    """
    known = set(known_types)
    return tuple(_one(i, table, where, known) for i, table in enumerate(raw))


def _one(index: int, raw: Mapping[str, Any], where: str, known: set[str]) -> Suppression:
    dotted = f"usage.suppressions[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: '{dotted}' must be a table ([[usage.suppressions]])")
    check_keys(raw, SUPPRESSION_KEYS, where, dotted)
    acceptance = parse_acceptance(raw, where, dotted, "suppression")
    kind = raw.get("type", ANY_TYPE)
    if not isinstance(kind, str):
        raise ConfigError(f"{where}: '{dotted}.type' must be a detector id or \"*\"")
    if kind.strip() != ANY_TYPE:
        kind = kind.strip().replace("_", "-")
        if kind not in known:
            raise ConfigError(f"{where}: '{dotted}.type' names unknown detector {raw['type']!r}",
                              f"expected \"*\" or one of: {', '.join(sorted(known))}")
    else:
        kind = ANY_TYPE
    globs: dict[str, str | None] = {}
    for name in ("key", "alias", "tag"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}: '{dotted}.{name}' must be a non-empty string (a glob)")
        globs[name] = value.strip() if isinstance(value, str) else None
    if not any(globs.values()):
        raise ConfigError(f"{where}: '{dotted}' picks no key",
                          "give key, alias or tag; to switch a detector off set "
                          "enabled = false in [usage.detectors.<id>]")
    return Suppression(index, acceptance, kind, globs["key"], globs["alias"], globs["tag"])


@dataclass(frozen=True, slots=True)
class Triage:
    """Alerts after suppressions: what remains, what was accepted and by which entry."""

    remaining: tuple[Alert, ...]
    suppressed: tuple[tuple[Alert, Suppression], ...]
    expired: tuple[Suppression, ...]  # expired entries (they suppressed nothing)


def apply(alerts: Iterable[Alert], suppressions: Iterable[Suppression], now: datetime,
          tags_of: TagLookup | None = None) -> Triage:
    """Split ``alerts`` by the suppressions valid at ``now`` (the first match wins).

    ``tags_of(key_id, alias)`` returns a key's inventory tags (``DetectorSettings.tags_of``);
    None means no inventory, so tag suppressions match nothing.
    """
    entries = tuple(suppressions)
    active = [s for s in entries if not s.acceptance.expired(now)]
    expired = tuple(s for s in entries if s.acceptance.expired(now))
    remaining: list[Alert] = []
    suppressed: list[tuple[Alert, Suppression]] = []
    for alert in alerts:
        tags: Mapping[str, str] = tags_of(alert.subject, alert.key_alias) if tags_of else {}
        match = next((s for s in active if s.covers(alert, tags)), None)
        if match is None:
            remaining.append(alert)
        else:
            suppressed.append((alert, match))
    return Triage(tuple(remaining), tuple(suppressed), expired)
