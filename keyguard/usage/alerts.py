"""Alert identity and naming for reports: stable alert ids, report type names, severity filter.

Why stable ids: the same anomaly is seen by more than one run (a ``--since`` rescan, a
daily run over an export that overlaps yesterday's), and the notify ledger, SARIF
``partialFingerprints`` and a consumer deduplicating the JSON report must all recognise
it. The id therefore hashes only what identifies the anomaly, not what a run happens to
see of it:

    ``ua1:`` + first 20 hex digits of sha256(``type|key|discriminator|day``)

* ``type``: the report type (``prompt_mix``, never ``prompt-mix``: one spelling);
* ``key``: the key id as it appears in the export (``Alert.subject``);
* ``discriminator``: the evidence values that tell two alerts of one type on one key
  apart (geography: ``country``; canary: the ``canary`` identifier; velocity:
  ``reason`` and ``metric``; prompt_mix and coordination: none, they raise at most one
  alert per key and day); see :data:`DISCRIMINATORS`. Counts, IPs and the end time are left out because they
  grow as more of the same anomaly is seen;
* ``day``: the UTC date of the alert's start. A day (not the hour) because a rescan's
  window can start the grouping a little earlier or later within the same day, while a
  new day's use of a compromised key is worth a new notification.

The ``ua1`` prefix is the version: changing any of the above means ``ua2``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from keyguard.model import Alert, Severity

ALERT_ID_VERSION = "ua1"
#: Evidence keys that discriminate alerts of one type on one key, by report type.
DISCRIMINATORS: dict[str, tuple[str, ...]] = {
    "canary": ("canary",),
    "geography": ("country",),
    "velocity": ("reason", "metric"),  # spike / plateau / ramp / rotation, per metric
    # One alert per key and day whose reasons vary with what the window saw: none.
    "prompt_mix": (),
    # One alert per member key per campaign; group_id hashes the members, which grow as
    # a rescan sees more of the campaign, so it would split one anomaly in two: none.
    "coordination": (),
}
#: Discriminators tried, in order, for a type not listed above (third-party detectors).
FALLBACK_DISCRIMINATORS = ("group", "reason", "kind", "country")


def report_type(rule_id: str) -> str:
    """The alert type as reports spell it: the detector id with ``-`` as ``_`` (``prompt_mix``)."""
    return rule_id.replace("-", "_")


def detector_id(name: str) -> str:
    """The detector id for a user-written type name: ``prompt_mix`` and ``prompt-mix`` agree."""
    return name.strip().replace("_", "-")


def alert_id(alert: Alert) -> str:
    """The stable id of an alert (``ua1:<20 hex>``); see the module docstring."""
    kind = report_type(alert.rule_id)
    names = DISCRIMINATORS.get(kind, FALLBACK_DISCRIMINATORS)
    parts = [f"{n}={alert.evidence[n]}" for n in names if n in alert.evidence]
    if kind not in DISCRIMINATORS:
        parts = parts[:1]
    day = alert.first_seen.astimezone(UTC).date().isoformat() if alert.first_seen else ""
    text = "|".join((kind, alert.subject, ";".join(parts), day))
    return f"{ALERT_ID_VERSION}:{hashlib.sha256(text.encode()).hexdigest()[:20]}"


@dataclass(frozen=True, slots=True)
class SeverityCut:
    """Alerts split by ``--min-severity``: the shown ones and how many fell below."""

    shown: tuple[Alert, ...]
    below: int


def at_least(alerts: Iterable[Alert], minimum: Severity) -> SeverityCut:
    """Keep alerts at or above ``minimum``; the rest are only counted (stats.below_min_severity)."""
    shown: list[Alert] = []
    below = 0
    for alert in alerts:
        if alert.severity >= minimum:
            shown.append(alert)
        else:
            below += 1
    return SeverityCut(tuple(shown), below)


def sort_key(alert: Alert) -> tuple[int, str, str, str]:
    """Report order: most severe first, then key, start and type (stable across runs)."""
    start = alert.first_seen.isoformat() if alert.first_seen else ""
    return (-int(alert.severity), alert.subject, start, alert.rule_id)
