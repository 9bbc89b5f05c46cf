"""OpenAI project API keys: assisted rotation (the Admin API can neither create nor disable them).

A person creates the new key in the same project and supplies it (``--from-keyring NAME``
or ``--stdin``, see :mod:`keyguard.rotation.supply`). Then:

1. ``prepare``: the supplied key must classify as ``openai-project`` (a user's project key)
   and differ from the old one; its id is found in
   ``GET /organization/projects/{project}/api_keys`` by ``redacted_value``. OpenAI does not
   document its masking rule (provider-formats.md §2.3), so the first 6 + last 4
   characters are tried first, then the last 4 alone, accepted only when exactly one
   other key of the project ends that way. No match means another project or
   organization: refused. The old key must still be listed. Nothing changes before this
   step passes.
2. ``store:N``: each copy is rewritten in place (previous version journaled first).
3. ``verify``: ``GET /models`` with ``Authorization: Bearer <new key>`` must answer 200.
4. ``deactivate-old``: ``DELETE .../api_keys/{id}``. OpenAI has no disable, so the old key
   is deleted, irreversibly; the plan's risk says so, and the step runs only after every
   copy holds the new, verified key (and after consumer hooks).

Service-account keys are not rotated: the API refuses to delete them (and the new key
would have to come from the service account's own endpoint); admin keys are out of scope.

Least privilege: an admin key (``sk-admin-...``, ``OPENAI_ADMIN_KEY`` or ``[sources.openai]
admin-key``) with write access to project API keys; the new key itself for verify.
"""

from __future__ import annotations

import urllib.parse
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
    obj,
    store_steps,
    text,
)
from keyguard.rotation.supply import SUPPLY_PARAM
from keyguard.secret import Secret

KIND = "openai-project"
SERVICE_ACCOUNT_KIND = "openai-svcacct"
PROJECTS = "/organization/projects"
MODELS_PATH = "/models"
MAX_PAGES = 1000


def redacted_of(value: str) -> str:
    """The ``redacted_value`` assumed for a key value (first 6 + last 4 characters)."""
    return f"{value[:6]}...{value[-4:]}"


def project_of(record: KeyRecord) -> str:
    """The project id from the record's location ``openai:{project}/{key id}``."""
    return record.location.removeprefix("openai:").split("/", 1)[0]


class OpenAIRotator(AssistedRotator):
    """Rotates OpenAI project keys with a supplied new key; the old one is deleted."""

    name: ClassVar[str] = "openai"
    final_steps: ClassVar[frozenset[str]] = frozenset({"deactivate-old"})
    #: The old key is deleted at once: nothing for a grace-period cleanup to do.
    old_fact: ClassVar[str] = "replaced_key_id"

    def __init__(self, ctx: RotationContext) -> None:
        super().__init__(ctx)
        self._api: ProviderApi | None = None

    # -- planning (pure) ---------------------------------------------------------------------

    @classmethod
    def claims(cls, key: KeyRecord) -> bool:
        """Active project keys (user- or service-account-owned) listed by the openai source."""
        return (key.source == cls.name and key.kind in (KIND, SERVICE_ACCOUNT_KIND)
                and bool(key.key_id) and key.status is KeyStatus.ACTIVE
                and key.location.startswith("openai:proj"))

    @classmethod
    def plan(cls, key: KeyRecord, copies: Sequence[StoreCopy], keys: Sequence[KeyRecord],
             token: str, reason: str) -> RotationItem | Skipped:
        """Steps for one key; skipped for service-account keys or without a stored copy."""
        if key.kind == SERVICE_ACCOUNT_KIND:
            return Skipped(key.identity, "OpenAI service-account keys cannot be deleted through "
                           "the admin API; rotate it by hand (new service-account key, then "
                           "delete the account's old key in the dashboard)")
        problem = copies_problem(copies)
        if problem is not None:
            return Skipped(key.identity, problem)
        steps = ("prepare", *store_steps(copies), "verify", "deactivate-old")
        return RotationItem(
            token=token, action="rotate", rotator=cls.name, subject=key.identity, name=key.name,
            key_id=key.key_id, principal=project_of(key), reason=reason, steps=steps,
            copies=tuple(copies), risk="medium (assisted: create the new key in the project "
            "first; OpenAI cannot disable keys, so the old key is deleted, irreversibly, "
            "once the new one is stored and verified)", account=key.account,
            params={SUPPLY_PARAM: KIND, "project": project_of(key)})

    # -- provider calls ----------------------------------------------------------------------

    def _client(self) -> ProviderApi:
        if self._api is None:
            from keyguard.sources._http import ApiError, base_url, bearer, credential
            from keyguard.sources.openai import DEFAULT_BASE_URL

            cfg = self._ctx.config.sources.openai
            try:
                admin = credential(cfg.admin_key, "OPENAI_ADMIN_KEY", "[sources.openai] admin-key")
            except ApiError as exc:
                raise StepFailed(f"openai: {exc.message}") from None
            self._api = ProviderApi(self._ctx, base_url(cfg.base_url, "OPENAI_BASE_URL",
                                                        DEFAULT_BASE_URL),
                                    {"authorization": bearer(admin)}, cfg, "openai")
        return self._api

    @staticmethod
    def _keys_path(item: RotationItem) -> str:
        return f"{PROJECTS}/{urllib.parse.quote(item.params.get('project', ''), safe='')}/api_keys"

    def _keys(self, item: RotationItem) -> list[Mapping[str, Json]]:
        found: list[Mapping[str, Json]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            params = {"limit": "100", **({"after": after} if after else {})}
            page = obj(self._client().call("GET", self._keys_path(item), params=params).body)
            data = page.get("data")
            if isinstance(data, list):
                found.extend(d for d in data if isinstance(d, dict))
            last = text(page, "last_id")
            if page.get("has_more") is not True or last is None or last == after:
                return found
            after = last
        raise StepFailed(f"openai GET {self._keys_path(item)}: more than {MAX_PAGES} pages")

    def match(self, item: RotationItem, secret: Secret) -> str:
        """The supplied key's id, found by its redacted value among the project's keys."""
        keys = self._keys(item)
        old = next((k for k in keys if text(k, "id") == item.key_id), None)
        if old is None:
            raise StepFailed(f"prepare {item.name}: the old key is no longer listed; plan again")
        value = secret.reveal()
        others = [k for k in keys if k is not old]
        found = [k for k in others if text(k, "redacted_value") == redacted_of(value)]
        if not found:  # NOTE: the masking rule is undocumented: fall back to the last 4
            tail = [k for k in others if (text(k, "redacted_value") or "").endswith(value[-4:])]
            found = tail if len(tail) == 1 else []
        project = item.params.get("project", "?")
        if len(found) != 1:
            raise StepFailed(f"prepare {item.name}: the supplied key is not "
                             f"{'one of' if not found else 'identifiable among'} project "
                             f"{project}'s keys; create it in that project; nothing changed")
        new = found[0]
        if text(new, "owner_project_access") == "inactive":
            raise StepFailed(f"prepare {item.name}: the supplied key's owner has no access to "
                             f"project {project}; nothing changed")
        return text(new, "id") or "?"

    def verify(self, item: RotationItem, secret: Secret) -> Mapping[str, str]:
        """``GET /models`` with the new key."""
        from keyguard.sources._http import bearer

        reply = self._client().call("GET", MODELS_PATH, headers={"authorization": bearer(secret)},
                                    accept=(401, 403))
        if reply.status in (401, 403):
            raise StepFailed(f"verify {item.name}: OpenAI refused the new key "
                             f"(HTTP {reply.status})")
        return {"verified": f"GET {MODELS_PATH}"}

    def deactivate(self, item: RotationItem) -> Mapping[str, str]:
        """Delete the old key (already gone: nothing to do)."""
        path = f"{self._keys_path(item)}/{urllib.parse.quote(str(item.key_id), safe='')}"
        reply = self._client().call("DELETE", path, accept=(404,))
        return {"old_status": "deleted" if reply.status != 404 else "already deleted"}

    def undo_deactivate(self, item: RotationItem) -> None:
        """Nothing: a deleted OpenAI key cannot be restored (deactivate-old is final)."""


PLUGIN: type[Rotator] = OpenAIRotator
