"""Anthropic API keys: assisted rotation (the Admin API cannot create keys).

A person creates the new key in the Console, in the same workspace, and supplies it
(``--from-keyring NAME`` or ``--stdin``, see :mod:`keyguard.rotation.supply`). Then:

1. ``prepare``: the supplied key must classify as ``anthropic-api`` and differ from the old
   one; its id is found in ``GET /v1/organizations/api_keys`` by ``partial_key_hint``
   (first 16 + last 4 characters, computed from the value in memory). A key that no listed
   hint matches belongs to another organization (or was mistyped) and is refused, as is
   one in another workspace than the old key, or an inactive one. The old key must still
   be active. Nothing changes before this step passes.
2. ``store:N``: each copy is rewritten in place (previous version journaled first).
3. ``verify``: ``GET /v1/models`` with ``x-api-key: <new key>`` must answer 200.
4. ``deactivate-old``: ``POST /v1/organizations/api_keys/{id}`` with ``status: inactive``
   (reversible: rollback sets it active again).

After the grace period a later run archives the old key (``delete-old``: status
``archived``; the Admin API has no delete, and archiving is treated as terminal), unless
someone re-activated it meanwhile.

Least privilege: an Admin API key (``sk-ant-admin01-...``, ``ANTHROPIC_ADMIN_KEY`` or
``[sources.anthropic] admin-key``) to list and update keys; the new key itself for verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from keyguard.model import KeyRecord, KeyStatus
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import RotationItem, Skipped, StoreCopy
from keyguard.rotation.rotators import Rotator
from keyguard.rotation.rotators._provider import (
    AssistedRotator,
    Json,
    ProviderApi,
    copies_problem,
    detail,
    obj,
    store_steps,
    text,
)
from keyguard.rotation.supply import SUPPLY_PARAM
from keyguard.secret import Secret

KIND = "anthropic-api"
KEYS_PATH = "/v1/organizations/api_keys"
MODELS_PATH = "/v1/models"
#: Pages are capped so a server that keeps answering has_more cannot loop forever.
MAX_PAGES = 1000


def hint_of(value: str) -> str:
    """The ``partial_key_hint`` the Admin API shows for a key value."""
    return f"{value[:16]}...{value[-4:]}"


def _workspace(raw: Mapping[str, Json]) -> str:
    scope = obj(raw.get("scope"))
    return text(scope, "workspace_id") or text(raw, "workspace_id") or "default"


class AnthropicRotator(AssistedRotator):
    """Rotates standard Anthropic API keys with a supplied new key."""

    name: ClassVar[str] = "anthropic"

    def __init__(self, ctx: RotationContext) -> None:
        super().__init__(ctx)
        self._api: ProviderApi | None = None

    # -- planning (pure) ---------------------------------------------------------------------

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Active standard keys listed by the anthropic source."""
        return (key.source == cls.name and key.kind == KIND and bool(key.key_id)
                and key.status is KeyStatus.ACTIVE)

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """Steps for one key; skipped without a stored copy."""
        problem = copies_problem(copies)
        if problem is not None:
            return Skipped(key.identity, problem)
        steps = ("prepare", *store_steps(copies), "verify", "deactivate-old")
        risk = "medium" if len(copies) > 1 else "low"
        return RotationItem(
            token=token, action="rotate", rotator=cls.name, subject=key.identity, name=key.name,
            key_id=key.key_id, principal=str(key.key_id), reason=reason, steps=steps,
            copies=tuple(copies), risk=f"{risk} (assisted: create the new key in the Console "
            "first; the old key is deactivated, reversibly)", account=key.account,
            params={SUPPLY_PARAM: KIND, "workspace": detail(key, "workspace") or "default"})

    # -- provider calls ----------------------------------------------------------------------

    def _client(self) -> ProviderApi:
        if self._api is None:
            from keyguard.sources._http import ApiError, base_url, credential
            from keyguard.sources.anthropic import API_VERSION, DEFAULT_BASE_URL

            cfg = self._ctx.config.sources.anthropic
            try:
                admin = credential(cfg.admin_key, "ANTHROPIC_ADMIN_KEY",
                                   "[sources.anthropic] admin-key")
            except ApiError as exc:
                raise StepFailed(f"anthropic: {exc.message}") from None
            self._api = ProviderApi(
                self._ctx, base_url(cfg.base_url, "ANTHROPIC_BASE_URL", DEFAULT_BASE_URL),
                {"x-api-key": admin, "anthropic-version": API_VERSION}, cfg, "anthropic")
        return self._api

    def _keys(self) -> list[Mapping[str, Json]]:
        found: list[Mapping[str, Json]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            params = {"limit": "1000", **({"after_id": after} if after else {})}
            page = obj(self._client().call("GET", KEYS_PATH, params=params).body)
            data = page.get("data")
            if isinstance(data, list):
                found.extend(d for d in data if isinstance(d, dict))
            last = text(page, "last_id")
            if page.get("has_more") is not True or last is None or last == after:
                return found
            after = last
        raise StepFailed(f"anthropic GET {KEYS_PATH}: more than {MAX_PAGES} pages")

    def _key(self, key_id: str) -> Mapping[str, Json] | None:
        reply = self._client().call("GET", f"{KEYS_PATH}/{key_id}", accept=(404,))
        return None if reply.status == 404 else obj(reply.body)

    def _set_status(self, key_id: str, status: str) -> None:
        self._client().call("POST", f"{KEYS_PATH}/{key_id}", body={"status": status})

    def match(self, item: RotationItem, secret: Secret) -> str:
        """The supplied key's id, found by its hint among the organization's keys."""
        keys = self._keys()
        old = next((k for k in keys if text(k, "id") == item.key_id), None)
        if old is None or text(old, "status") != "active":
            state = "missing" if old is None else text(old, "status") or "unknown"
            raise StepFailed(f"prepare {item.name}: the old key is {state} now; plan again")
        hint = hint_of(secret.reveal())
        found = [k for k in keys if text(k, "partial_key_hint") == hint and k is not old]
        if not found:
            raise StepFailed(f"prepare {item.name}: the supplied key is not one of this "
                             "organization's API keys (no listed key has its hint); create it in "
                             "the same organization's Console; nothing changed")
        if len(found) > 1:
            raise StepFailed(f"prepare {item.name}: {len(found)} keys share the supplied key's "
                             "hint; cannot tell which it is; nothing changed")
        new = found[0]
        new_id = text(new, "id") or "?"
        if text(new, "status") != "active":
            raise StepFailed(f"prepare {item.name}: the supplied key {new_id} is "
                             f"{text(new, 'status') or 'not active'}; nothing changed")
        if _workspace(new) != _workspace(old):
            raise StepFailed(f"prepare {item.name}: the supplied key {new_id} is in workspace "
                             f"{_workspace(new)}, the old key in {_workspace(old)}; consumers "
                             "would change workspace; nothing changed")
        return new_id

    def verify(self, item: RotationItem, secret: Secret) -> Mapping[str, str]:
        """``GET /v1/models`` with the new key."""
        reply = self._client().call("GET", MODELS_PATH, headers={"x-api-key": secret},
                                    accept=(401, 403))
        if reply.status in (401, 403):
            raise StepFailed(f"verify {item.name}: Anthropic refused the new key "
                             f"(HTTP {reply.status})")
        return {"verified": f"GET {MODELS_PATH}"}

    def deactivate(self, item: RotationItem) -> Mapping[str, str]:
        """Set the old key inactive (already inactive or archived: nothing to do)."""
        old = str(item.key_id)
        raw = self._key(old)
        status = text(raw, "status") if raw is not None else "missing"
        if status == "active":
            self._set_status(old, "inactive")
            status = "inactive"
        return {"old_status": status or "unknown"}

    def undo_deactivate(self, item: RotationItem) -> None:
        """Set the old key active again if this rotation made it inactive."""
        raw = self._key(str(item.key_id))
        if raw is not None and text(raw, "status") == "inactive":
            self._set_status(str(item.key_id), "active")

    def delete_old(self, item: RotationItem) -> Mapping[str, str]:
        """Archive the old key after the grace period, unless it is active again."""
        old = str(item.key_id)
        raw = self._key(old)
        status = text(raw, "status") if raw is not None else None
        if status == "active":
            raise StepFailed(f"archive {item.name}: the old key is active again; not archiving")
        if status not in (None, "archived"):
            self._set_status(old, "archived")
        return {"deleted": old}


PLUGIN: type[Rotator] = AnthropicRotator
