"""``[usage.detectors]`` and ``[[usage.scopes]]`` -> one validated :class:`DetectorSettings`.

Why a separate loader: like policy rules, every detector owns its parameters (a frozen
``Params`` dataclass with documented defaults in its module), so the config layer keeps
the ``[usage.detectors.<id>]`` tables raw and this module validates them against the
detector catalogue before any work: an unknown detector id, an unknown parameter or a
wrong type is a ConfigError naming the file and dotted key, never a silently ignored typo.

TOML shape::

    [usage.detectors]
    canaries = ["AKIA...", "decoy-env"]     # merged with --canary
    allow-countries = ["US", "DE"]           # merged with --allow-country
    learning-days = 7                        # shared learning period
    learning-min-events = 20

    [usage.detectors.velocity]               # one table per detector id
    enabled = true                           # every detector accepts `enabled`
    spike-factor = 8.0                       # ...and its own Params fields

    [[usage.scopes]]                         # per-tag or per-key overrides
    tag = "team=eu"                          # inventory tag (key=value, or a bare key)
    keys = ["sk-eu-*"]                       # or globs on the export's key id / alias
    allow-countries = ["DE", "FR"]           # replaces the global allow-list for those keys
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyguard.config import UsageConfig, build_table
from keyguard.errors import ConfigError

if TYPE_CHECKING:
    from keyguard.usage.detectors import DetectorSettings

#: Shared keys of ``[usage.detectors]``; any other key must be a detector id's table.
COMMON_KEYS = ("canaries", "allow-countries", "learning-days", "learning-min-events")
SCOPE_KEYS = ("tag", "keys", "allow-countries")


@dataclass(frozen=True, slots=True)
class Scope:
    """Keys picked by an inventory tag or id/alias globs, with settings that replace the global ones."""

    index: int  # position in [[usage.scopes]], for messages
    tag: str | None = None  # "team=eu" (key=value) or "team" (tag present)
    keys: tuple[str, ...] = ()  # fnmatch globs on key id or alias
    allow_countries: tuple[str, ...] | None = None

    def matches(self, key_id: str, alias: str | None, tags: Mapping[str, str]) -> bool:
        """True when the key carries the tag or its id/alias matches a glob."""
        if self.tag is not None:
            name, sep, value = self.tag.partition("=")
            if name in tags and (not sep or tags[name] == value):
                return True
        return any(fnmatch.fnmatchcase(key_id, g) or (alias is not None and fnmatch.fnmatchcase(alias, g))
                   for g in self.keys)


def country_code(value: object, where: str) -> str:
    """An ISO 3166 alpha-2 code, upper-cased; anything else is a ConfigError naming ``where``."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 2 or not code.isalpha():
        raise ConfigError(f"{where} must be ISO 3166 two-letter country codes, got {value!r}",
                          "e.g. US, DE")
    return code


def load_settings(usage: UsageConfig, where: str, *, canaries: tuple[str, ...] = (),
                  allow_countries: tuple[str, ...] = (),
                  key_tags: Mapping[str, Mapping[str, str]] | None = None) -> DetectorSettings:
    """Validate the config and merge the command-line values into a ``DetectorSettings``.

    ``key_tags`` maps a key id (as exports name it) or alias to its inventory tags, for
    scopes that pick keys by tag.
    """
    from keyguard.usage.detectors import DETECTORS, DetectorSettings

    raw = dict(usage.detectors)
    common = {k: raw.pop(k) for k in COMMON_KEYS if k in raw}
    shared = build_table(_Common, common, where, "usage.detectors.")
    params: dict[str, object] = {}
    disabled: set[str] = set()
    known = DETECTORS.names()
    for name, table in raw.items():
        dotted = f"usage.detectors.{name}"
        if name not in known:
            raise ConfigError(f"{where}: unknown key {dotted!r}",
                              f"expected one of: {', '.join([*COMMON_KEYS, *known])}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {dotted!r} must be a table of detector parameters")
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}: '{dotted}.enabled' must be true/false, got {enabled!r}")
        if not enabled:
            disabled.add(name)
        cls = DETECTORS.load(name).Params
        built = build_table(cls, table, where, dotted + ".")
        resolve = getattr(built, "resolve", None)
        if callable(resolve):
            # A detector whose parameters name files checks them now, for every command,
            # with relative paths taken from the config file's folder.
            config = Path(where)
            built = resolve(config.parent if config.is_file() else Path.cwd(), where)
        params[name] = built
    countries = {country_code(c, f"{where}: 'usage.detectors.allow-countries'")
                 for c in shared.allow_countries}
    countries.update(country_code(c, "--allow-country") for c in allow_countries)
    scopes = tuple(_scope(i, s, where) for i, s in enumerate(usage.scopes))
    return DetectorSettings(
        canaries=tuple(dict.fromkeys([*shared.canaries, *canaries])),
        allow_countries=tuple(sorted(countries)),
        learning_days=shared.learning_days,
        learning_min_events=shared.learning_min_events,
        params=params,
        disabled=frozenset(disabled),
        scopes=scopes,
        key_tags=dict(key_tags or {}),
    )


@dataclass(frozen=True, slots=True)
class _Common:
    canaries: tuple[str, ...] = ()
    allow_countries: tuple[str, ...] = ()
    learning_days: float = 7.0
    learning_min_events: int = 20


def _scope(index: int, raw: Mapping[str, Any], where: str) -> Scope:
    dotted = f"usage.scopes[{index}]"
    for key in raw:
        if key not in SCOPE_KEYS:
            raise ConfigError(f"{where}: unknown key '{dotted}.{key}'",
                              f"expected one of: {', '.join(SCOPE_KEYS)}")
    tag = raw.get("tag")
    if tag is not None and (not isinstance(tag, str) or not tag.strip()):
        raise ConfigError(f"{where}: '{dotted}.tag' must be a tag name or name=value")
    keys = raw.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError(f"{where}: '{dotted}.keys' must be a list of key id or alias globs")
    if tag is None and not keys:
        raise ConfigError(f"{where}: '{dotted}' picks no key", "give a tag or keys")
    allow = raw.get("allow-countries")
    if allow is not None:
        if not isinstance(allow, list):
            raise ConfigError(f"{where}: '{dotted}.allow-countries' must be a list of country codes")
        allow = tuple(sorted({country_code(c, f"{where}: '{dotted}.allow-countries'") for c in allow}))
    return Scope(index, tag=tag.strip() if tag else None, keys=tuple(keys), allow_countries=allow)
