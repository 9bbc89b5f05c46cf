"""Runs sources concurrently into one :class:`Inventory`, keeping every source failure.

One failing source (or region, or file) never hides the others: its exception becomes a
:class:`SourceFailure` and the rest of the run completes. Records are enriched here,
uniformly for every source, with the environment and owner derived from tags and names
(:class:`keyguard.config.LabelsConfig`), so sources only report what their store says.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from keyguard.config import LabelsConfig
from keyguard.errors import KeyguardError, SourceError
from keyguard.join import join_provider_keys
from keyguard.model import Fingerprint, Inventory, KeyRecord, SourceFailure
from keyguard.registry import Registry
from keyguard.sources import SOURCES, Source, SourceContext

log = logging.getLogger(__name__)


def run_inventory(
    names: Sequence[str],
    ctx: SourceContext,
    registry: Registry[Source] = SOURCES,
    max_parallel_sources: int = 4,
) -> Inventory:
    """Collect from every named source; names must already be validated.

    Raises:
        PluginError: a name is unknown (checked for all names before any work starts).

    """
    classes = [(name, registry.load(name)) for name in names]  # fail fast on a bad name
    results: dict[str, tuple[list[KeyRecord], list[SourceFailure]]] = {}

    def collect(name: str, cls: type[Source]) -> tuple[list[KeyRecord], list[SourceFailure]]:
        return _collect_one(name, cls, ctx)

    workers = max(1, min(max_parallel_sources, len(classes)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kg-source") as pool:
        futures = {name: pool.submit(collect, name, cls) for name, cls in classes}
        for name, future in futures.items():
            results[name] = future.result()

    keys: list[KeyRecord] = []
    failures: list[SourceFailure] = []
    for name in names:
        recs, fails = results[name]
        keys.extend(label(scrub_record(r), ctx.config.labels) for r in recs)
        failures.extend(fails)
    keys = join_provider_keys(keys)
    keys.sort(key=lambda r: (r.source, r.location, r.field or ""))
    return Inventory(keys=tuple(keys), failures=tuple(failures), sources=tuple(names),
                     taken_at=ctx.now)


def _collect_one(
    name: str, cls: type[Source], ctx: SourceContext
) -> tuple[list[KeyRecord], list[SourceFailure]]:
    records: list[KeyRecord] = []
    failures: list[SourceFailure] = []
    try:
        for item in cls(ctx).collect():
            if isinstance(item, SourceFailure):
                failures.append(item)
            else:
                records.append(item)
    except SourceError as exc:
        failures.append(SourceFailure(exc.source or name, exc.scope, exc.message, exc.hint))
    except KeyguardError as exc:
        failures.append(SourceFailure(name, "", exc.message, exc.hint))
    except Exception as exc:
        # NOTE: only the exception type is reported: a third-party plugin's message could
        # carry a value. The traceback goes to the debug log for whoever runs -v.
        log.debug("source %s crashed", name, exc_info=True)
        failures.append(SourceFailure(
            name, "", f"internal error ({type(exc).__name__}) after {len(records)} keys",
            "run with --verbose for details and report it as a bug",
        ))
    ctx.progress(name, f"{len(records)} keys" + (f", {len(failures)} failures" if failures else ""))
    return records, failures


@cache
def _patterns(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((env, re.compile(rx, re.IGNORECASE)) for env, rx in items)


def _tag(tags: Mapping[str, str], names: Iterable[str]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value:
            return value
    return None


def scrub_record(record: KeyRecord) -> KeyRecord:
    """The record with secret-looking tokens in its free text redacted (name, owner, tags, scope).

    Why: those fields hold whatever a person typed, and provider admin APIs hand them back
    as typed: a key named with its own value, a LiteLLM alias holding a key. Every report,
    the state database and the rotation plan start from these records, so one pass here
    covers them all (issue 8, tests/test_leak_guard.py).
    """
    from keyguard.redact import scrub

    tags = {scrub(k): scrub(v) for k, v in record.tags.items()}
    name = scrub(record.name)
    owner = None if record.owner is None else scrub(record.owner)
    details = tuple(scrub(d) for d in record.scope.details)
    if (name, owner, tags, details) == (record.name, record.owner, dict(record.tags),
                                         tuple(record.scope.details)):
        return record
    return dataclasses.replace(record, name=name, owner=owner, tags=tags,
                               scope=dataclasses.replace(record.scope, details=details))


def label(record: KeyRecord, cfg: LabelsConfig) -> KeyRecord:
    """Fill in environment and owner from tags, then naming patterns, unless already set."""
    environment = record.environment or _tag(record.tags, cfg.environment_tags)
    if environment is None:
        haystack = f"{record.name} {record.location}"
        for env, pattern in _patterns(tuple(cfg.environment_patterns.items())):
            if pattern.search(haystack):
                environment = env
                break
    owner = record.owner or _tag(record.tags, cfg.owner_tags)
    if environment == record.environment and owner == record.owner:
        return record
    return dataclasses.replace(record, environment=environment, owner=owner)


def duplicates(keys: Iterable[KeyRecord]) -> dict[Fingerprint, list[KeyRecord]]:
    """Fingerprints held in more than one location (secret sprawl), with their copies."""
    groups: dict[Fingerprint, list[KeyRecord]] = defaultdict(list)
    for rec in keys:
        if rec.fingerprint is not None:
            groups[rec.fingerprint].append(rec)
    return {fp: recs for fp, recs in groups.items() if len({r.identity for r in recs}) > 1}


def copies_of_key_ids(keys: Iterable[KeyRecord]) -> dict[str, list[KeyRecord]]:
    """Records sharing a public key id (an IAM key and its stored copies), by key id."""
    groups: dict[str, list[KeyRecord]] = defaultdict(list)
    for rec in keys:
        if rec.key_id:
            groups[rec.key_id].append(rec)
    return {kid: recs for kid, recs in groups.items() if len(recs) > 1}

