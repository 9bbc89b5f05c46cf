"""``keyguard canary``: plant trap keys, list and delete them, and catch their first use.

Thin on purpose: options are parsed here and handed to :mod:`keyguard.canary`; boto3,
hvac and the usage importers load inside the commands, so ``--help`` stays instant.
"""

import dataclasses
import enum
import functools
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keyguard.cli._shared import (
    ExitCode,
    OutputOpt,
    StateOpt,
    app_state,
    check_output_path,
    command_help,
    err,
    handle_errors,
    user_data_dir,
    write_output,
)
from keyguard.errors import KeyguardError, UsageError

if TYPE_CHECKING:
    from keyguard.canary import Canary, CanaryKind, Planted
    from keyguard.canary.aws import AwsCanaries
    from keyguard.canary.check import CheckResult, Pollers
    from keyguard.canary.plant import Credential, Location, Planter, VaultKv
    from keyguard.config import Config, LiteLLMConfig
    from keyguard.fingerprint import Fingerprinter
    from keyguard.model import Alert, KeyRecord
    from keyguard.usage.notify import Webhook

#: Version of the ``--format json`` documents of ``canary list`` and ``canary check``.
SCHEMA_VERSION = 1

canary_app = typer.Typer(
    help="Canary keys: credentials nobody should use, planted where a thief would look. "
         "Any use is a critical alert.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)
create_app = typer.Typer(
    help="Create a canary key and plant it.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


class CanaryFormat(enum.StrEnum):
    """Output formats of ``canary list`` and ``canary check``."""

    TABLE = "table"
    JSON = "json"


class Provider(enum.StrEnum):
    """Providers whose hand-made keys ``canary register`` accepts."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"


PlantOpt = Annotated[
    list[str] | None,
    typer.Option("--plant", metavar="LOCATION",
                 help="Where to plant the credential (repeatable): ssm:/path, "
                      "secretsmanager:NAME, file:PATH (.env lines) or vault:MOUNT/PATH."),
]
NameOpt = Annotated[
    str, typer.Option("--name", metavar="NAME",
                      help="Name of the user/key; make it look like your ordinary service "
                           "credentials (words such as canary or trap are refused).")
]
FormatOpt = Annotated[CanaryFormat, typer.Option("--format", "-f", help="Output format.")]


def _state_file(ctx: typer.Context, state: Path | None) -> "tuple[Config, Path]":
    from keyguard.config import state_path

    config = app_state(ctx).config()
    return config, state_path(config, state, user_data_dir())


@handle_errors
def create_aws(
    ctx: typer.Context,
    name: NameOpt,
    plant: PlantOpt = None,
    region: Annotated[
        str | None,
        typer.Option("--region", "-r", metavar="REGION",
                     help="Region of the planted SSM/Secrets Manager copies and of the IAM "
                          "calls. Default: [aws] regions, then AWS_REGION, then us-east-1."),
    ] = None,
    iam_path: Annotated[
        str | None,
        typer.Option("--iam-path", metavar="PATH",
                     help="IAM path of the user. Default: the path most of the account's "
                          "users have."),
    ] = None,
    policy_name: Annotated[
        str, typer.Option("--policy-name", metavar="NAME",
                          help="Name of the deny-all inline policy.")
    ] = "access",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="KEY=VALUE",
                     help="Tag the user like your other service users (repeatable)."),
    ] = None,
    state: StateOpt = None,
) -> None:
    """Create an AWS canary: an IAM user that may do nothing, with one access key.

    The user gets an explicit deny-all inline policy, so its key authenticates but can do
    nothing; IAM still records the key's last use, which `keyguard canary check` polls.
    The credential is planted, shaped like a real one, in each --plant location and
    nowhere else: keyguard prints the canary id and the access key id, never the secret.
    The state database records that the user is a canary; nothing in AWS says so.

    Examples:
      keyguard canary create aws --name billing-export-svc --plant ssm:/billing/prod/aws
      keyguard canary create aws --name etl-loader --plant file:deploy/.env --tag team=data

    """
    from keyguard.canary import Canary, CanaryKind
    from keyguard.canary.aws import AwsCanaries, check_ordinary, check_path, check_user_name
    from keyguard.canary.plant import aws_credential, parse_location
    from keyguard.canary.store import new_id, save
    from keyguard.state import StateDB

    config, state_file = _state_file(ctx, state)
    _quiet_http_logs()
    check_user_name(name)
    check_ordinary("--policy-name", policy_name)
    tags = _tags(tag or [])
    locations = [parse_location(p) for p in plant or []]
    if not locations:
        raise UsageError("give at least one --plant LOCATION",
                         "the secret is never printed, so an unplanted key could never be used")
    if iam_path is not None:
        check_path(iam_path)
    aws = AwsCanaries(config.aws, region)
    planter = _planter(config, lambda _region: aws)
    with StateDB(state_file) as db:  # a bad --state is exit 2 before anything is created
        account = aws.account()
        path = iam_path or aws.ordinary_path()
        arn, key_id, secret = aws.create_user(name, path, policy_name, tags)
        stand_in = Canary("", CanaryKind.AWS, name, key_id, datetime.now(UTC))
        planted: tuple[Planted, ...] = ()
        try:
            planted = _plant_all(planter, locations, aws_credential(key_id, secret), stand_in)
            del secret
            canary = Canary(id=new_id(), kind=CanaryKind.AWS, name=name, identifier=key_id,
                            created=datetime.now(UTC), principal=arn, account=account,
                            region=aws.region, iam_path=path, planted=planted)
            save(db, canary)
        except BaseException:
            _undo(planter, planted, stand_in, lambda: aws.delete_user(name, key_id))
            raise
    _created(canary)


@handle_errors
def create_litellm(
    ctx: typer.Context,
    name: NameOpt,
    plant: PlantOpt = None,
    state: StateOpt = None,
) -> None:
    """Create a LiteLLM canary: a virtual key with a zero budget and no model access.

    The proxy is [sources.litellm] base-url or LITELLM_BASE_URL, and the master key
    [sources.litellm] admin-key or LITELLM_MASTER_KEY. The key is planted (JSON with
    api_key and base_url, or a LITELLM_API_KEY= line) in each --plant location; without
    --plant the key value is discarded and only its hash is kept.

    Examples:
      keyguard canary create litellm --name reporting-batch --plant file:.env.production

    """
    from keyguard.canary import Canary, CanaryKind
    from keyguard.canary.aws import AwsCanaries, check_ordinary
    from keyguard.canary.litellm import LiteLLMCanaries
    from keyguard.canary.plant import litellm_credential, parse_location
    from keyguard.canary.store import new_id, save
    from keyguard.state import StateDB

    config, state_file = _state_file(ctx, state)
    _quiet_http_logs()
    check_ordinary("--name", name)
    locations = [parse_location(p) for p in plant or []]
    proxy = LiteLLMCanaries(config.sources.litellm)
    planter = _planter(config, lambda region: AwsCanaries(config.aws, region))
    with StateDB(state_file) as db:
        token, key = proxy.create(name)
        stand_in = Canary("", CanaryKind.LITELLM, name, token, datetime.now(UTC))
        planted: tuple[Planted, ...] = ()
        try:
            planted = _plant_all(planter, locations, litellm_credential(key, proxy.url),
                                 stand_in)
            del key
            canary = Canary(id=new_id(), kind=CanaryKind.LITELLM, name=name, identifier=token,
                            created=datetime.now(UTC), base_url=proxy.url, planted=planted)
            save(db, canary)
        except BaseException:
            _undo(planter, planted, stand_in, lambda: proxy.delete(token))
            raise
    if not locations and not app_state(ctx).quiet:
        err("keyguard: warning: no --plant given: the key value was discarded; the canary "
            "trips only if the key leaks from the proxy itself")
    _created(canary)


@handle_errors
def register(
    ctx: typer.Context,
    provider: Annotated[Provider, typer.Argument(help="Provider of the key.")],
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID",
                                          help="The key's public id (apikey_..., key_...).")],
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="A label (default: KEY_ID).")
    ] = None,
    state: StateOpt = None,
) -> None:
    """Mark an existing Anthropic or OpenAI key as a canary.

    Create the key by hand with no budget and no workspace or project access, plant it
    yourself, then register its id here. `keyguard canary check` reads its last use from
    the admin API where the provider reports one (OpenAI), and usage exports (--usage)
    catch it for both providers.

    Examples:
      keyguard canary register anthropic apikey_01AbCdEf --name ci-summarizer

    """
    from keyguard.canary import Canary, CanaryKind
    from keyguard.canary.store import load_all, new_id, save
    from keyguard.state import StateDB

    _, state_file = _state_file(ctx, state)
    ident = key_id.strip()
    if not ident or any(c.isspace() for c in ident) or len(ident) > 200:
        raise UsageError(f"KEY_ID {key_id[:40]!r} is not a key id", "e.g. apikey_01AbCdEf")
    if ident.startswith(("sk-", "sk_")):
        raise UsageError("KEY_ID looks like a key value, not its id",
                         "give the id the console shows (apikey_..., key_...); never the key")
    kind = CanaryKind(provider.value)
    with StateDB(state_file) as db:
        if any(c.kind is kind and c.identifier == ident for c in load_all(db)):
            raise UsageError(f"{provider.value} key {ident} is already a canary")
        canary = Canary(id=new_id(), kind=kind, name=name or ident, identifier=ident,
                        created=datetime.now(UTC))
        save(db, canary)
    _created(canary)


@handle_errors
def list_canaries(
    ctx: typer.Context,
    output_format: FormatOpt = CanaryFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """List the recorded canaries: id, kind, name, key id and where each is planted.

    Examples:
      keyguard canary list --format json

    """
    from keyguard.canary.store import load_all
    from keyguard.state import StateDB

    _, state_file = _state_file(ctx, state)
    check_output_path(output)
    canaries = []
    if state_file.exists():
        with StateDB(state_file) as db:
            canaries = load_all(db)
    if output_format is CanaryFormat.JSON:
        text = json.dumps({"schema_version": SCHEMA_VERSION,
                           "canaries": [_canary_dict(c) for c in canaries]}, indent=2) + "\n"
    else:
        text = _canary_table(canaries)
    write_output(text, output)


@handle_errors
def delete(
    ctx: typer.Context,
    canary_id: Annotated[str, typer.Argument(metavar="ID", help="Canary id (or its name).")],
    state: StateOpt = None,
) -> None:
    """Delete a canary: its planted copies, its IAM user or LiteLLM key, and its record.

    A registered Anthropic/OpenAI key is only unmarked (keyguard did not create it, so it
    does not delete it). If a step fails the record is kept, so running the command
    again finishes the job.

    Examples:
      keyguard canary delete cn-3f9a1c02d4

    """
    from keyguard.canary import CanaryKind
    from keyguard.canary.aws import AwsCanaries
    from keyguard.canary.litellm import LiteLLMCanaries
    from keyguard.canary.store import find
    from keyguard.state import StateDB

    config, state_file = _state_file(ctx, state)
    if not state_file.exists():
        raise UsageError(f"no canary {canary_id!r}: {state_file} does not exist",
                         "pass --state with the database the canary was created in")
    with StateDB(state_file) as db:
        canary = find(db, canary_id)
        aws_cache: dict[str, AwsCanaries] = {}

        def aws(region: str | None) -> "AwsCanaries":
            key = region or canary.region or ""
            if key not in aws_cache:
                aws_cache[key] = AwsCanaries(config.aws, key or None)
            return aws_cache[key]

        planter = _planter(config, aws)
        for planted in canary.planted:
            planter.remove(planted, canary)
        if canary.kind is CanaryKind.AWS:
            user = (canary.principal or "").rsplit("/", 1)[-1] or canary.name
            aws(None).delete_user(user, canary.identifier)
        elif canary.kind is CanaryKind.LITELLM:
            LiteLLMCanaries(_litellm_cfg(config, canary)).delete(canary.identifier)
        db.delete_canary(canary.id)
    removed = "unmarked" if canary.kind in (CanaryKind.ANTHROPIC, CanaryKind.OPENAI) \
        else "deleted"
    typer.echo(f"canary {canary.id} ({canary.kind} {canary.name}) {removed}"
               + (f"; removed {len(canary.planted)} planted cop(ies)" if canary.planted else ""))


@handle_errors
def check(
    ctx: typer.Context,
    usage: Annotated[
        list[str] | None,
        typer.Option("--usage", metavar="PATH",
                     help="Usage export (file, directory or glob; repeatable) to search for "
                          "any canary: CloudTrail, LiteLLM, Anthropic, OpenAI, generic."),
    ] = None,
    output_format: FormatOpt = CanaryFormat.TABLE,
    output: OutputOpt = "-",
    notify: Annotated[
        str | None,
        typer.Option("--notify", metavar="URL",
                     help="Post new alerts to this webhook (Slack or generic JSON), each use "
                          "once: an https URL, or keyring:NAME / env:VAR holding one."),
    ] = None,
    state: StateOpt = None,
) -> None:
    """Check whether any canary has been used; any use is a critical alert.

    Polls each canary's last use (IAM GetAccessKeyLastUsed, LiteLLM /key/info, the OpenAI
    admin API) and searches the --usage exports for every canary's key id, ARN or alias.
    Exit 1 when any canary was used, 0 when all are quiet, 3 when a canary's status could
    not be read (and none was used). Made to run every few minutes from cron.

    Examples:
      keyguard canary check
      keyguard canary check --usage AWSLogs/ --format json --notify keyring:alerts-webhook
      */5 * * * * keyguard -q canary check --notify env:CANARY_WEBHOOK

    """
    from keyguard.canary.check import check as run_check
    from keyguard.canary.store import load_all
    from keyguard.redact import scrub
    from keyguard.state import StateDB
    from keyguard.usage.notify import NotifyError, parse_webhook

    app = app_state(ctx)
    config, state_file = _state_file(ctx, state)
    check_output_path(output)
    hook = parse_webhook(notify) if notify is not None else None  # exit 2 before any work
    reader, stats = None, None
    if usage:
        from keyguard.usage.reader import ImportStats, UsageReader

        reader = UsageReader(config.usage)
        reader.expand(usage)  # a missing path is exit 2 before any polling
        stats = ImportStats(max_samples=config.usage.max_error_samples)
    canaries = []
    if state_file.exists():
        with StateDB(state_file) as db:
            canaries = load_all(db)
    if not canaries:
        # NOTE: printed even with -q: a cron job pointed at the wrong state database would
        # otherwise pass quietly forever, and cron mails whatever lands on stderr.
        err(f"keyguard: warning: no canaries recorded in {state_file}; create one with "
            "`keyguard canary create`, or pass --state")
    events = reader.events(usage or [], stats) if reader is not None and stats else iter(())
    result = _scrubbed(run_check(canaries, _pollers(config), events))
    samples = [scrub(e) for e in stats.error_samples] if stats else []
    sent: int | None = None
    notify_failed = False
    if hook is not None:
        try:
            sent = _notify(hook, result, state_file)
        except NotifyError as exc:
            err(f"keyguard: warning: could not notify {exc}; the alerts are sent by the next run")
            notify_failed = True
    if output_format is CanaryFormat.JSON:
        text = _check_json(result, samples, sent)
    else:
        text = _check_table(result)
    write_output(text, output)
    if not app.quiet:
        if output_format is CanaryFormat.TABLE:
            for sample in samples:
                err(f"keyguard: {sample}")
        err(_check_summary(result, stats.errors if stats else 0, len(canaries)))
    if result.used:
        raise typer.Exit(int(ExitCode.FINDINGS))
    if result.unknown or (stats and stats.errors) or notify_failed:
        raise typer.Exit(int(ExitCode.PARTIAL))


# -- helpers -----------------------------------------------------------------------------------


def _tags(raw: list[str]) -> dict[str, str]:
    from keyguard.canary.aws import check_ordinary

    tags: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {item!r}: expected KEY=VALUE", "e.g. --tag team=data")
        tags[check_ordinary("--tag", key.strip())] = check_ordinary("--tag", value.strip())
    return tags


def _planter(config: "Config", aws: "Callable[[str | None], AwsCanaries]") -> "Planter":
    from keyguard.canary.plant import Planter

    return Planter(aws, lambda: _vault_kv(config))


def _vault_kv(config: "Config") -> "VaultKv":
    """An authenticated hvac client, logged in exactly as the vault source logs in."""
    from keyguard.canary.plant import VaultKv
    from keyguard.sources import SourceContext
    from keyguard.sources.vault import VaultSource

    # NOTE: reuses the vault source's address/TLS/token resolution (config reference,
    # VAULT_TOKEN, AppRole, ~/.vault-token) instead of a second copy of those rules.
    source = VaultSource(SourceContext(config=config, fingerprinter=_throwaway_fingerprinter(),
                                       now=datetime.now(UTC)))
    client, _namespace = source.connect()
    return VaultKv(client)


def _undo(planter: "Planter", planted: "tuple[Planted, ...]", stand_in: "Canary",
          delete_key: Callable[[], None]) -> None:
    """Best-effort rollback of a half-made canary; failures are warnings, the first error wins."""
    steps: list[tuple[str, Callable[[], None]]] = [
        (p.spec, functools.partial(planter.remove, p, stand_in)) for p in reversed(planted)]
    steps.append((f"{stand_in.kind} key {stand_in.identifier}", delete_key))
    for what, step in steps:
        try:
            step()
        except KeyguardError as exc:
            err(f"keyguard: warning: could not remove {what}: {exc}")


def _quiet_http_logs() -> None:
    """Keep HTTP client logs off while a canary's secret is on the wire.

    NOTE: at -vvv the root logger lets botocore log response bodies at DEBUG, and the
    CreateAccessKey response (or a PutParameter request) *is* the canary's secret.
    """
    for name in ("botocore", "boto3", "urllib3", "hvac"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _plant_all(planter: "Planter", locations: "list[Location]", credential: "Credential",
               stand_in: "Canary") -> "tuple[Planted, ...]":
    """Plant every copy; on failure remove the copies already planted, then re-raise.

    ``stand_in`` (the canary before it has an id) tells ``remove`` which lines are its own.
    """
    done: list[Planted] = []
    try:
        for location in locations:
            done.append(planter.plant(location, credential))  # noqa: PERF401  (partial undo)
    except BaseException:
        for planted in reversed(done):
            try:
                planter.remove(planted, stand_in)
            except KeyguardError as exc:
                err(f"keyguard: warning: could not remove {planted.spec}: {exc}")
        raise
    return tuple(done)


def _created(canary: "Canary") -> None:
    typer.echo(f"canary {canary.id} created: {canary.kind} {canary.name}, key id "
               f"{canary.identifier}")
    for planted in canary.planted:
        typer.echo(f"  planted: {planted.spec}")


def _canary_dict(canary: "Canary") -> dict[str, Any]:
    from keyguard.serialize import iso

    return {
        "id": canary.id, "kind": canary.kind.value, "name": canary.name,
        "identifier": canary.identifier, "created": iso(canary.created),
        "principal": canary.principal, "account": canary.account, "region": canary.region,
        "iam_path": canary.iam_path, "base_url": canary.base_url,
        "planted": [p.spec for p in canary.planted],
    }


def _canary_table(canaries: "list[Canary]") -> str:
    from tabulate import tabulate

    if not canaries:
        return "No canaries recorded.\n"
    rows = [[c.id, c.kind.value, c.name, c.identifier, (c.created.date().isoformat()),
             ", ".join(p.spec for p in c.planted) or "-"] for c in canaries]
    return tabulate(rows, headers=["ID", "KIND", "NAME", "KEY ID", "CREATED", "PLANTED"],
                    tablefmt="simple") + "\n"


def _check_json(result: "CheckResult", error_samples: list[str], sent: int | None) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "used": result.used,
        "canaries": [{**_canary_dict(s.canary), "status": s.status.value,
                      "detail": s.detail} for s in result.states],
        "alerts": [_alert_dict(a) for a in result.alerts],
        "notified": sent,
        "errors": [f"{s.canary.id}: {s.detail}" for s in result.unknown] + error_samples,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _check_table(result: "CheckResult") -> str:
    from tabulate import tabulate

    if not result.states:
        return "No canaries recorded.\n"
    rows = [[s.canary.id, s.canary.kind.value, s.canary.name, s.canary.identifier,
             s.status.value.upper(), s.detail] for s in result.states]
    text = tabulate(rows, headers=["ID", "KIND", "NAME", "KEY ID", "STATUS", "DETAIL"],
                    tablefmt="simple") + "\n"
    for alert in result.alerts:
        where = ", ".join(f"{k}={v}" for k, v in alert.evidence.items()
                          if k in ("seen_by", "region", "service", "source_ips", "countries",
                                   "first_origin") and v != "")
        text += f"\nCRITICAL {alert.message}\n  {where}\n"
    return text


def _check_summary(result: "CheckResult", parse_errors: int, total: int) -> str:
    used = sum(1 for s in result.states if s.status.value == "used")
    parts = [f"keyguard: {total} canar{'y' if total == 1 else 'ies'} checked",
             f"{used} used", f"{len(result.unknown)} unknown"]
    if parse_errors:
        parts.append(f"{parse_errors} usage row(s) or file(s) could not be parsed")
    parts.append("ALERT" if used else "all quiet" if not result.unknown else "incomplete")
    return "; ".join(parts)


def _pollers(config: "Config") -> "Pollers":
    from keyguard.canary.aws import AwsCanaries
    from keyguard.canary.check import Pollers
    from keyguard.canary.litellm import LiteLLMCanaries

    aws_cache: dict[str, AwsCanaries] = {}
    provider_cache: dict[str, dict[str, KeyRecord]] = {}

    def aws(region: str | None) -> "AwsCanaries":
        if (region or "") not in aws_cache:
            aws_cache[region or ""] = AwsCanaries(config.aws, region)
        return aws_cache[region or ""]

    def providers(kind: "CanaryKind") -> "dict[str, KeyRecord]":
        if kind.value not in provider_cache:
            provider_cache[kind.value] = _provider_records(config, kind.value)
        return provider_cache[kind.value]

    def litellm(url: str | None) -> LiteLLMCanaries:
        cfg = config.sources.litellm
        return LiteLLMCanaries(dataclasses.replace(cfg, base_url=cfg.base_url or url))

    return Pollers(aws=aws, litellm=litellm, providers=providers)


def _provider_records(config: "Config", name: str) -> "dict[str, KeyRecord]":
    """Every key the provider's admin API lists, by key id (the source does the reading)."""
    from keyguard.errors import SourceError
    from keyguard.model import SourceFailure
    from keyguard.sources import SOURCES, SourceContext

    ctx = SourceContext(config=config, fingerprinter=_throwaway_fingerprinter(),
                        now=datetime.now(UTC))
    out: dict[str, KeyRecord] = {}
    for item in SOURCES.load(name)(ctx).collect():
        if isinstance(item, SourceFailure):
            raise SourceError(name, item.scope, item.message, item.hint)
        if item.key_id:
            out[item.key_id] = item
    return out


def _throwaway_fingerprinter() -> "Fingerprinter":
    """A fingerprinter with a random key: sources need one, canary code compares no values.

    NOTE: the installation's key would cost a keyring lookup (or a key file) for nothing.
    """
    import secrets

    from keyguard.fingerprint import Fingerprinter

    return Fingerprinter(secrets.token_bytes(32))


def _litellm_cfg(config: "Config", canary: "Canary") -> "LiteLLMConfig":
    cfg = config.sources.litellm
    return dataclasses.replace(cfg, base_url=cfg.base_url or canary.base_url)


def _scrubbed(result: "CheckResult") -> "CheckResult":
    """Alerts with secret-looking tokens from usage exports (aliases, user agents) redacted."""
    from keyguard.redact import scrub_alert

    return dataclasses.replace(result, alerts=tuple(scrub_alert(a) for a in result.alerts))


def _alert_dict(alert: "Alert") -> dict[str, Any]:
    """An alert as ``keyguard usage scan`` reports it (same keys, same stable ``id``)."""
    from keyguard.serialize import iso
    from keyguard.usage.alerts import alert_id, report_type

    return {"id": alert_id(alert), "key": alert.subject, "key_alias": alert.key_alias,
            "type": report_type(alert.rule_id), "severity": alert.severity.label,
            "start": iso(alert.first_seen), "end": iso(alert.last_seen),
            "summary": alert.message, "evidence": dict(alert.evidence)}


def _notify(hook: "Webhook", result: "CheckResult", state_file: Path) -> int:
    """Post the alerts not notified before (one POST), then remember their ids.

    Raises:
        NotifyError: the webhook failed after retries (host named, never the URL); the
            ids are not remembered, so the next run sends them again.

    """
    from keyguard.canary.store import find, save
    from keyguard.state import StateDB
    from keyguard.usage.notify import HttpPoster, payload

    fresh: list[tuple[str, dict[str, Any]]] = []
    by_id = {s.canary.id: s.canary for s in result.states}
    for alert in result.alerts:
        doc = _alert_dict(alert)
        canary_id = str(alert.evidence.get("canary_id", ""))
        if doc["id"] not in by_id[canary_id].notified:
            fresh.append((canary_id, doc))
    if not fresh:
        return 0
    HttpPoster()(hook, payload(hook.style, [doc for _, doc in fresh]))
    with StateDB(state_file) as db:
        for canary_id in dict.fromkeys(c for c, _ in fresh):
            current = find(db, canary_id)
            ids = [str(d["id"]) for c, d in fresh if c == canary_id]
            save(db, dataclasses.replace(current, notified=(*current.notified, *ids)))
    return len(fresh)


create_app.command("aws", help=command_help(create_aws))(create_aws)
create_app.command("litellm", help=command_help(create_litellm))(create_litellm)
canary_app.add_typer(create_app, name="create", help="Create a canary key (aws, litellm) and "
                     "plant it.")
canary_app.command("register", help=command_help(register))(register)
canary_app.command("list", help=command_help(list_canaries, exit_codes=False))(list_canaries)
canary_app.command("delete", help=command_help(delete))(delete)
canary_app.command("check", help=command_help(check))(check)
