"""The Reporter contract and the REPORTERS registry; one module per output format.

A reporter is a pure function of a :class:`Report` to text, so golden-file tests are
trivial and the CLI decides where the text goes (``--output``). Reports carry metadata and
fingerprints only; there is no secret value anywhere in a Report to leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol

from keyguard.model import Finding, Inventory, KeyChange, Severity
from keyguard.registry import Registry

if TYPE_CHECKING:
    from keyguard.policies import RuleMeta

#: Version of the JSON report object; bump it (and ship a new schema) on breaking changes.
SCHEMA_VERSION = 1
#: Version of the ``keyguard check`` JSON object (schemas/check.schema.json).
CHECK_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Report:
    """What one command run has to say.

    ``changes`` is set only for ``inventory --diff``; ``first_seen`` comes from the state
    database (identity -> first time any run saw that key copy). ``now`` anchors ages.
    """

    inventory: Inventory
    now: datetime
    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    changes: tuple[KeyChange, ...] | None = None
    previous_snapshot: datetime | None = None
    #: Set by ``keyguard check``: the findings that remain after waivers and baseline.
    findings: tuple[Finding, ...] | None = None
    #: The rule catalogue (id -> metadata) for SARIF ``rules[]``, help text and remediation.
    rules: Mapping[str, RuleMeta] = field(default_factory=dict)
    #: Findings a waiver or the baseline accepted: counted in summaries, not failures.
    waived: tuple[Finding, ...] = ()
    baselined: tuple[Finding, ...] = ()
    #: The gate threshold (``--fail-on``); findings at or above it fail the run.
    fail_on: Severity = Severity.HIGH


class Reporter(Protocol):
    """Renders a Report in one format."""

    #: Format name (module name); it is what ``--format`` accepts.
    name: ClassVar[str]
    #: True when the output is meant for machines (no summary line is mixed in).
    machine: ClassVar[bool]

    def render(self, report: Report) -> str:
        """The full report text, newline-terminated."""
        ...


REPORTERS: Registry[Reporter] = Registry(__name__, __path__, "keyguard.reporters", "format")


def age_days(then: datetime | None, now: datetime) -> int | None:
    """Whole days from ``then`` to ``now`` (None when unknown)."""
    if then is None:
        return None
    return max(0, (now - then).days)
