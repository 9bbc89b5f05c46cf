"""Append-only JSONL rotation journal: every step is recorded before and after it runs.

Each line is one event, written with ``O_APPEND`` and fsync'd before the step it
announces starts, so after a crash (even SIGKILL) the journal says exactly which steps
finished, which one was running, and what public facts each produced (key ids, store
versions). That is all ``resume`` needs; it never needs a source option or a secret.

The journal never holds a secret value: facts are public identifiers, and every line
passes ``guard`` (which the runner wires to the in-memory secrets of the run) before it
is written. A line torn by a crash mid-write is the last line and is ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from keyguard.errors import KeyguardError
from keyguard.rotation.plan import Completed, RotationItem, item_from_dict, item_to_dict

JOURNAL_VERSION = 1
TERMINAL = frozenset({"done", "rolled-back"})


class JournalError(KeyguardError):
    """The journal is unreadable or would have recorded a secret (exit 2)."""


@dataclass(slots=True)
class TokenState:
    """What the journal knows about one idempotency token (its latest attempt)."""

    token: str
    item: RotationItem
    attempt: int
    status: str  # in-progress | done | rolled-back
    done_steps: list[str] = field(default_factory=list)
    started_steps: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    began: datetime | None = None
    finished: datetime | None = None
    message: str = ""
    rolling_back: bool = False

    @property
    def interrupted_step(self) -> str | None:
        """The step that started and never finished (where the run died), if any."""
        pending = [s for s in self.started_steps if s not in self.done_steps]
        return pending[-1] if pending else None


def _check_event(event: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``event`` has the fields :meth:`Journal.states` reads.

    Why: a line that is valid JSON but hand-edited or rotted (``at`` missing, ``facts`` a
    list) must be a corrupt line naming ``file:line``, not a KeyError deep in the fold.
    """
    at = event.get("at")
    if not isinstance(at, str) or datetime.fromisoformat(at).tzinfo is None:
        raise ValueError("'at' is not a timestamp with a zone")
    for key in ("token", "event", "step", "message"):
        if key in event and not isinstance(event[key], str):
            raise ValueError(f"{key!r} is not a string")
    if not isinstance(event.get("event"), str):
        raise ValueError("'event' is missing")
    facts = event.get("facts")
    if facts is not None and not isinstance(facts, dict):
        raise ValueError("'facts' is not an object")
    if event["event"] == "begin" and not isinstance(event.get("item"), dict):
        raise ValueError("'begin' without an item")


class Journal:
    """The journal file of one installation (``<data dir>/rotation/journal.jsonl``)."""

    def __init__(self, path: Path, guard: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.guard = guard

    def append(self, at: datetime, token: str, event: str, *, run: str = "", step: str = "",
               facts: Mapping[str, str] | None = None, item: RotationItem | None = None,
               message: str = "") -> None:
        """Write one event and fsync it before returning.

        Raises:
            JournalError: ``guard`` found a secret in the line (nothing is written).

        """
        record: dict[str, Any] = {"v": JOURNAL_VERSION, "at": at.isoformat(), "run": run,
                                  "token": token, "event": event}
        if step:
            record["step"] = step
        if facts:
            record["facts"] = {str(k): str(v) for k, v in facts.items()}
        if item is not None:
            record["item"] = item_to_dict(item)
        if message:
            record["message"] = message
        line = json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n"
        if self.guard is not None:
            self.guard(line)
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the new directory entry must survive a crash too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every intact event in order; a torn last line (crash mid-write) is skipped."""
        if not self.path.exists():
            return
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise JournalError(f"{self.path}: cannot read the rotation journal ({exc})") from None
        last = len(lines) - 1
        for n, text in enumerate(lines):
            if not text.strip():
                continue
            try:
                event = json.loads(text)
                if not isinstance(event, dict) or event.get("v") != JOURNAL_VERSION:
                    raise ValueError("not a version 1 journal event")
                _check_event(event)
            except ValueError as exc:
                if n == last:  # no trailing newline: the write was torn by a crash
                    continue
                raise JournalError(f"{self.path}:{n + 1}: corrupt journal line ({exc})",
                                   "move the file aside only after checking the stores by hand"
                                   ) from None
            yield event

    def states(self) -> dict[str, TokenState]:
        """Fold the events into one state per token (the latest attempt wins)."""
        out: dict[str, TokenState] = {}
        for ev in self.events():
            token = str(ev.get("token", ""))
            kind = ev.get("event")
            at = datetime.fromisoformat(str(ev["at"]))
            if kind == "begin":
                prev = out.get(token)
                item = item_from_dict(ev["item"], f"{self.path}: token {token}")
                out[token] = TokenState(token, item, (prev.attempt + 1) if prev else 1,
                                        "in-progress", began=at)
                continue
            state = out.get(token)
            if state is None:
                continue
            facts = ev.get("facts") or {}
            state.facts.update({str(k): str(v) for k, v in facts.items()})
            step = str(ev.get("step", ""))
            if kind == "step-start":
                state.started_steps.append(step)
            elif kind == "step-done":
                state.done_steps.append(step)
            elif kind == "rollback-start":
                state.rolling_back = True
            elif kind in TERMINAL:
                state.status = str(kind)
                state.finished = at
                state.message = str(ev.get("message", ""))
            elif kind == "cleaned":
                state.facts["cleaned"] = "true"
        return out

    def incomplete(self) -> list[TokenState]:
        """Rotations that started and neither finished nor rolled back, oldest first."""
        return sorted((s for s in self.states().values() if s.status == "in-progress"),
                      key=lambda s: (s.began.isoformat() if s.began else "", s.token))

    def completed(self) -> list[Completed]:
        """Finished rotations whose old key has not been deleted yet (input to planning)."""
        states = self.states()
        deleted = {s.item.params.get("rotation") for s in states.values()
                   if s.item.action == "cleanup" and s.status == "done"}
        return [Completed(token=s.token, rotator=s.item.rotator, subject=s.item.subject,
                          principal=s.item.principal, old_key_id=s.facts["old_key_id"],
                          finished=s.finished, account=s.item.account)
                for s in states.values()
                if s.item.action == "rotate" and s.status == "done" and s.finished is not None
                and s.token not in deleted and s.facts.get("old_key_id")]
