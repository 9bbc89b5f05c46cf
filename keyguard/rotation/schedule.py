"""Which keys are due: policy findings of the rotation rules, narrowed by ``--select``.

Due-ness is the policy's call (``rotation-max-age``, ``rotation-overdue``), so ``keyguard
check`` and ``keyguard rotate`` never disagree about what is overdue; waivers apply to
both because both read the engine's remaining findings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from keyguard.errors import UsageError
from keyguard.model import Finding, KeyRecord

#: Rules whose findings make a key due for rotation.
ROTATION_RULES = ("rotation-max-age", "rotation-overdue")

_FIELDS = ("source", "name", "provider", "kind", "owner", "environment", "account", "region",
           "key_id", "location", "identity")
_ALIASES = {"env": "environment", "key-id": "key_id", "id": "key_id"}
_TERM = re.compile(r"^\s*(tag:[^=!~]+|[a-z_-]+)\s*(!=|=|~)\s*(.*?)\s*$")


def due_keys(findings: Iterable[Finding]) -> dict[str, str]:
    """Identity of each due key copy -> why (``rule-id: message``), first rule wins."""
    due: dict[str, str] = {}
    for finding in findings:
        if finding.rule_id in ROTATION_RULES and finding.key is not None:
            due.setdefault(finding.key.identity, f"{finding.rule_id}: {finding.message}")
    return due


def load_alerted(paths: Iterable[Path]) -> dict[str, str]:
    """Keys named in ``keyguard usage scan --format json`` reports -> why (alert type, id).

    A key under an open usage alert may be in an attacker's hands; rotating it blindly
    can also break the investigation (the old key's use is evidence). Such keys are
    rotated only with ``--approve``. Keys are matched by the export's key id (an AWS
    access key id, a LiteLLM token hash...) and by alias.

    Raises:
        UsageError: a file is missing or is not a usage scan JSON report.

    """
    alerted: dict[str, str] = {}
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read the usage report ({type(exc).__name__})",
                             "pass the JSON written by `keyguard usage scan --format json`") from None
        alerts = doc.get("alerts") if isinstance(doc, dict) else None
        if not isinstance(alerts, list) or doc.get("schema_version") != 1:
            raise UsageError(f"{path}: not a keyguard usage scan JSON report (schema_version 1)",
                             "pass the JSON written by `keyguard usage scan --format json`")
        for alert in alerts:
            if not isinstance(alert, dict):
                continue
            why = f"usage alert {alert.get('type', '?')} {alert.get('id', '')}".strip()
            for name in (alert.get("key"), alert.get("key_alias")):
                if isinstance(name, str) and name:
                    alerted.setdefault(name, why)
    return alerted


def parse_select(expr: str) -> Callable[[KeyRecord], bool]:
    """Compile ``--select``: comma-separated ``field=value``, ``field!=value``, ``field~regex``.

    Every term must hold (AND). Fields: source, name, provider, kind, owner, environment
    (env), account, region, key_id, location, identity and ``tag:NAME``. ``=`` compares
    case-insensitively; ``~`` is a regular-expression search.

    Raises:
        UsageError: an unknown field, a missing operator or a bad regular expression.

    """
    terms: list[tuple[str, Literal["=", "!=", "~"], str, re.Pattern[str] | None]] = []
    for raw in (t for t in expr.split(",") if t.strip()):
        found = _TERM.match(raw)
        if found is None:
            raise UsageError(f"--select: cannot parse {raw.strip()!r}",
                             "write field=value, field!=value or field~regex, comma-separated")
        name, op, value = found.group(1), found.group(2), found.group(3)
        name = _ALIASES.get(name, name)
        if not name.startswith("tag:") and name not in _FIELDS:
            raise UsageError(f"--select: unknown field {name!r}",
                             f"choose from: {', '.join(_FIELDS)}, tag:NAME")
        pattern = None
        if op == "~":
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise UsageError(f"--select: bad regular expression {value!r} ({exc})") from None
        terms.append((name, op, value, pattern))  # type: ignore[arg-type]
    if not terms:
        raise UsageError("--select: empty expression", "e.g. --select 'owner=payments,env=prod'")

    def matches(record: KeyRecord) -> bool:
        for name, op, value, pattern in terms:
            actual = (record.tags.get(name[4:]) if name.startswith("tag:")
                      else getattr(record, name))
            text = "" if actual is None else str(actual)
            if op == "~":
                ok = pattern is not None and pattern.search(text) is not None
            else:
                ok = (text.lower() == value.lower()) == (op == "=")
            if not ok:
                return False
        return True

    return matches
