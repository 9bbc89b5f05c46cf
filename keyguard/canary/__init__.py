"""Canary keys: trap credentials that nobody should ever use, so any use is proof of theft.

A canary lives in the user's own account and looks like any other service credential:
nothing in its cloud-side names, paths, tags or policy names says what it is. The only
record that it is a canary is a row in keyguard's local state database (schema v2,
``canaries`` table), which :mod:`keyguard.canary.store` reads and writes.

Records here hold identifiers and locations only (access key id, LiteLLM token hash,
provider key id, where copies were planted); the secret half of a canary exists only in
the planted locations and is never printed, logged or stored by keyguard.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class CanaryKind(enum.StrEnum):
    """What a canary is; the value is stored in the state database, so never rename one."""

    AWS = "aws"  # an IAM user with a deny-all inline policy and one access key
    LITELLM = "litellm"  # a LiteLLM virtual key with a zero budget and no models
    ANTHROPIC = "anthropic"  # a hand-made Anthropic key registered by id
    OPENAI = "openai"  # a hand-made OpenAI key registered by id


@dataclass(frozen=True, slots=True)
class Planted:
    """One planted copy of a canary's credential.

    ``spec`` is what the user typed (``ssm:/app/prod/creds``); ``ref`` is where the copy
    is as inventory sources report it (a parameter or secret ARN, an absolute file path,
    a Vault ``mount/path``), so the copy can be excluded from policy findings and removed.
    """

    spec: str
    ref: str
    region: str | None = None
    created_file: bool = False  # ``file:``: keyguard created the file (delete it when empty)


@dataclass(frozen=True, slots=True)
class Canary:
    """A canary as recorded in the state database (identifiers only, never a secret).

    ``identifier`` is the public id a provider reports when the key is used: the AWS
    access key id, the LiteLLM token hash (sha256 of the key), the Anthropic/OpenAI key id.
    """

    id: str
    kind: CanaryKind
    name: str
    identifier: str
    created: datetime
    principal: str | None = None  # IAM user ARN
    account: str | None = None
    region: str | None = None  # region the canary's AWS calls were signed in
    iam_path: str | None = None
    base_url: str | None = None  # LiteLLM proxy URL
    planted: tuple[Planted, ...] = ()
    #: Stable ids (``ua1:...``) of alerts already sent to a webhook, so a cron job that
    #: checks every few minutes notifies each use once (a use on a new day is a new id).
    notified: tuple[str, ...] = ()

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Every value a usage export may name this canary by (key id, ARN, alias)."""
        found = [self.identifier]
        if self.principal:
            found.append(self.principal)
        if self.kind is CanaryKind.LITELLM:
            found.append(self.name)  # LiteLLM spend logs carry the key alias
        return tuple(dict.fromkeys(found))
