"""The ``anthropic`` source: every standard API key of a Claude Console organization.

One paginated call, ``GET /v1/organizations/api_keys`` (``after_id``/``has_more``/
``last_id``, up to 1000 per page), with an Admin API key (``sk-ant-admin01-...``). Two
generations of the key object exist and both are read: the classic one places a key with
``workspace_id`` (``null`` = the default workspace); the newer one has ``scope`` (workspace
or organization), ``principal`` (the user or service account a key is bound to), the
``expired`` status and ``expires_at``. Unknown fields and statuses are kept, not refused.

What the API cannot tell: the key object has no last-used time (that needs the usage
report), and Admin API keys themselves are never listed, so the admin key keyguard uses
is not in this inventory (only a store holding a copy of it shows it).

The record's ``key_id`` is the ``apikey_...`` id that usage reports carry, and the
``partial_key_hint`` (first 16 + last 4 characters) is kept only as a keyed fingerprint in
``links`` (and its last 4 characters as ``hint=...`` in ``scope.details``), which is how a
stored copy is matched to its provider key without keyguard keeping part of the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

from keyguard.model import KeyRecord, KeyStatus, Kind, Provider, Scope, SourceFailure
from keyguard.sources import Source, SourceContext
from keyguard.sources._http import (
    ApiError,
    Endpoint,
    Json,
    JsonClient,
    base_url,
    credential,
    items,
    link_hint,
    obj,
    rfc3339,
    text,
)

LIST_PATH = "/v1/organizations/api_keys"
LIST_CALL = f"anthropic:GET {LIST_PATH}"
API_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"
#: Pages are capped so a server that keeps answering has_more cannot loop forever.
MAX_PAGES = 10_000

_STATUS = {
    "active": KeyStatus.ACTIVE,
    "inactive": KeyStatus.INACTIVE,
    "archived": KeyStatus.DELETED,  # terminal as far as the docs say
    "expired": KeyStatus.EXPIRED,
}
_AUTH_HINT = ("check ANTHROPIC_ADMIN_KEY (or [sources.anthropic] admin-key): it must be an "
              "Admin API key (sk-ant-admin01-...) of an organization admin")


class AnthropicSource:
    """Standard API keys of one Anthropic organization, through the Admin API."""

    name: ClassVar[str] = "anthropic"
    description: ClassVar[str] = "Anthropic Console API keys (Admin API; admin keys are not listed)"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.anthropic

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per API key; any API failure is one failure and ends the source."""
        url = base_url(self._cfg.base_url, "ANTHROPIC_BASE_URL", DEFAULT_BASE_URL)
        try:
            key = credential(self._cfg.admin_key, "ANTHROPIC_ADMIN_KEY",
                             "[sources.anthropic] admin-key")
            client = JsonClient(Endpoint(url, {"x-api-key": key, "anthropic-version": API_VERSION},
                                         _AUTH_HINT), self._cfg)
            count = 0
            for page in self._pages(client):
                for raw in items(page, "data"):
                    record = self._record(raw)
                    if record is not None:
                        count += 1
                        yield record
            self._ctx.progress(self.name, f"{count} API keys")
        except ApiError as exc:
            yield SourceFailure(self.name, url, exc.message, exc.hint)

    def _pages(self, client: JsonClient) -> Iterator[Json]:
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = client.get(LIST_PATH, {"limit": self._cfg.page_size, "after_id": after})
            yield page
            last = text(page, "last_id")
            if obj(page).get("has_more") is not True or last is None or last == after:
                return
            after = last
        raise ApiError(f"GET {LIST_PATH}: more than {MAX_PAGES} pages", "raise page-size")

    def _record(self, raw: Mapping[str, Json]) -> KeyRecord | None:
        key_id = text(raw, "id")
        if key_id is None:
            return None
        status_text = text(raw, "status") or ""
        status = _STATUS.get(status_text, KeyStatus.UNKNOWN)
        expires = rfc3339(raw.get("expires_at"))
        if status is KeyStatus.ACTIVE and expires is not None and expires <= self._ctx.now:
            status = KeyStatus.EXPIRED  # the API marks it lazily; the clock is authoritative
        labels, details = _scope(raw)
        hint = text(raw, "partial_key_hint")
        links = link_hint(hint, self._ctx.fingerprinter, details)
        if status is KeyStatus.UNKNOWN and status_text:
            details.append(f"status={status_text}")
        creator = obj(raw.get("created_by"))
        owner = text(creator, "id")
        provenance = {"status": LIST_CALL, "scope": LIST_CALL}
        created = rfc3339(raw.get("created_at"))
        if created is not None:
            provenance["created"] = LIST_CALL
        if expires is not None:
            provenance["expires"] = LIST_CALL
        if owner is not None:
            provenance["owner"] = f"{LIST_CALL} (created_by)"
            details.append(f"created-by={text(creator, 'type') or 'unknown'}:{owner}")
        return KeyRecord(
            source=self.name,
            location=f"anthropic:{key_id}",
            name=text(raw, "name") or key_id,
            provider=Provider("anthropic"),
            kind=Kind("anthropic-api"),
            key_id=key_id,
            owner=owner,
            status=status,
            created=created,
            expires=expires,
            scope=Scope(labels=tuple(labels), details=tuple(details)),
            links=links,
            provenance=provenance,
        )


def _scope(raw: Mapping[str, Json]) -> tuple[list[str], list[str]]:
    """Labels and details from either schema generation.

    Newer objects carry ``scope``; classic ones only ``workspace_id`` where ``null`` means
    the default workspace (whose id the classic API never shows).
    """
    labels: list[str] = []
    details: list[str] = []
    scope = raw.get("scope")
    if isinstance(scope, dict):
        kind = text(scope, "type") or "unknown"
        labels.append(kind if kind in ("workspace", "organization") else f"scope-{kind}")
        workspace = text(scope, "workspace_id")
        if workspace:
            details.append(f"workspace={workspace}")
    elif "workspace_id" in raw:
        labels.append("workspace")
        details.append(f"workspace={text(raw, 'workspace_id') or 'default'}")
    principal = obj(raw.get("principal"))
    if principal:
        ptype = text(principal, "type") or "unknown"
        pid = text(principal, "user_id") or text(principal, "service_account_id") or "?"
        details.append(f"principal={ptype}:{pid}")
    return labels, details


PLUGIN: type[Source] = AnthropicSource
