"""Secrets Manager writer: a new version labelled AWSCURRENT; rollback moves the label back.

PutSecretValue makes the new version AWSCURRENT and the old one AWSPREVIOUS, so a
consumer that still holds the old version id can read it during the switch. Rollback
does not write the old value again: UpdateSecretVersionStage moves AWSCURRENT back to the
recorded version. Least privilege: secretsmanager:GetSecretValue, PutSecretValue,
DescribeSecret, UpdateSecretVersionStage on the secrets being rotated.
"""

from __future__ import annotations

from typing import ClassVar

from keyguard.rotation import _aws
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import StoreCopy
from keyguard.rotation.stores import StoreWriter
from keyguard.secret import Secret


class SecretsManagerWriter:
    """Secrets Manager string secrets (binary secrets are refused)."""

    name: ClassVar[str] = "aws-secretsmanager"

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx

    def read(self, copy: StoreCopy) -> tuple[Secret, str]:
        """The AWSCURRENT value and its version id."""
        client = _aws.secretsmanager(self._ctx, copy.region)
        try:
            got = client.get_secret_value(SecretId=copy.location)
        except _aws.aws_errors() as exc:
            raise _aws.failed("read", copy.name, exc) from None
        if "SecretString" not in got:
            raise StepFailed(f"read {copy.name}: binary secrets are not rotated by keyguard")
        return Secret(got["SecretString"]), got["VersionId"]

    def write(self, copy: StoreCopy, value: Secret) -> str:
        """PutSecretValue: the new version becomes AWSCURRENT."""
        client = _aws.secretsmanager(self._ctx, copy.region)
        try:
            put = client.put_secret_value(SecretId=copy.location, SecretString=value.reveal())
        except _aws.aws_errors() as exc:
            raise _aws.failed("write", copy.name, exc) from None
        return put["VersionId"]

    def restore(self, copy: StoreCopy, version: str) -> bool:
        """Move AWSCURRENT back to ``version`` (no-op when it is already there)."""
        client = _aws.secretsmanager(self._ctx, copy.region)
        try:
            meta = client.describe_secret(SecretId=copy.location)
            current = next((v for v, stages in meta.get("VersionIdsToStages", {}).items()
                            if "AWSCURRENT" in stages), None)
            if current == version:
                return False
            kwargs = {"RemoveFromVersionId": current} if current else {}
            client.update_secret_version_stage(SecretId=copy.location, VersionStage="AWSCURRENT",
                                               MoveToVersionId=version, **kwargs)
        except _aws.aws_errors() as exc:
            raise _aws.failed("restore", copy.name, exc) from None
        return True


PLUGIN: type[StoreWriter] = SecretsManagerWriter
