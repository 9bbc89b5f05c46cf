"""LiteLLM canaries: a virtual key with a zero budget and no model access, and its last use.

``POST /key/generate`` with ``max_budget: 0`` and the proxy's ``no-default-models`` model
list makes a key that authenticates but can spend nothing and reach no model. The proxy
stores only the key's sha256 (``token``), which is the canary's identifier: the same hash
appears in spend logs, so ``keyguard usage scan`` and ``canary check --usage`` match it.
``GET /key/info`` gives ``last_active`` and ``spend``; either set means the key was used.

Authentication is the proxy master key: ``[sources.litellm] admin-key`` (a reference) or
``LITELLM_MASTER_KEY``; the URL is ``[sources.litellm] base-url`` or ``LITELLM_BASE_URL``.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keyguard.config import LiteLLMConfig
from keyguard.errors import SourceError, UsageError
from keyguard.secret import Secret
from keyguard.sources._http import (
    ApiError,
    Endpoint,
    Json,
    JsonClient,
    base_url,
    bearer,
    credential,
    obj,
    rfc3339,
)

#: LiteLLM's special model name: the key may call no model at all.
NO_MODELS = "no-default-models"
_AUTH_HINT = ("check LITELLM_MASTER_KEY (or [sources.litellm] admin-key): creating and "
              "deleting keys needs the master key")


@dataclass(frozen=True, slots=True)
class LiteLLMUse:
    """What the proxy says about a key's use."""

    when: datetime | None
    spend: float = 0.0

    @property
    def used(self) -> bool:
        """Any recorded activity or spend."""
        return self.when is not None or self.spend > 0


def token_of(key: Secret) -> str:
    """The proxy's identifier of a key: sha256 hex of the key text."""
    return hashlib.sha256(key.reveal().encode()).hexdigest()


class LiteLLMCanaries:
    """Creates, inspects and deletes canary virtual keys on one proxy."""

    def __init__(self, cfg: LiteLLMConfig) -> None:
        self._cfg = cfg
        self.url = base_url(cfg.base_url, "LITELLM_BASE_URL", "")
        if not self.url:
            raise UsageError("no LiteLLM proxy URL: LITELLM_BASE_URL is not set",
                             "export LITELLM_BASE_URL or set [sources.litellm] base-url")
        try:
            self._auth = bearer(credential(cfg.admin_key, "LITELLM_MASTER_KEY",
                                           "[sources.litellm] admin-key"))
        except ApiError as exc:
            raise UsageError(exc.message, exc.hint) from None

    def create(self, alias: str) -> tuple[str, Secret]:
        """Create the key; returns (token hash, key). The key is only for planting."""
        body = self._post("/key/generate", {"key_alias": alias, "max_budget": 0.0,
                                             "models": [NO_MODELS], "metadata": {}})
        raw = obj(body).get("key")
        if not isinstance(raw, str) or not raw:
            raise SourceError("litellm", self.url, "POST /key/generate: no key in the answer",
                              "check the proxy version")
        key = Secret(raw)
        return token_of(key), key

    def delete(self, token: str) -> None:
        """Delete the key by its hash; an already deleted key is fine."""
        try:
            self._post("/key/delete", {"keys": [token]})
        except SourceError as exc:
            if "HTTP 404" not in exc.message and "not found" not in exc.message.lower():
                raise

    def last_use(self, token: str) -> LiteLLMUse:
        """``GET /key/info``: last activity and spend of the key."""
        client = JsonClient(Endpoint(self.url, {"authorization": self._auth}, _AUTH_HINT),
                            self._cfg)
        try:
            info = obj(obj(client.get("/key/info", {"key": token})).get("info"))
        except ApiError as exc:
            raise SourceError("litellm", self.url, exc.message, exc.hint) from None
        spend = info.get("spend")
        return LiteLLMUse(rfc3339(info.get("last_active")),
                          float(spend) if isinstance(spend, int | float) else 0.0)

    def _post(self, path: str, payload: Mapping[str, object]) -> Json:
        request = urllib.request.Request(  # noqa: S310  (URL from config/env, http(s) only)
            f"{self.url}{path}", data=json.dumps(payload).encode(), method="POST",
            headers={"content-type": "application/json", "accept": "application/json",
                     "user-agent": "keyguard", "authorization": self._auth.reveal()})
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"LiteLLM URL {self.url!r} is not http(s)")
        try:
            with urllib.request.urlopen(request, timeout=float(self._cfg.timeout or 30)) as resp:  # noqa: S310
                data: Json = json.loads(resp.read() or b"null")
                return data
        except urllib.error.HTTPError as exc:
            hint = _AUTH_HINT if exc.code in (401, 403) else "check the proxy's logs"
            raise SourceError("litellm", self.url, f"POST {path}: HTTP {exc.code}", hint) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceError("litellm", self.url, f"POST {path}: cannot reach the proxy "
                              f"({type(exc).__name__})", "check LITELLM_BASE_URL") from None
