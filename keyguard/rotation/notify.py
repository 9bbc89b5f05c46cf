"""Rotation notifications through the same webhooks as usage alerts (``--notify``).

The payload is built here (pure); delivery reuses :mod:`keyguard.usage.notify` (URL kept in
a Secret, no redirects, bounded retries, only the host in messages). Slack-style hooks
get ``{"text"}``; any other host gets ``{"source", "kind": "rotation", "run", "text",
"outcomes"}`` where each outcome is the JSON report's object. Outcomes carry key ids and
messages, never a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from keyguard.rotation.apply import Outcome

_ICON = {"done": "OK", "rolled-back": "ROLLED BACK", "stopped": "STOPPED", "skipped": "skipped",
         "not-run": "not run"}


def outcome_dict(o: Outcome) -> dict[str, object]:
    """One outcome as the JSON report shows it."""
    return {"token": o.token, "action": o.action, "rotator": o.rotator, "subject": o.subject,
            "key": o.name, "status": o.status, "message": o.message, "facts": dict(o.facts)}


def text(outcomes: Sequence[Outcome], run_id: str) -> str:
    """A short human summary: counts, then one line per rotation that did something."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    head = f"keyguard rotation run {run_id}: " + ", ".join(
        f"{n} {s}" for s, n in sorted(counts.items()))
    lines = [f"{_ICON.get(o.status, o.status)}: {o.action} {o.name}: {o.message}"
             for o in outcomes if o.status != "skipped"]
    more = [f"... and {len(lines) - 20} more"] if len(lines) > 20 else []
    return "\n".join([head, *lines[:20], *more])


def payload(style: Literal["slack", "json"], outcomes: Sequence[Outcome], run_id: str) -> bytes:
    """The webhook body for this run."""
    summary = text(outcomes, run_id)
    if style == "slack":
        return json.dumps({"text": summary}).encode()
    return json.dumps({"source": "keyguard", "kind": "rotation", "run": run_id, "text": summary,
                       "outcomes": [outcome_dict(o) for o in outcomes]}).encode()
