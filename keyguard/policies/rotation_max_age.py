"""rotation-max-age: a key whose value has not changed for longer than the policy allows.

The longer one value lives, the more places it has been copied to (laptops, CI logs,
chat) and the longer a leaked copy stays useful. Age counts from the last rotation,
else creation, else the last change the store reports (SSM keeps only that), so a
store that cannot say when a key was born is still judged by what it knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


def age_reference(key: KeyRecord) -> tuple[str, datetime] | None:
    """The field age counts from, and its time: last rotation, creation, last change."""
    for name in ("last_rotated", "created", "last_changed"):
        when = getattr(key, name)
        if when is not None:
            return name, when
    return None


class RotationMaxAge:
    """Flag usable keys older than ``max_age_days`` (days, UTC) since they last changed."""

    id: ClassVar[str] = "rotation-max-age"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key past its maximum age.

        Inactive and expired keys are skipped: they no longer authenticate, so their age
        is no exposure (key-expired and the unused rules cover their clean-up).
        """
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            ref = age_reference(key)
            if ref is None:
                continue
            since, when = ref
            age = (ctx.now - when).days
            limit = int(settings["max_age_days"])
            if age > limit:
                yield ctx.finding(
                    key, f"not rotated for {age} days (limit {limit}; counted from {since})",
                    severity, age_days=age, max_age_days=limit, since=since,
                    since_date=when.date().isoformat())


PLUGIN: type[Policy] = RotationMaxAge
