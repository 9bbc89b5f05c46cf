"""plaintext-key-at-rest: a credential stored unencrypted (a .env file, an SSM String parameter).

A secret store encrypts values and logs who reads them; a ``.env`` file or a plaintext
parameter does neither, and files get copied into images, backups and commits. The
source marks such records ``plaintext``. With ``require_classified`` only recognised key
formats count (an SSM String parameter may just be configuration).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import UNKNOWN_KIND, Finding, Inventory
from keyguard.policies import Policy, RuleContext, applicable


class PlaintextKeyAtRest:
    """Flag records marked ``plaintext``."""

    id: ClassVar[str] = "plaintext-key-at-rest"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per plaintext copy of a credential."""
        for key, settings, severity in applicable(inventory, ctx):
            if not key.plaintext:
                continue
            if settings["require_classified"] and key.kind == UNKNOWN_KIND:
                continue
            what = key.kind if key.kind != UNKNOWN_KIND else "credential"
            yield ctx.finding(key, f"{what} stored unencrypted in {key.source} at {key.location}",
                              severity, kind=key.kind)


PLUGIN: type[Policy] = PlaintextKeyAtRest
