"""provider-key-orphan: a key active at the provider that no inventoried store holds.

Such a key lives somewhere keyguard does not manage (a laptop, a CI variable, another
team's vault): nobody rotates it and nobody notices when it leaks. Only judged when at
least one store's values were read (``--inspect-values``, or .env files), since without
values no stored copy can be joined and every provider key would look orphaned.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.join import is_provider_record
from keyguard.model import Finding, Inventory, KeyStatus
from keyguard.policies import Policy, RuleContext


class ProviderKeyOrphan:
    """Active provider keys with no stored copy among the inventoried stores."""

    id: ClassVar[str] = "provider-key-orphan"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """One finding per orphaned provider key, naming its provider key id."""
        stored_links = {link for k in inventory.keys if not is_provider_record(k) for link in k.links}
        inspected = any(k.value_inspected and not is_provider_record(k) for k in inventory.keys)
        if not inspected:
            return
        for key in inventory.keys:
            if not is_provider_record(key) or key.status is not KeyStatus.ACTIVE:
                continue
            resolved = ctx.for_key(key)
            if resolved is None or set(key.links) & stored_links:
                continue
            settings, severity = resolved
            if key.kind in settings["ignore_kinds"]:
                continue
            yield ctx.finding(
                key, f"{key.source} key {key.key_id} ({key.name}) is active but stored in none "
                     "of the inventoried stores", severity=severity,
                provider_key_id=key.key_id or "", provider=str(key.provider))


PLUGIN: type[Policy] = ProviderKeyOrphan
