"""Canary detector: any use of a key that exists only to be stolen is a critical alert.

Method: a canary key is planted where a thief would find it (a decoy .env, an old CI
variable) and never used by anyone legitimate, so a single event is proof of compromise;
there is no baseline, no threshold and no learning period. Each canary identifier
(``--canary KEY``, repeatable) is matched exactly against an event's ``key_id`` (access key
id, key hash, ``apikey_...`` id), ``key_alias`` or ``principal`` (IAM ARN, gateway user).

Output: one ``critical`` alert per used key per scan window, with when (first/last seen),
how much (events, requests) and where (source IPs or calling services, countries, user
agents, regions, actions, the first file:line) so the responder can start from the alert.

Parameters: ``DetectorSettings.canaries``, from ``--canary`` and ``canaries`` in
``[usage.detectors]`` (default: none, so the detector is silent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from keyguard.model import Alert, Severity, UsageEvent
from keyguard.usage.detectors import Detector, DetectorSettings, use_evidence
from keyguard.usage.store import UsageStore, Window


@dataclass(frozen=True, slots=True)
class CanaryParams:
    """``[usage.detectors.canary]`` has no parameters: any use is proof, there is no threshold."""


class CanaryDetector:
    """Critical alert for every canary key seen in use inside the window."""

    id: ClassVar[str] = "canary"
    Params: ClassVar[type[CanaryParams]] = CanaryParams

    def evaluate(self, store: UsageStore, window: Window, now: datetime,
                 settings: DetectorSettings) -> Iterator[Alert]:
        """One alert per canary key used in the window (``now`` is unused: no aging)."""
        canaries = set(settings.canaries)
        by_key: dict[str, list[UsageEvent]] = {}
        for event in store.matching(canaries, window):
            by_key.setdefault(event.key_id, []).append(event)
        for key_id, events in by_key.items():
            first = events[0]
            matched = next(v for v in (first.key_id, first.key_alias, first.principal)
                           if v in canaries)
            field = ("key_id" if matched == first.key_id else
                     "key_alias" if matched == first.key_alias else "principal")
            evidence = use_evidence(events)
            where = evidence["source_ips"] or "an unknown address"
            countries = f" ({evidence['countries']})" if evidence["countries"] else ""
            yield Alert(
                rule_id=self.id,
                severity=Severity.CRITICAL,
                subject=key_id,
                key_alias=first.key_alias,
                message=(f"Canary key {matched} was used {len(events)} time(s) from "
                         f"{where}{countries} between {evidence['first_seen']} and "
                         f"{evidence['last_seen']}; a canary is never used legitimately, "
                         "so treat the key as stolen."),
                evidence={"canary": matched, "matched_on": field, **evidence},
                first_seen=first.time,
                last_seen=events[-1].time,
            )


PLUGIN: type[Detector] = CanaryDetector
