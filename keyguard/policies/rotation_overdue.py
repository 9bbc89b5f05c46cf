"""rotation-overdue: automatic rotation is on, but it did not happen on time or it failed.

A store that says "rotated every 30 days" gives a false sense of safety when the rotation
Lambda is broken: the schedule looks fine while the value ages. The next rotation date
comes from the store, else from the last rotation plus the interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import Policy, RuleContext, applicable


def expected_rotation(key: KeyRecord) -> datetime | None:
    """When the next rotation is due: the store's date, else last rotation + interval."""
    rotation = key.rotation
    if rotation is None:
        return None
    if rotation.next_rotation is not None:
        return rotation.next_rotation
    last = key.last_rotated or key.created
    if rotation.interval_days is not None and last is not None:
        return last + timedelta(days=rotation.interval_days)
    return None


class RotationOverdue:
    """Flag keys with rotation enabled whose last rotation failed or whose due date passed."""

    id: ClassVar[str] = "rotation-overdue"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key whose enabled rotation is failing or late.

        ``grace_days`` absorbs the store's rotation window (Secrets Manager rotates "on
        or before" the date, and its dates are day-granular).
        """
        for key, settings, severity in applicable(inventory, ctx):
            rotation = key.rotation
            if rotation is None or rotation.enabled is not True:
                continue
            if rotation.last_failed:
                yield ctx.finding(key, "the last rotation did not finish (a pending version "
                                  "was never promoted)", severity, reason="failed")
                continue
            due = expected_rotation(key)
            if due is None:
                continue
            late = (ctx.now - due).days
            grace = int(settings["grace_days"])
            if ctx.now > due + timedelta(days=grace):
                yield ctx.finding(key, f"rotation was due {due.date().isoformat()} "
                                  f"({late} days ago) and has not happened", severity,
                                  reason="overdue", due=due.date().isoformat(), days_late=late,
                                  grace_days=grace)


PLUGIN: type[Policy] = RotationOverdue
