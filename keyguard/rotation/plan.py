"""Pure planning: due keys plus the inventory become an ordered, deterministic RotationPlan.

Same inputs, same plan: no clock, no I/O, items sorted by subject, and each item's
idempotency token derived from what the key *is* (rotator, subject, public key id), so
re-planning the same key gives the same token and the journal can tell "already done".
A plan is a reviewable JSON file (``rotate plan --out``) that ``rotate apply`` executes.
It never holds a secret value: copies are named by location, field and fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from keyguard.errors import UsageError
from keyguard.model import KeyRecord, KeyStatus

PLAN_VERSION = 1
#: The consumer-hooks step, run by the runner itself (see hooks.py), never by a rotator.
HOOK_STEP = "hooks"

Action = Literal["rotate", "cleanup"]


@dataclass(frozen=True, slots=True)
class StoreCopy:
    """One store location holding the key that will be rewritten with the new one."""

    store: str  # source name: aws-secretsmanager, aws-ssm...
    location: str  # ARN (or the store's own address)
    name: str
    region: str | None = None
    field: str | None = None  # JSON path / variable inside the value; None = whole value
    fingerprint: str | None = None  # of the old secret in this copy, when it was inspected


@dataclass(frozen=True, slots=True)
class RotationItem:
    """One key to rotate (or one old key to delete after its grace period)."""

    token: str
    action: Action
    rotator: str
    subject: str  # KeyRecord.identity of the provider-side key
    name: str
    key_id: str | None
    principal: str  # rotator handle: the IAM user name, the LiteLLM key alias...
    reason: str
    steps: tuple[str, ...]
    copies: tuple[StoreCopy, ...] = ()
    risk: str = "low"
    account: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)  # public, rotator-specific


@dataclass(frozen=True, slots=True)
class Skipped:
    """A due key keyguard will not rotate, and why (shown in the plan, never silent)."""

    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class RotationPlan:
    """Everything one ``apply`` will do, in order."""

    created: datetime
    grace_days: int
    items: tuple[RotationItem, ...]
    skipped: tuple[Skipped, ...] = ()
    deferred: tuple[str, ...] = ()  # subjects left for a later run by --max-keys
    version: int = PLAN_VERSION

    @property
    def plan_id(self) -> str:
        """Content hash of the plan, shown to reviewers and written to the journal."""
        body = json.dumps(plan_to_dict(self, with_id=False), sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished rotation from the journal whose old key still awaits deletion."""

    token: str
    rotator: str
    subject: str
    principal: str
    old_key_id: str
    finished: datetime
    account: str | None = None


#: Decides whether a rotator takes a record and builds its item; see rotators/__init__.py.
Planner = Callable[[KeyRecord, Sequence[StoreCopy], Sequence[KeyRecord], str, str],
                   RotationItem | Skipped]


def item_token(rotator: str, subject: str, key_id: str | None, action: Action = "rotate") -> str:
    """Deterministic idempotency token for one key: same key, same token."""
    digest = hashlib.sha256(f"{action}|{rotator}|{subject}|{key_id or ''}".encode()).hexdigest()
    return f"{'rot' if action == 'rotate' else 'del'}-{digest[:20]}"


def copies_of(key: KeyRecord, keys: Sequence[KeyRecord]) -> list[KeyRecord]:
    """Every other record holding the same key: linked by public key id, fingerprint or link.

    Links are followed to a fixed point: a JSON secret that pairs the key id with the
    secret ties the IAM key (id only) to the secret's fingerprint, which in turn finds a
    plain copy of the secret alone (no id) in another store.
    """
    ids = {key.key_id} if key.key_id else set()
    fingerprints = {key.fingerprint} if key.fingerprint else set()
    # provider handles (Anthropic hint, OpenAI redacted value, LiteLLM token hash), as keyed
    # fingerprints: how a provider's key record meets the stored copies of its value
    links = set(key.links)
    found: dict[str, KeyRecord] = {}
    grew = True
    while grew:
        grew = False
        for rec in keys:
            if rec.identity == key.identity or rec.identity in found:
                continue
            if ((rec.key_id and rec.key_id in ids)
                    or (rec.fingerprint and rec.fingerprint in fingerprints)
                    or links.intersection(rec.links)):
                found[rec.identity] = rec
                ids.update({rec.key_id} if rec.key_id else set())
                fingerprints.update({rec.fingerprint} if rec.fingerprint else set())
                links.update(rec.links)
                grew = True
    return sorted(found.values(), key=lambda r: r.identity)


def as_copy(rec: KeyRecord) -> StoreCopy:
    """The plan's view of a stored copy (no value, only where and which field)."""
    return StoreCopy(store=rec.source, location=rec.location, name=rec.name, region=rec.region,
                     field=rec.field, fingerprint=rec.fingerprint)


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """Everything :func:`build_plan` reads; all of it comes in as arguments."""

    keys: Sequence[KeyRecord]
    due: Mapping[str, str]  # identity of a due record -> reason
    planners: Sequence[tuple[str, Callable[[KeyRecord], bool], Planner]]
    writable_stores: frozenset[str]
    completed: Sequence[Completed] = ()
    now: datetime | None = None
    grace_days: int = 7
    max_keys: int | None = None
    select: Callable[[KeyRecord], bool] | None = None
    #: Consumer hooks of a key as the item's ``hooks`` parameter (JSON), None when none match.
    hooks_for: Callable[[KeyRecord], str | None] | None = None
    #: Key ids / aliases named in open usage alerts -> why; held back unless ``approve``.
    alerted: Mapping[str, str] = field(default_factory=dict)
    approve: bool = False


def build_plan(inputs: PlanInputs) -> RotationPlan:
    """Turn due records into rotation items, plus deletions of old keys whose grace ended.

    A due *copy* (a Secrets Manager secret holding an IAM key) is rotated through the key
    it copies: the first record, in rotator order, that a rotator claims among the due
    record and its copies. A key with a copy in a store keyguard cannot write is skipped,
    because rotating it would strand that consumer on a disabled key.
    """
    if inputs.now is None:
        raise ValueError("build_plan needs now")
    by_identity = {k.identity: k for k in inputs.keys}
    items: dict[str, RotationItem] = {}
    skipped: dict[str, Skipped] = {}
    for identity in sorted(inputs.due):
        record = by_identity.get(identity)
        if record is None:
            continue
        if inputs.select is not None and not inputs.select(record):
            continue
        chosen = _primary(record, inputs)
        if chosen is None:
            skipped.setdefault(identity, Skipped(identity, "no rotator handles this key "
                                                 f"({record.source}, {record.kind})"))
            continue
        rotator, primary, planner = chosen
        if primary.identity in items:
            continue
        # NOTE: a copy in a secret scheduled for deletion has no consumer and cannot be
        # written (Secrets Manager refuses): it must not block the rotation forever.
        copies = [c for c in copies_of(primary, inputs.keys) if c.status is not KeyStatus.DELETED]
        stuck = sorted({c.source for c in copies if c.source not in inputs.writable_stores})
        if stuck:
            skipped[primary.identity] = Skipped(
                primary.identity, f"a copy lives in {', '.join(stuck)}, which keyguard cannot "
                "update; rotating would strand that consumer")
            continue
        reason = inputs.due[identity]
        names = {n for r in (primary, *copies) for n in (r.key_id, r.name) if n}
        alert = next((inputs.alerted[n] for n in sorted(names) if n in inputs.alerted), None)
        if alert is not None and not inputs.approve:
            skipped[primary.identity] = Skipped(
                primary.identity, f"named in {alert}: rotate it only after review, with --approve")
            continue
        if alert is not None:
            reason += f"; approved despite {alert}"
        token = item_token(rotator, primary.identity, primary.key_id)
        built = planner(primary, [as_copy(c) for c in copies], inputs.keys, token, reason)
        if isinstance(built, Skipped):
            skipped[built.subject] = built
            continue
        if any(i.token == built.token for i in items.values()):
            continue  # one rotation covers several due fields (a Lambda rotates the secret)
        hooks = inputs.hooks_for(primary) if inputs.hooks_for is not None else None
        if hooks is not None:
            built = dataclasses.replace(built, steps=with_hook_step(built.steps),
                                        params={**built.params, "hooks": hooks})
        items[primary.identity] = built
    ordered = [items[k] for k in sorted(items)]
    deferred: tuple[str, ...] = ()
    if inputs.max_keys is not None and len(ordered) > inputs.max_keys:
        deferred = tuple(i.subject for i in ordered[inputs.max_keys:])
        ordered = ordered[: inputs.max_keys]
    cleanups, cleanup_skips = _cleanups(inputs)
    return RotationPlan(created=inputs.now, grace_days=inputs.grace_days,
                        items=(*ordered, *cleanups),
                        skipped=tuple(sorted((*skipped.values(), *cleanup_skips),
                                             key=lambda s: s.subject)),
                        deferred=deferred)


def with_hook_step(steps: tuple[str, ...]) -> tuple[str, ...]:
    """Insert the hooks step right before the old key is disabled (else at the end).

    Consumers reload while the old key still works; a failing hook rolls back.
    """
    if HOOK_STEP in steps:
        return steps
    at = steps.index("deactivate-old") if "deactivate-old" in steps else len(steps)
    return (*steps[:at], HOOK_STEP, *steps[at:])


def _primary(record: KeyRecord, inputs: PlanInputs
             ) -> tuple[str, KeyRecord, Planner] | None:
    candidates = [record, *copies_of(record, inputs.keys)]
    for name, claims, planner in inputs.planners:
        for cand in candidates:
            if claims(cand):
                return name, cand, planner
    return None


def _cleanups(inputs: PlanInputs) -> tuple[list[RotationItem], list[Skipped]]:
    """Old keys of finished rotations: delete once inactive for ``grace_days``."""
    assert inputs.now is not None  # noqa: S101  (checked by build_plan)
    by_key_id = {(k.source, k.key_id): k for k in inputs.keys if k.key_id}
    items: list[RotationItem] = []
    skips: list[Skipped] = []
    for done in sorted(inputs.completed, key=lambda c: c.subject):
        if done.finished + timedelta(days=inputs.grace_days) > inputs.now:
            continue
        rec = by_key_id.get((done.rotator, done.old_key_id))
        if rec is None:
            continue  # already deleted (or not in this inventory's sources)
        if inputs.select is not None and not inputs.select(rec):
            continue
        if rec.status is KeyStatus.ACTIVE:
            skips.append(Skipped(rec.identity, "old key was re-activated after rotation "
                                 f"{done.token}; not deleting it"))
            continue
        items.append(RotationItem(
            token=item_token(done.rotator, rec.identity, done.old_key_id, "cleanup"),
            action="cleanup", rotator=done.rotator, subject=rec.identity, name=rec.name,
            key_id=done.old_key_id, principal=done.principal, account=done.account,
            reason=f"grace period of {inputs.grace_days} days since rotation {done.token} ended",
            steps=("delete-old",), risk="low", params={"rotation": done.token}))
    return items, skips


# -- JSON ---------------------------------------------------------------------------------------


def item_to_dict(item: RotationItem) -> dict[str, Any]:
    """One item as plain JSON data (also what the journal stores for resume)."""
    return {
        "token": item.token, "action": item.action, "rotator": item.rotator,
        "subject": item.subject, "name": item.name, "key_id": item.key_id,
        "principal": item.principal, "account": item.account, "reason": item.reason,
        "steps": list(item.steps), "risk": item.risk, "params": dict(sorted(item.params.items())),
        "copies": [{"store": c.store, "location": c.location, "name": c.name, "region": c.region,
                    "field": c.field, "fingerprint": c.fingerprint} for c in item.copies],
    }


def plan_to_dict(plan: RotationPlan, with_id: bool = True) -> dict[str, Any]:
    """The plan file's JSON document."""
    out: dict[str, Any] = {
        "version": plan.version, "created": plan.created.isoformat(),
        "grace_days": plan.grace_days,
        "items": [item_to_dict(i) for i in plan.items],
        "skipped": [{"subject": s.subject, "reason": s.reason} for s in plan.skipped],
        "deferred": list(plan.deferred),
    }
    if with_id:
        out = {"plan_id": plan.plan_id, **out}
    return out


def item_from_dict(raw: Mapping[str, Any], where: str) -> RotationItem:
    """Parse one item; a malformed item is a one-line UsageError naming ``where``."""
    try:
        action = str(raw["action"])
        if action not in ("rotate", "cleanup"):
            raise ValueError(action)
        copies = tuple(StoreCopy(store=str(c["store"]), location=str(c["location"]),
                                 name=str(c["name"]), region=_opt(c.get("region")),
                                 field=_opt(c.get("field")), fingerprint=_opt(c.get("fingerprint")))
                       for c in raw.get("copies", []))
        return RotationItem(
            token=str(raw["token"]), action=action,  # type: ignore[arg-type]
            rotator=str(raw["rotator"]), subject=str(raw["subject"]), name=str(raw["name"]),
            key_id=_opt(raw.get("key_id")), principal=str(raw["principal"]),
            account=_opt(raw.get("account")), reason=str(raw.get("reason", "")),
            steps=tuple(str(s) for s in raw["steps"]), risk=str(raw.get("risk", "low")),
            params={str(k): str(v) for k, v in dict(raw.get("params", {})).items()},
            copies=copies)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{where}: malformed rotation item ({type(exc).__name__}: {exc})",
                         "regenerate it with `keyguard rotate plan --out`") from None


def plan_from_json(text: str, where: str) -> RotationPlan:
    """Parse a plan file; the version and the plan id are checked (a hand-edited plan is refused)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where}: not a JSON plan file ({exc})",
                         "pass the file written by `keyguard rotate plan --out`") from None
    if not isinstance(raw, dict) or raw.get("version") != PLAN_VERSION:
        raise UsageError(f"{where}: not a version {PLAN_VERSION} keyguard rotation plan",
                         "regenerate it with `keyguard rotate plan --out`")
    try:
        plan = RotationPlan(
            created=datetime.fromisoformat(str(raw["created"])),
            grace_days=int(raw["grace_days"]),
            items=tuple(item_from_dict(i, f"{where}: items[{n}]")
                        for n, i in enumerate(raw["items"])),
            skipped=tuple(Skipped(str(s["subject"]), str(s["reason"])) for s in raw["skipped"]),
            deferred=tuple(str(d) for d in raw.get("deferred", [])))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where}: malformed plan ({type(exc).__name__}: {exc})",
                         "regenerate it with `keyguard rotate plan --out`") from None
    if raw.get("plan_id") != plan.plan_id:
        raise UsageError(f"{where}: plan_id does not match the plan's content (edited after review?)",
                         "regenerate and review it with `keyguard rotate plan --out`")
    return plan


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def items_of(plan: RotationPlan, action: Action) -> Iterable[RotationItem]:
    """The plan's items of one action."""
    return (i for i in plan.items if i.action == action)
