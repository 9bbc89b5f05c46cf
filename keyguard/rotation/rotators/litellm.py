"""LiteLLM virtual keys: regenerate in place, then store everywhere and verify.

``POST /key/{token}/regenerate`` gives the key row (budget, spend, models, alias...) a new
secret and a new ``token`` (its SHA-256). The old secret stops working at once: LiteLLM's
grace period (``LiteLLM_DeprecatedVerificationToken``) is a proxy-side setting keyguard
cannot rely on. So there is no rollback after ``regenerate``: consumers fail until their
copy is rewritten, the copies are rewritten right after it, and the plan's risk says so.
Every step after ``regenerate`` is final: a failure stops the run (exit 4) and
``resume`` finishes the rotation instead of undoing it.

1. ``prepare``: ``GET /key/info?key=<token>``: the key exists and is not blocked.
2. ``regenerate``: the new secret stays in memory; its token and keyed fingerprint are
   journaled. A definite refusal (HTTP 4xx, e.g. a proxy without the premium feature)
   changes nothing and rolls back. When the answer is lost (timeout, 5xx, crash) the old
   token is looked up: still there means nothing happened; gone means LiteLLM replaced
   the secret and keyguard never saw it, so the key is regenerated once more (nobody
   holds the lost value, so nothing breaks twice).
3. ``store:N``: each copy is rewritten in place. After a crash the new secret is read back
   from a copy that holds it; if no copy does, the key is regenerated again.
4. ``verify``: ``GET /v1/models`` on the proxy with ``Authorization: Bearer <new key>``.

The row is found again by its current token (the new one once journaled, else the old),
else by alias, else by its creation time, which regenerating does not change.

Least privilege: the master key, or a key allowed to call /key/info, /key/list and
/key/regenerate (LiteLLM gates regenerate behind its enterprise licence, except for
master-key rotation, in the versions read for provider-formats.md §4.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import ClassVar

from keyguard.model import KeyRecord, KeyStatus
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import HOOK_STEP, RotationItem, Skipped, StoreCopy
from keyguard.rotation.rotators import Rotator, StepState
from keyguard.rotation.rotators._provider import (
    MAX_COPIES,
    Json,
    ProviderApi,
    copies_problem,
    detail,
    obj,
    recover,
    scratch_name,
    store_steps,
    text,
    write_copy,
)
from keyguard.secret import Secret
from keyguard.sources._http import rfc3339

KIND = "litellm-virtual"
INFO_PATH = "/key/info"
LIST_PATH = "/key/list"
MODELS_PATH = "/v1/models"
MAX_PAGES = 1000
RISK = ("high (regenerate disables the old key at once: consumers fail until their copy is "
        "rewritten, seconds later; no rollback after regenerate, resume finishes instead)")


def token_of(value: Secret) -> str:
    """LiteLLM's ``token`` for a key value: its SHA-256, hex (public, not a secret)."""
    return hashlib.sha256(value.reveal().encode("utf-8", "surrogatepass")).hexdigest()


class LiteLLMRotator:
    """Rotates LiteLLM virtual keys through the proxy's regenerate endpoint."""

    name: ClassVar[str] = "litellm"
    #: Everything after regenerate, consumer hooks included: the old key is gone, so a
    #: failure stops the run for ``resume`` to finish instead of rolling back.
    final_steps: ClassVar[frozenset[str]] = frozenset(
        {"verify", HOOK_STEP, *(f"store:{i}" for i in range(MAX_COPIES))})

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx
        self._api: ProviderApi | None = None

    # -- planning (pure) ---------------------------------------------------------------------

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Active virtual keys listed by the litellm source."""
        return (key.source == cls.name and key.kind == KIND and bool(key.key_id)
                and key.status is KeyStatus.ACTIVE)

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """Steps for one key; skipped without a stored copy."""
        problem = copies_problem(copies)
        if problem is not None:
            return Skipped(key.identity, problem)
        params = {"alias": detail(key, "alias") or "",
                  "created": key.created.isoformat() if key.created else ""}
        return RotationItem(
            token=token, action="rotate", rotator=cls.name, subject=key.identity, name=key.name,
            key_id=key.key_id, principal=detail(key, "alias") or key.name, reason=reason,
            steps=("prepare", "regenerate", *store_steps(copies), "verify"),
            copies=tuple(copies), risk=RISK, account=key.account, params=params)

    @classmethod
    def resume_forward(cls, item: RotationItem, done: frozenset[str]) -> bool:
        """Always forward once prepared: the old key may already be gone."""
        return "prepare" in done

    # -- steps -------------------------------------------------------------------------------

    def run(self, item: RotationItem, step: str, state: StepState) -> Mapping[str, str]:
        """Run one step (see the module docstring)."""
        if step == "prepare":
            row = self._info(str(item.key_id))
            if row is None:
                raise StepFailed(f"prepare {item.name}: the key is no longer in LiteLLM; plan again")
            if row.get("blocked") is True:
                raise StepFailed(f"prepare {item.name}: the key is blocked; unblock it or plan again")
            return {"replaced_key_id": str(item.key_id)}
        if step == "regenerate":
            return self._regenerate(item, state)
        if step.startswith("store:"):
            return write_copy(self._ctx, item, int(step.split(":", 1)[1]), state,
                              self._secret(item, state))
        if step == "verify":
            secret = recover(self._ctx, item, state)
            if secret is None:
                raise StepFailed(f"verify {item.name}: no copy holds the new key any more")
            from keyguard.sources._http import bearer

            reply = self._client().call("GET", MODELS_PATH,
                                        headers={"authorization": bearer(secret)},
                                        accept=(401, 403))
            if reply.status in (401, 403):
                raise StepFailed(f"verify {item.name}: the proxy refused the new key "
                                 f"(HTTP {reply.status})")
            return {"verified": f"GET {MODELS_PATH}"}
        raise StepFailed(f"{item.name}: unknown step {step!r} for rotator {self.name}")

    def rollback(self, item: RotationItem, state: StepState) -> None:
        """Nothing to undo unless regenerate took effect, which cannot be undone."""
        if item.action != "rotate" or "regenerate" not in state.started:
            return
        if self._info(str(item.key_id)) is not None:
            return  # the old key is still the row's key: regenerate never happened
        raise StepFailed(f"{item.name}: LiteLLM already replaced this key (the old value no "
                         "longer works) but the new value was lost; regenerate it in LiteLLM and "
                         "update its copies by hand: "
                         + ", ".join(f"{c.store} {c.name}" for c in item.copies))

    # -- LiteLLM calls -----------------------------------------------------------------------

    def _client(self) -> ProviderApi:
        if self._api is None:
            from keyguard.sources._http import ApiError, base_url, bearer, credential

            cfg = self._ctx.config.sources.litellm
            url = base_url(cfg.base_url, "LITELLM_BASE_URL", "")
            if not url:
                raise StepFailed("litellm: no proxy URL (LITELLM_BASE_URL or [sources.litellm] "
                                 "base-url)")
            try:
                master = credential(cfg.admin_key, "LITELLM_MASTER_KEY",
                                    "[sources.litellm] admin-key")
            except ApiError as exc:
                raise StepFailed(f"litellm: {exc.message}") from None
            self._api = ProviderApi(self._ctx, url, {"authorization": bearer(master)}, cfg,
                                    "litellm")
        return self._api

    def _info(self, token: str) -> Mapping[str, Json] | None:
        reply = self._client().call("GET", INFO_PATH, params={"key": token}, accept=(400, 404))
        if reply.status != 200:
            return None
        return obj(obj(reply.body).get("info")) or {}

    def _find_row(self, item: RotationItem) -> str | None:
        """The row's current token, by alias, else by creation time."""
        alias = item.params.get("alias", "")
        created = rfc3339(item.params.get("created") or None)
        filters = {"key_alias": alias} if alias else {}
        for page in range(1, MAX_PAGES + 1):
            body = obj(self._client().call("GET", LIST_PATH, params={
                "return_full_object": "true", "page": str(page), "size": "100", **filters}).body)
            rows = body.get("keys")
            listed = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
            for row in listed:
                same = (text(row, "key_alias") == alias if alias
                        else created is not None and rfc3339(row.get("created_at")) == created)
                if same and text(row, "token"):
                    return text(row, "token")
            total = body.get("total_pages")
            if not listed or not isinstance(total, int) or page >= total:
                return None
        return None

    def _current_token(self, item: RotationItem, facts: Mapping[str, str]) -> str:
        for token in (facts.get("new_key_id"), item.key_id):
            if token and self._info(token) is not None:
                return token
        found = self._find_row(item)
        if found is None:
            raise StepFailed(f"{item.name}: cannot find the key in LiteLLM any more (deleted?)")
        return found

    def _regenerate(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        token = self._current_token(item, state.facts)
        reply: Json = None
        try:
            got = self._client().call("POST", f"/key/{token}/regenerate", body={},
                                      accept=range(400, 600))
        except StepFailed as exc:  # unreachable mid-call: the outcome is unknown
            why = str(exc)
        else:
            if 400 <= got.status < 500:
                raise StepFailed(f"regenerate {item.name}: LiteLLM refused (HTTP {got.status}); "
                                 "nothing changed")
            reply = got.body if got.status < 400 else None
            why = f"HTTP {got.status}"
        if reply is None:
            if self._info(token) is not None:
                raise StepFailed(f"regenerate {item.name}: {why}; the key was not regenerated")
            # LiteLLM replaced the secret but the answer was lost: get one we can see
            token = self._current_token(item, state.facts)
            reply = self._client().call("POST", f"/key/{token}/regenerate", body={}).body
        value = text(reply, "key")
        if value is None:
            raise StepFailed(f"regenerate {item.name}: the answer has no new key; check the "
                             "key in LiteLLM and update its copies by hand")
        secret = Secret(value)
        state.scratch.put(scratch_name(item), secret)
        return {"new_key_id": token_of(secret),
                "new_fingerprint": self._ctx.fingerprinter.fingerprint(secret)}

    def _secret(self, item: RotationItem, state: StepState) -> Secret:
        """The new secret; regenerated again when a crash lost it before any copy held it."""
        found = recover(self._ctx, item, state)
        if found is not None:
            return found
        state.note(self._regenerate(item, state))
        again = state.scratch.get(scratch_name(item))
        if again is None:  # pragma: no cover - _regenerate always stores it
            raise StepFailed(f"store {item.name}: the new key is not in memory")
        return again


PLUGIN: type[Rotator] = LiteLLMRotator
