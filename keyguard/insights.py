"""What a person should look at first in an inventory: a short, ranked list of observations.

These are pointers for a human reading ``keyguard demo`` or an inventory, not policy:
the policy engine (``keyguard check``) owns thresholds, severities and exit codes. Pure
function of the inventory and ``now``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from keyguard.inventory import copies_of_key_ids, duplicates
from keyguard.model import Inventory, KeyRecord, KeyStatus

STALE_DAYS = 90
UNUSED_DAYS = 45


@dataclass(frozen=True, slots=True)
class Insight:
    """One observation with up to a few example locations."""

    title: str
    count: int
    examples: tuple[str, ...] = ()


def _where(rec: KeyRecord) -> str:
    field = f"#{rec.field}" if rec.field and rec.field != rec.name else ""
    region = f" ({rec.region})" if rec.region else ""
    return f"{rec.source}: {rec.name}{field}{region}"


def insights(inv: Inventory, now: datetime, limit: int = 3) -> list[Insight]:
    """Observations worth a look, most urgent first; empty ones are left out."""
    keys = [k for k in inv.keys if k.status is not KeyStatus.DELETED]
    out: list[Insight] = []

    def add(title: str, recs: list[KeyRecord]) -> None:
        if recs:
            out.append(Insight(title, len(recs), tuple(_where(r) for r in recs[:limit])))

    add("admin or root scope (a stolen copy can do anything)",
        [k for k in keys if {"admin", "root"} & set(k.scope.labels)])
    add("admin-type provider keys (org-wide management keys)",
        [k for k in keys if k.kind.endswith("-admin")])
    add("plaintext keys in .env files", [k for k in keys if k.plaintext])
    dup = duplicates(keys)
    if dup:
        out.append(Insight(
            "same secret stored in several places (fingerprint match)", len(dup),
            tuple(" = ".join(_where(r) for r in recs[:3]) for recs in list(dup.values())[:limit]),
        ))
    ids = copies_of_key_ids(keys)
    add("IAM keys with copies in secret stores (rotate them together)",
        [next((r for r in recs if r.source == "aws-iam"), recs[0]) for recs in ids.values()])
    stale = sorted(
        (k for k in keys if (k.last_rotated or k.created) is not None
         and (now - (k.last_rotated or k.created or now)).days > STALE_DAYS),
        key=lambda k: (k.last_rotated or k.created or now),
    )
    add(f"not rotated for more than {STALE_DAYS} days", stale)
    add(f"active but unused for more than {UNUSED_DAYS} days",
        [k for k in keys if k.status is KeyStatus.ACTIVE and k.last_used is not None
         and (now - k.last_used).days > UNUSED_DAYS])
    add("never used (the store tracks use)",
        [k for k in keys if k.last_used is None and "last_used" in k.provenance])
    add("no owner tag", [k for k in keys if not k.owner])
    add("unrecognised format (reported as unknown, not guessed)",
        [k for k in keys if k.provider == "unknown" and k.value_inspected])
    return out


def provider_counts(inv: Inventory) -> list[tuple[str, int]]:
    """Keys per provider, most common first."""
    return Counter(str(k.provider) for k in inv.keys).most_common()
