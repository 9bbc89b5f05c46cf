"""Shared plumbing of the AWS sources: sessions, clients, a bounded pool and error messages.

Every AWS source reads the same way: build one boto3 session per account scope (the
default credential chain, each named profile, each assumed role), resolve its regions,
run one unit of work per (account scope, region) concurrently, and turn every botocore
error into a one-line :class:`SourceFailure` that names the source, the scope and what
to do, so one broken region or profile never hides the others.

The leading underscore keeps this module out of the SOURCES registry; it is imported
only by the ``aws_*`` plugin modules, which only ``SOURCES.load`` imports, so boto3 is
never paid for by ``--help`` or shell completion.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.parsers import ResponseParserError

from keyguard.config import LabelsConfig
from keyguard.model import KeyRecord, SourceFailure
from keyguard.sources import SourceContext

if TYPE_CHECKING:
    from types_boto3_iam.client import IAMClient
    from types_boto3_secretsmanager.client import SecretsManagerClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_sts.client import STSClient

Item = KeyRecord | SourceFailure
T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")

#: Errors an AWS call can raise that describe the store, not a bug in keyguard.
#: NOTE: ResponseParserError (an unparseable body, e.g. moto's HTML 500 page) is not a
#: BotoCoreError, so it is listed on its own.
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, ResponseParserError)

DEFAULT_REGION = "us-east-1"
GLOBAL = "global"

#: Operations whose responses carry secret values; their error text is never repeated.
_VALUE_OPERATIONS = frozenset({"GetSecretValue", "BatchGetSecretValue", "GetParameters",
                               "GetParameter", "GetParametersByPath"})

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                     "UnauthorizedAccess", "AuthorizationError", "AuthorizationErrorException"})
_BAD_CREDENTIALS = frozenset({"UnrecognizedClientException", "InvalidClientTokenId",
                              "SignatureDoesNotMatch", "AuthFailure", "InvalidAccessKeyId",
                              "IncompleteSignature", "MissingAuthenticationToken"})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired",
                      "TokenRefreshRequired"})
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException",
                        "RequestLimitExceeded", "ProvisionedThroughputExceededException"})
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "InvalidAction", "UnknownOperationException",
                             "UnsupportedOperation", "501"})
_UNSUPPORTED = _NOT_IMPLEMENTED | {"InternalFailure", "500"}

#: The IAM permission each operation needs, for "grant ..." hints.
PERMISSIONS: Mapping[str, str] = {
    "AssumeRole": "sts:AssumeRole on the role, and a trust policy that allows this principal",
    "BatchGetSecretValue": "secretsmanager:BatchGetSecretValue and secretsmanager:GetSecretValue",
    "GetSecretValue": "secretsmanager:GetSecretValue (and kms:Decrypt for customer-managed keys)",
    "GetParameters": "ssm:GetParameters (and kms:Decrypt for customer-managed keys)",
}

_CREDENTIAL_HINT = "set AWS_PROFILE or run `aws sso login` (or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"


@dataclass(frozen=True, slots=True)
class Account:
    """One set of credentials: the default chain, a named profile or an assumed role."""

    label: str  # "" for the default chain, "profile dev", "role arn:aws:iam::1:role/x"
    session: boto3.Session
    regions: tuple[str, ...]
    account_id: str | None = None
    partition: str = "aws"


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of concurrent work: an account scope in one region (or IAM's global view)."""

    account: Account
    region: str  # the region to call; for a global unit, the region that signs the calls
    is_global: bool = False

    @property
    def scope(self) -> str:
        """Region and profile/role as shown in failures (``us-east-1``, ``profile dev/global``)."""
        where = GLOBAL if self.is_global else self.region
        return f"{self.account.label}/{where}" if self.account.label else where


class TaggingClient(Protocol):
    """The one Resource Groups Tagging API call keyguard makes.

    NOTE: declared here because types-boto3 stubs for that service are not a dependency;
    without them boto3's client would be untyped.
    """

    def get_resources(self, **kwargs: object) -> Mapping[str, object]:
        """Call tag:GetResources (``ResourceTypeFilters``, ``PaginationToken``...)."""
        ...


class CallError(Generic[T]):
    """An AWS call that failed for one item, returned by :meth:`AwsRunner.map`, never raised."""

    __slots__ = ("error", "item")

    def __init__(self, item: T, error: Exception) -> None:
        self.item = item
        self.error = error

    def __repr__(self) -> str:
        return f"CallError({type(self.error).__name__})"


class AwsRunner:
    """Sessions, clients and worker pools of one ``collect()`` call of one AWS source.

    Two pools, each bounded by ``[aws] max_workers``: one runs the (account, region)
    units, the other the per-item calls units fan out (tags per parameter, last-used per
    key). NOTE: they must be separate: a unit blocks waiting for its items, so sharing
    one bounded pool could deadlock once every worker holds a waiting unit.
    """

    def __init__(self, source: str, ctx: SourceContext) -> None:
        self.source = source
        self.ctx = ctx
        self.config = ctx.config.aws
        self.workers = max(1, self.config.max_workers)
        # NOTE: botocore clients are thread-safe, sessions are not; one client is shared by
        # the unit's thread and up to `workers` item threads, hence the pool size.
        # NOTE: `[aws] timeout` bounds each attempt's wait for an answer; a hung endpoint
        # then costs at most max_attempts x timeout per call (plus backoff), never forever.
        timeout = max(1, self.config.timeout)
        self._boto_config = BotoConfig(
            retries={"mode": "adaptive", "max_attempts": max(1, self.config.max_attempts)},
            max_pool_connections=self.workers + 2, connect_timeout=min(10, timeout),
            read_timeout=timeout,
        )
        # NOTE: botocore retries connection errors and 5xx like throttling, with backoff up
        # to 20 s a try: against an unreachable endpoint or a region that does not exist,
        # the patient client above would wait minutes. One cheap call per unit with this
        # impatient client decides first whether the unit is reachable at all.
        self._probe_config = BotoConfig(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=min(5, timeout),
            read_timeout=min(20, timeout),
        )
        self._clients: dict[tuple[int, str, str], object] = {}
        self._lock = threading.Lock()
        self._items: ThreadPoolExecutor | None = None

    # -- running ---------------------------------------------------------------------------

    def run(self, work: Callable[[Unit], Iterable[Item]], *, per_region: bool = True,
            probe: tuple[str, Callable[[Any], object]] | None = None) -> Iterator[Item]:
        """Run ``work`` for every (account, region) unit and yield what it yields.

        ``probe`` is (service, call): one cheap call made with a fail-fast client before
        ``work``, so an unreachable endpoint or a bogus region fails in seconds.

        With ``per_region=False`` each account gets one global unit (IAM). Results come in
        unit order, so output is deterministic; an AWS error inside a unit keeps the
        records it yielded so far and adds one failure for that unit.
        """
        self._items = ThreadPoolExecutor(max_workers=self.workers,
                                         thread_name_prefix=f"{self.source}-item")
        try:
            accounts, failures = self._accounts()
            yield from failures
            units = [Unit(acc, region) for acc in accounts for region in acc.regions] if per_region \
                else [Unit(acc, acc.regions[0], is_global=True) for acc in accounts]
            if not units:
                return
            with ThreadPoolExecutor(max_workers=min(len(units), self.workers),
                                    thread_name_prefix=f"{self.source}-unit") as pool:
                futures = [(unit, pool.submit(self._drain, work, unit, probe)) for unit in units]
                for unit, future in futures:
                    items = future.result()
                    # NOTE: progress is reported from the thread iterating collect(), never
                    # from the pools, so one source never calls the sink concurrently.
                    found = sum(1 for i in items if isinstance(i, KeyRecord))
                    self.ctx.progress(self.source, f"{unit.scope}: {found} keys")
                    yield from items
        finally:
            self._items.shutdown(wait=True, cancel_futures=True)

    def _drain(self, work: Callable[[Unit], Iterable[Item]], unit: Unit,
               probe: tuple[str, Callable[[Any], object]] | None) -> list[Item]:
        out: list[Item] = []
        try:
            if probe is not None:
                service, call = probe
                try:
                    call(self.fast_client(unit, service))
                except ClientError as exc:
                    # NOTE: a throttled or 5xx answer proves the endpoint is there; whether the
                    # unit fails is then for the patient client and [aws] max_attempts to say,
                    # not for the probe's few tries (a brief throttle must not drop a region).
                    if not _is_transient(exc):
                        raise
            out.extend(work(unit))  # extend keeps what a generator yielded before it raised
        except AWS_ERRORS as exc:
            out.append(self.failure(unit.scope, exc))
        return out

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | CallError[T]]:
        """Call ``fn`` on every item concurrently (bounded); results in input order.

        AWS errors come back as :class:`CallError` values instead of being raised, so one
        bad item (a parameter deleted mid-run) costs that item only.
        """
        pool = self._items
        if pool is None:
            raise RuntimeError("AwsRunner.map called outside run()")
        futures: list[tuple[T, Future[R]]] = [(item, pool.submit(fn, item)) for item in items]
        out: list[R | CallError[T]] = []
        for item, future in futures:
            try:
                out.append(future.result())
            except AWS_ERRORS as exc:
                out.append(CallError(item, exc))
        return out

    # -- sessions and clients ----------------------------------------------------------------

    def _accounts(self) -> tuple[list[Account], list[SourceFailure]]:
        """Build the account scopes: profiles (or the default chain) plus assumed roles.

        Without profiles or roles, the default credential chain is the only scope. With
        roles but no profiles, only the roles are read (the default chain is their base).
        Every scope's credentials are checked once with sts:GetCallerIdentity, so a missing
        or expired login is one failure per profile, not one per region.
        """
        failures: list[SourceFailure] = []
        bases: list[tuple[str, boto3.Session]] = []
        for profile in self.config.profiles or (None,):
            label = f"profile {profile}" if profile else ""
            try:
                bases.append((label, boto3.Session(profile_name=profile)))
            except AWS_ERRORS as exc:
                failures.append(self.failure(label or "default", exc))
        candidates: list[tuple[str, boto3.Session]] = []
        if self.config.profiles or not self.config.assume_roles:
            candidates.extend(bases)
        if self.config.assume_roles and bases:
            base = bases[0][1]
            for role in self.config.assume_roles:
                label = f"role {role}"
                try:
                    candidates.append((label, self._assume(base, role)))
                except AWS_ERRORS as exc:
                    failures.append(self.failure(label, exc))
        accounts: list[Account] = []
        for label, session in candidates:
            regions = self._regions(session)
            try:
                account_id = self._identity(session, regions[0])
            except AWS_ERRORS as exc:
                if _is_credential_error(exc):
                    failures.append(self.failure(label or "default", exc))
                    continue
                account_id = None  # e.g. STS unreachable: let each region report for itself
            accounts.append(Account(label, session, regions, account_id,
                                    _partition(session, regions[0])))
        return accounts, failures

    def _regions(self, session: boto3.Session) -> tuple[str, ...]:
        """``--region`` > ``[aws] regions`` > the session's region > us-east-1."""
        if self.ctx.regions:
            return tuple(dict.fromkeys(self.ctx.regions))
        if self.config.regions:
            return tuple(dict.fromkeys(self.config.regions))
        return (session.region_name or DEFAULT_REGION,)

    def _identity(self, session: boto3.Session, region: str) -> str | None:
        sts = self._make_sts(session, region)
        return sts.get_caller_identity().get("Account")

    def _assume(self, base: boto3.Session, role: str) -> boto3.Session:
        # NOTE: the assumed credentials last one hour and are not refreshed; an inventory
        # run is far shorter than that.
        sts = self._make_sts(base, self._regions(base)[0])
        creds = sts.assume_role(RoleArn=role, RoleSessionName="keyguard-inventory")["Credentials"]
        return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"],
                             region_name=base.region_name)

    def _make_sts(self, session: boto3.Session, region: str) -> STSClient:
        with self._lock:
            return session.client("sts", region_name=region, endpoint_url=self.config.endpoint_url,
                                  config=self._probe_config)

    def fast_client(self, unit: Unit, service: str) -> Any:
        """A fail-fast client (two attempts, short timeouts) for reachability probes."""
        with self._lock:
            return unit.account.session.client(
                service, region_name=unit.region,  # type: ignore[call-overload]
                endpoint_url=self.config.endpoint_url, config=self._probe_config)

    def _client(self, unit: Unit, service: str, make: Callable[[], C]) -> C:
        key = (id(unit.account.session), service, unit.region)
        # NOTE: boto3.Session.client() is not thread-safe, hence the lock around creation.
        with self._lock:
            cached = self._clients.get(key)
            if cached is None:
                cached = make()
                self._clients[key] = cached
        return cast("C", cached)

    def secretsmanager(self, unit: Unit) -> SecretsManagerClient:
        """Return the unit's Secrets Manager client (cached, shared by its item calls)."""
        s = unit.account.session
        return self._client(unit, "secretsmanager", lambda: s.client(
            "secretsmanager", region_name=unit.region, endpoint_url=self.config.endpoint_url,
            config=self._boto_config))

    def ssm(self, unit: Unit) -> SSMClient:
        """Return the unit's SSM client (cached, shared by its item calls)."""
        s = unit.account.session
        return self._client(unit, "ssm", lambda: s.client(
            "ssm", region_name=unit.region, endpoint_url=self.config.endpoint_url,
            config=self._boto_config))

    def iam(self, unit: Unit) -> IAMClient:
        """Return the unit's IAM client; IAM is global, the region only picks the signing region."""
        s = unit.account.session
        return self._client(unit, "iam", lambda: s.client(
            "iam", region_name=unit.region, endpoint_url=self.config.endpoint_url,
            config=self._boto_config))

    def tagging(self, unit: Unit) -> TaggingClient:
        """Return the unit's Resource Groups Tagging API client (tags of many resources per call)."""
        s = unit.account.session
        return self._client(unit, "resourcegroupstaggingapi", lambda: cast("TaggingClient", s.client(
            "resourcegroupstaggingapi", region_name=unit.region, endpoint_url=self.config.endpoint_url,
            config=self._boto_config)))

    # -- failures ----------------------------------------------------------------------------

    def failure(self, scope: str, exc: Exception) -> SourceFailure:
        """Build a one-line failure for ``scope`` (region, profile...) from an AWS error."""
        return describe_error(self.source, scope, exc)

    def item_failures(self, scope: str, what: str, errors: list[CallError[T]], total: int) -> SourceFailure:
        """Summarise per-item errors of one unit as a single failure (first error as sample)."""
        first = describe_error(self.source, scope, errors[0].error)
        detail = first.message.split(": ", 1)[-1]
        return SourceFailure(self.source, scope,
                             f"{self.source} [{scope}]: {what} failed for {len(errors)} of {total} "
                             f"(first: {detail})", first.hint)


def describe_error(source: str, scope: str, exc: Exception) -> SourceFailure:
    """Map a botocore error to a one-line :class:`SourceFailure` with a hint.

    The message names the source, the scope and the failed operation. AWS's own error
    text is kept (first line, shortened) except for operations that return secret
    values, whose error text is never repeated, so no value can leak into a report.
    """
    what, hint = _explain(exc, scope)
    message = f"{source} [{scope}]: {what}"
    return SourceFailure(source, scope, " ".join(message.split()), hint)


def _explain(exc: Exception, scope: str) -> tuple[str, str]:
    region = scope.rsplit("/", 1)[-1]
    if isinstance(exc, ProfileNotFound):
        return (f"AWS profile {exc.kwargs.get('profile', '?')!r} not found",
                "check [aws] profiles in keyguard.toml and the profiles in ~/.aws/config")
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found", _CREDENTIAL_HINT
    if isinstance(exc, PartialCredentialsError):
        return (f"incomplete AWS credentials ({exc.kwargs.get('cred_var', '?')} missing)",
                _CREDENTIAL_HINT)
    if isinstance(exc, SSOError | TokenRetrievalError):
        return "the AWS SSO session is missing or expired", "run `aws sso login` (with --profile if needed)"
    if isinstance(exc, CredentialRetrievalError):
        return (f"the {exc.kwargs.get('provider', 'credential')} provider failed to return credentials",
                _CREDENTIAL_HINT)
    if isinstance(exc, ReadTimeoutError):
        endpoint = _safe_url(str(exc.kwargs.get("endpoint_url", "")))
        return (f"the AWS endpoint {endpoint} did not answer in time (ReadTimeoutError)",
                "retry later, or raise [aws] timeout or max_attempts; check network and proxy "
                "settings and AWS_ENDPOINT_URL")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        endpoint = _safe_url(str(exc.kwargs.get("endpoint_url", "")))
        return (f"cannot reach the AWS endpoint {endpoint} ({type(exc).__name__})",
                f"check network and proxy settings, AWS_ENDPOINT_URL, and that region {region!r} "
                "exists and is enabled for the account")
    if isinstance(exc, InvalidRegionError | NoRegionError):
        return (f"invalid or missing region ({type(exc).__name__})",
                "fix [aws] regions in keyguard.toml or --region")
    if isinstance(exc, ClientError):
        return _explain_client_error(exc, region)
    if isinstance(exc, ResponseParserError):
        return ("unreadable response from the endpoint (it may not implement this API)",
                "check AWS_ENDPOINT_URL; an emulator may not support this call")
    return f"AWS call failed ({type(exc).__name__})", "run with -v for details"


def _explain_client_error(exc: ClientError, region: str) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    op = exc.operation_name
    if code in _BAD_CREDENTIALS:
        opt_in = "" if op == "GetCallerIdentity" else \
            f"; in an opt-in region, enable {region!r} or remove it from [aws] regions"
        return f"{op}: the credentials were rejected ({code})", _CREDENTIAL_HINT + opt_in
    # NOTE: some services (and moto) answer a bare 403 without an AccessDenied code.
    if code in _DENIED or (status == 403 and code not in _EXPIRED):
        return f"access denied calling {op} ({code})", f"grant {permission(op)}"
    if code in _EXPIRED:
        return f"{op}: the credentials have expired ({code})", "run `aws sso login` or refresh the session credentials"
    if code in _THROTTLED:
        return (f"{op} throttled after retries ({code})",
                "raise [aws] max_attempts or lower [aws] max_workers")
    if code in _UNSUPPORTED or status >= 500:
        return (f"{op}: the endpoint answered a server error ({code}, HTTP {status})",
                "retry later; an emulator may not implement this call")
    text = "" if op in _VALUE_OPERATIONS else _short(str(error.get("Message", "")))
    return (f"{op} failed ({code}{': ' + text if text else ''})",
            f"check the request and permissions ({permission(op)})")


def permission(operation: str) -> str:
    """Name the IAM permission an operation needs (``ListSecrets`` -> ``secretsmanager:ListSecrets``)."""
    if operation in PERMISSIONS:
        return PERMISSIONS[operation]
    prefix = _SERVICE_OF.get(operation)
    return f"{prefix}:{operation}" if prefix else f"the {operation} permission"


_SERVICE_OF: Mapping[str, str] = {
    **dict.fromkeys(("ListSecrets", "DescribeSecret"), "secretsmanager"),
    **dict.fromkeys(("DescribeParameters", "ListTagsForResource", "GetParametersByPath"), "ssm"),
    "GetResources": "tag",
    **dict.fromkeys(("GetAccountAuthorizationDetails", "ListUsers", "ListUserTags", "ListAccessKeys",
                     "GetAccessKeyLastUsed", "GenerateCredentialReport", "GetCredentialReport",
                     "ListServiceSpecificCredentials", "GetAccountSummary"), "iam"),
    "GetCallerIdentity": "sts",
}


def is_unsupported(exc: Exception) -> bool:
    """Tell whether the endpoint does not implement an operation (moto's HTML 500 page).

    NOTE: a well-formed 500 (``InternalFailure``) is AWS failing, not an emulator gap: it
    must stay a failure (exit 3), or a persistent outage would silently drop credentials.
    A 5xx without an error document (botocore then uses the status as the code) is an
    emulator's HTML page.
    """
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _NOT_IMPLEMENTED or status == 501 or (status >= 500 and code.isdigit())
    return isinstance(exc, ResponseParserError)


def _is_transient(exc: ClientError) -> bool:
    """A throttling or AWS server-error answer: the endpoint is up, retrying may succeed.

    NOTE: a 5xx without an AWS error code (an HTML page: moto's answer for a region that
    does not exist) is not: waiting on it with the patient client would take minutes.
    """
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _THROTTLED or (status >= 500 and not code.isdigit()
                                  and code not in _NOT_IMPLEMENTED)


def _is_credential_error(exc: Exception) -> bool:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound | SSOError
                  | TokenRetrievalError | CredentialRetrievalError):
        return True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return code in _BAD_CREDENTIALS or code in _EXPIRED
    return False


def _short(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    if line.startswith("<"):  # an HTML error page, not a message
        return ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _safe_url(url: str) -> str:
    """Drop any user:password@ part of an endpoint URL before it goes into a message."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=host)
    return urllib.parse.urlunsplit(parts)


def _partition(session: boto3.Session, region: str) -> str:
    try:
        return session.get_partition_for_region(region)
    except (BotoCoreError, ClientError, ValueError):
        return "aws"


# -- small shared record helpers --------------------------------------------------------------


def utc(value: datetime | None) -> datetime | None:
    """Convert a botocore datetime (tz-aware, often tzlocal) to UTC; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(text: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp (``Z`` or offset) as UTC; AWS sentinels such as ``N/A`` give None."""
    if not text or text in ("N/A", "no_information", "not_supported"):
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def tag_map(tags: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """AWS ``[{"Key": k, "Value": v}]`` tags as a plain dict."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags if "Key" in t}


def labels_from_tags(tags: Mapping[str, str], labels: LabelsConfig) -> tuple[str | None, str | None]:
    """Return (owner, environment) from the tags named in ``[labels]``, case-insensitively.

    Sources normally leave both to the inventory (which applies tags, then name patterns,
    the same way for every source); this is for sources with a rule of their own, such as
    IAM's "owner is the user unless a tag says otherwise".
    """
    lowered = {k.lower(): v for k, v in tags.items() if v}
    owner = next((lowered[t.lower()] for t in labels.owner_tags if t.lower() in lowered), None)
    env = next((lowered[t.lower()] for t in labels.environment_tags if t.lower() in lowered), None)
    return owner, env


def account_from_arn(arn: str) -> str | None:
    """Return the account id field of an ARN, or None."""
    parts = arn.split(":", 5)
    return parts[4] or None if len(parts) > 4 else None
