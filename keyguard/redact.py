"""Scrub secret-looking tokens out of any text keyguard shows or keeps.

Used for usage alerts, inventory free text (names, owners, tags: ``inventory.scrub_record``),
every error message (``errors.KeyguardError``), config messages and Click's usage errors.

Why: usage exports are written by other people's software, and a key alias, a user name
or an error sample can hold a pasted credential (a LiteLLM key aliased with its own
``sk-ant-api03-...`` value, a generic CSV whose key column is the raw key). Detectors copy
those strings into alert messages and evidence, so every string an alert carries passes
through :func:`scrub` on its way out: a token that matches a known secret format
(:mod:`keyguard.classify`), or that starts with such a format's literal prefix and is long
enough to be one (a truncated or slightly malformed key is still a leak), becomes
``[redacted <kind>]``. Public identifiers (AWS access key ids) are not secrets and stay.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from functools import cache

from keyguard.model import Alert

#: Shortest token a prefix match redacts: shorter ones are names like ``sk-travel``.
MIN_PREFIX_TOKEN = 20
_TOKEN = re.compile(r"[A-Za-z0-9_\-./+=:]{12,}")
_SEPARATORS = frozenset(":/=.+")
_LITERAL = re.compile(r"^(?:[A-Za-z0-9_\-:/]|\\\.)+")


@cache
def _prefixes() -> tuple[tuple[str, str], ...]:
    """(literal prefix, kind) of every secret format whose pattern starts with >= 3 literals."""
    from keyguard.classify import FORMATS

    out: list[tuple[str, str]] = []
    for fmt in FORMATS:
        if not fmt.secret or fmt.name_hint is not None:
            continue
        m = _LITERAL.match(fmt.pattern)
        literal = m.group(0).replace("\\.", ".") if m else ""
        if len(literal) >= 3:
            out.append((literal, fmt.kind))
    return tuple(sorted(out, key=lambda p: -len(p[0])))


@cache
def _any_prefix() -> re.Pattern[str]:
    """One regex for "starts like a secret", so most tokens skip the per-format checks.

    Every secret format without a name hint has a literal prefix of 3+ characters
    (tests/usage/test_redact.py fails for a new format that has none).
    """
    return re.compile("|".join(re.escape(p) for p, _ in _prefixes()))


@functools.lru_cache(maxsize=65536)
def _secret_kind(token: str) -> str | None:
    from keyguard.classify import classify_token

    if not _any_prefix().match(token):
        return None
    fmt = classify_token(token)
    if fmt is not None and fmt.secret:
        return fmt.kind
    if len(token) >= MIN_PREFIX_TOKEN:
        for prefix, kind in _prefixes():
            if token.startswith(prefix):
                return kind
    return None


def _replace(match: re.Match[str]) -> str:
    token = match.group(0)
    # The token itself, else its tail after a separator ("alias:sk-...", "bot/ghp_..."):
    # the first (longest) secret-looking tail is redacted, the harmless head stays.
    for i in range(len(token)):
        if i and token[i - 1] not in _SEPARATORS:
            continue
        kind = _secret_kind(token[i:])
        if kind is not None:
            return f"{token[:i]}[redacted {kind}]"
    return token


def scrub(text: str) -> str:
    """``text`` with every secret-looking token replaced by ``[redacted <kind>]``."""
    return _TOKEN.sub(_replace, text)


def scrub_alert(alert: Alert) -> Alert:
    """The alert with its subject, alias, message and string evidence scrubbed."""
    evidence = {k: scrub(v) if isinstance(v, str) else v for k, v in alert.evidence.items()}
    return dataclasses.replace(
        alert, subject=scrub(alert.subject), message=scrub(alert.message), evidence=evidence,
        key_alias=None if alert.key_alias is None else scrub(alert.key_alias))
