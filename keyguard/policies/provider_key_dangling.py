"""provider-key-dangling: a stored copy of a key the provider no longer accepts or does not know.

Dangling copies are dead weight that hides live keys (someone rotates "the" key and
updates the wrong copy), and a stored copy the provider does not list at all may belong
to another organisation or an account nobody audits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from keyguard.join import is_provider_record, provider_index, provider_match
from keyguard.model import Finding, Inventory, KeyStatus
from keyguard.policies import Policy, RuleContext


class ProviderKeyDangling:
    """Stored copies whose provider key is inactive, archived, expired or unknown."""

    id: ClassVar[str] = "provider-key-dangling"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """One finding per dangling stored copy, naming the provider key id and the store location."""
        index = provider_index(inventory.keys)
        for key in inventory.keys:
            if is_provider_record(key) or key.fingerprint is None:
                continue
            resolved = ctx.for_key(key)
            if resolved is None:
                continue
            settings, severity = resolved
            match = provider_match(key, index)
            if match is not None:
                if match.status in (KeyStatus.ACTIVE, KeyStatus.UNKNOWN):
                    continue
                yield ctx.finding(
                    key, f"stored copy at {key.location} belongs to {match.source} key "
                         f"{match.key_id}, which is {match.status.value} at the provider",
                    severity=severity, provider_key_id=match.key_id or "",
                    provider_status=match.status.value, store_location=key.location)
                continue
            listing = settings["listed_by"].get(str(key.kind))
            if listing and listing in inventory.sources and not _failed(inventory, listing):
                yield ctx.finding(
                    key, f"stored {key.kind} key at {key.location} is unknown to the {listing} "
                         "organisation keyguard read (revoked, or another organisation's key)",
                    severity=severity, provider_key_id="", provider_status="unknown",
                    store_location=key.location)


def _failed(inventory: Inventory, source: str) -> bool:
    return any(f.source == source for f in inventory.failures)


PLUGIN: type[Policy] = ProviderKeyDangling
