"""key-unused: an active key whose last recorded use is older than the policy allows.

A key nobody uses is pure risk: it can leak and be abused while nothing depends on it,
and abuse of it is easy to miss because no owner is watching its traffic. Only keys with
a known last use are judged; never-used keys are key-never-used's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyStatus
from keyguard.policies import Policy, RuleContext, applicable


class KeyUnused:
    """Flag active keys last used more than ``unused_days`` (days, UTC) ago."""

    id: ClassVar[str] = "key-unused"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per active key idle for longer than ``unused_days``.

        Only ``active`` keys: an inactive key is already the recommended half-way state
        to deletion, and an unknown status may be a store that cannot tell.
        """
        for key, settings, severity in applicable(inventory, ctx):
            if key.status is not KeyStatus.ACTIVE or key.last_used is None:
                continue
            idle = (ctx.now - key.last_used).days
            limit = int(settings["unused_days"])
            if idle > limit:
                yield ctx.finding(key, f"last used {idle} days ago "
                                  f"({key.last_used.date().isoformat()}; limit {limit})",
                                  severity, idle_days=idle, unused_days=limit,
                                  last_used=key.last_used.date().isoformat(),
                                  last_used_detail=key.last_used_detail or "")


PLUGIN: type[Policy] = KeyUnused
