"""The ``openai`` source: admin keys and every project's API keys of an OpenAI organization.

Calls, all paginated with ``after``/``has_more``/``last_id`` and authenticated with an admin
key (``sk-admin-...``, read scope is enough):

* ``GET /organization/admin_api_keys`` - the organization's admin keys (kind ``openai-admin``);
* ``GET /organization/projects`` (``include_archived=false`` unless configured), then per
  project ``GET .../api_keys`` (kind ``openai-project``, or ``openai-svcacct`` when a service
  account owns the key) and ``GET .../service_accounts``, whose role is added to the
  scope of the keys they own.

Timestamps are unix seconds. ``last_used_at`` becomes ``last_used``; the owner is the
user's email (project keys), the service account's name, or the admin key owner's name.
``redacted_value`` (``sk-abc...def``) is kept as a keyed fingerprint in ``links`` (its
last 4 characters as ``hint=...``), and the ``key_...`` id goes into ``key_id``: usage and cost reports carry that id.

A rejected key (401) stops the source with one failure; a refused or broken project is one
failure for that project and the others are still read.
"""

from __future__ import annotations

import urllib.parse
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
    bearer,
    credential,
    items,
    link_hint,
    obj,
    text,
    unix,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ADMIN_KEYS = "/organization/admin_api_keys"
PROJECTS = "/organization/projects"
MAX_PAGES = 10_000
_AUTH_HINT = ("check OPENAI_ADMIN_KEY (or [sources.openai] admin-key): it must be an admin key "
              "(sk-admin-...) with read access to api keys and projects")


class OpenAISource:
    """Admin keys, project keys and service accounts of one OpenAI organization."""

    name: ClassVar[str] = "openai"
    description: ClassVar[str] = "OpenAI admin keys and project API keys (Admin API)"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.openai

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield admin keys, then each project's keys; failures per endpoint or project."""
        url = base_url(self._cfg.base_url, "OPENAI_BASE_URL", DEFAULT_BASE_URL)
        try:
            key = credential(self._cfg.admin_key, "OPENAI_ADMIN_KEY", "[sources.openai] admin-key")
        except ApiError as exc:
            yield SourceFailure(self.name, url, exc.message, exc.hint)
            return
        client = JsonClient(Endpoint(url, {"authorization": bearer(key)}, _AUTH_HINT), self._cfg)
        try:
            admin = [self._admin_record(raw) for raw in self._list(client, ADMIN_KEYS, {})]
        except ApiError as exc:
            yield SourceFailure(self.name, "admin keys", exc.message, exc.hint)
            if exc.status == 401:
                return  # the key itself is bad: every other call would say the same
        else:
            yield from (r for r in admin if r is not None)
            self._ctx.progress(self.name, f"{len(admin)} admin keys")
        try:
            projects = self._projects(client)
        except ApiError as exc:
            yield SourceFailure(self.name, "projects", exc.message, exc.hint)
            return
        for project in projects:
            pid = text(project, "id") or "?"
            try:
                yield from self._project(client, project)
            except ApiError as exc:
                yield SourceFailure(self.name, f"project {pid}", exc.message, exc.hint)
                if exc.status == 401:
                    return

    def _projects(self, client: JsonClient) -> list[Mapping[str, Json]]:
        wanted = set(self._cfg.projects)
        listed = self._list(client, PROJECTS, {"include_archived": self._cfg.include_archived})
        found = [p for p in listed if text(p, "id") and (not wanted or text(p, "id") in wanted)]
        missing = wanted - {text(p, "id") for p in found}
        if missing:
            raise ApiError(f"configured projects not found: {', '.join(sorted(missing))}",
                           "check [sources.openai] projects (archived projects need include-archived)")
        return found

    def _project(self, client: JsonClient, project: Mapping[str, Json]) -> Iterator[KeyRecord]:
        pid = text(project, "id") or "?"
        base = f"{PROJECTS}/{urllib.parse.quote(pid, safe='')}"
        accounts = {text(sa, "id"): sa for sa in self._list(client, f"{base}/service_accounts", {})}
        keys = self._list(client, f"{base}/api_keys", {})
        for raw in keys:
            record = self._project_record(raw, project, accounts)
            if record is not None:
                yield record
        self._ctx.progress(self.name, f"project {pid}: {len(keys)} keys, {len(accounts)} service accounts")

    def _list(self, client: JsonClient, path: str,
              params: Mapping[str, str | int | bool]) -> list[Mapping[str, Json]]:
        found: list[Mapping[str, Json]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = client.get(path, {**params, "limit": self._cfg.page_size, "after": after})
            found.extend(items(page, "data"))
            last = text(page, "last_id")
            if obj(page).get("has_more") is not True or last is None or last == after:
                return found
            after = last
        raise ApiError(f"GET {path}: more than {MAX_PAGES} pages", "raise page-size")

    def _admin_record(self, raw: Mapping[str, Json]) -> KeyRecord | None:
        key_id = text(raw, "id")
        if key_id is None:
            return None
        owner = obj(raw.get("owner"))
        details = [f"owner-role={text(owner, 'role')}"] if text(owner, "role") else []
        return self._record(raw, key_id, location=f"openai:admin/{key_id}", kind="openai-admin",
                            owner=text(owner, "name") or text(owner, "email") or text(owner, "id"),
                            labels=("organization", "admin"), details=details, call=f"GET {ADMIN_KEYS}")

    def _project_record(self, raw: Mapping[str, Json], project: Mapping[str, Json],
                        accounts: Mapping[str | None, Mapping[str, Json]]) -> KeyRecord | None:
        key_id = text(raw, "id")
        if key_id is None:
            return None
        pid = text(project, "id") or "?"
        owner = obj(raw.get("owner"))
        owner_type = text(owner, "type") or "unknown"
        details = [f"project={pid}"]
        if text(project, "name"):
            details.append(f"project-name={text(project, 'name')}")
        if text(project, "status") and text(project, "status") != "active":
            details.append(f"project-status={text(project, 'status')}")
        details.append(f"owner-type={owner_type}")
        if owner_type == "service_account":
            account = obj(owner.get("service_account"))
            listed = accounts.get(text(account, "id"), account)
            who = text(listed, "name") or text(account, "id")
            details.append(f"service-account={text(account, 'id') or '?'}")
            if text(listed, "role"):
                details.append(f"service-account-role={text(listed, 'role')}")
            kind = "openai-svcacct"
        else:
            user = obj(owner.get("user"))
            who = text(user, "email") or text(user, "name") or text(user, "id")
            if text(user, "role"):
                details.append(f"owner-role={text(user, 'role')}")
            kind = "openai-project"
        access = text(raw, "owner_project_access")
        if access:
            details.append(f"owner-project-access={access}")
        return self._record(raw, key_id, location=f"openai:{pid}/{key_id}", kind=kind, owner=who,
                            labels=("project",), details=details,
                            call=f"GET {PROJECTS}/{{project}}/api_keys",
                            inactive=access == "inactive")

    def _record(self, raw: Mapping[str, Json], key_id: str, *, location: str, kind: str,
                owner: str | None, labels: tuple[str, ...], details: list[str], call: str,
                inactive: bool = False) -> KeyRecord:
        """Build a record; fields shared by admin and project keys are read the same way."""
        source_call = f"openai:{call}"
        created = unix(raw.get("created_at"))
        last_used = unix(raw.get("last_used_at"))
        expires = unix(raw.get("expires_at"))
        status = KeyStatus.ACTIVE
        if expires is not None and expires <= self._ctx.now:
            status = KeyStatus.EXPIRED
        elif inactive:  # the owner lost access to the project: the key no longer works
            status = KeyStatus.INACTIVE
        links = link_hint(text(raw, "redacted_value"), self._ctx.fingerprinter, details)
        provenance = {"status": source_call, "scope": source_call}
        for name, value in (("created", created), ("last_used", last_used), ("expires", expires),
                            ("owner", owner)):
            if value is not None:
                provenance[name] = source_call
        return KeyRecord(
            source=self.name, location=location, name=text(raw, "name") or key_id,
            provider=Provider("openai"), kind=Kind(kind), key_id=key_id, owner=owner,
            status=status, created=created, last_used=last_used, expires=expires,
            scope=Scope(labels=labels, details=tuple(details)), links=links,
            provenance=provenance,
        )


PLUGIN: type[Source] = OpenAISource
