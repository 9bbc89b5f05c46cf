"""expiry-not-set: a key in a store that can expire it, with no expiry set.

An expiry date is a backstop for everything else: a forgotten key stops working on its
own. Which stores support it is a setting (``stores``), since support grows source by
source. SSM supports expiry only in the Advanced tier (a per-parameter cost), so
Standard-tier parameters are flagged only when ``ssm_standard_tier`` is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


def ssm_tier(key: KeyRecord) -> str | None:
    """The SSM tier from the source's ``tier=...`` scope detail, if recorded."""
    return next((d.split("=", 1)[1] for d in key.scope.details if d.startswith("tier=")), None)


class ExpiryNotSet:
    """Flag usable keys without ``expires`` in stores listed in ``stores``."""

    id: ClassVar[str] = "expiry-not-set"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key that could carry an expiry date and does not."""
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.expires is not None or key.source not in settings["stores"]:
                continue
            tier = ssm_tier(key) if key.source == "aws-ssm" else None
            if tier == "Standard" and not settings["ssm_standard_tier"]:
                continue
            where = f" ({tier} tier)" if tier else ""
            yield ctx.finding(key, f"no expiry date set although {key.source}{where} supports one",
                              severity, store=key.source, tier=tier or "")


PLUGIN: type[Policy] = ExpiryNotSet
