"""What rotators and store writers get from the CLI: config, fingerprinter, clock, sleep.

Below ``cli/`` nothing reads the environment or the clock by itself; this record carries
them in, so tests pass a fixed clock and a no-op sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from keyguard.config import Config
from keyguard.errors import KeyguardError
from keyguard.fingerprint import Fingerprinter
from keyguard.secret import Secret


class StepFailed(Exception):
    """A rotation step failed in an expected way; the runner rolls back or stops.

    The message names the step, the location and the API error code, never a value.
    """


@dataclass(frozen=True, slots=True)
class RotationContext:
    """Shared, read-only inputs of one rotation run."""

    config: Config
    fingerprinter: Fingerprinter
    now: Callable[[], datetime]
    sleep: Callable[[float], None] = field(default=time.sleep)
    #: How long a new key may take to start working (IAM is eventually consistent), seconds.
    verify_timeout: float = 30.0
    #: boto3 clients of this run by (service, region); creating one costs ~50 ms.
    clients: dict[tuple[str, str], object] = field(default_factory=dict)


class Scratch:
    """In-memory secrets of one run (the new key, values read back); never written anywhere.

    The journal's guard calls :meth:`check` on every line, so a secret that reaches a fact
    by mistake stops the write instead of landing on disk.
    """

    __slots__ = ("_values", "_watched")

    def __init__(self) -> None:
        self._values: dict[str, object] = {}
        self._watched: list[str] = []

    def put(self, name: str, value: Secret) -> None:
        """Keep ``value`` under ``name`` for later steps of the same run."""
        self._values[name] = value
        self.watch(value)

    def get(self, name: str) -> Secret | None:
        """The secret stored under ``name``, if this run has it."""
        got = self._values.get(name)
        return got if isinstance(got, Secret) else None

    def watch(self, value: Secret) -> None:
        """Make ``check`` refuse any text containing ``value`` (short values are ignored)."""
        text = value.reveal().strip()
        if len(text) >= 8 and text not in self._watched:
            self._watched.append(text)

    def check(self, line: str) -> None:
        """Raise when ``line`` contains a watched secret."""
        if any(w in line for w in self._watched):
            raise LeakRefused("a journal line would have contained a secret value; "
                              "nothing was written")


class LeakRefused(KeyguardError):
    """A secret was about to be written to the journal or a report."""
