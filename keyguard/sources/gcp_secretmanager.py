"""The ``gcp-secretmanager`` source: secrets of Google Cloud Secret Manager, per project.

Uses the official client (``pip install 'keyguard[gcp]'``), imported only when the source
runs, over its REST transport: the gRPC channel buys nothing for a few list calls and REST
is what a private endpoint or a test server speaks. Per project it lists secrets
(``ListSecrets``: create time, labels, rotation, expiry, replication) and, per secret, its
versions (``ListSecretVersions``) to find the latest enabled one: its create time is when
the value last changed. Values are read (``AccessSecretVersion`` of that version) only with
``--inspect-values``.

Credentials are Application Default Credentials unless ``access-token`` names a reference
to an OAuth access token. Retries are the client's own (429 and 5xx, exponential backoff)
bounded by ``timeout`` seconds per call; Secret Manager keeps no last-access time.

Least privilege: ``roles/secretmanager.viewer``; ``roles/secretmanager.secretAccessor`` only
for ``--inspect-values``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, ClassVar, TypeVar

from keyguard.classify import inspect_value
from keyguard.credentials import resolve
from keyguard.errors import ConfigError
from keyguard.model import KeyRecord, KeyStatus, RotationSettings, Scope, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.secretmanager import SecretManagerServiceClient
    from google.cloud.secretmanager_v1.types import Secret as GcpSecret
    from google.cloud.secretmanager_v1.types import SecretVersion

T = TypeVar("T")

LIST_CALL = "secretmanager.secrets.list"
VERSIONS_CALL = "secretmanager.versions.list"
_INSTALL_HINT = "pip install 'keyguard[gcp]'"
_AUTH_HINT = ("run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS), "
              "or set [sources.gcp-secretmanager] access-token = \"env:VAR\"")


class _Unreadable(Exception):
    """One project or secret failed; carries the failure to report."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class GcpSecretManagerSource:
    """Secret Manager secrets of the configured projects; values only with ``inspect_values``."""

    name: ClassVar[str] = "gcp-secretmanager"
    description: ClassVar[str] = "Google Cloud Secret Manager secrets (needs keyguard[gcp])"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.gcp_secretmanager

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per secret (or per credential in its value) and per-project failures."""
        try:
            importlib.import_module("google.cloud.secretmanager")
        except ImportError:
            yield SourceFailure(self.name, "", "google-cloud-secret-manager is not installed",
                                f"install keyguard[gcp]: {_INSTALL_HINT}")
            return
        env_project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
        projects = self._cfg.projects or ((env_project,) if env_project else ())
        if not projects:
            yield SourceFailure(self.name, "", "no project to read",
                                "set [sources.gcp-secretmanager] projects, or GOOGLE_CLOUD_PROJECT")
            return
        try:
            client = self._client()
        except _Unreadable as exc:
            yield SourceFailure(self.name, "", exc.message, exc.hint)
            return
        for project in projects:
            try:
                yield from self._project(client, project)
            except _Unreadable as exc:
                yield SourceFailure(self.name, f"project {project}", exc.message, exc.hint)

    def _client(self) -> SecretManagerServiceClient:
        import google.auth
        import google.auth.credentials
        import google.auth.exceptions
        from google.api_core.client_options import ClientOptions
        from google.cloud import secretmanager
        from google.oauth2.credentials import Credentials

        options = ClientOptions(api_endpoint=self._cfg.endpoint) if self._cfg.endpoint else None
        if self._cfg.access_token is not None:
            try:
                token = resolve(self._cfg.access_token)
            except ConfigError as exc:
                raise _Unreadable(f"[sources.gcp-secretmanager] access-token: {exc.message}",
                                  exc.hint) from None
            credentials: google.auth.credentials.Credentials = Credentials(  # type: ignore[no-untyped-call]
                token=token.reveal())
        else:
            try:
                credentials, _project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"])
            except google.auth.exceptions.GoogleAuthError as exc:
                raise _Unreadable(f"no Google credentials ({type(exc).__name__})", _AUTH_HINT) from None
        return secretmanager.SecretManagerServiceClient(
            transport="rest", credentials=credentials, client_options=options)

    def _retry(self) -> Retry:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        return Retry(predicate=if_exception_type(gexc.TooManyRequests, gexc.ServiceUnavailable,
                                                 gexc.InternalServerError, gexc.BadGateway,
                                                 gexc.GatewayTimeout),
                     initial=0.5, maximum=8.0, multiplier=2.0, timeout=float(self._cfg.timeout))

    def _project(self, client: SecretManagerServiceClient, project: str) -> Iterator[KeyRecord | SourceFailure]:
        secrets = self._call(project, lambda: list(client.list_secrets(
            request={"parent": f"projects/{project}", "page_size": self._cfg.page_size},
            retry=self._retry(), timeout=self._cfg.timeout)))
        self._ctx.progress(self.name, f"{project}: {len(secrets)} secrets")
        for secret in secrets:
            try:
                versions = self._call(project, partial(
                    _versions, client, secret.name, self._cfg.page_size, self._retry(), self._cfg.timeout))
            except _Unreadable as exc:
                yield SourceFailure(self.name, secret.name, exc.message, exc.hint)
                versions = None
            base = self._record(project, secret, versions)
            latest = _latest_enabled(versions or [])
            if not self._ctx.inspect_values or latest is None:
                yield base
                continue
            try:
                value = self._call(project, partial(_access, client, latest.name, self._retry(),
                                                    self._cfg.timeout))
            except _Unreadable as exc:
                yield SourceFailure(self.name, secret.name, f"cannot read the value: {exc.message}",
                                    "grant roles/secretmanager.secretAccessor for --inspect-values")
                yield base
                continue
            yield from self._inspected(base, value, secret.name)

    def _inspected(self, base: KeyRecord, value: Secret | None, where: str) -> Iterator[KeyRecord]:
        if value is None:  # binary payload: listed, not classified
            yield dataclasses.replace(base, value_inspected=True)
            return
        matches = inspect_value(value, self._ctx.fingerprinter, name=base.name)
        if not matches:
            yield dataclasses.replace(base, value_inspected=True)
        for m in matches:
            yield dataclasses.replace(base, provider=m.provider, kind=m.kind, field=m.field,
                                      key_id=m.key_id, fingerprint=m.fingerprint, links=m.links, value_inspected=True)

    def _record(self, project: str, secret: GcpSecret, versions: list[SecretVersion] | None) -> KeyRecord:
        pb = type(secret).pb(secret)
        short = secret.name.rsplit("/", 1)[-1]
        created = _time(secret.create_time) if pb.HasField("create_time") else None
        expires = _time(secret.expire_time) if pb.HasField("expire_time") else None
        details: list[str] = []
        kind = pb.replication.WhichOneof("replication")
        if kind == "user_managed":
            locations = ",".join(r.location for r in secret.replication.user_managed.replicas)
            details.append(f"replication=user-managed({locations})")
        elif kind:
            details.append(f"replication={kind}")
        if secret.topics:
            details.append(f"topics={','.join(t.name for t in secret.topics)}")
        provenance = {"tags": LIST_CALL, "rotation": LIST_CALL}
        if created is not None:
            provenance["created"] = LIST_CALL
        if expires is not None:
            provenance["expires"] = LIST_CALL
        status = KeyStatus.ACTIVE
        changed = None
        if versions is not None:
            latest = _latest_enabled(versions)
            details.append(f"versions={len(versions)}")
            if latest is None:
                status = KeyStatus.INACTIVE  # nothing enabled: the secret cannot be read
            else:
                details.append(f"version={latest.name.rsplit('/', 1)[-1]}")
                changed = _time(latest.create_time)
                provenance["last_changed"] = f"{VERSIONS_CALL} (latest enabled version)"
            provenance["status"] = VERSIONS_CALL
        if expires is not None and expires <= self._ctx.now:
            status = KeyStatus.EXPIRED
        return KeyRecord(
            source=self.name, location=secret.name, name=short, account=project,
            tags=dict(secret.labels), status=status, created=created, last_changed=changed,
            expires=expires, rotation=_rotation(secret), scope=Scope(details=tuple(details)),
            provenance=provenance,
        )

    def _call(self, project: str, fn: Callable[[], T]) -> T:
        """Run one client call; turn its errors into a one-line :class:`_Unreadable`."""
        import google.auth.exceptions
        from google.api_core import exceptions as gexc

        try:
            return fn()
        except (gexc.Unauthorized, google.auth.exceptions.RefreshError) as exc:
            raise _Unreadable(f"credentials rejected ({_brief(exc)})", _AUTH_HINT) from None
        except gexc.Forbidden as exc:
            raise _Unreadable(f"permission denied ({_brief(exc)})",
                              f"grant roles/secretmanager.viewer on project {project}") from None
        except gexc.NotFound as exc:
            raise _Unreadable(f"not found ({_brief(exc)})",
                              "check the project id and that the Secret Manager API is enabled") from None
        except gexc.RetryError as exc:
            raise _Unreadable(f"still failing after retries for {self._cfg.timeout}s ({_brief(exc)})",
                              "try again later, or raise [sources.gcp-secretmanager] timeout") from None
        except (gexc.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as exc:
            raise _Unreadable(f"API error ({_brief(exc)})", "") from None
        except OSError as exc:  # requests' errors (connection refused, TLS) are OSErrors
            raise _Unreadable(f"cannot reach the Secret Manager API ({type(exc).__name__})",
                              "check [sources.gcp-secretmanager] endpoint and the network") from None


def _versions(client: SecretManagerServiceClient, parent: str, page_size: int, retry: Retry,
              timeout: int) -> list[SecretVersion]:
    """Every version of one secret (all pages)."""
    return list(client.list_secret_versions(request={"parent": parent, "page_size": page_size},
                                            retry=retry, timeout=timeout))


def _access(client: SecretManagerServiceClient, name: str, retry: Retry, timeout: int) -> Secret | None:
    """The value of version ``name``, decoded; None when it is not UTF-8 text."""
    payload = client.access_secret_version(name=name, retry=retry, timeout=timeout).payload.data
    try:
        return Secret(payload.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    finally:
        del payload


def _latest_enabled(versions: list[SecretVersion]) -> SecretVersion | None:
    from google.cloud.secretmanager_v1.types import SecretVersion

    enabled = [v for v in versions if v.state == SecretVersion.State.ENABLED]
    return max(enabled, key=lambda v: (_time(v.create_time), _number(v.name)), default=None)


def _number(name: str) -> int:
    tail = name.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _time(value: datetime) -> datetime:
    """Proto timestamps come as DatetimeWithNanoseconds (a datetime subclass, UTC): plain them."""
    return datetime.fromtimestamp(value.timestamp(), tz=value.tzinfo)


def _rotation(secret: GcpSecret) -> RotationSettings:
    """Rotation is a notification schedule only: Secret Manager never changes a value itself."""
    pb = type(secret).pb(secret)
    if not pb.HasField("rotation"):
        return RotationSettings(supported=True, enabled=None)
    rot = pb.rotation
    period = secret.rotation.rotation_period if rot.HasField("rotation_period") else None
    days = round(period.total_seconds() / 86400) if period is not None else None
    return RotationSettings(
        supported=True, enabled=True, interval_days=days,
        schedule=f"every {int(period.total_seconds())}s (Pub/Sub notification)" if period else None,
        next_rotation=_time(secret.rotation.next_rotation_time) if rot.HasField("next_rotation_time") else None,
    )


def _brief(exc: BaseException) -> str:
    """One short line; an API error's own message, without the request URL."""
    message = getattr(exc, "message", None)
    code = getattr(exc, "code", None)
    raw = f"{code} {message}" if isinstance(message, str) and isinstance(code, int) else str(exc)
    text = " ".join(raw.split())
    return text if len(text) <= 160 else text[:157] + "..."


PLUGIN: type[Source] = GcpSecretManagerSource
