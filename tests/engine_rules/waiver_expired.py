"""waiver-expired: an accepted risk whose waiver ran out must be looked at again.

The engine emits these findings itself (it holds the waivers); this module registers the
rule so it has metadata, appears in ``keyguard rules`` and SARIF, and can be configured
(severity) or disabled like any other rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext


class WaiverExpired:
    """Placeholder evaluator: the findings come from :func:`keyguard.engine.evaluate`."""

    id: ClassVar[str] = "waiver-expired"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield nothing: waivers are policy data, not inventory data."""
        return iter(())


PLUGIN: type[Policy] = WaiverExpired
