"""key-expired: a key past its expiry date that is still listed in a store or at the provider.

Consumers of an expired key fail, often at the worst moment, and the lingering entry
hides which credential is really in use. An expired SSM parameter is normally deleted by
AWS, so one still listed shows a policy that did not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyStatus
from keyguard.policies import Policy, RuleContext, applicable


class KeyExpired:
    """Flag non-deleted keys whose ``expires`` is in the past or whose status is expired."""

    id: ClassVar[str] = "key-expired"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per expired key that is still around."""
        for key, _settings, severity in applicable(inventory, ctx):
            if key.expires is not None and key.expires <= ctx.now:
                days = (ctx.now - key.expires).days
                yield ctx.finding(key, f"expired on {key.expires.date().isoformat()} "
                                  f"({days} days ago) but is still listed", severity,
                                  expired=key.expires.date().isoformat(), days_expired=days)
            elif key.status is KeyStatus.EXPIRED:
                yield ctx.finding(key, "the store reports this key as expired, but it is "
                                  "still listed", severity)


PLUGIN: type[Policy] = KeyExpired
