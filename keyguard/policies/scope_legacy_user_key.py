"""scope-legacy-user-key: a user-level key of a provider that now offers scoped keys.

OpenAI's legacy ``sk-`` user keys act as the user across every organisation and project
they belong to, and cannot be limited; a project or service-account key does the same
job for one project. The kinds are a setting so other legacy formats can join.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


class ScopeLegacyUserKey:
    """Flag usable keys whose kind is in ``kinds`` (legacy, unscoped user keys)."""

    id: ClassVar[str] = "scope-legacy-user-key"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per stored legacy user key."""
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.kind in settings["kinds"]:
                yield ctx.finding(key, f"{key.kind} key: acts as a whole user, not one project",
                                  severity, kind=key.kind)


PLUGIN: type[Policy] = ScopeLegacyUserKey
