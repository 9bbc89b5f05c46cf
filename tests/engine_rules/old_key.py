"""old-key: keys created more than max_age_days ago (test rule)."""

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext


class OldKey:
    id: ClassVar[str] = "old-key"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        for key in inventory.keys:
            resolved = ctx.for_key(key)
            if resolved is None or key.created is None:
                continue
            settings, severity = resolved
            age = (ctx.now - key.created).days
            if age > settings["max_age_days"]:
                yield ctx.finding(key, f"{age} days old", severity=severity, age_days=age)


PLUGIN: type[Policy] = OldKey
