"""Join stored copies of provider keys with what the providers say about those keys.

Provider sources (anthropic, openai, litellm) list keys with a partial handle (hint,
redacted value, token hash); store sources read full values. Both sides carry only keyed
fingerprints of those handles in ``KeyRecord.links`` (see :func:`keyguard.classify.links_of`),
so the join needs no part of any key. A stored copy that joins gains the provider's key
id, created, last-used and status: facts a secret store cannot know.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from keyguard.model import Fingerprint, KeyRecord, KeyStatus


def is_provider_record(rec: KeyRecord) -> bool:
    """A provider's own record of a key: it has handle links but no value fingerprint."""
    return bool(rec.links) and rec.fingerprint is None


def provider_index(keys: Iterable[KeyRecord]) -> dict[Fingerprint, KeyRecord]:
    """Link fingerprint -> the provider record it identifies."""
    return {link: rec for rec in keys if is_provider_record(rec) for link in rec.links}


def provider_match(copy: KeyRecord, index: dict[Fingerprint, KeyRecord]) -> KeyRecord | None:
    """The provider record a stored copy joins with, if any."""
    if copy.fingerprint is None:
        return None
    return next((index[link] for link in copy.links if link in index), None)


def join_provider_keys(keys: list[KeyRecord]) -> list[KeyRecord]:
    """Enrich every stored copy that joins a provider record; other records are unchanged."""
    index = provider_index(keys)
    if not index:
        return keys
    out: list[KeyRecord] = []
    for rec in keys:
        match = provider_match(rec, index)
        if match is None:
            out.append(rec)
            continue
        via = f"{match.source}:{match.key_id or match.location}"
        provenance = dict(rec.provenance)
        changes: dict[str, object] = {}
        for name in ("key_id", "created", "last_used", "expires"):
            if getattr(rec, name) is None and getattr(match, name) is not None:
                changes[name] = getattr(match, name)
                provenance[name] = f"joined with {via}"
        if match.status is not KeyStatus.UNKNOWN:
            changes["status"] = match.status
            provenance["status"] = f"joined with {via}"
        out.append(dataclasses.replace(rec, provenance=provenance, **changes))  # type: ignore[arg-type]
    return out
