"""The ``aws-ssm`` source: SSM Parameter Store parameters (SecureString by default).

``DescribeParameters`` gives last-modified time, version, tier, KMS key and parameter
policies (an ``Expiration`` policy becomes ``expires``) but no tags and no creation time:
Parameter Store keeps only the latest modification, so ``created`` stays unknown rather
than guessed.

Tags are not in DescribeParameters. For many parameters keyguard reads them for the whole
region with the Resource Groups Tagging API (``tag:GetResources``, 100 per call); when
that is denied, unsupported, or the path filter makes it wasteful, it falls back to one
``ListTagsForResource`` call per parameter, run concurrently. ``[sources.aws-ssm] tags =
false`` skips tags. Values are read only with ``--inspect-values``, ten per
``GetParameters`` call with decryption.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from keyguard.classify import inspect_value
from keyguard.model import KeyRecord, KeyStatus, RotationSettings, Scope, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext
from keyguard.sources._aws import (
    AWS_ERRORS,
    AwsRunner,
    CallError,
    Item,
    Unit,
    parse_time,
    tag_map,
    utc,
)

if TYPE_CHECKING:
    from types_boto3_ssm.type_defs import ParameterMetadataTypeDef, ParameterStringFilterTypeDef

DESCRIBE_CALL = "ssm:DescribeParameters"
TAGS_CALL = "ssm:ListTagsForResource"
TAGGING_CALL = "tag:GetResources"
#: Below this many parameters, per-parameter tag calls are as cheap as a region-wide scan.
TAGGING_API_MIN = 25
GET_BATCH = 10  # GetParameters' maximum number of names
_PLAINTEXT_TYPES = frozenset({"String", "StringList"})


class AwsSsmSource:
    """SSM parameters: metadata, tags, expiry policies; values only with ``inspect_values``."""

    name: ClassVar[str] = "aws-ssm"
    description: ClassVar[str] = "AWS SSM Parameter Store parameters in every configured account and region"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.aws_ssm

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per parameter (or per credential inside it) and per-region failures."""
        runner = AwsRunner(self.name, self._ctx)
        yield from runner.run(lambda unit: self._region(runner, unit),
                              probe=("ssm", lambda c: c.describe_parameters(MaxResults=1)))

    def _filters(self) -> list[ParameterStringFilterTypeDef]:
        filters: list[ParameterStringFilterTypeDef] = []
        if not self._cfg.include_string:
            filters.append({"Key": "Type", "Option": "Equals", "Values": ["SecureString"]})
        path = self._cfg.path.strip()
        if path and path != "/":
            filters.append({"Key": "Path", "Option": "Recursive", "Values": [path.rstrip("/")]})
        return filters

    def _region(self, runner: AwsRunner, unit: Unit) -> Iterator[Item]:
        client = runner.ssm(unit)
        params: list[ParameterMetadataTypeDef] = []
        filters = self._filters()
        paginator = client.get_paginator("describe_parameters")
        pages = paginator.paginate(ParameterFilters=filters, PaginationConfig={"PageSize": 50}) \
            if filters else paginator.paginate(PaginationConfig={"PageSize": 50})
        for page in pages:
            params.extend(p for p in page.get("Parameters", []) if "Name" in p)
        names = [p["Name"] for p in params]

        tags: dict[str, dict[str, str]] = {}
        tags_call = TAGS_CALL
        if self._cfg.tags and names:
            arns = {p["Name"]: p.get("ARN") or _arn(unit, p["Name"]) for p in params}
            region_tags = self._region_tags(runner, unit) if self._use_tagging_api(len(names)) else None
            if region_tags is not None:
                tags = {name: region_tags.get(arn, {}) for name, arn in arns.items()}
                tags_call = TAGGING_CALL
            else:
                def list_tags(name: str) -> dict[str, str]:
                    got = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
                    return tag_map(got.get("TagList", []))

                errors: list[CallError[str]] = []
                for name, outcome in zip(names, runner.map(list_tags, names), strict=True):
                    if isinstance(outcome, CallError):
                        errors.append(outcome)
                    else:
                        tags[name] = outcome
                if errors:
                    failure = runner.item_failures(unit.scope, "reading tags (ListTagsForResource)",
                                                   errors, len(names))
                    yield dataclasses.replace(failure, hint=f"{failure.hint} (or tag:GetResources), "
                                              "or set [sources.aws-ssm] tags = false")

        values: dict[str, Secret] = {}
        if self._ctx.inspect_values and names:
            values, value_errors = _read_values(runner, unit, names)
            if value_errors:
                # NOTE: one error per GetParameters call of up to GET_BATCH names.
                yield runner.item_failures(unit.scope, "reading parameter values (GetParameters calls)",
                                           value_errors, -(-len(names) // GET_BATCH))

        for p in params:
            base = self._record(unit, p, tags.get(p["Name"]), tags_call)
            value = values.get(p["Name"])
            if value is None:
                yield base
                continue
            matches = inspect_value(value, self._ctx.fingerprinter, name=p["Name"])
            if not matches:
                yield dataclasses.replace(base, value_inspected=True)
            for m in matches:
                yield dataclasses.replace(base, provider=m.provider, kind=m.kind, field=m.field,
                                          key_id=m.key_id, fingerprint=m.fingerprint, links=m.links,
                                          value_inspected=True)

    def _use_tagging_api(self, count: int) -> bool:
        """Tell whether one region-wide tag scan beats ``count`` per-parameter calls.

        Not with a path filter: the scan would read every parameter of the region to tag
        the few under the path.
        """
        return count >= TAGGING_API_MIN and self._cfg.path.strip() in ("", "/")

    def _region_tags(self, runner: AwsRunner, unit: Unit) -> dict[str, dict[str, str]] | None:
        """Return tags of every tagged parameter in the region by ARN, or None to fall back.

        NOTE: a parameter that never had tags is absent from the answer, which means "no
        tags". The Tagging API is eventually consistent: tags added in the last minutes
        may be missing, which an inventory tolerates.
        """
        client = runner.tagging(unit)
        found: dict[str, dict[str, str]] = {}
        token = ""
        try:
            while True:
                page = client.get_resources(ResourceTypeFilters=["ssm:parameter"],
                                            ResourcesPerPage=100, PaginationToken=token)
                mappings = page.get("ResourceTagMappingList")
                for mapping in mappings if isinstance(mappings, list) else []:
                    if isinstance(mapping, dict) and isinstance(mapping.get("ResourceARN"), str):
                        raw = mapping.get("Tags")
                        found[mapping["ResourceARN"]] = tag_map(
                            [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else [])
                next_token = page.get("PaginationToken")
                if not isinstance(next_token, str) or not next_token:
                    return found
                token = next_token
        except AWS_ERRORS as exc:
            self._ctx.progress(self.name, f"{unit.scope}: tag:GetResources unavailable "
                               f"({type(exc).__name__}); reading tags per parameter")
            return None

    def _record(self, unit: Unit, p: ParameterMetadataTypeDef, tags: Mapping[str, str] | None,
                tags_call: str = TAGS_CALL) -> KeyRecord:
        """Build the metadata record of one parameter; ``created`` is unknown to Parameter Store."""
        name = p["Name"]
        ptype = str(p.get("Type", ""))
        found = tags or {}
        last_changed = utc(p.get("LastModifiedDate"))
        policies = _policies(p.get("Policies", []))
        expires = next((when for kind, _status, when, _attrs in policies
                        if kind == "Expiration" and when is not None), None)
        provenance: dict[str, str] = {}
        if last_changed is not None:
            provenance["last_changed"] = DESCRIBE_CALL
        if expires is not None:
            provenance["expires"] = f"{DESCRIBE_CALL} (Expiration policy)"
        if tags is not None:
            provenance["tags"] = tags_call
        details = [f"type={ptype}", f"tier={p.get('Tier', 'Standard')}",
                   f"version={p.get('Version', '?')}"]
        if p.get("KeyId"):
            details.append(f"kms-key={p.get('KeyId')}")
        if p.get("LastModifiedUser") and p.get("LastModifiedUser") != "N/A":
            details.append(f"last-modified-by={p.get('LastModifiedUser')}")
        for kind, status, _when, attrs in policies:
            details.append(f"policy={kind}({', '.join([*attrs, status] if status else attrs)})")
        return KeyRecord(
            source=self.name,
            location=p.get("ARN") or _arn(unit, name),
            name=name,
            account=unit.account.account_id,
            region=unit.region,
            tags=found,
            # An Expiration policy deletes the parameter; one still listed after its time
            # is on its way out.
            status=KeyStatus.EXPIRED if expires is not None and expires <= self._ctx.now
            else KeyStatus.ACTIVE,
            last_changed=last_changed,
            expires=expires,
            rotation=RotationSettings(supported=False),
            scope=Scope(details=tuple(details)),
            plaintext=ptype in _PLAINTEXT_TYPES,
            provenance=provenance,
        )


def _read_values(runner: AwsRunner, unit: Unit, names: Sequence[str]) -> tuple[dict[str, Secret], list[CallError[list[str]]]]:
    """Decrypted values by name, ten per GetParameters call, wrapped at once in Secret."""
    client = runner.ssm(unit)
    batches = [list(names[i:i + GET_BATCH]) for i in range(0, len(names), GET_BATCH)]

    def get(batch: list[str]) -> dict[str, Secret]:
        got = client.get_parameters(Names=batch, WithDecryption=True)
        # Names listed in InvalidParameters vanished since DescribeParameters; skip them.
        return {p["Name"]: Secret(p["Value"]) for p in got.get("Parameters", [])
                if "Name" in p and "Value" in p}

    values: dict[str, Secret] = {}
    errors: list[CallError[list[str]]] = []
    for outcome in runner.map(get, batches):
        if isinstance(outcome, CallError):
            errors.append(outcome)
        else:
            values.update(outcome)
    return values, errors


def _policies(raw: Sequence[Mapping[str, object]]) -> list[tuple[str, str, datetime | None, list[str]]]:
    """Parameter policies as (type, status, expiration time, ["Attr=value", ...]).

    NOTE: AWS returns ``PolicyText`` as a JSON string; moto returns the parsed object,
    so both are accepted. An unparseable policy keeps its type and no attributes.
    """
    out: list[tuple[str, str, datetime | None, list[str]]] = []
    for policy in raw:
        text: object = policy.get("PolicyText")
        doc: object = text
        if isinstance(text, str):
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
        kind = ""
        attrs: dict[str, object] = {}
        if isinstance(doc, dict):
            kind = str(doc.get("Type", ""))
            found = doc.get("Attributes")
            if isinstance(found, dict):
                attrs = {str(k): v for k, v in found.items()}
        declared: object = policy.get("PolicyType")
        if not kind and isinstance(declared, str):
            kind = declared
        status = str(policy.get("PolicyStatus", ""))
        when = parse_time(str(attrs["Timestamp"])) if kind == "Expiration" and "Timestamp" in attrs else None
        out.append((kind or "unknown", status, when, [f"{k}={v}" for k, v in sorted(attrs.items())]))
    return out


def _arn(unit: Unit, name: str) -> str:
    """Build a parameter ARN when DescribeParameters omits it (older APIs, moto)."""
    path = name if name.startswith("/") else "/" + name
    account = unit.account.account_id or ""
    return f"arn:{unit.account.partition}:ssm:{unit.region}:{account}:parameter{path}"


PLUGIN: type[Source] = AwsSsmSource
