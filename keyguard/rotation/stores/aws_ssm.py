"""SSM Parameter Store writer: overwrite with the same type and KMS key; rollback re-puts.

A parameter has no movable "current" label, so rollback reads the recorded version
(``name:version``) and writes its value as a new version; it is skipped when the current
value already equals it, which keeps rollback idempotent. Least privilege:
ssm:GetParameter, ssm:DescribeParameters, ssm:PutParameter (and kms:Decrypt/Encrypt for
SecureString parameters with a customer-managed key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from keyguard.rotation import _aws
from keyguard.rotation.context import RotationContext
from keyguard.rotation.plan import StoreCopy
from keyguard.rotation.stores import StoreWriter
from keyguard.secret import Secret

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient


class SsmWriter:
    """String and SecureString parameters (StringList is written back as given)."""

    name: ClassVar[str] = "aws-ssm"

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx

    def _client(self, copy: StoreCopy) -> SSMClient:
        return _aws.ssm(self._ctx, copy.region)

    def read(self, copy: StoreCopy) -> tuple[Secret, str]:
        """The current value and its version number."""
        return self._get(self._client(copy), copy, copy.name)

    def _get(self, client: SSMClient, copy: StoreCopy, name: str) -> tuple[Secret, str]:
        try:
            got = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except _aws.aws_errors() as exc:
            raise _aws.failed("read", copy.name, exc) from None
        return Secret(got.get("Value", "")), str(got.get("Version", ""))

    def write(self, copy: StoreCopy, value: Secret) -> str:
        """PutParameter with Overwrite, keeping the parameter's type and KMS key."""
        client = self._client(copy)
        try:
            found = client.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [copy.name]}]
            ).get("Parameters", [])
            meta = found[0] if found else {}
            kind = meta.get("Type", "SecureString")
            key_id = meta.get("KeyId") if kind == "SecureString" else None
            if key_id:
                put = client.put_parameter(Name=copy.name, Value=value.reveal(), Type=kind,
                                           Overwrite=True, KeyId=key_id)
            else:
                put = client.put_parameter(Name=copy.name, Value=value.reveal(), Type=kind,
                                           Overwrite=True)
        except _aws.aws_errors() as exc:
            raise _aws.failed("write", copy.name, exc) from None
        return str(put["Version"])

    def restore(self, copy: StoreCopy, version: str) -> bool:
        """Write ``version``'s value back unless the current value already equals it."""
        client = self._client(copy)
        current, _ = self._get(client, copy, copy.name)
        previous, _ = self._get(client, copy, f"{copy.name}:{version}")
        if current.reveal() == previous.reveal():
            return False
        self.write(copy, previous)
        return True


PLUGIN: type[StoreWriter] = SsmWriter
