"""scope-github-classic-pat: a classic GitHub personal access token in a store.

Classic PATs are scoped by coarse OAuth scopes across every repository and organisation
the user can reach, and often never expire. Fine-grained tokens (or a GitHub App) bind
access to chosen repositories and permissions with a mandatory expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


class ScopeGithubClassicPat:
    """Flag usable keys of kind ``github-classic-pat``."""

    id: ClassVar[str] = "scope-github-classic-pat"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per classic PAT."""
        for key, _settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.kind == "github-classic-pat":
                yield ctx.finding(key, "classic GitHub PAT: reaches every repository its user "
                                  "can; use a fine-grained token or a GitHub App", severity)


PLUGIN: type[Policy] = ScopeGithubClassicPat
