"""KeyRecord <-> JSON-safe dicts, shared by the JSON report and the state database.

One mapping for both keeps the documented JSON shape (``schemas/inventory.schema.json``)
and what the state database stores from drifting apart. Datetimes are ISO-8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keyguard.model import (
    Fingerprint,
    KeyRecord,
    KeyStatus,
    Kind,
    Provider,
    RotationSettings,
    Scope,
    SourceFailure,
)

_TIME_FIELDS = ("created", "last_rotated", "last_changed", "last_used", "last_accessed", "expires")


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` suffix, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: object) -> datetime | None:
    """Inverse of :func:`iso`; naive input is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def record_to_dict(record: KeyRecord) -> dict[str, Any]:
    """A JSON-safe dict of every field of a record (plus its identity)."""
    rotation = record.rotation
    return {
        "identity": record.identity,
        "source": record.source,
        "location": record.location,
        "anchor": record.anchor,
        "name": record.name,
        "field": record.field,
        "provider": str(record.provider),
        "kind": str(record.kind),
        "key_id": record.key_id,
        "account": record.account,
        "region": record.region,
        "environment": record.environment,
        "owner": record.owner,
        "tags": dict(sorted(record.tags.items())),
        "status": record.status.value,
        **{name: iso(getattr(record, name)) for name in _TIME_FIELDS},
        "last_used_detail": record.last_used_detail,
        "rotation": None if rotation is None else {
            "supported": rotation.supported,
            "enabled": rotation.enabled,
            "interval_days": rotation.interval_days,
            "schedule": rotation.schedule,
            "next_rotation": iso(rotation.next_rotation),
            "rotator": rotation.rotator,
            "last_failed": rotation.last_failed,
        },
        "scope": {"labels": list(record.scope.labels), "details": list(record.scope.details)},
        "fingerprint": record.fingerprint,
        "links": list(record.links),
        "plaintext": record.plaintext,
        "value_inspected": record.value_inspected,
        "provenance": dict(sorted(record.provenance.items())),
    }


def record_from_dict(data: Mapping[str, Any]) -> KeyRecord:
    """Rebuild a record written by :func:`record_to_dict` (extra keys are ignored)."""
    rot = data.get("rotation")
    rotation = None
    if isinstance(rot, Mapping):
        rotation = RotationSettings(
            supported=bool(rot.get("supported")),
            enabled=rot.get("enabled"),
            interval_days=rot.get("interval_days"),
            schedule=rot.get("schedule"),
            next_rotation=parse_iso(rot.get("next_rotation")),
            rotator=rot.get("rotator"),
            last_failed=rot.get("last_failed"),
        )
    scope = data.get("scope") or {}
    fingerprint = data.get("fingerprint")
    try:
        status = KeyStatus(data.get("status", "unknown"))
    except ValueError:
        status = KeyStatus.UNKNOWN
    return KeyRecord(
        source=str(data["source"]),
        location=str(data["location"]),
        name=str(data.get("name", "")),
        anchor=data.get("anchor"),
        field=data.get("field"),
        provider=Provider(str(data.get("provider", "unknown"))),
        kind=Kind(str(data.get("kind", "unknown"))),
        key_id=data.get("key_id"),
        account=data.get("account"),
        region=data.get("region"),
        environment=data.get("environment"),
        owner=data.get("owner"),
        tags=dict(data.get("tags") or {}),
        status=status,
        last_used_detail=data.get("last_used_detail"),
        rotation=rotation,
        scope=Scope(tuple(scope.get("labels", ())), tuple(scope.get("details", ()))),
        fingerprint=Fingerprint(fingerprint) if fingerprint else None,
        links=tuple(Fingerprint(str(x)) for x in data.get("links") or ()),
        plaintext=bool(data.get("plaintext")),
        value_inspected=bool(data.get("value_inspected")),
        provenance=dict(data.get("provenance") or {}),
        **{name: parse_iso(data.get(name)) for name in _TIME_FIELDS},
    )


def failure_to_dict(failure: SourceFailure) -> dict[str, str]:
    """A JSON-safe dict of a source failure."""
    return {"source": failure.source, "scope": failure.scope, "message": failure.message,
            "hint": failure.hint}
