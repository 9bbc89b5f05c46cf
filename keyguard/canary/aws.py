"""AWS canaries: an IAM user that can do nothing, with one access key, and its last use.

The user gets an explicit deny-all inline policy, so a stolen key can call nothing,
not even ``iam:Get*`` to inspect itself; any signed request still makes IAM record the
key's last use (``GetAccessKeyLastUsed``), which is how :mod:`keyguard.canary.check`
catches it. Names, path, policy name and tags are the user's choice and keyguard refuses
tell-tale words in them, so nothing in the account marks the user as a trap.

Least privilege for the identity running keyguard: ``iam:CreateUser``, ``iam:TagUser``,
``iam:PutUserPolicy``, ``iam:CreateAccessKey``, ``iam:ListUsers`` (to copy the ordinary
path), ``iam:GetAccessKeyLastUsed``; to delete: ``iam:DeleteAccessKey``,
``iam:ListUserPolicies``, ``iam:DeleteUserPolicy``, ``iam:DeleteUser``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from keyguard.config import AwsConfig
from keyguard.errors import SourceError, UsageError
from keyguard.secret import Secret
from keyguard.sources._aws import AWS_ERRORS, DEFAULT_REGION, describe_error, utc

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_ssm.client import SSMClient

#: Words that would give a canary away to whoever reads the account; refused in every
#: name, path, tag and policy name keyguard writes.
TELLTALE_WORDS = ("canary", "trap", "honey", "keyguard", "decoy", "tripwire", "bait")

#: Deny everything: the key authenticates (so its use is recorded) but is allowed nothing.
DENY_ALL = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}

#: Default inline policy name: ordinary, like the names people give service policies.
DEFAULT_POLICY_NAME = "access"

SCOPE = "canary"


@dataclass(frozen=True, slots=True)
class LastUse:
    """What IAM says about a key's last use (``when`` is None when never used)."""

    when: datetime | None
    service: str | None = None
    region: str | None = None


def check_ordinary(what: str, value: str) -> str:
    """Return ``value`` when no tell-tale word is in it.

    Raises:
        UsageError: ``value`` contains canary, trap, honey, keyguard... (any case).

    """
    lowered = value.lower()
    for word in TELLTALE_WORDS:
        if word in lowered:
            raise UsageError(f"{what} {value!r} contains {word!r}, which would give the canary away",
                             "choose a name like the account's ordinary service users")
    return value


def check_user_name(name: str) -> str:
    """An IAM user name (1-64 of letters, digits and ``+=,.@_-``) without tell-tale words."""
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", name, flags=re.ASCII):
        raise UsageError(f"--name {name[:70]!r}: not a valid IAM user name",
                         "use 1-64 letters, digits and + = , . @ _ -")
    return check_ordinary("--name", name)


def check_path(path: str) -> str:
    """An IAM path (``/`` or ``/a/b/``) without tell-tale words."""
    if not (path.startswith("/") and path.endswith("/")) or "//" in path:
        raise UsageError(f"--iam-path {path!r}: an IAM path starts and ends with '/'",
                         "e.g. / or /service/")
    return check_ordinary("--iam-path", path)


def aws_failure(what: str, exc: Exception) -> SourceError:
    """A one-line error for a failed AWS call (exit 3), with botocore's hint."""
    failure = describe_error(SCOPE, what, exc)
    return SourceError(SCOPE, what, failure.message, failure.hint)


class AwsCanaries:
    """IAM, SSM and Secrets Manager calls for canaries, in one account and one region."""

    def __init__(self, config: AwsConfig, region: str | None = None) -> None:
        try:
            self._session = boto3.Session()
        except AWS_ERRORS as exc:
            raise aws_failure("session", exc) from None
        self.region = (region or (config.regions[0] if config.regions else None)
                       or self._session.region_name or DEFAULT_REGION)
        self._endpoint = config.endpoint_url
        self._config = BotoConfig(retries={"mode": "standard", "max_attempts": 3},
                                  connect_timeout=10, read_timeout=30)

    def _client(self, service: str) -> Any:
        return self._session.client(service, region_name=self.region,  # type: ignore[call-overload]
                                    endpoint_url=self._endpoint, config=self._config)

    def iam(self) -> IAMClient:
        """An IAM client (signed in the canary's region)."""
        client: IAMClient = self._client("iam")
        return client

    def ssm(self) -> SSMClient:
        """An SSM client in the canary's region."""
        client: SSMClient = self._client("ssm")
        return client

    def secretsmanager(self) -> SecretsManagerClient:
        """A Secrets Manager client in the canary's region."""
        client: SecretsManagerClient = self._client("secretsmanager")
        return client

    def account(self) -> str | None:
        """The account id of the identity running keyguard."""
        try:
            return str(self._client("sts").get_caller_identity().get("Account")) or None
        except AWS_ERRORS as exc:
            raise aws_failure("sts", exc) from None

    def ordinary_path(self) -> str:
        """The IAM path most of the account's users have, so the canary blends in."""
        paths: Counter[str] = Counter()
        try:
            for page in self.iam().get_paginator("list_users").paginate():
                paths.update(u.get("Path", "/") for u in page.get("Users", []))
        except AWS_ERRORS as exc:
            raise aws_failure("iam", exc) from None
        for path, _ in paths.most_common():
            if not any(w in path.lower() for w in TELLTALE_WORDS):
                return path
        return "/"

    def create_user(self, name: str, path: str, policy_name: str,
                    tags: Mapping[str, str]) -> tuple[str, str, Secret]:
        """Create the user, its deny-all policy and its key: (user ARN, key id, secret).

        On any failure, whatever was created is removed again before the error is raised.
        """
        iam = self.iam()
        created = False
        try:
            kwargs: dict[str, Any] = {"UserName": name, "Path": path}
            if tags:
                kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
            arn = iam.create_user(**kwargs)["User"]["Arn"]
            created = True
            iam.put_user_policy(UserName=name, PolicyName=policy_name,
                                PolicyDocument=json.dumps(DENY_ALL))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return arn, key["AccessKeyId"], Secret(key["SecretAccessKey"])
        except AWS_ERRORS as exc:
            if created:
                self.delete_user(name, None)
            if isinstance(exc, ClientError) and _code(exc) == "EntityAlreadyExists":
                raise UsageError(f"IAM user {name!r} already exists",
                                 "choose another --name") from None
            raise aws_failure("iam", exc) from None

    def delete_user(self, name: str, key_id: str | None) -> None:
        """Delete the user's key, inline policies and the user; already-gone parts are fine."""
        iam = self.iam()
        try:
            keys = [key_id] if key_id else []
            keys += [k["AccessKeyId"] for k in
                     iam.list_access_keys(UserName=name).get("AccessKeyMetadata", [])]
            for kid in dict.fromkeys(keys):
                _ignore_missing(lambda kid=kid: iam.delete_access_key(UserName=name, AccessKeyId=kid))
            for policy in iam.list_user_policies(UserName=name).get("PolicyNames", []):
                _ignore_missing(lambda p=policy: iam.delete_user_policy(UserName=name, PolicyName=p))
            iam.delete_user(UserName=name)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise aws_failure("iam", exc) from None
        except AWS_ERRORS as exc:
            raise aws_failure("iam", exc) from None

    def last_use(self, key_id: str) -> LastUse:
        """``iam:GetAccessKeyLastUsed`` for the canary's key.

        Raises:
            SourceError: the call failed, or the key no longer exists (deleted by hand).

        """
        try:
            answer = self.iam().get_access_key_last_used(AccessKeyId=key_id)
        except AWS_ERRORS as exc:
            raise aws_failure("iam", exc) from None
        # NOTE: the stubs declare AccessKeyLastUsed as always present; moto and older
        # endpoints may leave it out for a never-used key.
        raw: Mapping[str, Any] = cast("Mapping[str, Any]", answer)
        info: Mapping[str, Any] = raw.get("AccessKeyLastUsed") or {}
        service = info.get("ServiceName")
        region = info.get("Region")
        return LastUse(utc(info.get("LastUsedDate")),
                       None if service in (None, "N/A") else service,
                       None if region in (None, "N/A") else region)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ignore_missing(call: Any) -> None:
    try:
        call()
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
