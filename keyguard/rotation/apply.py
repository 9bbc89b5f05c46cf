"""Runs rotation items one step at a time, journaling before and after every step.

Per item: ``begin`` (the whole item, so resume needs nothing else), then for each step
``step-start``, the step, ``step-done`` with its public facts. A failing step rolls the
rotation back (``rollback-start`` ... ``rolled-back``) unless it is one of the rotator's
final steps (past the point of rollback: the new key is in use, or the provider
already disabled the old one), in which case the rotation stays
open for ``resume`` and the run stops. An unexpected error also stops the run: the
journal keeps the resume point, and nothing after it runs (exit 4).

``boundary`` is called after every journal line; the CLI uses it for fault injection in
tests (SIGKILL at the N-th boundary) and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from keyguard.errors import KeyguardError
from keyguard.registry import Registry
from keyguard.rotation.context import RotationContext, Scratch, StepFailed
from keyguard.rotation.hooks import run_hooks
from keyguard.rotation.journal import Journal, TokenState
from keyguard.rotation.plan import HOOK_STEP, RotationItem, RotationPlan
from keyguard.rotation.rotators import ROTATORS, Rotator, StepState

log = logging.getLogger(__name__)

Status = Literal["done", "rolled-back", "stopped", "skipped", "not-run"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one item in this run."""

    token: str
    action: str
    rotator: str
    subject: str
    name: str
    status: Status
    message: str = ""
    facts: Mapping[str, str] = field(default_factory=dict)


class Runner:
    """Applies plans and resumes interrupted rotations against one journal."""

    def __init__(self, ctx: RotationContext, journal: Journal, run_id: str, scratch: Scratch,
                 registry: Registry[Rotator] = ROTATORS,
                 boundary: Callable[[], None] | None = None) -> None:
        self._ctx = ctx
        self._journal = journal
        self._run = run_id
        self._scratch = scratch
        self._registry = registry
        self._boundary = boundary or (lambda: None)

    def _log(self, token: str, event: str, **kwargs: object) -> None:
        self._journal.append(self._ctx.now(), token, event, run=self._run, **kwargs)  # type: ignore[arg-type]
        self._boundary()

    # -- apply ---------------------------------------------------------------------------------

    def apply(self, plan: RotationPlan) -> list[Outcome]:
        """Run every item in order; stop at the first item that cannot be settled."""
        states = self._journal.states()
        out: list[Outcome] = []
        stopped = False
        for item in plan.items:
            if stopped:
                out.append(_outcome(item, "not-run", "an earlier rotation stopped the run"))
                continue
            known = states.get(item.token)
            if known is not None and known.status == "done":
                out.append(_outcome(item, "skipped", f"already done at {known.finished} "
                                    "(same idempotency token in the journal)"))
                continue
            if known is not None and known.status == "in-progress":
                out.append(_outcome(item, "stopped", "an earlier run was interrupted here; "
                                    "run `keyguard rotate resume`"))
                stopped = True
                continue
            result = self._start(item)
            out.append(result)
            stopped = result.status == "stopped"
        return out

    def _start(self, item: RotationItem) -> Outcome:
        try:
            rotator = self._registry.load(item.rotator)(self._ctx)
        except KeyguardError as exc:
            return _outcome(item, "skipped", str(exc))
        self._log(item.token, "begin", item=item)
        return self._forward(rotator, item, {}, [], [])

    def _forward(self, rotator: Rotator, item: RotationItem, facts: dict[str, str],
                 done: Sequence[str], started: list[str]) -> Outcome:
        for step in item.steps:
            if step in done:
                continue
            self._log(item.token, "step-start", step=step)
            started.append(step)

            def note(new: Mapping[str, str], step: str = step) -> None:
                facts.update(new)
                self._log(item.token, "note", step=step, facts=new)

            state = StepState(facts=facts, scratch=self._scratch, note=note, started=started)
            try:
                got = (run_hooks(item, facts) if step == HOOK_STEP
                       else rotator.run(item, step, state))
            except (StepFailed, KeyguardError) as exc:
                return self._failed(rotator, item, step, str(exc), facts, started)
            except Exception as exc:
                log.debug("rotator %s crashed in %s", item.rotator, step, exc_info=True)
                return self._failed(rotator, item, step,
                                    f"{step}: internal error ({type(exc).__name__})", facts, started)
            facts.update(got)
            self._log(item.token, "step-done", step=step, facts=got)
        summary: dict[str, str] = {k: facts[k] for k in ("old_key_id", "new_key_id") if k in facts}
        self._log(item.token, "done", facts=summary)
        return _outcome(item, "done", "rotated" if item.action == "rotate" else "old key deleted",
                        summary)

    def _failed(self, rotator: Rotator, item: RotationItem, step: str, message: str,
                facts: dict[str, str], started: list[str]) -> Outcome:
        self._log(item.token, "step-failed", step=step, message=message)
        if step in rotator.final_steps:
            if item.action == "cleanup":
                self._log(item.token, "rolled-back", message=message)
                return _outcome(item, "rolled-back", message)
            return _outcome(item, "stopped", f"{message}; past the point of rollback (the new "
                            "key is already in use or the old one is gone), run "
                            "`keyguard rotate resume` to finish")
        return self._rollback(rotator, item, facts, started, message)

    def _rollback(self, rotator: Rotator, item: RotationItem, facts: dict[str, str],
                  started: Sequence[str], reason: str) -> Outcome:
        self._log(item.token, "rollback-start", message=reason)
        state = StepState(facts=facts, scratch=self._scratch, note=lambda _f: None,
                          started=started)
        try:
            rotator.rollback(item, state)
        except (StepFailed, KeyguardError) as exc:
            return _outcome(item, "stopped", f"{reason}; rollback failed too ({exc}); "
                            "run `keyguard rotate resume` to retry")
        except Exception as exc:
            log.debug("rotator %s crashed in rollback", item.rotator, exc_info=True)
            return _outcome(item, "stopped", f"{reason}; rollback failed "
                            f"({type(exc).__name__}); run `keyguard rotate resume` to retry")
        self._log(item.token, "rolled-back", message=reason)
        return _outcome(item, "rolled-back", f"rolled back: {reason}")

    # -- resume --------------------------------------------------------------------------------

    def resume(self) -> list[Outcome]:
        """Finish or roll back every interrupted rotation, oldest first."""
        return [self.resume_one(state) for state in self._journal.incomplete()]

    def resume_one(self, state: TokenState) -> Outcome:
        """Settle one interrupted rotation using only what the journal recorded."""
        item = state.item
        try:
            rotator = self._registry.load(item.rotator)(self._ctx)
        except KeyguardError as exc:
            return _outcome(item, "stopped", str(exc))
        where = state.interrupted_step or (state.done_steps[-1] if state.done_steps else "begin")
        facts = dict(state.facts)
        started = list(state.started_steps)
        self._log(item.token, "resume", message=f"interrupted at {where}")
        if state.rolling_back or not rotator.resume_forward(item, frozenset(state.done_steps)):
            return self._rollback(rotator, item, facts, started, f"interrupted at {where}")
        return self._forward(rotator, item, facts, state.done_steps, started)


def _outcome(item: RotationItem, status: Status, message: str,
             facts: Mapping[str, str] | None = None) -> Outcome:
    return Outcome(token=item.token, action=item.action, rotator=item.rotator,
                   subject=item.subject, name=item.name, status=status, message=message,
                   facts=dict(facts or {}))
