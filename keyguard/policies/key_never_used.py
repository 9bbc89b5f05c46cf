"""key-never-used: a key the store tracks use of, never used since it was created long ago.

A key created and never used is usually a leftover (a failed rollout, a rotation whose
new key was never deployed, a one-off experiment). It only counts when the store does
record use (``provenance`` names a ``last_used`` source); otherwise "no last use" means
"unknown", and keyguard does not guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyStatus
from keyguard.policies import Policy, RuleContext, applicable


class KeyNeverUsed:
    """Flag active keys with tracked use, never used, created over ``never_used_days`` ago."""

    id: ClassVar[str] = "key-never-used"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per never-used key older than ``never_used_days``.

        The age limit gives a freshly created key time to be deployed.
        """
        for key, settings, severity in applicable(inventory, ctx):
            if (key.status is not KeyStatus.ACTIVE or key.last_used is not None
                    or "last_used" not in key.provenance or key.created is None):
                continue
            age = (ctx.now - key.created).days
            limit = int(settings["never_used_days"])
            if age > limit:
                yield ctx.finding(key, f"never used in the {age} days since it was created "
                                  f"(limit {limit})", severity, age_days=age,
                                  never_used_days=limit, tracked_by=key.provenance["last_used"])


PLUGIN: type[Policy] = KeyNeverUsed
