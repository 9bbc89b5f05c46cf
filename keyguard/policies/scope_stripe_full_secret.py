"""scope-stripe-full-secret: a full-access Stripe secret key where a restricted key would do.

A Stripe secret key (``sk_``) can do anything on the account, including payouts and
refunds; a restricted key (``rk_``) grants only the resources a service needs. Outside the
environments listed in ``allow_in`` (where test-mode keys live), every stored secret key
is flagged. A key whose environment is unknown is flagged too: it cannot be shown safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


class ScopeStripeFullSecret:
    """Flag ``stripe-secret`` keys outside the environments in ``allow_in``."""

    id: ClassVar[str] = "scope-stripe-full-secret"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per full Stripe secret key outside the allowed environments.

        NOTE: a record does not say live or test mode (the classifier reads it but the
        model has no field), so environments stand in for it.
        """
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.kind != "stripe-secret":
                continue
            env = (key.environment or "").lower()
            if env and env in [e.lower() for e in settings["allow_in"]]:
                continue
            yield ctx.finding(key, f"full-access Stripe secret key in environment "
                              f"{key.environment or 'unknown'}; a restricted key would limit it",
                              severity, environment=key.environment or "")


PLUGIN: type[Policy] = ScopeStripeFullSecret
