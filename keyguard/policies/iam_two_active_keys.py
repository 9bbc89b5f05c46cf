"""iam-two-active-keys: an IAM user with two active access keys after a rotation's grace period.

IAM allows two keys so a rotation can overlap: create the new key, deploy it, then
deactivate the old one. Two keys active long after the newer one was created mean the
rotation was never finished and the old key still works wherever it was copied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyRecord, KeyStatus, Severity
from keyguard.policies import Policy, RuleContext, applicable

ACCESS_KEY = "aws-access-key"


def principal(key: KeyRecord) -> str:
    """The IAM user (or root) a key belongs to: its location up to ``:access-key``."""
    return key.location.split(":access-key", 1)[0]


class IamTwoActiveKeys:
    """Flag the older key of a user whose two active keys overlap for over ``grace_days``."""

    id: ClassVar[str] = "iam-two-active-keys"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per user, on the older key (the one the rotation should retire).

        The grace period and severity are those resolved for the older key.
        """
        users: dict[str, list[tuple[KeyRecord, int, Severity]]] = defaultdict(list)
        for key, settings, severity in applicable(inventory, ctx):
            if (key.source == "aws-iam" and key.kind == ACCESS_KEY
                    and key.status is KeyStatus.ACTIVE and key.created is not None):
                users[principal(key)].append((key, int(settings["grace_days"]), severity))
        for entries in users.values():
            if len(entries) < 2:
                continue
            entries.sort(key=lambda e: e[0].created or ctx.now)
            (old, grace, severity), (new, _g, _s) = entries[0], entries[-1]
            if new.created is None:  # filtered above; narrows the type
                continue
            overlap = (ctx.now - new.created).days
            if ctx.now - new.created > timedelta(days=grace):
                yield ctx.finding(old, f"two active access keys for {overlap} days: "
                                  f"{new.key_id or new.name} replaced this one but it was never "
                                  "deactivated", severity,
                                  newer_key=new.key_id or new.name, overlap_days=overlap,
                                  grace_days=grace)


PLUGIN: type[Policy] = IamTwoActiveKeys
