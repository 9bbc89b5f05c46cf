"""The Source contract and the SOURCES registry; one public module per store.

A source is a read-only view of one store. It yields :class:`KeyRecord` for every key it
finds and :class:`SourceFailure` for every region, profile or file it could not read, and
carries on: one broken region never hides the others. Sources don't judge (that is the
policies' job) and never return a secret value: when ``inspect_values`` is on they pass
values straight to :func:`keyguard.classify.inspect_value` inside a
:class:`keyguard.secret.Secret`.

This module is import-light on purpose: listing source names for ``--help`` and shell
completion imports no plugin module (and so no boto3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from keyguard.config import Config
from keyguard.fingerprint import Fingerprinter
from keyguard.model import KeyRecord, SourceFailure
from keyguard.registry import Registry

#: Progress callback: (source name, short message such as "us-east-1: 340 secrets").
Progress = Callable[[str, str], None]


def _no_progress(source: str, message: str) -> None:
    """Default progress sink: discard."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """Everything a source may use; sources read no environment of their own beyond this.

    ``regions`` is the command-line override (``--region``); empty means the config's
    regions, then the AWS defaults. ``now`` is the run's clock, passed in so tests and
    snapshots agree.
    """

    config: Config
    fingerprinter: Fingerprinter
    now: datetime
    inspect_values: bool = False
    regions: tuple[str, ...] = ()
    progress: Progress = field(default=_no_progress)


class Source(Protocol):
    """Read-only view of one store: metadata and fingerprints, never a secret value."""

    #: Plugin name (module name with "-"); it keys baselines and state, so never rename.
    name: ClassVar[str]
    #: One line for ``keyguard plugins`` and ``--help``.
    description: ClassVar[str]

    def __init__(self, ctx: SourceContext) -> None: ...

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield every key found and every part of the store that failed."""
        ...


SOURCES: Registry[Source] = Registry(__name__, __path__, "keyguard.sources", "source")
