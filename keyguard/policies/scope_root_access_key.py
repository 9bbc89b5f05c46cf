"""scope-root-access-key: an access key of the AWS account root user exists.

The root user cannot be limited by any IAM policy, and AWS advises never to create root
access keys. Any root key, active or not yet deleted, is a finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext, applicable


class ScopeRootAccessKey:
    """Flag keys whose scope carries the ``root`` label."""

    id: ClassVar[str] = "scope-root-access-key"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per root access key (inactive ones too: they can be re-enabled)."""
        for key, _settings, severity in applicable(inventory, ctx):
            if "root" in key.scope.labels:
                yield ctx.finding(key, f"access key of the account root user "
                                  f"(account {key.account or 'unknown'})", severity,
                                  account=key.account or "", status=key.status.value)


PLUGIN: type[Policy] = ScopeRootAccessKey
