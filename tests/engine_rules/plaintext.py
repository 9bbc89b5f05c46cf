"""plaintext: plaintext keys (test rule)."""

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext


class Plaintext:
    id: ClassVar[str] = "plaintext"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        for key in inventory.keys:
            resolved = ctx.for_key(key)
            if resolved is not None and key.plaintext:
                yield ctx.finding(key, "plaintext", severity=resolved[1])


PLUGIN: type[Policy] = Plaintext
