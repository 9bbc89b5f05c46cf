"""Rotators: one module per key type; each plans (pure) and runs idempotent steps.

A rotator is named after the source that lists the keys it rotates (``aws_iam.py``
rotates what source ``aws-iam`` lists), which is how a finished rotation's old key is
found again for deletion after the grace period. The runner (``apply.py``) owns the
journal and the order; a rotator only knows how to run, or undo, one step.

Steps must be idempotent (re-running a finished step changes nothing) because a crash
between a step and its journal line makes ``resume`` run it again. Facts a step returns
are public (key ids, version ids, fingerprints) and go into the journal; secrets stay in
the run's :class:`~keyguard.rotation.context.Scratch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from keyguard.model import KeyRecord
from keyguard.registry import Registry
from keyguard.rotation.context import RotationContext, Scratch
from keyguard.rotation.plan import RotationItem, Skipped, StoreCopy


@dataclass(frozen=True, slots=True)
class StepState:
    """What a step sees: journaled facts so far, the run's secrets, and a way to journal now."""

    facts: Mapping[str, str]
    scratch: Scratch
    #: Journal facts immediately (before a side effect whose undo needs them).
    note: Callable[[Mapping[str, str]], None]
    started: Sequence[str] = ()


class Rotator(Protocol):
    """Create, store, verify and revoke one kind of key."""

    name: ClassVar[str]
    #: Steps after which a failure must not roll back (the new key is in use, or the
    #: provider disabled the old one when it issued the new: LiteLLM regenerate).
    final_steps: ClassVar[frozenset[str]]

    def __init__(self, ctx: RotationContext) -> None: ...

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Whether this rotator rotates ``key`` (pure)."""
        ...

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """The ordered steps for ``key`` (pure), or why it cannot be rotated."""
        ...

    @classmethod
    def resume_forward(cls, item: RotationItem, done: frozenset[str]) -> bool:
        """After a crash: finish (True) or roll back (False), given the finished steps."""
        ...

    def run(self, item: RotationItem, step: str, state: StepState) -> Mapping[str, str]:
        """Run one step; returns public facts. Raises StepFailed on an expected failure."""
        ...

    def rollback(self, item: RotationItem, state: StepState) -> None:
        """Undo whatever the journaled facts say happened; idempotent."""
        ...


ROTATORS: Registry[Rotator] = Registry(__name__, __path__, "keyguard.rotators", "rotator")

#: Order in which rotators are asked to claim a key and its copies: provider-side keys
#: first, so a Secrets Manager copy of an IAM key is rotated through IAM (and a stored copy
#: of a LiteLLM, Anthropic or OpenAI key through that provider's rotator).
ORDER: tuple[str, ...] = ("aws-iam", "litellm", "anthropic", "openai", "aws-secretsmanager")
