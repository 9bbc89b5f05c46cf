"""required-tags-missing: a key in a taggable store without the tags the organisation relies on.

Ownership and environment tags are what routes a finding to a team and tells a rotation
which deployment to update; without them every finding becomes an investigation. Only
sources whose store supports tags (``sources``) are checked, and the root user (which
cannot be tagged) is skipped. Tag names compare case-insensitively; an empty value counts
as missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext, applicable


class RequiredTagsMissing:
    """Flag keys in ``sources`` lacking any tag listed in ``tags``."""

    id: ClassVar[str] = "required-tags-missing"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key naming every missing tag."""
        for key, settings, severity in applicable(inventory, ctx):
            if key.source not in settings["sources"] or "root" in key.scope.labels:
                continue
            present = {k.lower() for k, v in key.tags.items() if v.strip()}
            missing = [t for t in settings["tags"] if t.lower() not in present]
            if missing:
                yield ctx.finding(key, f"missing required tags: {', '.join(missing)}", severity,
                                  missing=",".join(missing))


PLUGIN: type[Policy] = RequiredTagsMissing
