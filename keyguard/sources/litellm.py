"""The ``litellm`` source: virtual keys of a LiteLLM proxy (gateway).

``GET /key/list?return_full_object=true`` pages through every key the credential may see
(``page``/``size``, at most 100 per page; ``total_pages`` says when to stop). Proxies that
ignore ``return_full_object`` answer with bare key hashes; for those, each key is read with
``GET /key/info?key=<hash>``. Authentication is ``Authorization: Bearer`` with the master key
(or any key allowed to call ``/key/list``).

The proxy stores only ``token``, the sha256 of the key, which is not a secret: it becomes
``key_id`` (spend logs carry the same hash, see the reference's join table). ``key_name``
(``sk-...abcd``) is a display hint; it is not kept (the token hash in ``links`` joins). Budgets,
spend and allowed models are scope facts; an empty model list means every model the proxy
serves, labelled ``full-access``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import ClassVar

from keyguard.model import (
    KeyRecord,
    KeyStatus,
    Kind,
    Provider,
    RotationSettings,
    Scope,
    SourceFailure,
)
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext
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
    text,
)

LIST_PATH = "/key/list"
INFO_PATH = "/key/info"
MAX_PAGES = 10_000
#: /key/list accepts at most this many keys per page.
MAX_PAGE_SIZE = 100
_AUTH_HINT = ("check LITELLM_MASTER_KEY (or [sources.litellm] admin-key): use the master key "
              "or a key allowed to call /key/list")
_DURATION = re.compile(r"(\d+)\s*([smhdw]|mo)")
_DAYS_PER_UNIT = {"s": 1 / 86400, "m": 1 / 1440, "h": 1 / 24, "d": 1.0, "w": 7.0, "mo": 30.0}


class LiteLLMSource:
    """Virtual keys of one LiteLLM proxy, with budgets, models and owners."""

    name: ClassVar[str] = "litellm"
    description: ClassVar[str] = "LiteLLM proxy virtual keys (/key/list, /key/info)"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.litellm

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per virtual key; an API failure is one failure for the proxy."""
        url = base_url(self._cfg.base_url, "LITELLM_BASE_URL", "")
        if not url:
            yield SourceFailure(self.name, "", "no proxy URL: LITELLM_BASE_URL is not set",
                                "export LITELLM_BASE_URL or set [sources.litellm] base-url")
            return
        try:
            key = credential(self._cfg.admin_key, "LITELLM_MASTER_KEY", "[sources.litellm] admin-key")
            client = JsonClient(Endpoint(url, {"authorization": bearer(key)}, _AUTH_HINT), self._cfg)
            count = 0
            for raw in self._keys(client):
                record = self._record(raw)
                if record is not None:
                    count += 1
                    yield record
            self._ctx.progress(self.name, f"{count} virtual keys")
        except ApiError as exc:
            yield SourceFailure(self.name, url, exc.message, exc.hint)

    def _keys(self, client: JsonClient) -> Iterator[Mapping[str, Json]]:
        size = min(self._cfg.page_size, MAX_PAGE_SIZE)
        for page_no in range(1, MAX_PAGES + 1):
            page = obj(client.get(LIST_PATH, {"return_full_object": True, "page": page_no,
                                              "size": size}))
            keys = page.get("keys")
            listed = keys if isinstance(keys, list) else []
            for entry in listed:
                if isinstance(entry, dict):
                    yield entry
                elif isinstance(entry, str) and entry:
                    # NOTE: an older proxy that ignores return_full_object lists hashes only.
                    yield self._info(client, entry)
            total = page.get("total_pages")
            if not listed or not isinstance(total, int) or page_no >= total:
                return
        raise ApiError(f"GET {LIST_PATH}: more than {MAX_PAGES} pages", "raise page-size")

    def _info(self, client: JsonClient, token: str) -> Mapping[str, Json]:
        answer = obj(client.get(INFO_PATH, {"key": token}))
        info = dict(obj(answer.get("info")))
        info.setdefault("token", text(answer, "key") or token)
        return info

    def _record(self, raw: Mapping[str, Json]) -> KeyRecord | None:
        token = text(raw, "token")
        if token is None:
            return None
        call = f"litellm:GET {LIST_PATH}"
        expires = rfc3339(raw.get("expires"))
        blocked = raw.get("blocked") is True
        status = KeyStatus.ACTIVE
        if expires is not None and expires <= self._ctx.now:
            status = KeyStatus.EXPIRED
        elif blocked:
            status = KeyStatus.INACTIVE
        user, team = text(raw, "user_id"), text(raw, "team_id")
        owner = user or (f"team:{team}" if team else None)
        listed = raw.get("models")
        models = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
        details: list[str] = []
        for label, field in (("alias", "key_alias"), ("user", "user_id"),
                             ("team", "team_id"), ("organization", "organization_id"),
                             ("budget-duration", "budget_duration")):
            if text(raw, field):
                details.append(f"{label}={text(raw, field)}")
        for label, field in (("spend", "spend"), ("max-budget", "max_budget"),
                             ("tpm-limit", "tpm_limit"), ("rpm-limit", "rpm_limit")):
            number = raw.get(field)
            if isinstance(number, int | float) and not isinstance(number, bool):
                details.append(f"{label}={number:g}")
        details.append(f"models={','.join(models)}" if models else "models=all")
        if blocked:
            details.append("blocked=true")
        created = rfc3339(raw.get("created_at"))
        last_used = rfc3339(raw.get("last_active"))
        changed = rfc3339(raw.get("updated_at"))
        rotated = rfc3339(raw.get("last_rotation_at"))
        provenance = {"status": call, "scope": call}
        for name, value in (("created", created), ("last_used", last_used), ("expires", expires),
                            ("last_changed", changed), ("last_rotated", rotated), ("owner", owner)):
            if value is not None:
                provenance[name] = call
        metadata = obj(raw.get("metadata"))
        return KeyRecord(
            source=self.name,
            location=f"litellm:{token}",
            name=text(raw, "key_alias") or text(raw, "key_name") or token[:12],
            provider=Provider("litellm"),
            kind=Kind("litellm-virtual"),
            key_id=token,
            # the token is SHA-256 of the key: a stored copy's links hold the same fingerprint
            links=(self._ctx.fingerprinter.fingerprint(Secret(token)),),
            owner=owner,
            tags={k: v for k, v in metadata.items() if isinstance(v, str)},
            status=status,
            created=created,
            last_changed=changed,
            last_rotated=rotated,
            last_used=last_used,
            expires=expires,
            rotation=_rotation(raw),
            scope=Scope(labels=() if models else ("full-access",), details=tuple(details)),
            provenance=provenance,
        )


def _rotation(raw: Mapping[str, Json]) -> RotationSettings:
    """LiteLLM's own auto-rotation (``auto_rotate``, ``rotation_interval`` such as "30d")."""
    interval = text(raw, "rotation_interval")
    days = _days(interval) if interval else None
    enabled = raw.get("auto_rotate")
    return RotationSettings(
        supported=True,
        enabled=enabled if isinstance(enabled, bool) else None,
        interval_days=days,
        schedule=interval,
        next_rotation=rfc3339(raw.get("key_rotation_at")),
    )


def _days(duration: str) -> int | None:
    """Whole days of a LiteLLM duration ("30d", "2w", "1mo", "24h"); None if unreadable."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None:
        return None
    return max(1, round(int(match.group(1)) * _DAYS_PER_UNIT[match.group(2)]))


PLUGIN: type[Source] = LiteLLMSource
