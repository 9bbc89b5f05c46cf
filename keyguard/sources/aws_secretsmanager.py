"""The ``aws-secretsmanager`` source: every Secrets Manager secret in every region and account.

Metadata comes from ``ListSecrets`` alone (one paginated call per region: creation,
rotation, last change/access, tags, deletion, KMS key), which is all the least-privilege
``secretsmanager:ListSecrets`` permission allows. With ``--inspect-values`` the values are
read with ``BatchGetSecretValue`` (20 per call), falling back to concurrent
``GetSecretValue`` where the batch API is denied or missing, and each value goes straight
into :func:`keyguard.classify.inspect_value` inside a :class:`Secret`; only the resulting
classification and fingerprint leave this module.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from keyguard.classify import inspect_value
from keyguard.model import KeyRecord, KeyStatus, RotationSettings, Scope, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext
from keyguard.sources._aws import (
    AwsRunner,
    CallError,
    Item,
    Unit,
    account_from_arn,
    tag_map,
    utc,
)

if TYPE_CHECKING:
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_secretsmanager.type_defs import (
        BatchGetSecretValueResponseTypeDef,
        SecretListEntryTypeDef,
    )

LIST_CALL = "secretsmanager:ListSecrets"
BATCH_SIZE = 20  # BatchGetSecretValue's maximum SecretIdList length
_RATE_DAYS = re.compile(r"rate\(\s*(\d+)\s+days?\s*\)")


class AwsSecretsManagerSource:
    """Secrets Manager secrets: metadata always, classification with ``inspect_values``."""

    name: ClassVar[str] = "aws-secretsmanager"
    description: ClassVar[str] = "AWS Secrets Manager secrets in every configured account and region"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.aws_secretsmanager

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per secret (or per credential inside it) and per-region failures."""
        runner = AwsRunner(self.name, self._ctx)
        yield from runner.run(lambda unit: self._region(runner, unit),
                              probe=("secretsmanager", lambda c: c.list_secrets(MaxResults=1)))

    def _region(self, runner: AwsRunner, unit: Unit) -> Iterator[Item]:
        client = runner.secretsmanager(unit)
        entries: list[SecretListEntryTypeDef] = []
        pages = client.get_paginator("list_secrets").paginate(
            IncludePlannedDeletion=self._cfg.include_planned_deletion,
            PaginationConfig={"PageSize": 100},
        )
        for page in pages:
            entries.extend(page.get("SecretList", []))
        if not self._ctx.inspect_values:
            for entry in entries:
                yield self._record(unit, entry)
            return
        readable = [e["ARN"] for e in entries if "ARN" in e and "DeletedDate" not in e]
        values, errors = self._read_values(runner, client, readable)
        if errors:
            yield runner.item_failures(unit.scope, "reading secret values", errors, len(readable))
        for entry in entries:
            value = values.get(entry.get("ARN", ""))
            if value is None:
                yield self._record(unit, entry)
                continue
            base = self._record(unit, entry)
            matches = inspect_value(value, self._ctx.fingerprinter, name=base.name)
            if not matches:  # an empty value: still a stored secret, just nothing to classify
                yield dataclasses.replace(base, value_inspected=True)
            for match in matches:
                yield dataclasses.replace(base, provider=match.provider, kind=match.kind, field=match.field,
                               key_id=match.key_id, fingerprint=match.fingerprint, links=match.links,
                               value_inspected=True)

    def _read_values(
        self, runner: AwsRunner, client: SecretsManagerClient, arns: Sequence[str]
    ) -> tuple[dict[str, Secret], list[CallError[str]]]:
        """Values by ARN, wrapped at once in :class:`Secret`, plus the per-secret errors.

        The first batch is tried alone: when BatchGetSecretValue is denied or not
        implemented, every secret falls back to GetSecretValue (a principal may hold
        ``GetSecretValue`` on some secrets without the batch permission).
        """
        values: dict[str, Secret] = {}
        errors: list[CallError[str]] = []
        batches = [list(arns[i:i + BATCH_SIZE]) for i in range(0, len(arns), BATCH_SIZE)]
        if not batches:
            return values, errors

        def batch(ids: list[str]) -> BatchGetSecretValueResponseTypeDef:
            return client.batch_get_secret_value(SecretIdList=ids)

        single: list[str] = []
        first = runner.map(batch, batches[:1])
        results = first if isinstance(first[0], CallError) else first + runner.map(batch, batches[1:])
        if isinstance(first[0], CallError):
            single.extend(arns)
        else:
            for ids, result in zip(batches, results, strict=True):
                if isinstance(result, CallError):
                    single.extend(ids)
                    continue
                for entry in result.get("SecretValues", []):
                    secret = _secret_of(entry.get("SecretString"), entry.get("SecretBinary"))
                    if secret is not None and "ARN" in entry:
                        values[entry["ARN"]] = secret
                answered = {e.get("ARN") for e in result.get("SecretValues", [])}
                # Per-secret errors (denied, KMS) are retried one by one for a precise error.
                single.extend(i for i in ids if i not in answered)

        def get(arn: str) -> Secret | None:
            got = client.get_secret_value(SecretId=arn)
            return _secret_of(got.get("SecretString"), got.get("SecretBinary"))

        for arn, outcome in zip(single, runner.map(get, single), strict=True):
            if isinstance(outcome, CallError):
                errors.append(outcome)
            elif outcome is not None:
                values[arn] = outcome
        return values, errors

    def _record(self, unit: Unit, e: SecretListEntryTypeDef) -> KeyRecord:
        """Build the metadata record of one secret; ``provider``/``kind`` stay unknown (no guessing)."""
        arn = e.get("ARN", "")
        tags = tag_map(e.get("Tags", []))
        provenance: dict[str, str] = {}
        created = utc(e.get("CreatedDate"))
        last_rotated = utc(e.get("LastRotatedDate"))
        last_changed = utc(e.get("LastChangedDate"))
        last_accessed = utc(e.get("LastAccessedDate"))
        for fname, value in (("created", created), ("last_rotated", last_rotated),
                             ("last_changed", last_changed), ("last_accessed", last_accessed)):
            if value is not None:
                provenance[fname] = LIST_CALL
        if tags:
            provenance["tags"] = LIST_CALL
        provenance["rotation"] = LIST_CALL
        deleted = e.get("DeletedDate")
        if deleted is not None:
            provenance["status"] = f"{LIST_CALL} (DeletedDate)"
        return KeyRecord(
            source=self.name,
            location=arn,
            name=e.get("Name", arn),
            account=account_from_arn(arn),
            region=unit.region,
            tags=tags,
            status=KeyStatus.DELETED if deleted is not None else KeyStatus.ACTIVE,
            created=created,
            last_rotated=last_rotated,
            last_changed=last_changed,
            last_accessed=last_accessed,
            rotation=_rotation(e),
            scope=Scope(details=_details(e)),
            provenance=provenance,
        )


def _rotation(e: SecretListEntryTypeDef) -> RotationSettings:
    """Rotation as the store reports it; ``enabled`` None means never configured."""
    rules = e.get("RotationRules", {})
    schedule = rules.get("ScheduleExpression")
    interval = rules.get("AutomaticallyAfterDays")
    if interval is None and schedule:
        found = _RATE_DAYS.fullmatch(schedule.strip())
        interval = int(found.group(1)) if found else None
    enabled = e.get("RotationEnabled")
    # A version labelled AWSPENDING but not AWSCURRENT is a rotation that did not finish.
    stages = e.get("SecretVersionsToStages", {})
    stuck = any("AWSPENDING" in labels and "AWSCURRENT" not in labels for labels in stages.values())
    return RotationSettings(
        supported=True,
        enabled=enabled,
        interval_days=interval,
        schedule=schedule,
        next_rotation=utc(e.get("NextRotationDate")),
        rotator=e.get("RotationLambdaARN") or None,
        last_failed=True if stuck else (False if enabled else None),
    )


def _details(e: SecretListEntryTypeDef) -> tuple[str, ...]:
    """Store facts the model has no field for, as ``key=value`` strings in Scope.details."""
    out: list[str] = []
    out.append(f"kms-key={e.get('KmsKeyId') or 'aws/secretsmanager'}")
    if e.get("OwningService"):
        out.append(f"owning-service={e.get('OwningService')}")
    if e.get("PrimaryRegion"):
        out.append(f"primary-region={e.get('PrimaryRegion')}")
    if e.get("DeletedDate") is not None:
        out.append(f"deletion-date={utc(e.get('DeletedDate'))}")
    description = " ".join(e.get("Description", "").split())
    if description:
        out.append(f"description={description[:120]}")
    return tuple(out)


def _secret_of(string: str | None, raw: bytes | None) -> Secret | None:
    """Wrap a GetSecretValue/BatchGet value in a Secret (binary as UTF-8 text, else base64)."""
    if string is not None:
        return Secret(string)
    if raw is None:
        return None
    try:
        return Secret(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return Secret(base64.b64encode(raw).decode("ascii"))


PLUGIN: type[Source] = AwsSecretsManagerSource
