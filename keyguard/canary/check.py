"""Has any canary been used? Poll each provider's last-used data and scan usage exports.

Any use is a critical :class:`~keyguard.model.Alert` (``rule_id`` ``canary``, the usage
canary detector's id, so both paths report the same way): when, where (region, service,
IP, country) and how it was seen (``iam:GetAccessKeyLastUsed``, ``litellm:GET /key/info``,
a usage export file:line). A canary whose status cannot be read is "unknown" with the
reason, never "quiet": a cron job must not go green because IAM was unreachable.

Pure apart from the pollers it is handed; ``now`` is not needed since there is no aging.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from keyguard.canary import Canary, CanaryKind
from keyguard.errors import KeyguardError
from keyguard.model import Alert, KeyRecord, Severity, UsageEvent
from keyguard.serialize import iso
from keyguard.usage.detectors import use_evidence

if TYPE_CHECKING:
    from keyguard.canary.aws import AwsCanaries
    from keyguard.canary.litellm import LiteLLMCanaries

RULE_ID = "canary"
NO_POLL = "Anthropic reports no last use; only --usage exports can catch this canary"


class Status(enum.StrEnum):
    """A canary's verdict in one check."""

    QUIET = "quiet"
    USED = "used"
    UNKNOWN = "unknown"  # its last-used data could not be read


@dataclass(frozen=True, slots=True)
class CanaryState:
    """One canary's verdict and, when unknown, why."""

    canary: Canary
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything one ``canary check`` found."""

    states: tuple[CanaryState, ...]
    alerts: tuple[Alert, ...]

    @property
    def used(self) -> bool:
        """True when any canary was used."""
        return bool(self.alerts)

    @property
    def unknown(self) -> tuple[CanaryState, ...]:
        """Canaries whose status could not be read."""
        return tuple(s for s in self.states if s.status is Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Pollers:
    """How to reach each provider; built by the CLI, faked by nothing (tests use real servers).

    ``aws`` takes the canary's region; ``litellm`` the proxy URL recorded at creation (the
    configured one wins); ``providers`` returns the provider source's records by key id
    (``anthropic``/``openai`` admin APIs).
    """

    aws: Callable[[str | None], AwsCanaries]
    litellm: Callable[[str | None], LiteLLMCanaries]
    providers: Callable[[CanaryKind], Mapping[str, KeyRecord]]


def check(canaries: Iterable[Canary], pollers: Pollers,
          events: Iterable[UsageEvent] = ()) -> CheckResult:
    """Poll every canary, then look for every canary in ``events``; one result."""
    listed = list(canaries)
    alerts: list[Alert] = []
    states: dict[str, CanaryState] = {}
    for canary in listed:
        if canary.kind is CanaryKind.ANTHROPIC:
            # NOTE: the Admin API lists keys without any last-used time, so polling would
            # only cost an admin key; usage exports are the only signal for these.
            states[canary.id] = CanaryState(canary, Status.QUIET, NO_POLL)
            continue
        try:
            alert = poll(canary, pollers)
        except KeyguardError as exc:
            states[canary.id] = CanaryState(canary, Status.UNKNOWN, str(exc))
            continue
        if alert is not None:
            alerts.append(alert)
        states[canary.id] = CanaryState(canary, Status.USED if alert else Status.QUIET)
    for canary, alert in usage_alerts(listed, events):
        alerts.append(alert)
        states[canary.id] = CanaryState(canary, Status.USED)
    alerts.sort(key=lambda a: (a.subject, a.first_seen is None, iso(a.first_seen) or ""))
    return CheckResult(tuple(states[c.id] for c in listed), tuple(alerts))


def poll(canary: Canary, pollers: Pollers) -> Alert | None:
    """The canary's provider-side last use as an alert, or None when it is quiet.

    Raises:
        KeyguardError: the provider could not be asked, or the key no longer exists.

    """
    if canary.kind is CanaryKind.AWS:
        last = pollers.aws(canary.region).last_use(canary.identifier)
        if last.when is None:
            return None
        where = " ".join(p for p in (last.region, last.service) if p) or "an unknown service"
        evidence = {"seen_by": "iam:GetAccessKeyLastUsed", "region": last.region or "",
                    "service": last.service or "", "principal": canary.principal or ""}
        return _alert(canary, f"was used at {iso(last.when)} ({where})", last.when, evidence)
    if canary.kind is CanaryKind.LITELLM:
        use = pollers.litellm(canary.base_url).last_use(canary.identifier)
        if not use.used:
            return None
        when = f"was last active at {iso(use.when)}" if use.when else "has spend recorded"
        return _alert(canary, f"{when} (spend {use.spend:g})", use.when,
                      {"seen_by": "litellm:GET /key/info", "spend": use.spend})
    records = pollers.providers(canary.kind)
    record = records.get(canary.identifier)
    if record is None:
        raise KeyguardError(f"{canary.kind} key {canary.identifier} is no longer listed",
                            "it was deleted at the provider; `keyguard canary delete` it")
    if record.last_used is None:
        return None
    return _alert(canary, f"was used at {iso(record.last_used)}", record.last_used,
                  {"seen_by": record.provenance.get("last_used", f"{canary.kind} admin API")})


def usage_alerts(canaries: Iterable[Canary],
                 events: Iterable[UsageEvent]) -> list[tuple[Canary, Alert]]:
    """One alert per canary seen in ``events``.

    Matching mirrors :class:`keyguard.usage.detectors.canary.CanaryDetector`: an
    identifier equals the event's key id, key alias or principal.
    """
    by_ident: dict[str, Canary] = {}
    for canary in canaries:
        for ident in canary.identifiers:
            by_ident.setdefault(ident, canary)
    seen: dict[str, list[UsageEvent]] = {}
    for event in events:
        hit = next((by_ident[v] for v in (event.key_id, event.key_alias, event.principal)
                    if v is not None and v in by_ident), None)
        if hit is not None:
            seen.setdefault(hit.id, []).append(event)
    out: list[tuple[Canary, Alert]] = []
    for canary_id, found in seen.items():
        canary = next(c for c in by_ident.values() if c.id == canary_id)
        found.sort(key=lambda e: e.time)
        evidence = use_evidence(found)
        where = evidence["source_ips"] or "an unknown address"
        countries = f" ({evidence['countries']})" if evidence["countries"] else ""
        formats = sorted({e.source_format for e in found})
        message = (f"appears in usage exports {len(found)} time(s) from {where}{countries} "
                   f"between {evidence['first_seen']} and {evidence['last_seen']}")
        out.append((canary, _alert(canary, message, found[0].time,
                                   {"seen_by": "usage:" + ",".join(formats), **evidence},
                                   last=found[-1].time)))
    return out


def _alert(canary: Canary, what: str, first: datetime | None,
           evidence: Mapping[str, str | int | float], last: datetime | None = None) -> Alert:
    return Alert(
        rule_id=RULE_ID,
        severity=Severity.CRITICAL,
        subject=canary.identifier,
        key_alias=canary.name,
        message=(f"Canary {canary.id} ({canary.kind} {canary.name}) {what}; a canary is never "
                 "used legitimately, so treat its planted locations as compromised."),
        # "canary" is the usage canary detector's discriminator: same alert id semantics
        evidence={"canary": canary.identifier, "canary_id": canary.id, "kind": canary.kind.value,
                  "planted": ", ".join(p.spec for p in canary.planted), **evidence},
        first_seen=first,
        last_seen=last or first,
    )
