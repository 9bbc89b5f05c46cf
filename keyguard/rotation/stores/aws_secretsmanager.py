"""Secrets Manager writer: a new version labelled AWSCURRENT; rollback re-writes the old value.

PutSecretValue makes the new version AWSCURRENT and the old one AWSPREVIOUS, so a
consumer that still holds the old version id can read it during the switch. Rollback
writes the recorded version's value back as the current one. Least privilege:
secretsmanager:GetSecretValue and PutSecretValue on the secrets being rotated.
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
        """Make ``version``'s value current again (no-op when the current value equals it).

        NOTE: the old value is written back as a new version instead of moving the
        AWSCURRENT label with UpdateSecretVersionStage: moto 5.2 moves the label but keeps
        serving the newer value, and both ways leave consumers reading the old value.
        """
        client = _aws.secretsmanager(self._ctx, copy.region)
        try:
            current = client.get_secret_value(SecretId=copy.location)
            previous = client.get_secret_value(SecretId=copy.location, VersionId=version)
        except _aws.aws_errors() as exc:
            raise _aws.failed("restore", copy.name, exc) from None
        if current["VersionId"] == version or (
                current.get("SecretString") == previous.get("SecretString")):
            return False
        if "SecretString" not in previous:
            raise StepFailed(f"restore {copy.name}: binary secrets are not rotated by keyguard")
        self.write(copy, Secret(previous["SecretString"]))
        return True


PLUGIN: type[StoreWriter] = SecretsManagerWriter
