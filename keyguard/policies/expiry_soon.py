"""expiry-soon: a key that expires within the next few days.

An expiry is only a safety net if someone replaces the key before it fires; otherwise it
becomes an outage. This gives the owner ``expiring_days`` of warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


class ExpirySoon:
    """Flag usable keys whose ``expires`` falls within ``expiring_days`` (days, UTC) from now."""

    id: ClassVar[str] = "expiry-soon"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key expiring soon (already-expired keys are key-expired's)."""
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.expires is None or key.expires <= ctx.now:
                continue
            window = int(settings["expiring_days"])
            if key.expires <= ctx.now + timedelta(days=window):
                left = (key.expires - ctx.now).days
                yield ctx.finding(key, f"expires on {key.expires.date().isoformat()} "
                                  f"(in {left} days)", severity,
                                  expires=key.expires.date().isoformat(), days_left=left,
                                  expiring_days=window)


PLUGIN: type[Policy] = ExpirySoon
