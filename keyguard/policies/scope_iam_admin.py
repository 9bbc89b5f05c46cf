"""scope-iam-admin: an IAM access key whose user holds administrator or wildcard permissions.

A long-lived access key is a bearer credential: anyone holding it acts as its user. For
an admin user that is the whole account. The labels come from the aws-iam source's policy
summary (``admin``, ``wildcard-actions``, ``iam-write``...); root keys are left to
scope-root-access-key, which is critical.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


class ScopeIamAdmin:
    """Flag usable keys whose scope carries any label in ``labels`` (root keys excepted)."""

    id: ClassVar[str] = "scope-iam-admin"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per IAM user key with admin-like permissions."""
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if "root" in key.scope.labels:
                continue
            hits = [label for label in key.scope.labels if label in settings["labels"]]
            if not hits:
                continue
            why = [d for d in key.scope.details if d.split(":", 1)[0] in hits]
            yield ctx.finding(key, f"access key of a user with {', '.join(hits)} permissions",
                              severity, labels=",".join(hits), why="; ".join(why)[:500])


PLUGIN: type[Policy] = ScopeIamAdmin
