"""The Detector contract, shared settings and the DETECTORS registry; one module per detector.

A detector reads the event store and yields :class:`~keyguard.model.Alert`. It judges the
events inside a :class:`~keyguard.usage.store.Window` (what is new in this run, or since
``--since``) against each key's own earlier history in the store, never against later
events. Like policies, detectors are pure with respect to the outside world: ``now`` and the
settings are arguments; they never read the clock, the environment or files.

Every alert carries a one-sentence ``message`` and the numbers behind it in ``evidence``;
``rule_id`` is the detector id (``canary``, ``geography``), which is API: the JSON report's
``type`` and future suppressions key on it, so add aliases, never rename.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from keyguard.model import Alert, UsageEvent
from keyguard.registry import Registry
from keyguard.serialize import iso
from keyguard.usage.settings import Scope
from keyguard.usage.store import UsageStore, Window

#: Key id the importers use when an export names no key; such events mix callers.
UNATTRIBUTED = "(unattributed)"


P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """What every detector may read; built from config and flags by ``usage.settings``.

    ``canaries``: identifiers (key id, alias or principal) of keys that must never be used.
    ``allow_countries``: ISO 3166 alpha-2 codes where use is sanctioned (empty: no list);
    a matching ``[[usage.scopes]]`` entry replaces it per key (:meth:`allow_countries_for`).
    ``learning_days`` / ``learning_min_events``: a key is judged on its own baseline only
    once its history spans this many days from its first event *and* holds this many events.
    ``params``: each detector's validated ``Params`` by detector id (absent: the defaults).
    ``disabled``: detector ids switched off with ``enabled = false``.
    ``key_tags``: inventory tags by key id or alias, for scopes that pick keys by tag.
    """

    canaries: tuple[str, ...] = ()
    allow_countries: tuple[str, ...] = ()
    learning_days: float = 7.0
    learning_min_events: int = 20
    params: Mapping[str, object] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()
    key_tags: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def params_for(self, detector_id: str, cls: type[P]) -> P:
        """The detector's configured parameters, or ``cls()`` (its documented defaults)."""
        found = self.params.get(detector_id)
        return found if isinstance(found, cls) else cls()

    def tags_of(self, key_id: str, alias: str | None = None) -> Mapping[str, str]:
        """Inventory tags of a key, looked up by id first, then by alias ({} if unknown)."""
        tags = self.key_tags.get(key_id)
        if tags is None and alias is not None:
            tags = self.key_tags.get(alias)
        return tags or {}

    def allow_countries_for(self, key_id: str, alias: str | None = None) -> tuple[str, ...]:
        """The allow-list for one key: the first matching scope's list, else the global one."""
        tags = self.tags_of(key_id, alias)
        for scope in self.scopes:
            if scope.allow_countries is not None and scope.matches(key_id, alias, tags):
                return scope.allow_countries
        return self.allow_countries


class Detector(Protocol):
    """Finds one kind of anomaly in the events of a window."""

    id: ClassVar[str]  # module name with "-"; the alert type, so never rename
    #: Frozen dataclass of this detector's parameters; every field has a documented default.
    Params: ClassVar[type[Any]]

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """Alerts for the events inside ``window``, judged against earlier history only."""
        ...


DETECTORS: Registry[Detector] = Registry(__name__, __path__, "keyguard.detectors", "detector")


def top(values: Iterable[str | None], limit: int = 5) -> str:
    """The most frequent non-empty values, comma-separated, most frequent first (evidence)."""
    counts = Counter(v for v in values if v)
    shown = [v for v, _ in counts.most_common(limit)]
    more = len(counts) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def use_evidence(events: list[UsageEvent]) -> dict[str, str | int | float]:
    """When and where a group of events happened: the common part of every alert's evidence."""
    return {
        "events": len(events),
        "requests": sum(max(e.requests, 1) for e in events),
        "first_seen": iso(events[0].time) or "",
        "last_seen": iso(events[-1].time) or "",
        "source_ips": top((e.source_ip or e.source_host for e in events), 10),
        "countries": top(e.country for e in events),
        "user_agents": top((e.user_agent for e in events), 3),
        "regions": top(e.region for e in events),
        "actions": top((e.action for e in events), 5),
        "first_origin": events[0].origin or "",
    }
