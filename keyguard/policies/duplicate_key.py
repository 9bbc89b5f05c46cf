"""duplicate-key: the same secret stored in more than one place.

Every copy is one more place to leak from and one more place a rotation must reach; a
forgotten copy keeps the old value alive after rotation. Copies are joined by
fingerprint (same value) or by public key id (two stored copies of one AWS key), and
each copy gets its own finding naming the others. The issuer's own listing of a key (the
IAM record of an access key, the Admin API record of an Anthropic key) is the key, not a
copy, so ``issuer_sources`` do not count. Replicas of one secret (same source and name in
other regions) count as one place unless ``count_replicas`` is on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import ClassVar

from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import Policy, RuleContext, applicable


def _place(key: KeyRecord, count_replicas: bool) -> str:
    """Where a copy lives; replicas of one secret share a place unless they count."""
    return key.identity if count_replicas else f"{key.source}:{key.anchor or key.name}#{key.field or ''}"


def copy_groups(keys: list[KeyRecord]) -> list[list[KeyRecord]]:
    """Group copies sharing a fingerprint or a key id (transitively), in input order."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        for join in (f"fp:{key.fingerprint}" if key.fingerprint else None,
                     f"id:{key.key_id}" if key.key_id else None):
            if join is None:
                continue
            if join in first:
                parent[find(i)] = find(first[join])
            else:
                first[join] = i
    groups: dict[int, list[KeyRecord]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[find(i)].append(key)
    return list(groups.values())


class DuplicateKey:
    """Flag every copy of a secret that is stored in more than one place."""

    id: ClassVar[str] = "duplicate-key"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per copy, with the other places in evidence."""
        copies: list[KeyRecord] = []
        resolved = {}
        for key, settings, severity in applicable(inventory, ctx):
            if key.source in settings["issuer_sources"] or not (key.fingerprint or key.key_id):
                continue
            copies.append(key)
            resolved[id(key)] = (settings, severity)
        for group in copy_groups(copies):
            for key in group:
                settings, severity = resolved[id(key)]
                mine = _place(key, bool(settings["count_replicas"]))
                others = sorted({k.location for k in group
                                 if _place(k, bool(settings["count_replicas"])) != mine})
                if not others:
                    continue
                shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
                yield ctx.finding(key, f"the same secret is also stored at {shown}", severity,
                                  copies=len(others) + 1, others="\n".join(others)[:2000])


PLUGIN: type[Policy] = DuplicateKey
