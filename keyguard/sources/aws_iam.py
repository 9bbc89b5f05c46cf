"""The ``aws-iam`` source: every IAM user's access keys, root keys and service credentials.

IAM is global, so this source runs once per account scope, not once per region. One
paginated ``GetAccountAuthorizationDetails`` call gives every user with tags, inline,
attached and group policies, which become a :class:`Scope` (``admin``,
``wildcard-actions``, ``iam-write``, ``service-scoped``, ``read-only``,
``no-permissions``). Key ids and creation times come from ``ListAccessKeys`` per user.
Last use comes from the credential report when it is fresh enough (one call for the
whole account, and it also shows root keys), otherwise from ``GetAccessKeyLastUsed`` per
key; both fan out over the bounded pool. An access key id is public, so ``key_id`` lets
the inventory join an IAM key with a copy of it stored in Secrets Manager or SSM.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from keyguard.model import (
    KeyRecord,
    KeyStatus,
    Kind,
    Provider,
    RotationSettings,
    Scope,
    SourceFailure,
)
from keyguard.sources import Source, SourceContext
from keyguard.sources._aws import (
    AWS_ERRORS,
    AwsRunner,
    CallError,
    Item,
    Unit,
    is_unsupported,
    labels_from_tags,
    parse_time,
    tag_map,
    utc,
)

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient
    from types_boto3_iam.literals import EntityTypeType
    from types_boto3_iam.type_defs import (
        AccessKeyMetadataTypeDef,
        ServiceSpecificCredentialMetadataTypeDef,
    )

AWS = Provider("aws")
ACCESS_KEY = Kind("aws-access-key")
BEDROCK_KEY = Kind("aws-bedrock-api-key")
SERVICE_CREDENTIAL = Kind("aws-service-credential")
ROOT_USER = "<root_account>"

_STATUS = {"Active": KeyStatus.ACTIVE, "Inactive": KeyStatus.INACTIVE, "Expired": KeyStatus.EXPIRED}
_READ_VERBS = ("get", "list", "describe", "batchget", "query", "scan", "search", "select",
               "view", "lookup", "head")
#: AWS managed policies summarised by name: their documents are not fetched (hundreds of them).
_AWS_MANAGED: Mapping[str, tuple[str, ...]] = {
    "AdministratorAccess": ("admin", "wildcard-actions", "iam-write"),
    "PowerUserAccess": ("wildcard-actions",),
    "IAMFullAccess": ("iam-write", "wildcard-actions", "service-scoped"),
    "ReadOnlyAccess": ("read-only",),
    "ViewOnlyAccess": ("read-only",),
    "SecurityAudit": ("read-only",),
}


@dataclass(slots=True)
class _User:
    name: str
    arn: str
    tags: dict[str, str]
    scope: Scope
    via: str  # the call that listed the user, its tags and (when read) its policies


@dataclass(slots=True)
class _ScopeBuilder:
    """Collects labels and the evidence for each, in first-seen order."""

    labels: dict[str, None] = field(default_factory=dict)
    details: dict[str, None] = field(default_factory=dict)
    actions: int = 0
    services: set[str] = field(default_factory=set)
    any_wildcard_service: bool = False
    only_reads: bool = True
    opaque: bool = False  # a policy we could not analyse (unknown AWS managed policy)
    refs: dict[str, None] = field(default_factory=dict)  # policies with Allow statements

    def add(self, label: str, detail: str) -> None:
        self.labels.setdefault(label)
        self.details.setdefault(f"{label}: {detail}")

    def build(self) -> Scope:
        via = "; ".join(self.refs)
        if self.actions and not self.any_wildcard_service:
            self.add("service-scoped", f"{', '.join(sorted(self.services))} only ({via})")
        if self.actions and self.only_reads and "admin" not in self.labels:
            self.add("read-only", f"only Get/List/Describe-type actions ({via})")
        if not self.actions and not self.labels and not self.opaque:
            self.add("no-permissions", "no Allow statement in any attached, inline or group policy")
        return Scope(labels=tuple(self.labels), details=tuple(self.details))


class AwsIamSource:
    """IAM access keys of every user (and root), with last use and a permission summary."""

    name: ClassVar[str] = "aws-iam"
    description: ClassVar[str] = "AWS IAM user access keys, root keys and service-specific credentials"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.aws_iam

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per access key or service credential, and per-account failures."""
        runner = AwsRunner(self.name, self._ctx)
        yield from runner.run(lambda unit: self._account(runner, unit), per_region=False,
                              probe=("iam", lambda c: c.list_users(MaxItems=1)))

    # -- one account -------------------------------------------------------------------------

    def _account(self, runner: AwsRunner, unit: Unit) -> Iterator[Item]:
        client = runner.iam(unit)
        users, failures = self._users(runner, unit, client)
        yield from failures
        report = self._report(runner, unit, client) if self._cfg.use_credential_report else None

        def keys_of(user: _User) -> tuple[list[KeyRecord], list[Exception]]:
            return self._keys(unit, client, user, report)

        errors: list[Exception] = []
        failed_users: list[CallError[_User]] = []
        for outcome in runner.map(keys_of, users):
            if isinstance(outcome, CallError):
                failed_users.append(outcome)
                continue
            records, problems = outcome
            errors.extend(problems)
            yield from records
        if failed_users:
            yield runner.item_failures(unit.scope, "ListAccessKeys", failed_users, len(users))
        if errors:
            yield runner.item_failures(unit.scope, "reading last use (GetAccessKeyLastUsed)",
                                       [CallError("", e) for e in errors], len(errors))
        yield from self._root(runner, unit, client, report)
        yield from self._service_credentials(runner, unit, client, users)

    def _users(self, runner: AwsRunner, unit: Unit, client: IAMClient) -> tuple[list[_User], list[SourceFailure]]:
        """Every user with tags and a scope, from GetAccountAuthorizationDetails.

        When that call is denied or missing, users come from ListUsers + ListUserTags and
        the scope is left empty, with one failure saying why (and one more when the tags
        cannot be read either).
        """
        wanted: list[EntityTypeType] = (["User", "Group", "LocalManagedPolicy"] if self._cfg.policies
                                        else ["User"])
        try:
            users_raw: list[Mapping[str, object]] = []
            groups: dict[str, Mapping[str, object]] = {}
            managed: dict[str, tuple[str, object]] = {}
            pages = client.get_paginator("get_account_authorization_details").paginate(
                Filter=wanted)
            for page in pages:
                users_raw.extend(page.get("UserDetailList", []))
                for group in page.get("GroupDetailList", []):
                    groups[str(group.get("GroupName", ""))] = group
                for policy in page.get("Policies", []):
                    doc = next((v.get("Document") for v in policy.get("PolicyVersionList", [])
                                if v.get("IsDefaultVersion")), None)
                    managed[str(policy.get("Arn", ""))] = (str(policy.get("PolicyName", "")), doc)
        except AWS_ERRORS as exc:
            users, tag_errors = self._users_without_policies(runner, client)
            failure = runner.failure(unit.scope, exc)
            hint = "grant iam:GetAccountAuthorizationDetails so keyguard can summarise permissions"
            failures = [SourceFailure(failure.source, failure.scope,
                                      failure.message + "; key scopes are unknown", hint)]
            if tag_errors:
                failures.append(runner.item_failures(
                    unit.scope, "reading user tags (ListUserTags)", tag_errors, len(users)))
            return users, failures
        out: list[_User] = []
        for raw in users_raw:
            tags = tag_map(_dicts(raw.get("Tags")))
            scope = _user_scope(raw, groups, managed) if self._cfg.policies else Scope()
            out.append(_User(str(raw.get("UserName", "")), str(raw.get("Arn", "")), tags, scope,
                             "iam:GetAccountAuthorizationDetails"))
        return out, []

    def _users_without_policies(self, runner: AwsRunner, client: IAMClient) -> tuple[list[_User], list[CallError[tuple[str, str]]]]:
        plain: list[tuple[str, str]] = []
        for page in client.get_paginator("list_users").paginate():
            plain.extend((u["UserName"], u["Arn"]) for u in page.get("Users", []))

        def tags_of(user: tuple[str, str]) -> dict[str, str]:
            return tag_map(client.list_user_tags(UserName=user[0]).get("Tags", []))

        users: list[_User] = []
        errors: list[CallError[tuple[str, str]]] = []
        for (name, arn), tags in zip(plain, runner.map(tags_of, plain), strict=True):
            if isinstance(tags, CallError):
                errors.append(tags)
            users.append(_User(name, arn, {} if isinstance(tags, CallError) else tags, Scope(),
                               "iam:ListUserTags"))
        return users, errors

    def _report(self, runner: AwsRunner, unit: Unit, client: IAMClient) -> dict[str, Mapping[str, str]] | None:
        """Return the credential report's rows by user, or None when absent, stale or denied.

        A missing or stale report triggers GenerateCredentialReport without waiting, so
        the next run within the freshness window gets it; this run falls back to
        per-key GetAccessKeyLastUsed calls.
        """
        max_age = timedelta(hours=self._cfg.credential_report_max_age_hours)
        try:
            got = client.get_credential_report()
            generated = utc(got.get("GeneratedTime"))
            fresh = generated is not None and self._ctx.now - generated <= max_age
            content = got.get("Content", b"")
        except AWS_ERRORS:
            fresh, content = False, b""
        if not fresh:
            with contextlib.suppress(*AWS_ERRORS):  # only an optimisation for the next run
                client.generate_credential_report()
            self._ctx.progress(self.name, f"{unit.scope}: no fresh credential report; "
                               "reading last use key by key")
            return None
        return parse_credential_report(content.decode("utf-8", "replace"))

    def _keys(self, unit: Unit, client: IAMClient, user: _User,
              report: Mapping[str, Mapping[str, str]] | None) -> tuple[list[KeyRecord], list[Exception]]:
        metas = client.list_access_keys(UserName=user.name).get("AccessKeyMetadata", [])
        row = report.get(user.name) if report is not None else None
        records: list[KeyRecord] = []
        errors: list[Exception] = []
        for meta in metas:
            key_id = meta.get("AccessKeyId", "")
            created = utc(meta.get("CreateDate"))
            used = _report_last_used(row, created) if row is not None else None
            source = "iam:GetCredentialReport"
            if used is None:
                source = "iam:GetAccessKeyLastUsed"
                try:
                    last = client.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
                    used = (utc(last.get("LastUsedDate")),
                            _detail(last.get("Region"), last.get("ServiceName")))
                except AWS_ERRORS as exc:
                    errors.append(exc)
                    used = (None, None)
                    source = ""
            records.append(self._key_record(unit, user, meta, used, source))
        return records, errors

    def _key_record(self, unit: Unit, user: _User, meta: AccessKeyMetadataTypeDef,
                    used: tuple[datetime | None, str | None], used_source: str) -> KeyRecord:
        key_id = meta.get("AccessKeyId", "")
        created = utc(meta.get("CreateDate"))
        owner, _env = labels_from_tags(user.tags, self._ctx.config.labels)
        provenance = {"created": "iam:ListAccessKeys", "status": "iam:ListAccessKeys",
                      "last_rotated": "iam:ListAccessKeys (an access key is rotated by replacing it)",
                      "owner": f"{user.via} (owner tag)" if owner else "IAM user name"}
        if user.scope.labels or user.scope.details:
            provenance["scope"] = user.via
        if user.tags:
            provenance["tags"] = user.via
        if used_source:
            provenance["last_used"] = used_source
        return KeyRecord(
            source=self.name,
            location=f"{user.arn}:access-key/{key_id}",
            name=f"{user.name}/{key_id}",
            provider=AWS,
            kind=ACCESS_KEY,
            key_id=key_id,
            account=unit.account.account_id,
            owner=owner or user.name,
            tags=user.tags,
            status=_STATUS.get(str(meta.get("Status", "")), KeyStatus.UNKNOWN),
            created=created,
            last_rotated=created,
            last_used=used[0],
            last_used_detail=used[1],
            rotation=RotationSettings(supported=False),
            scope=user.scope,
            provenance=provenance,
        )

    def _root(self, runner: AwsRunner, unit: Unit, client: IAMClient,
              report: Mapping[str, Mapping[str, str]] | None) -> Iterator[Item]:
        """Root access keys: from the report's root row, else GetAccountSummary's flag."""
        account = unit.account.account_id
        root_arn = f"arn:{unit.account.partition}:iam::{account or ''}:root"
        scope = Scope(labels=("root", "admin", "wildcard-actions", "iam-write"),
                      details=("root: the account root user can do anything, and no policy limits it",))
        base = KeyRecord(source=self.name, location=f"{root_arn}:access-key", name=ROOT_USER,
                         provider=AWS, kind=ACCESS_KEY, account=account, owner=ROOT_USER,
                         rotation=RotationSettings(supported=False), scope=scope)
        if report is not None:
            row = report.get(ROOT_USER)
            for slot in (1, 2):
                if row is None or row.get(f"access_key_{slot}_active", "").lower() != "true":
                    continue
                created = parse_time(row.get(f"access_key_{slot}_last_rotated"))
                yield _replace_root(base, slot, created, _row_last_used(row, slot))
            return
        try:
            summary = client.get_account_summary().get("SummaryMap", {})
        except AWS_ERRORS as exc:
            yield _losing(runner.failure(unit.scope, exc), "root access keys unknown")
            return
        if summary.get("AccountAccessKeysPresent", 0):
            yield dataclasses.replace(base, location=f"{root_arn}:access-key/unknown",
                                      status=KeyStatus.ACTIVE,
                                      provenance={"status": "iam:GetAccountSummary"})

    def _service_credentials(self, runner: AwsRunner, unit: Unit, client: IAMClient,
                             users: Sequence[_User]) -> Iterator[Item]:
        """Service-specific credentials (Bedrock API keys, CodeCommit...) of every user."""
        creds: list[ServiceSpecificCredentialMetadataTypeDef] = []
        try:
            marker: str | None = None
            while True:
                page = (client.list_service_specific_credentials(AllUsers=True, Marker=marker)
                        if marker else client.list_service_specific_credentials(AllUsers=True))
                creds.extend(page.get("ServiceSpecificCredentials", []))
                marker = page.get("Marker") if page.get("IsTruncated") else None
                if not marker:
                    break
        except AWS_ERRORS as exc:
            if is_unsupported(exc):
                # NOTE: moto answers 500 NotImplemented here; that is not a coverage gap of
                # the account, so it is a progress note rather than a failure.
                self._ctx.progress(self.name, f"{unit.scope}: the endpoint does not implement "
                                   "ListServiceSpecificCredentials; service credentials skipped")
                return
            yield _losing(runner.failure(unit.scope, exc),
                          "service-specific credentials (Bedrock API keys...) not listed")
            return
        by_name = {u.name: u for u in users}
        for cred in creds:
            user = by_name.get(cred.get("UserName", ""))
            yield self._credential_record(unit, cred, user)

    def _credential_record(self, unit: Unit, cred: ServiceSpecificCredentialMetadataTypeDef,
                           user: _User | None) -> KeyRecord:
        service = cred.get("ServiceName", "")
        user_name = cred.get("UserName", "")
        cred_id = cred.get("ServiceSpecificCredentialId", "")
        tags = user.tags if user else {}
        owner, _env = labels_from_tags(tags, self._ctx.config.labels)
        arn = user.arn if user else f"arn:{unit.account.partition}:iam::{unit.account.account_id or ''}:user/{user_name}"
        return KeyRecord(
            source=self.name,
            location=f"{arn}:service-credential/{cred_id}",
            name=f"{user_name}/{cred.get('ServiceCredentialAlias') or service}",
            provider=AWS,
            kind=BEDROCK_KEY if service.startswith("bedrock") else SERVICE_CREDENTIAL,
            key_id=cred_id,
            account=unit.account.account_id,
            owner=owner or user_name,
            tags=tags,
            status=_STATUS.get(str(cred.get("Status", "")), KeyStatus.UNKNOWN),
            created=utc(cred.get("CreateDate")),
            expires=utc(cred.get("ExpirationDate")),
            rotation=RotationSettings(supported=False),
            scope=Scope(labels=("service-scoped",), details=(f"service-scoped: {service} only",)),
            provenance={"created": "iam:ListServiceSpecificCredentials",
                        "expires": "iam:ListServiceSpecificCredentials"},
        )


def _losing(failure: SourceFailure, consequence: str) -> SourceFailure:
    """Say in a failure which feature an optional call's absence costs (the run goes on)."""
    return dataclasses.replace(failure, message=f"{failure.message}; {consequence}")


# -- credential report -----------------------------------------------------------------------


def parse_credential_report(text: str) -> dict[str, Mapping[str, str]]:
    """Parse the credential report CSV into rows keyed by user (``<root_account>`` included)."""
    reader = csv.DictReader(io.StringIO(text))
    return {row["user"]: row for row in reader if row.get("user")}


def _row_last_used(row: Mapping[str, str], slot: int) -> tuple[datetime | None, str | None]:
    return (parse_time(row.get(f"access_key_{slot}_last_used_date")),
            _detail(row.get(f"access_key_{slot}_last_used_region"),
                    row.get(f"access_key_{slot}_last_used_service")))


def _report_last_used(row: Mapping[str, str], created: datetime | None) -> tuple[datetime | None, str | None] | None:
    """Return the last use of the key created at ``created``; None unless one slot matches.

    NOTE: the report has no key ids; ``access_key_N_last_rotated`` is the creation time
    of the key in slot N, at one-second precision, which is what joins a slot to a key.
    Two keys created within the same second are ambiguous: the caller then asks
    GetAccessKeyLastUsed rather than guess.
    """
    if created is None:
        return None
    slots = [slot for slot in (1, 2)
             if (rotated := parse_time(row.get(f"access_key_{slot}_last_rotated"))) is not None
             and abs((rotated - created).total_seconds()) < 2]
    return _row_last_used(row, slots[0]) if len(slots) == 1 else None


def _detail(region: str | None, service: str | None) -> str | None:
    """Format last-use detail as ``region/service``, dropping AWS's N/A sentinels."""
    parts = [p for p in (region, service) if p and p not in ("N/A", "not_supported", "no_information")]
    return "/".join(parts) or None


def _replace_root(base: KeyRecord, slot: int, created: datetime | None,
                  used: tuple[datetime | None, str | None]) -> KeyRecord:
    return dataclasses.replace(
        base, location=f"{base.location}/{slot}", name=f"{ROOT_USER}/access_key_{slot}",
        status=KeyStatus.ACTIVE, created=created, last_rotated=created, last_used=used[0],
        last_used_detail=used[1],
        provenance={"created": "iam:GetCredentialReport", "last_used": "iam:GetCredentialReport"})


# -- scope summary -------------------------------------------------------------------------------


def _user_scope(user: Mapping[str, object], groups: Mapping[str, Mapping[str, object]],
                managed: Mapping[str, tuple[str, object]]) -> Scope:
    """Summarise a user's inline, attached and group policies into Scope labels."""
    builder = _ScopeBuilder()
    _add_entity(builder, user, managed, "")
    for group_name in _strings(user.get("GroupList")):
        group = groups.get(group_name)
        if group is not None:
            _add_entity(builder, group, managed, f"group {group_name} ")
    boundary = user.get("PermissionsBoundary")
    if isinstance(boundary, dict) and boundary.get("PermissionsBoundaryArn"):
        builder.details.setdefault(f"boundary: {boundary['PermissionsBoundaryArn']} (not applied to labels)")
    return builder.build()


def _add_entity(builder: _ScopeBuilder, entity: Mapping[str, object],
                managed: Mapping[str, tuple[str, object]], via: str) -> None:
    for inline in _dicts(entity.get("UserPolicyList") or entity.get("GroupPolicyList")):
        _add_document(builder, inline.get("PolicyDocument"), f"{via}inline {inline.get('PolicyName', '?')}")
    for attached in _dicts(entity.get("AttachedManagedPolicies")):
        arn = str(attached.get("PolicyArn", ""))
        name = str(attached.get("PolicyName", arn.rsplit("/", 1)[-1]))
        if arn in managed:
            _add_document(builder, managed[arn][1], f"{via}managed {name}")
        else:
            _add_aws_managed(builder, name, f"{via}AWS managed {name}")


def _add_aws_managed(builder: _ScopeBuilder, name: str, ref: str) -> None:
    """Label an AWS managed policy by its well-known name (its document is not fetched)."""
    labels = _AWS_MANAGED.get(name)
    if labels is None and name.endswith("ReadOnlyAccess"):
        labels = ("read-only", "service-scoped")
    elif labels is None and name.endswith("FullAccess"):
        labels = ("wildcard-actions", "service-scoped")
    if labels is None:
        builder.opaque = True
        builder.details.setdefault(f"unanalysed: {ref}")
        return
    for label in labels:
        builder.add(label, ref)


def _add_document(builder: _ScopeBuilder, document: object, ref: str) -> None:
    """Fold one policy document's Allow statements into the builder."""
    doc = _parse_document(document)
    if doc is None:
        builder.opaque = True
        builder.details.setdefault(f"unanalysed: {ref} (unreadable document)")
        return
    statements = doc.get("Statement", [])
    for stmt in statements if isinstance(statements, list) else [statements]:
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
            continue
        resources = _strings(stmt.get("Resource")) or (["*"] if "NotResource" in stmt else [])
        if "NotAction" in stmt:
            builder.actions += 1
            builder.any_wildcard_service = True
            builder.only_reads = False
            builder.add("wildcard-actions", f"{ref} (NotAction)")
            continue
        for action in _strings(stmt.get("Action")):
            builder.refs.setdefault(ref)
            _add_action(builder, action.strip().lower(), resources, ref, action)


def _add_action(builder: _ScopeBuilder, action: str, resources: Sequence[str], ref: str, shown: str) -> None:
    builder.actions += 1
    service, _, verb = action.partition(":")
    if action in ("*", "*:*"):
        builder.any_wildcard_service = True
        builder.only_reads = False
        builder.add("wildcard-actions", f"{ref} ({shown})")
        builder.add("iam-write", f"{ref} ({shown})")
        if "*" in resources:
            builder.add("admin", f"{ref} (Action {shown} on Resource *)")
        return
    builder.services.add(service)
    if verb == "*" or (verb.endswith("*") and not verb.startswith(_READ_VERBS)):
        builder.only_reads = False
        if verb == "*":
            builder.add("wildcard-actions", f"{ref} ({shown})")
    elif not verb.startswith(_READ_VERBS):
        builder.only_reads = False
    if service == "iam" and not verb.startswith(_READ_VERBS):
        builder.add("iam-write", f"{ref} ({shown})")


def _parse_document(document: object) -> dict[str, object] | None:
    """Return a policy document as a dict: boto3 decodes them, but raw URL-encoded JSON is accepted."""
    if isinstance(document, str):
        try:
            document = json.loads(urllib.parse.unquote(document))
        except ValueError:
            return None
    if isinstance(document, dict):
        return {str(k): v for k, v in document.items()}
    return None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _dicts(value: object) -> list[Mapping[str, object]]:
    if isinstance(value, list):
        return [{str(k): v for k, v in item.items()} for item in value if isinstance(item, dict)]
    return []


PLUGIN: type[Source] = AwsIamSource
