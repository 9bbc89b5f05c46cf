"""boto3 clients and error text for the AWS rotator and store writers (lazy boto3 import)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from keyguard.rotation.context import RotationContext, StepFailed

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_sts.client import STSClient

DEFAULT_REGION = "us-east-1"


def _make(ctx: RotationContext, service: str, region: str | None,
          key: tuple[str, str] | None = None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    cache_key = (service, region or "")
    if key is None and cache_key in ctx.clients:
        return ctx.clients[cache_key]
    # NOTE: one Session per run: each new Session re-reads botocore's service models
    # (~0.5 s per client); explicit credentials go to client(), not to a new Session.
    session = ctx.clients.get(("session", ""))
    if not isinstance(session, boto3.Session):
        import botocore.session

        core = botocore.session.get_session()
        core.register_component("data_loader", _loader())
        session = boto3.Session(botocore_session=core)
        ctx.clients[("session", "")] = session
    creds = {"aws_access_key_id": key[0], "aws_secret_access_key": key[1],
             "aws_session_token": None} if key else {}
    client = session.client(
        service,  # type: ignore[call-overload]
        region_name=region or session.region_name or DEFAULT_REGION,
        endpoint_url=ctx.config.aws.endpoint_url,
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10,
                          read_timeout=30),
        **creds)
    if key is None:  # a client signed with a rotated key is never reused
        ctx.clients[cache_key] = client
    return client


@functools.cache
def _loader() -> object:
    """The botocore model loader, shared by every run in the process (it only caches files)."""
    from botocore.loaders import create_loader

    return create_loader()


def iam(ctx: RotationContext) -> IAMClient:
    """An IAM client with the run's credentials."""
    client: IAMClient = _make(ctx, "iam", None)
    return client


def secretsmanager(ctx: RotationContext, region: str | None) -> SecretsManagerClient:
    """A Secrets Manager client for ``region``."""
    client: SecretsManagerClient = _make(ctx, "secretsmanager", region)
    return client


def ssm(ctx: RotationContext, region: str | None) -> SSMClient:
    """An SSM client for ``region``."""
    client: SSMClient = _make(ctx, "ssm", region)
    return client


def sts_with(ctx: RotationContext, key_id: str, secret: str) -> STSClient:
    """An STS client signed with one specific access key (to prove that key works)."""
    client: STSClient = _make(ctx, "sts", None, (key_id, secret))
    return client


def failed(step: str, where: str, exc: Exception) -> StepFailed:
    """A StepFailed naming the step, the location and the AWS error code.

    AWS's message text is left out: errors of value-bearing calls may quote the request.
    """
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        return StepFailed(f"{step} {where}: {exc.operation_name} failed ({code})")
    return StepFailed(f"{step} {where}: AWS call failed ({type(exc).__name__})")


def aws_errors() -> tuple[type[Exception], ...]:
    """The exceptions an AWS call raises for store/network problems."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (BotoCoreError, ClientError, ResponseParserError)
