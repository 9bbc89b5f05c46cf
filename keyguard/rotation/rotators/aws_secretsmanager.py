"""Secrets Manager secrets: run the secret's own rotation Lambda, or stage a supplied value.

A secret is rotated in one of two modes, fixed at planning time (``params["mode"]``):

``lambda`` (the secret has rotation enabled with a Lambda): steps ``start`` and ``track``.

1. ``start``: DescribeSecret must still name the planned Lambda. RotateSecret is called
   with a ``ClientRequestToken`` derived from the item's idempotency token, so the new
   version's id is known before the call. A re-run (resume) finds that version and does
   not call again; another version still labelled AWSPENDING (an unfinished rotation)
   stops the item before anything is called.
2. ``track``: DescribeSecret is polled until the token's version carries AWSCURRENT. A
   version that loses AWSPENDING without becoming current, or no answer within four
   times ``verify_timeout``, fails the step. keyguard cannot undo what a Lambda did, so
   the rollback changes nothing and the message says so: AWSCURRENT still holds the old
   value and AWS retries the rotation on its own schedule. (For the same reason a failing
   consumer hook after ``track`` cannot put the old value back: the Lambda may already
   have invalidated it.)

``staged`` (no Lambda, and the secret holds a recognised key whose new value an operator
supplies): steps ``put-pending``, ``verify``, ``promote``.

1. ``put-pending``: the supplied value replaces the key's characters inside the current
   value (JSON fields, ``NAME=value`` lines and spacing are kept) and is stored with
   PutSecretValue as a new version labelled AWSPENDING only, its id again derived from the
   idempotency token. Consumers keep reading AWSCURRENT, the old value.
2. ``verify``: the pending version is read back: it must hold the supplied key (same
   fingerprint), classify as the same kind as the old one, and differ from the current
   value in that credential only. For Anthropic API keys and OpenAI project, service
   account and user keys, one ``GET .../models`` with the new key must also succeed
   (base URL from ``[sources.anthropic]``/``[sources.openai]`` or the provider's variable).
3. ``promote``: UpdateSecretVersionStage moves AWSCURRENT to the pending version (Secrets
   Manager then labels the old version AWSPREVIOUS, so it stays readable), then AWSPENDING
   is removed. A failure here never rolls back: the verified value goes live on resume.

Rollback removes AWSPENDING from the token's version; if a consumer hook (run after the
last step) fails, it also moves AWSCURRENT back to the old version and AWSPREVIOUS back to
the version that held it before ``promote`` (journaled), so the rejected value keeps no label. Resume
finishes a staged rotation once its pending version was written (it is read back from the
store, so no secret has to survive the crash) and rolls back otherwise; a Lambda rotation
is always resumed forward, because a RotateSecret whose answer was lost may have started
the Lambda, and claiming to have rolled that back would be false.

Where the new value comes from: AWS access keys in a secret belong to the IAM rotator
(it runs first, see ``ORDER``), and provider keys another rotator can mint belong to that
rotator. For the rest an operator supplies the new value (:mod:`keyguard.rotation.supply`:
``--from-keyring NAME`` or ``--stdin``, held in the run's Scratch): staged items carry
:data:`~keyguard.rotation.supply.SUPPLY_PARAM`, so ``rotate apply`` refuses them without
a value and ``rotate run`` skips them with the reason.

Not rotated, and listed as skipped with the reason: a secret holding an AWS access key
without a Lambda (the IAM rotator's, when aws-iam is inventoried), content that is not a
recognised key, and a key also stored elsewhere (one secret's rotation would strand the
other copies).

Least privilege: secretsmanager:DescribeSecret and RotateSecret (plus lambda:InvokeFunction
on the rotation function) for Lambda mode; DescribeSecret, GetSecretValue, PutSecretValue
and UpdateSecretVersionStage for staged mode.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from keyguard.classify import classify_token, format_by_kind
from keyguard.model import KeyRecord, KeyStatus
from keyguard.rotation import _aws
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import RotationItem, Skipped, StoreCopy, item_token
from keyguard.rotation.rotators import Rotator, StepState
from keyguard.rotation.supply import SUPPLY_PARAM, supplied
from keyguard.rotation.values import extract, rewrite
from keyguard.secret import Secret

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
#: Kinds that live as IAM access keys: rotated through the IAM user, never staged here.
_AWS_KINDS = frozenset({"aws-access-key", "aws-secret-key", "aws-temporary-key"})
#: OpenAI kinds that can call the API themselves (an admin key cannot list models).
_OPENAI_API_KINDS = frozenset({"openai-project", "openai-svcacct", "openai-legacy-user"})
#: Kinds whose new key ``verify`` proves with an API call (see ``_live_check``).
_LIVE_KINDS = _OPENAI_API_KINDS | {"anthropic-api"}
#: How much longer than ``verify_timeout`` a rotation Lambda may take (create, set, test
#: and finish each run as a separate invocation).
TRACK_FACTOR = 4


def version_token(token: str) -> str:
    """The ClientRequestToken (and so the new version id) of one rotation item.

    Secrets Manager wants 32 to 64 characters; a UUID-shaped digest of the item's token
    keeps it deterministic, so a resumed call is recognised instead of repeated.
    """
    return str(uuid.UUID(hashlib.sha256(token.encode()).hexdigest()[:32]))


class AwsSecretsManagerRotator:
    """Rotates whole Secrets Manager secrets: via their Lambda, or by staging a new value."""

    name: ClassVar[str] = "aws-secretsmanager"
    final_steps: ClassVar[frozenset[str]] = frozenset({"promote"})

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx

    # -- planning (pure) ---------------------------------------------------------------------

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Every live secret: the plan then rotates it or says why it cannot."""
        return key.source == cls.name and key.status is not KeyStatus.DELETED

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """A Lambda or staged rotation, or the reason the secret cannot be rotated."""
        return _plan(key, copies, keys, reason)

    @classmethod
    def resume_forward(cls, item: RotationItem, done: frozenset[str]) -> bool:
        """Lambda rotations always go forward; staged ones once the pending value is stored."""
        if item.params.get("mode") == "lambda":
            return True
        return "put-pending" in done

    # -- steps -------------------------------------------------------------------------------

    def run(self, item: RotationItem, step: str, state: StepState) -> Mapping[str, str]:
        """Run one step (see the module docstring for each)."""
        if step == "start":
            return self._start(item, state)
        if step == "track":
            return self._track(item)
        if step == "put-pending":
            return self._put_pending(item, state)
        if step == "verify":
            return self._verify(item, state)
        if step == "promote":
            return self._promote(item, state)
        raise StepFailed(f"{item.name}: unknown step {step!r} for rotator {self.name}")

    def _client(self, item: RotationItem) -> SecretsManagerClient:
        return _aws.secretsmanager(self._ctx, item.params.get("region") or None)

    def _describe(self, item: RotationItem, step: str) -> tuple[dict[str, list[str]], str, bool]:
        """Version id -> stages, the rotation Lambda ARN, and whether rotation is enabled."""
        try:
            got = self._client(item).describe_secret(SecretId=item.params["arn"])
        except _aws.aws_errors() as exc:
            raise _aws.failed(step, item.name, exc) from None
        if got.get("DeletedDate") is not None:
            raise StepFailed(f"{step} {item.name}: the secret is scheduled for deletion")
        stages = {v: list(s) for v, s in got.get("VersionIdsToStages", {}).items()}
        return stages, got.get("RotationLambdaARN", ""), bool(got.get("RotationEnabled"))

    def _read(self, item: RotationItem, step: str, *, version: str | None = None,
              stage: str = CURRENT) -> tuple[Secret, str]:
        """One version's value, always addressed by label (moto's default version can lag)."""
        args: dict[str, str] = {"SecretId": item.params["arn"], "VersionStage": stage}
        if version is not None:
            args["VersionId"] = version
        try:
            got = self._client(item).get_secret_value(**args)
        except _aws.aws_errors() as exc:
            raise _aws.failed(step, item.name, exc) from None
        if "SecretString" not in got:
            raise StepFailed(f"{step} {item.name}: binary secrets are not rotated by keyguard")
        return Secret(got["SecretString"]), got["VersionId"]

    def _move(self, item: RotationItem, step: str, label: str, *, to: str | None = None,
              off: str | None = None) -> None:
        args: dict[str, str] = {"SecretId": item.params["arn"], "VersionStage": label}
        if to is not None:
            args["MoveToVersionId"] = to
        if off is not None:
            args["RemoveFromVersionId"] = off
        try:
            self._client(item).update_secret_version_stage(**args)
        except _aws.aws_errors() as exc:
            raise _aws.failed(step, item.name, exc) from None

    # Lambda mode -----------------------------------------------------------------------------

    def _start(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        tok = item.params["version_token"]
        stages, arn, enabled = self._describe(item, "start")
        if tok in stages:  # RotateSecret already ran for this item (resumed step)
            return {"new_version": tok}
        planned = item.params["lambda"]
        if not enabled or arn != planned:
            raise StepFailed(f"start {item.name}: the secret's rotation Lambda changed since "
                             f"planning (now {arn or 'none'}{'' if enabled else ', disabled'}); "
                             "plan again")
        stuck = _unfinished(stages)
        if stuck:
            raise StepFailed(f"start {item.name}: an earlier rotation has not finished (version "
                             f"{stuck} is still {PENDING}); AWS retries it; fix the Lambda "
                             "(CloudWatch logs) before rotating again")
        state.note({"old_version": _holder(stages, CURRENT), "new_version": tok})
        try:
            # NOTE: the ARN is passed explicitly: moto only runs the Lambda named in the call
            # (without it, it labels an empty version AWSCURRENT), and it pins the function
            # the reviewer saw in the plan.
            self._client(item).rotate_secret(SecretId=item.params["arn"],
                                             ClientRequestToken=tok, RotationLambdaARN=planned)
        except _aws.aws_errors() as exc:
            raise _aws.failed("start", item.name, exc) from None
        return {"new_version": tok}

    def _track(self, item: RotationItem) -> Mapping[str, str]:
        tok = item.params["version_token"]
        limit = max(self._ctx.verify_timeout, 0.0) * TRACK_FACTOR
        deadline = time.monotonic() + limit
        delay = 0.5
        while True:
            stages, _, _ = self._describe(item, "track")
            labels = stages.get(tok)
            if labels is not None and CURRENT in labels:
                return {"current_version": tok,
                        "previous_version": _holder(stages, PREVIOUS)}
            if labels is not None and PENDING not in labels:
                raise StepFailed(_lambda_failed(item, f"version {tok} lost {PENDING} without "
                                                "becoming current (the Lambda gave up)"))
            if time.monotonic() + delay > deadline:
                where = (f"version {tok} is {', '.join(labels) or 'unlabelled'}"
                         if labels is not None else f"version {tok} was never created")
                raise StepFailed(_lambda_failed(item, f"not finished within {limit:g} s "
                                                f"({where})"))
            self._ctx.sleep(delay)
            delay = min(delay * 2, 8.0)

    # staged mode -----------------------------------------------------------------------------

    def _field(self, item: RotationItem) -> str | None:
        return item.params.get("field") or None

    def _put_pending(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        tok = item.params["version_token"]
        field = self._field(item)
        stages, _, _ = self._describe(item, "put-pending")
        if tok in stages:  # written before a crash: read back, do not write again
            value, _ = self._read(item, "put-pending", version=tok,
                                  stage=PENDING if PENDING in stages[tok] else CURRENT)
            new = extract(value, field)
            if new is None:
                raise StepFailed(f"put-pending {item.name}: the pending version lacks "
                                 f"field {field or '(whole value)'}")
            state.scratch.watch(new)
            return {"pending_version": tok,
                    "new_fingerprint": self._ctx.fingerprinter.fingerprint(new)}
        stuck = _unfinished(stages)
        if stuck:
            raise StepFailed(f"put-pending {item.name}: version {stuck} is already {PENDING} "
                             "(another rotation did not finish); settle it first")
        value, current = self._read(item, "put-pending")
        old = extract(value, field)
        if old is None:
            raise StepFailed(f"put-pending {item.name}: field {field or '(whole value)'} is no "
                             "longer in the secret; plan again")
        state.scratch.watch(old)
        planned = item.params.get("fingerprint")
        if planned and self._ctx.fingerprinter.fingerprint(old) != planned:
            raise StepFailed(f"put-pending {item.name}: the secret changed since planning; "
                             "plan again")
        new = supplied(state.scratch)
        if new is None:
            raise StepFailed(f"put-pending {item.name}: no new value was supplied to this run "
                             "(nothing was changed)")
        self._check_kind(item, "put-pending", new)
        if new.reveal().strip() == old.reveal():
            raise StepFailed(f"put-pending {item.name}: the supplied value is the current one")
        new_value = rewrite(value, field, None, None, Secret(new.reveal().strip()))
        state.note({"old_version": current, "pending_version": tok})
        try:
            self._client(item).put_secret_value(SecretId=item.params["arn"],
                                                ClientRequestToken=tok,
                                                SecretString=new_value.reveal(),
                                                VersionStages=[PENDING])
        except _aws.aws_errors() as exc:
            raise _aws.failed("put-pending", item.name, exc) from None
        return {"pending_version": tok,
                "new_fingerprint": self._ctx.fingerprinter.fingerprint(
                    Secret(new.reveal().strip()))}

    def _check_kind(self, item: RotationItem, step: str, value: Secret) -> None:
        kind = item.params.get("kind", "")
        fmt = classify_token(value.reveal(), self._field(item) or item.name)
        if fmt is None or fmt.kind != kind:
            raise StepFailed(f"{step} {item.name}: the new value is not of kind {kind} "
                             f"({'unrecognised' if fmt is None else f'it is {fmt.kind}'})")

    def _verify(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        tok = item.params["version_token"]
        field = self._field(item)
        pending, _ = self._read(item, "verify", version=tok, stage=PENDING)
        new = extract(pending, field)
        if new is None:
            raise StepFailed(f"verify {item.name}: the pending version lacks field "
                             f"{field or '(whole value)'}")
        state.scratch.watch(new)
        if self._ctx.fingerprinter.fingerprint(new) != state.facts.get("new_fingerprint"):
            raise StepFailed(f"verify {item.name}: the pending version does not hold the "
                             "supplied key (changed by someone else?)")
        self._check_kind(item, "verify", new)
        current, _ = self._read(item, "verify")
        old = extract(current, field)
        if old is not None:
            state.scratch.watch(old)
        if old is None or rewrite(current, field, None, None, new).reveal() != pending.reveal():
            raise StepFailed(f"verify {item.name}: the pending version differs from the current "
                             "one beyond the rotated key")
        live = self._live_check(item, new)
        return {"verified": f"read back, {item.params.get('kind', '')} format, shape kept"
                            + (f", {live}" if live else "")}

    def _live_check(self, item: RotationItem, new: Secret) -> str | None:
        """One cheap authenticated call with the new key, where the provider has one.

        The same calls as the provider rotators' verify (``/v1/models``), made with the
        new key alone, so no admin key is needed. None for kinds without such a call.
        """
        from keyguard.rotation.rotators._provider import ProviderApi
        from keyguard.sources._http import base_url, bearer

        kind = item.params.get("kind", "")
        api: ProviderApi
        if kind == "anthropic-api":
            from keyguard.sources.anthropic import API_VERSION
            from keyguard.sources.anthropic import DEFAULT_BASE_URL as ANTHROPIC_URL

            cfg = self._ctx.config.sources.anthropic
            api = ProviderApi(self._ctx, base_url(cfg.base_url, "ANTHROPIC_BASE_URL", ANTHROPIC_URL),
                              {"anthropic-version": API_VERSION}, cfg, "anthropic")
            path, auth = "/v1/models", {"x-api-key": new}
        elif kind in _OPENAI_API_KINDS:
            from keyguard.sources.openai import DEFAULT_BASE_URL as OPENAI_URL

            ocfg = self._ctx.config.sources.openai
            api = ProviderApi(self._ctx, base_url(ocfg.base_url, "OPENAI_BASE_URL", OPENAI_URL),
                              {}, ocfg, "openai")
            path, auth = "/models", {"authorization": bearer(new)}
        else:
            return None
        reply = api.call("GET", path, headers=auth, accept=(401, 403))
        if reply.status in (401, 403):
            raise StepFailed(f"verify {item.name}: the provider refused the new key "
                             f"(HTTP {reply.status}); nothing went live")
        return f"GET {path} with the new key"

    def _promote(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        tok = item.params["version_token"]
        stages, _, _ = self._describe(item, "promote")
        if tok not in stages:
            raise StepFailed(f"promote {item.name}: the pending version {tok} is gone")
        current = _holder(stages, CURRENT)
        if current != tok:
            # journaled first: a rollback after a failing consumer hook puts AWSPREVIOUS back
            # where it was, instead of leaving it on the rejected new value
            state.note({"previous_before": _holder(stages, PREVIOUS)})
            self._move(item, "promote", CURRENT, to=tok, off=current or None)
        if PENDING in stages[tok]:
            self._move(item, "promote", PENDING, off=tok)
        return {"current_version": tok,
                "previous_version": state.facts.get("old_version", current)}

    # -- rollback ----------------------------------------------------------------------------

    def rollback(self, item: RotationItem, state: StepState) -> None:
        """Staged: take AWSPENDING off the token's version. Lambda: nothing can be undone."""
        if item.params.get("mode") != "staged":
            return
        tok = item.params["version_token"]
        stages, _, _ = self._describe(item, "rollback")
        labels = stages.get(tok)
        if labels is None:
            return
        if CURRENT in labels:  # promote ran: a later consumer hook failed (see hooks.py)
            old = state.facts.get("old_version", "")
            if old not in stages:
                raise StepFailed(f"rollback {item.name}: the new version is current and the "
                                 "old version is unknown; fix the labels by hand")
            self._move(item, "rollback", CURRENT, to=old, off=tok)
            before = state.facts.get("previous_before", "")
            if before and before in stages and before != tok:
                self._move(item, "rollback", PREVIOUS, to=before, off=tok)
            else:
                self._move(item, "rollback", PREVIOUS, off=tok)
        if PENDING in labels:
            self._move(item, "rollback", PENDING, off=tok)


def _holder(stages: Mapping[str, Sequence[str]], label: str) -> str:
    return next((v for v, s in sorted(stages.items()) if label in s), "")


def _unfinished(stages: Mapping[str, Sequence[str]]) -> str:
    """A version labelled AWSPENDING but not AWSCURRENT: a rotation that did not finish."""
    return next((v for v, s in sorted(stages.items()) if PENDING in s and CURRENT not in s), "")


def _lambda_failed(item: RotationItem, what: str) -> str:
    return (f"track {item.name}: the rotation Lambda {item.params.get('lambda', '')} {what}; "
            f"keyguard cannot roll a Lambda rotation back: {CURRENT} still holds the old value "
            "and AWS retries on its schedule; see the Lambda's CloudWatch logs")


# -- planning ----------------------------------------------------------------------------------


def _plan(key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
          reason: str) -> RotationItem | Skipped:
    name = AwsSecretsManagerRotator.name
    others = sorted({c.name for c in copies if c.location != key.location})
    if others:
        return Skipped(key.identity, f"the same key is also stored in {', '.join(others)}; "
                       "rotating this secret alone would leave those copies on the old key")
    params = {"arn": key.location, "region": key.region or ""}
    risk = "high" if "admin" in key.scope.labels else "medium"
    lam = key.rotation.rotator if key.rotation is not None else None
    if lam and key.rotation is not None and key.rotation.enabled:
        # One item per secret: every field's record of it plans the same token.
        marks = sorted(str(k.fingerprint or k.last_changed or "") for k in keys
                       if k.source == name and k.location == key.location)
        token = item_token(name, f"{name}:{key.location}", "|".join(marks))
        return RotationItem(token=token, action="rotate", rotator=name, subject=key.identity,
                            name=key.name, key_id=None, principal=key.name,
                            reason=reason + "; rotated by the secret's own Lambda (keyguard "
                            "cannot roll it back)", steps=("start", "track"), risk=risk,
                            account=key.account,
                            params={**params, "mode": "lambda", "lambda": lam,
                                    "version_token": version_token(token)})
    if str(key.kind) in _AWS_KINDS:
        return Skipped(key.identity, "holds an AWS access key: it is rotated through its IAM "
                       "user (inventory aws-iam too)")
    fmt = format_by_kind(str(key.kind))
    if fmt is None or not fmt.secret or not key.fingerprint:
        return Skipped(key.identity, "no rotation Lambda, and the value is not a recognised "
                       "key keyguard could replace")
    token = item_token(name, key.identity, str(key.fingerprint))
    return RotationItem(token=token, action="rotate", rotator=name, subject=key.identity,
                        name=key.name, key_id=None, principal=key.name,
                        reason=reason + f"; no rotation Lambda: needs the new key, created with "
                        f"{fmt.provider} and supplied with --from-keyring NAME or --stdin",
                        steps=("put-pending", "verify", "promote"),
                        # without a live call, verification is offline: a dead key could go live
                        risk="high" if risk == "high" else ("low" if fmt.kind in _LIVE_KINDS
                                                            else "medium"),
                        account=key.account,
                        params={**params, "mode": "staged", "kind": fmt.kind,
                                "field": key.field or "", "fingerprint": str(key.fingerprint),
                                # the CLI classifies without a field name: a kind that
                                # needs one (mistral...) is checked here, in put-pending
                                SUPPLY_PARAM: fmt.kind if fmt.name_hint is None else "any",
                                "version_token": version_token(token)})


PLUGIN: type[Rotator] = AwsSecretsManagerRotator
