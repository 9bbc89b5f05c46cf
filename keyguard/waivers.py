"""The accountability part of every accepted risk: who owns it, why, and until when.

Why a shared module: ``[[policy.waivers]]`` (accepted findings of ``keyguard check``) and
``[[usage.suppressions]]`` (accepted alerts of ``keyguard usage scan``) are the same
decision about different things, so they must follow the same rules: an owner and a
reason that are non-empty strings and an expiry date, valid through that day (UTC) and
expired the day after, when it stops accepting anything and is reported itself. Only
*what* each one accepts (rules and finding ids, or alert types and keys) differs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyguard.errors import ConfigError

#: The keys every waiver and suppression must carry.
ACCOUNTABILITY_KEYS = ("owner", "reason", "expires")


@dataclass(frozen=True, slots=True)
class Acceptance:
    """Who accepted a risk, why, and the last day (UTC) the acceptance holds."""

    owner: str
    reason: str
    expires: dt.date

    def expired(self, now: dt.datetime) -> bool:
        """Valid through the expiry date (UTC), expired from the next day on."""
        return is_expired(self.expires, now)

    def days_expired(self, now: dt.datetime) -> int:
        """Whole days since the expiry date (0 while still valid)."""
        return max(0, (_utc_date(now) - self.expires).days)


def is_expired(expires: dt.date, now: dt.datetime) -> bool:
    """True once ``now`` (its UTC date) is past ``expires``."""
    return _utc_date(now) > expires


def _utc_date(now: dt.datetime) -> dt.date:
    # NOTE: keyguard passes aware UTC times; a naive one is taken as UTC already.
    return (now.astimezone(dt.UTC) if now.tzinfo is not None else now).date()


def check_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str, dotted: str) -> None:
    """Reject a key outside ``allowed`` with a ConfigError naming ``dotted.key``."""
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{dotted}.{key}'",
                              f"expected one of: {', '.join(allowed)}")


def parse_acceptance(raw: Mapping[str, Any], where: str, dotted: str,
                     noun: str = "waiver") -> Acceptance:
    """Validate owner, reason and expires of one table; the rest is the caller's.

    ``noun`` names the thing in the hint ("every waiver has an owner..."). ``expires`` may
    be a TOML date, a TOML datetime (its date counts) or a ``YYYY-MM-DD`` string.

    Raises:
        ConfigError: a key is missing, owner/reason is not a non-empty string, or
            expires is not a date; the message names ``where`` and ``dotted``.

    """
    for key in ACCOUNTABILITY_KEYS:
        if key not in raw:
            raise ConfigError(f"{where}: '{dotted}' needs {key}",
                              f"every {noun} has an owner, a reason and an expiry date")
    for key in ("owner", "reason"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise ConfigError(f"{where}: '{dotted}.{key}' must be a non-empty string")
    expires = raw["expires"]
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise ConfigError(f"{where}: '{dotted}.expires' must be a date (YYYY-MM-DD)") from None
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    if not isinstance(expires, dt.date):
        raise ConfigError(f"{where}: '{dotted}.expires' must be a date (YYYY-MM-DD)")
    return Acceptance(raw["owner"].strip(), raw["reason"].strip(), expires)
