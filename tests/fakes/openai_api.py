"""A fake OpenAI Admin API: admin keys, projects, project API keys and service accounts.

Project keys can be listed and deleted (there is no create or disable endpoint, and
deleting a service account's key fails, as provider-formats.md §2.3 says); tests add a key
the way a person does in the dashboard (:meth:`FakeOpenAIApi.dashboard_create`). ``GET
/v1/models`` answers any existing project key (the cheap call rotation verifies with).
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from keyguard.fakes import fake_key
from tests.fakes import Answer, FakeApi, Request, int_param, page_after


@dataclass(frozen=True, slots=True)
class SeededProject:
    """One project and what it holds."""

    id: str
    name: str
    archived: bool
    keys: list[dict[str, object]]
    accounts: list[dict[str, object]]
    values: dict[str, str]  # key id -> the secret a store copy would hold


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def redact(value: str) -> str:
    """OpenAI's ``redacted_value`` style: a short prefix and the last four characters."""
    return f"{value[:6]}...{value[-4:]}"


def seed(rng: random.Random, now: datetime) -> tuple[list[dict[str, object]], list[SeededProject]]:
    """Three admin keys and six projects (one archived) with user and service-account keys."""
    admin: list[dict[str, object]] = [{
        "object": "organization.admin_api_key", "id": f"key_admin{i}", "name": f"admin-{i}",
        "redacted_value": redact(fake_key("openai-admin", rng)),
        "created_at": _ts(now - timedelta(days=100 + i)),
        "last_used_at": _ts(now - timedelta(hours=i + 1)) if i else None,
        "expires_at": _ts(now + timedelta(days=30)) if i == 2 else None,
        "owner": {"type": "user", "object": "organization.user", "id": f"user_{i}",
                  "name": f"Owner {i}", "created_at": _ts(now - timedelta(days=900)), "role": "owner"},
    } for i in range(3)]
    projects: list[SeededProject] = []
    for p in range(6):
        pid = f"proj_{p:03d}"
        accounts: list[dict[str, object]] = [{"object": "organization.project.service_account", "id": f"svc_acct_{p}_{a}",
                     "name": f"bot-{p}-{a}", "role": "member" if a else "owner",
                     "created_at": _ts(now - timedelta(days=50))} for a in range(2)]
        keys: list[dict[str, object]] = []
        values: dict[str, str] = {}
        for k in range(p * 3 + 1):  # 1, 4, 7, ... keys: some projects span pages
            kid = f"key_{p}_{k:02d}"
            account = k % 3 == 2
            value = fake_key("openai-svcacct" if account else "openai-project", rng)
            values[kid] = value
            owner: dict[str, object] = (
                {"type": "service_account", "service_account": {
                    "id": accounts[k % 2]["id"], "name": accounts[k % 2]["name"],
                    "role": accounts[k % 2]["role"], "created_at": accounts[k % 2]["created_at"]}}
                if account else
                {"type": "user", "user": {"id": f"user_{k}", "email": f"dev{k}@example.com",
                                          "name": f"Dev {k}", "role": "member",
                                          "created_at": _ts(now - timedelta(days=300))}})
            keys.append({
                "object": "organization.project.api_key", "id": kid, "name": f"{pid}-key-{k}",
                "redacted_value": redact(value), "created_at": _ts(now - timedelta(days=k + 1)),
                "last_used_at": _ts(now - timedelta(minutes=k)) if k % 2 else None,
                "expires_at": _ts(now - timedelta(days=1)) if k == 5 else None,
                "owner": owner,
                "owner_project_access": "inactive" if k == 3 else "active",
            })
        projects.append(SeededProject(pid, f"team-{p}", p == 5, keys, accounts, values))
    return admin, projects


class FakeOpenAIApi(FakeApi):
    """Serves the seed to ``Authorization: Bearer <admin_key>``.

    NOTE: like the real API, a rejected key is quoted back in the 401 message (the real one
    masks the middle; this fake echoes it whole to prove keyguard scrubs it).
    """

    def __init__(self, admin_key: str, admin: list[dict[str, object]],
                 projects: list[SeededProject]) -> None:
        super().__init__()
        self.admin_key = admin_key
        self.admin = admin
        self.projects = projects
        self.forbidden_projects: set[str] = set()
        #: Refuse every key on /v1/models (a new key revoked before it is verified).
        self.refuse_models = False
        self._seed = copy.deepcopy((admin, projects))

    def reset(self) -> None:
        """Also undo what earlier tests changed: keys created or deleted."""
        super().reset()
        self.admin, self.projects = copy.deepcopy(self._seed)
        self.refuse_models = False

    def dashboard_create(self, project_id: str, value: str, name: str) -> str:
        """Add a user-owned key to a project, as a person in the dashboard would; its id."""
        project = next(p for p in self.projects if p.id == project_id)
        kid = f"key_new{sum(len(p.keys) for p in self.projects):04d}"
        project.values[kid] = value
        project.keys.append({
            "object": "organization.project.api_key", "id": kid, "name": name,
            "redacted_value": redact(value), "created_at": 1764000000, "last_used_at": None,
            "owner": {"type": "user", "user": {"id": "user_9", "email": "ops@example.com",
                                               "name": "Ops", "role": "owner",
                                               "created_at": 1700000000}},
            "owner_project_access": "active"})
        return kid

    def key_ids(self, project_id: str) -> list[str]:
        """Ids of the project's keys now."""
        return [str(k["id"]) for p in self.projects if p.id == project_id for k in p.keys]

    def authorized(self, request: Request) -> Answer | None:
        auth = request.headers.get("authorization", "")
        if request.path == "/v1/models" and request.method == "GET":
            given = auth.removeprefix("Bearer ")
            if not self.refuse_models and any(given == v for p in self.projects
                                              for v in p.values.values()):
                return None
            return Answer(401, {"error": {"message": "Incorrect API key provided.",
                                          "type": "invalid_request_error", "param": None,
                                          "code": "invalid_api_key"}})
        if auth != f"Bearer {self.admin_key}":
            given = auth.removeprefix("Bearer ")
            return Answer(401, {"error": {"message": f"Incorrect API key provided: {given}.",
                                          "type": "invalid_request_error", "param": None,
                                          "code": "invalid_api_key"}})
        return None

    def route(self, request: Request) -> Answer:
        limit = int_param(request.query, "limit", 20, 1, 100)
        if limit is None:
            return Answer(400, {"error": {"message": "limit must be 1-100", "type": "invalid_request_error"}})
        after = request.query.get("after")
        path = request.path
        if path == "/v1/models":
            return Answer(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model",
                                                            "owned_by": "openai"}]})
        one = re.fullmatch(r"/v1/organization/projects/([^/]+)/api_keys/([^/]+)", path)
        if one is not None and request.method == "DELETE":
            return self._delete(one.group(1), one.group(2))
        if path == "/v1/organization/admin_api_keys":
            return self._list(self.admin, after, limit)
        if path == "/v1/organization/projects":
            archived = request.query.get("include_archived") == "true"
            listed: list[dict[str, object]] = [{"object": "organization.project", "id": p.id, "name": p.name,
                       "created_at": 1711471533, "archived_at": 1711471600 if p.archived else None,
                       "status": "archived" if p.archived else "active"}
                      for p in self.projects if archived or not p.archived]
            return self._list(listed, after, limit)
        match = re.fullmatch(r"/v1/organization/projects/([^/]+)/(api_keys|service_accounts)", path)
        project = next((p for p in self.projects if match and p.id == match.group(1)), None)
        if match is None or project is None:
            return Answer(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        if project.id in self.forbidden_projects:
            return Answer(403, {"error": {"message": "insufficient permissions", "type": "invalid_request_error"}})
        return self._list(project.keys if match.group(2) == "api_keys" else project.accounts, after, limit)

    def _delete(self, project_id: str, key_id: str) -> Answer:
        project = next((p for p in self.projects if p.id == project_id), None)
        key = next((k for k in project.keys if k["id"] == key_id), None) if project else None
        if project is None or key is None:
            return Answer(404, {"error": {"message": f"No such API key: {key_id}",
                                          "type": "invalid_request_error"}})
        owner = key.get("owner")
        if isinstance(owner, dict) and owner.get("type") == "service_account":
            return Answer(400, {"error": {"message": "Cannot delete a service account's API key",
                                          "type": "invalid_request_error"}})
        project.keys.remove(key)
        project.values.pop(key_id, None)
        return Answer(200, {"object": "organization.project.api_key.deleted", "id": key_id,
                            "deleted": True})

    @staticmethod
    def _list(data: list[dict[str, object]], after: str | None, limit: int) -> Answer:
        chunk, more = page_after(data, after, limit)
        return Answer(200, {"object": "list", "data": chunk, "has_more": more,
                            "first_id": chunk[0]["id"] if chunk else None,
                            "last_id": chunk[-1]["id"] if chunk else None})
