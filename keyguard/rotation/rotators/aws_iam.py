"""IAM user access keys: make room, create, store everywhere, verify, deactivate, delete later.

AWS allows two access keys per user, and the old key must keep working until every
consumer has the new one, so the order is fixed:

1. ``prepare``: the old key must still exist and be active; an *inactive* spare named in
   the plan is deleted to free the second slot. An active second key stops the rotation
   (keyguard never deletes an active key).
2. ``create``: CreateAccessKey; the id (public) and the keyed fingerprint of the new secret
   are journaled, the secret stays in memory.
3. ``store:N``: each copy (Secrets Manager, SSM...) is rewritten in place, keeping the
   value's shape; the copy's previous version id is journaled *before* the write.
4. ``verify``: sts:GetCallerIdentity signed with the new key must answer with the user's
   ARN (retried while IAM propagates the key).
5. ``deactivate-old``: the old key becomes Inactive. A later run deletes it once the
   grace period has passed (a ``cleanup`` item with the single step ``delete-old``).

Rollback restores every written copy to its journaled version and deletes any key the
user did not have before ``create`` (which also removes an orphan whose CreateAccessKey
response was lost). Resume finishes a rotation once all copies hold the new key (the new
secret is read back from a copy, found by its fingerprint) and rolls back otherwise.

Least privilege: iam:ListAccessKeys, CreateAccessKey, UpdateAccessKey, DeleteAccessKey on
the users being rotated, plus what each store writer needs; sts:GetCallerIdentity needs
no permission.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

from keyguard.model import KeyRecord, KeyStatus
from keyguard.rotation import _aws
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import RotationItem, Skipped, StoreCopy
from keyguard.rotation.rotators import Rotator, StepState
from keyguard.rotation.rotators._provider import recover, write_copy
from keyguard.rotation.stores import STORES
from keyguard.secret import Secret

_KEY_MARK = ":access-key/"


def user_arn(record: KeyRecord) -> str:
    """The IAM user's ARN from the access key record's location."""
    return record.location.split(_KEY_MARK, 1)[0]


class AwsIamRotator:
    """Rotates IAM user access keys (never root keys, never an active second key)."""

    name: ClassVar[str] = "aws-iam"
    final_steps: ClassVar[frozenset[str]] = frozenset({"deactivate-old", "delete-old"})

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx

    # -- planning (pure) ---------------------------------------------------------------------

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Active IAM user access keys listed by the aws-iam source."""
        return (key.source == cls.name and key.kind == "aws-access-key" and bool(key.key_id)
                and key.status is KeyStatus.ACTIVE and ":user/" in key.location
                and _KEY_MARK in key.location)

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """Steps for one key; skipped when no copy is known or the user has two active keys."""
        arn = user_arn(key)
        if not copies:
            return Skipped(key.identity, "no stored copy of this key was found (inventory the "
                           "stores that hold it with --inspect-values); rotating would leave its "
                           "consumers without a working key")
        managed = sorted({c.name for c in copies for k in keys
                          if c.store == "aws-secretsmanager" and k.source == c.store
                          and k.location == c.location and k.rotation is not None
                          and k.rotation.enabled and k.rotation.rotator})
        if managed:
            # The secret's own Lambda rotates this key too; two rotators on one key would
            # each strand the other's new key.
            return Skipped(key.identity, f"secret {', '.join(managed)} rotates this key with its "
                           "own Lambda; let that rotation run (keyguard tracks it through the "
                           "aws-secretsmanager rotator) or disable it first")
        peers = [k for k in keys if k.source == cls.name and k.identity != key.identity
                 and k.location.startswith(arn + _KEY_MARK)]
        params = {"user_arn": arn}
        risk = "high" if "admin" in key.scope.labels else ("medium" if len(copies) > 1 else "low")
        if peers:
            other = peers[0]
            if other.status is not KeyStatus.INACTIVE:
                return Skipped(key.identity, f"user already has a second key {other.key_id} "
                               f"({other.status.value}); keyguard never deletes an active key: "
                               "deactivate or delete it first")
            params["spare"] = other.key_id or ""
            risk = "medium" if risk == "low" else risk
        principal = key.name.rsplit("/", 1)[0]
        steps = ("prepare", "create", *(f"store:{i}" for i in range(len(copies))), "verify",
                 "deactivate-old")
        return RotationItem(token=token, action="rotate", rotator=cls.name, subject=key.identity,
                            name=key.name, key_id=key.key_id, principal=principal, reason=reason,
                            steps=steps, copies=tuple(copies), risk=risk, account=key.account,
                            params=params)

    @classmethod
    def resume_forward(cls, item: RotationItem, done: frozenset[str]) -> bool:
        """Finish once every copy holds the new key; otherwise roll back."""
        stores = {s for s in item.steps if s.startswith("store:")}
        return "create" in done and stores <= done

    # -- steps -------------------------------------------------------------------------------

    def run(self, item: RotationItem, step: str, state: StepState) -> Mapping[str, str]:
        """Run one step (see the module docstring for each)."""
        if step == "prepare":
            return self._prepare(item)
        if step == "create":
            return self._create(item, state)
        if step.startswith("store:"):
            return self._store(item, int(step.split(":", 1)[1]), state)
        if step == "verify":
            return self._verify(item, state)
        if step == "deactivate-old":
            if str(item.key_id) not in self._keys(item):
                return {"old_status": "deleted"}  # someone deleted it: already unusable
            return self._set_status(item, str(item.key_id), "Inactive")
        if step == "delete-old":
            return self._delete_old(item)
        raise StepFailed(f"{item.name}: unknown step {step!r} for rotator {self.name}")

    def _keys(self, item: RotationItem) -> dict[str, str]:
        try:
            metas = _aws.iam(self._ctx).list_access_keys(UserName=item.principal)
        except _aws.aws_errors() as exc:
            raise _aws.failed("list keys of", item.principal, exc) from None
        return {m["AccessKeyId"]: m["Status"] for m in metas.get("AccessKeyMetadata", [])}

    def _prepare(self, item: RotationItem) -> Mapping[str, str]:
        old = str(item.key_id)
        keys = self._keys(item)
        if keys.get(old) != "Active":
            raise StepFailed(f"prepare {item.name}: the old key is "
                             f"{'missing' if old not in keys else keys[old].lower()} now; plan again")
        spare = item.params.get("spare", "")
        facts: dict[str, str] = {"old_key_id": old}
        for other, status in sorted(keys.items()):
            if other == old:
                continue
            if other != spare or status != "Inactive":
                raise StepFailed(f"prepare {item.name}: user has another key {other} "
                                 f"({status.lower()}) that the plan did not expect; plan again")
            try:
                _aws.iam(self._ctx).delete_access_key(UserName=item.principal, AccessKeyId=other)
            except _aws.aws_errors() as exc:
                raise _aws.failed("delete inactive spare of", item.principal, exc) from None
            facts["spare_deleted"] = other
        facts["before"] = old
        return facts

    def _create(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        try:
            made = _aws.iam(self._ctx).create_access_key(UserName=item.principal)["AccessKey"]
        except _aws.aws_errors() as exc:
            raise _aws.failed("create key for", item.principal, exc) from None
        secret = Secret(made["SecretAccessKey"])
        state.scratch.put("new_secret", secret)
        return {"new_key_id": made["AccessKeyId"],
                "new_fingerprint": self._ctx.fingerprinter.fingerprint(secret)}

    def _store(self, item: RotationItem, index: int, state: StepState) -> Mapping[str, str]:
        new_secret = state.scratch.get("new_secret")
        if new_secret is None:
            raise StepFailed(f"store {item.copies[index].name}: the new secret is not in memory "
                             "(interrupted run); roll back")
        return write_copy(self._ctx, item, index, state, new_secret, item.key_id,
                          state.facts.get("new_key_id"))

    def _recover_secret(self, item: RotationItem, state: StepState) -> Secret:
        """The new secret: from memory, else read back from a copy that holds it."""
        got = recover(self._ctx, item, state, "new_secret")
        if got is None:
            raise StepFailed(f"verify {item.name}: no copy holds the new key any more")
        return got

    def _verify(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        new_id = state.facts.get("new_key_id", "")
        secret = self._recover_secret(item, state)
        expected = item.params.get("user_arn", "")
        deadline = time.monotonic() + self._ctx.verify_timeout
        delay = 1.0
        while True:
            try:
                arn = _aws.sts_with(self._ctx, new_id, secret.reveal()).get_caller_identity()["Arn"]
            except _aws.aws_errors() as exc:
                if time.monotonic() + delay > deadline:
                    raise _aws.failed("verify", f"{item.name} (new key {new_id})", exc) from None
                self._ctx.sleep(delay)  # IAM takes seconds to propagate a new key
                delay = min(delay * 2, 8.0)
                continue
            if arn != expected:
                raise StepFailed(f"verify {item.name}: the new key {new_id} authenticates as "
                                 f"{arn}, not {expected}")
            return {"verified": "sts:GetCallerIdentity"}

    def _set_status(self, item: RotationItem, key_id: str, status: str) -> Mapping[str, str]:
        try:
            _aws.iam(self._ctx).update_access_key(UserName=item.principal, AccessKeyId=key_id,
                                                  Status=status)  # type: ignore[arg-type]
        except _aws.aws_errors() as exc:
            raise _aws.failed(f"set {status.lower()}", f"{item.principal}/{key_id}", exc) from None
        return {"old_status": status} if key_id == item.key_id else {}

    def _delete_old(self, item: RotationItem) -> Mapping[str, str]:
        old = str(item.key_id)
        status = self._keys(item).get(old)
        if status is None:
            return {"deleted": old}
        if status != "Inactive":
            raise StepFailed(f"delete {item.name}: the old key is {status.lower()} again; "
                             "not deleting an active key")
        try:
            _aws.iam(self._ctx).delete_access_key(UserName=item.principal, AccessKeyId=old)
        except _aws.aws_errors() as exc:
            raise _aws.failed("delete old key of", item.principal, exc) from None
        return {"deleted": old}

    # -- rollback ----------------------------------------------------------------------------

    def rollback(self, item: RotationItem, state: StepState) -> None:
        """Restore written copies, re-activate the old key if needed, delete new keys."""
        if item.action != "rotate":
            return
        for index, copy in enumerate(item.copies):
            before = state.facts.get(f"store:{index}:before")
            if before:
                STORES.load(copy.store)(self._ctx).restore(copy, before)
        if "before" not in state.facts:
            return  # prepare never finished, so create never ran
        old = str(item.key_id)
        keys = self._keys(item)
        if keys.get(old) == "Inactive" and "deactivate-old" in state.started:
            self._set_status(item, old, "Active")
        keep = set(state.facts["before"].split(","))
        for key_id in sorted(keys):
            if key_id not in keep:  # created by this rotation (even if its response was lost)
                try:
                    iam = _aws.iam(self._ctx)
                    iam.update_access_key(UserName=item.principal, AccessKeyId=key_id,
                                          Status="Inactive")
                    iam.delete_access_key(UserName=item.principal, AccessKeyId=key_id)
                except _aws.aws_errors() as exc:
                    raise _aws.failed("delete new key of", item.principal, exc) from None


PLUGIN: type[Rotator] = AwsIamRotator
