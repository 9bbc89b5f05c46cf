"""Canary records in the state database, and the lookups other commands need.

``keyguard usage scan`` alerts on any use of a key recorded here (:func:`canary_identifiers`),
and ``keyguard check`` leaves canaries out of policy evaluation (:func:`load_index`), since a
canary is meant to look stale, unrotated and over-exposed.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyguard.canary import Canary, CanaryKind, Planted
from keyguard.errors import UsageError
from keyguard.model import Inventory, KeyRecord
from keyguard.serialize import iso
from keyguard.state import CanaryRow, StateDB

#: Version of the JSON stored in ``canaries.record``.
RECORD_VERSION = 1
#: Notified alert ids kept per canary (the newest); older ones can no longer recur.
MAX_NOTIFIED = 100


def new_id() -> str:
    """A short random canary id (``cn-`` + 10 hex digits); it never appears in the cloud."""
    return f"cn-{uuid.uuid4().hex[:10]}"


def to_row(canary: Canary) -> CanaryRow:
    """The state-database row of a canary."""
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "principal": canary.principal,
        "account": canary.account,
        "region": canary.region,
        "iam_path": canary.iam_path,
        "base_url": canary.base_url,
        "planted": [dataclasses.asdict(p) for p in canary.planted],
        "notified": list(canary.notified[-MAX_NOTIFIED:]),
    }
    return CanaryRow(canary.id, canary.kind.value, canary.name, canary.identifier,
                     canary.created, json.dumps(record, sort_keys=True))


def from_row(row: CanaryRow) -> Canary:
    """A canary from its state-database row."""
    record = json.loads(row.record)
    planted = tuple(Planted(spec=str(p["spec"]), ref=str(p["ref"]), region=p.get("region"),
                            created_file=bool(p.get("created_file")))
                    for p in record.get("planted", []))
    return Canary(
        id=row.id, kind=CanaryKind(row.kind), name=row.name, identifier=row.identifier,
        created=row.created, principal=record.get("principal"), account=record.get("account"),
        region=record.get("region"), iam_path=record.get("iam_path"),
        base_url=record.get("base_url"), planted=planted,
        notified=tuple(str(n) for n in record.get("notified", [])),
    )


def save(db: StateDB, canary: Canary) -> None:
    """Record (or update) a canary."""
    db.put_canary(to_row(canary))


def load_all(db: StateDB) -> list[Canary]:
    """Every recorded canary, oldest first."""
    return [from_row(row) for row in db.canary_rows()]


def find(db: StateDB, wanted: str) -> Canary:
    """The canary with this id (or, failing that, this unique name).

    Raises:
        UsageError: no canary, or more than one, has that id or name.

    """
    canaries = load_all(db)
    by_id = [c for c in canaries if c.id == wanted]
    if by_id:
        return by_id[0]
    by_name = [c for c in canaries if c.name == wanted]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        ids = ", ".join(c.id for c in by_name)
        raise UsageError(f"canary name {wanted!r} is ambiguous ({ids})", "give the canary id")
    raise UsageError(f"no canary {wanted!r} in {db.path}",
                     "`keyguard canary list` shows the recorded canaries")


def canary_identifiers(db: StateDB) -> tuple[str, ...]:
    """Every identifier of every canary recorded in ``db``, each once.

    Access key ids, IAM user ARNs, LiteLLM token hashes and aliases, provider key ids:
    the values :class:`keyguard.usage.detectors.canary.CanaryDetector` matches against
    an event's key id, alias or principal.
    """
    return tuple(dict.fromkeys(ident for canary in load_all(db) for ident in canary.identifiers))


@dataclass(frozen=True, slots=True)
class CanaryIndex:
    """What identifies a canary or a planted copy of one in an inventory.

    A record is a canary when its public key id (or principal) is a canary identifier,
    or when it lives where a canary copy was planted (an SSM parameter or secret ARN, a
    file): without ``--inspect-values`` a planted copy has no key id, only a location.
    """

    identifiers: frozenset[str] = frozenset()
    locations: frozenset[str] = frozenset()

    @classmethod
    def of(cls, canaries: Iterable[Canary]) -> CanaryIndex:
        """The index of these canaries."""
        listed = list(canaries)
        return cls(frozenset(i for c in listed for i in c.identifiers),
                   frozenset(p.ref for c in listed for p in c.planted))

    def __bool__(self) -> bool:
        return bool(self.identifiers or self.locations)

    def matches(self, record: KeyRecord) -> bool:
        """True when ``record`` is a canary or a planted copy of one."""
        if record.key_id is not None and record.key_id in self.identifiers:
            return True
        return record.location in self.locations or (
            record.anchor is not None and record.anchor in self.locations)

    def without(self, inventory: Inventory) -> Inventory:
        """The inventory minus canaries and their planted copies (for policy evaluation)."""
        if not self:
            return inventory
        return dataclasses.replace(
            inventory, keys=tuple(k for k in inventory.keys if not self.matches(k)))


def load_index(state_path: Path) -> CanaryIndex:
    """The canary index of the state database at ``state_path`` (empty if there is none)."""
    if not state_path.exists():
        return CanaryIndex()
    with StateDB(state_path) as db:
        return CanaryIndex.of(load_all(db))


def created_text(canary: Canary) -> str:
    """The canary's creation time as ISO-8601 UTC."""
    return iso(canary.created) or ""

