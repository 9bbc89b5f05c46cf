"""rotation-not-configured: the store can rotate this secret, but nobody turned it on.

Secrets Manager (and later Vault, GCP, Azure) can rotate a value on a schedule; leaving
it off means rotation depends on someone remembering. Keys in stores without rotation
support are left to rotation-max-age.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory
from keyguard.policies import Policy, RuleContext, applicable


class RotationNotConfigured:
    """Flag keys whose store supports rotation when rotation is not enabled."""

    id: ClassVar[str] = "rotation-not-configured"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key where ``rotation.supported`` but ``enabled`` is not True.

        "Never configured" (None) and "turned off" (False) get different messages: a
        disabled schedule was a decision someone may need to revisit.
        """
        for key, _settings, severity in applicable(inventory, ctx):
            rotation = key.rotation
            if rotation is None or not rotation.supported or rotation.enabled is True:
                continue
            if rotation.enabled is False:
                message, state = "automatic rotation is configured but disabled", "disabled"
            else:
                message, state = "automatic rotation was never configured", "never-configured"
            yield ctx.finding(key, message, severity, rotation=state)


PLUGIN: type[Policy] = RotationNotConfigured
