"""The ``vault`` source: secrets in HashiCorp Vault / OpenBao KV version 2 mounts.

What it reads, and the least privilege for each (the README has the policy):

* mounts: every KV v2 mount in ``sys/mounts`` (``read``); without that permission, the
  mounts ``sys/internal/ui/mounts`` shows the token (any token may read it); or exactly
  ``[sources.vault] mounts``;
* names: ``LIST <mount>/metadata/<folder>`` recursively, at most ``max-secrets`` in all;
* metadata: ``GET <mount>/metadata/<path>`` per secret (``read``), run ``max-workers`` at a
  time: created, updated, current version, versions, custom metadata (as tags),
  ``delete_version_after`` and ``cas_required``;
* values, only with ``--inspect-values``: ``GET <mount>/data/<path>`` (latest version),
  classified per JSON field by :func:`keyguard.classify.inspect_value`.

Location and identity: ``<mount>/<path>`` (``secret/team/openai``), prefixed with the
namespace when one is set (``team-a/secret/app``). That is the path users type into
``vault kv get``, and it survives DNS names, ports and load balancers changing in front of
the cluster; the cluster's ``host:port`` goes into ``account`` so a report still says which
cluster a row came from.

Settings follow the ``vault``/``bao`` CLIs: ``[sources.vault]`` first, then ``VAULT_ADDR``,
``VAULT_NAMESPACE``, ``VAULT_CACERT``/``VAULT_SKIP_VERIFY``, and credentials in this order:
``token`` (a ``keyring:NAME``/``env:VAR`` reference), ``VAULT_TOKEN``, AppRole
(``role-id``/``VAULT_ROLE_ID`` with ``secret-id``/``VAULT_SECRET_ID``), ``~/.vault-token``.

Failures are one line each and never quote a Vault response body: hvac puts the whole body
into some exception messages, and a ``data/`` response body *is* the secret. An unreachable,
sealed or token-rejecting server fails the whole source; a mount the token may not list fails
that mount only and the others continue.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import hvac
import hvac.exceptions
import requests

from keyguard.classify import inspect_value
from keyguard.config import VaultConfig
from keyguard.errors import ConfigError, SourceError
from keyguard.model import KeyRecord, KeyStatus, RotationSettings, Scope, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext

NAME = "vault"
METADATA_CALL = "vault:GET {mount}/metadata/<path>"

#: What a Vault call can raise: an HTTP-level answer or a transport failure.
_CALL_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.RequestException)

_HINT_ADDRESS = "set VAULT_ADDR (or [sources.vault] address), e.g. https://vault.example.com:8200"
_HINT_UNREACHABLE = "check VAULT_ADDR / [sources.vault] address and that the server is up"
_HINT_TLS = ("set VAULT_CACERT or [sources.vault] verify to the CA bundle that signed the "
             "server certificate")
_HINT_SEALED = "unseal it (vault/bao operator unseal) and run again"
_HINT_REJECTED = ("check VAULT_TOKEN / [sources.vault] token (expired or revoked?) and log in "
               "again; the token also needs the default policy's read on auth/token/lookup-self")
_HINT_CREDENTIALS = ("set VAULT_TOKEN, VAULT_ROLE_ID + VAULT_SECRET_ID (AppRole), or "
                     "[sources.vault] token = \"keyring:NAME\" (see `keyguard auth set`)")
_HINT_MOUNTS = ("grant read on sys/mounts, or list the KV v2 mounts in [sources.vault] "
                "mounts")
_HINT_LIST = "grant list and read on {mount}/metadata/* to the token's policy"
_HINT_DATA = "grant read on {mount}/data/* for --inspect-values, or run without it"
_HINT_MAX = "raise [sources.vault] max-secrets, or narrow [sources.vault] mounts"


@dataclass(frozen=True, slots=True)
class _Settings:
    """Where and how to connect, resolved from config and environment before any call."""

    address: str
    host: str
    namespace: str | None
    verify: bool | str
    timeout: float | None


@dataclass(slots=True)
class _Problems:
    """Per-mount tally of secrets whose metadata or value could not be read."""

    metadata_denied: list[str] = field(default_factory=list)
    data_denied: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, description)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What reading one secret gave: its records, and at most one problem."""

    records: tuple[KeyRecord, ...]
    problem: str | None = None  # "metadata-denied" | "data-denied" | "error"
    detail: str = ""


class VaultSource:
    """KV v2 secrets in Vault / OpenBao: metadata of every secret, values only when inspecting."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "HashiCorp Vault / OpenBao KV v2: every secret the token can list"

    def __init__(self, ctx: SourceContext, env: Mapping[str, str] | None = None) -> None:
        self._ctx = ctx
        self._cfg: VaultConfig = ctx.config.sources.vault
        # NOTE: like boto3 with AWS_*, this source honours the standard VAULT_* variables;
        # tests pass ``env`` instead of touching the process environment.
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._local = threading.local()
        self._token: Secret | None = None
        self._settings_cache: _Settings  # set first thing in collect()
        self._clients: list[hvac.Client] = []  # one per thread, closed when collect() ends
        self._clients_lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield a record per secret (or per credential inside it) and a failure per mount."""
        try:
            yield from self._collect()
        finally:
            for client in self._clients:
                client.adapter.close()
            self._clients.clear()

    def _collect(self) -> Iterator[KeyRecord | SourceFailure]:
        try:
            settings = self._settings()
            self._settings_cache = settings
            self._token = self._login(settings)
            self._check_token()
        except SourceError as exc:
            yield SourceFailure(NAME, exc.scope, exc.message, exc.hint)
            return
        mounts, failure = self._mounts(settings)
        if failure is not None:
            yield failure
        budget = [self._cfg.max_secrets]
        with ThreadPoolExecutor(max_workers=self._cfg.max_workers,
                                thread_name_prefix="kg-vault") as pool:
            for mount in mounts:
                yield from self._mount(pool, settings, mount, budget)
                if budget[0] < 0:
                    break

    # -- connection ----------------------------------------------------------------------

    def connect(self) -> tuple[hvac.Client, str | None]:
        """An authenticated client and the namespace, resolved exactly as ``collect`` does.

        For code that writes to Vault (rotation stores, canary planting): one place owns the
        address, TLS and token rules (config reference, VAULT_TOKEN, AppRole,
        ~/.vault-token). The caller closes the client's adapter when done.

        Raises:
            SourceError: no address, a bad CA bundle, no credentials or a refused login.

        """
        settings = self._settings()
        return self._new_client(settings, self._login(settings)), settings.namespace

    def _settings(self) -> _Settings:
        address = (self._cfg.address or self._env.get("VAULT_ADDR", "")).strip().rstrip("/")
        if not address:
            raise SourceError(NAME, "", "no Vault address configured", _HINT_ADDRESS)
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(NAME, "", f"Vault address {address[:80]!r} is not an http(s) URL",
                              _HINT_ADDRESS)
        namespace = (self._cfg.namespace or self._env.get("VAULT_NAMESPACE", "")).strip("/ ")
        verify: bool | str
        if self._cfg.verify is not None:
            verify = self._cfg.verify
        elif self._env.get("VAULT_SKIP_VERIFY", "").lower() in ("1", "true", "yes"):
            verify = False
        else:
            verify = self._env.get("VAULT_CACERT") or True
        if isinstance(verify, str) and not Path(verify).expanduser().is_file():
            raise SourceError(NAME, "", f"CA bundle {verify[:120]} (VAULT_CACERT / [sources.vault] "
                                        "verify) is not a readable file", _HINT_TLS)
        if isinstance(verify, str):
            verify = str(Path(verify).expanduser())
        return _Settings(address=address, host=parts.netloc, namespace=namespace or None,
                         verify=verify, timeout=float(self._cfg.timeout) or None)

    def _new_client(self, settings: _Settings, token: Secret | None) -> hvac.Client:
        return hvac.Client(url=settings.address, token=token.reveal() if token else None,
                           namespace=settings.namespace, verify=settings.verify,
                           timeout=settings.timeout)  # type: ignore[arg-type]

    def _client(self) -> hvac.Client:
        """Return this thread's client: requests sessions are not shared between threads."""
        client: hvac.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client(self._settings_cache, self._token)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _login(self, settings: _Settings) -> Secret:
        """Find the token: config reference, VAULT_TOKEN, AppRole, then ~/.vault-token."""
        from keyguard.credentials import resolve

        try:
            if self._cfg.token:
                return resolve(self._cfg.token, self._env)
            if self._env.get("VAULT_TOKEN", "").strip():
                return Secret(self._env["VAULT_TOKEN"].strip())
            role_id = self._cfg.role_id or self._env.get("VAULT_ROLE_ID", "").strip()
            if role_id:
                if self._cfg.secret_id:
                    secret_id: Secret | None = resolve(self._cfg.secret_id, self._env)
                else:
                    raw = self._env.get("VAULT_SECRET_ID", "").strip()
                    secret_id = Secret(raw) if raw else None
                return self._approle(settings, role_id, secret_id)
        except ConfigError as exc:
            raise SourceError(NAME, "", exc.message, exc.hint) from None
        token_file = Path(self._env.get("HOME", "~")).expanduser() / ".vault-token"
        try:
            saved = token_file.read_text(encoding="utf-8").strip()
        except OSError:
            saved = ""
        if saved:
            return Secret(saved)
        raise SourceError(NAME, "", "no Vault credentials found", _HINT_CREDENTIALS)

    def _approle(self, settings: _Settings, role_id: str, secret_id: Secret | None) -> Secret:
        client = self._new_client(settings, None)
        try:
            client.auth.approle.login(role_id=role_id,
                                      secret_id=secret_id.reveal() if secret_id else None,
                                      mount_point=self._cfg.approle_mount)
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden,
                hvac.exceptions.InvalidPath):
            raise SourceError(NAME, "", f"AppRole login at {settings.host} "
                                        f"(auth/{self._cfg.approle_mount}) was refused",
                              "check VAULT_ROLE_ID / VAULT_SECRET_ID (secret ids expire) and "
                              "[sources.vault] approle-mount") from None
        except _CALL_ERRORS as exc:
            raise self._server_error(exc, settings) from None
        finally:
            client.adapter.close()
        return Secret(str(client.token))

    def _check_token(self) -> None:
        """One cheap authenticated call, so a bad token is one failure, not one per mount."""
        settings = self._settings_cache
        try:
            self._client().auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise SourceError(NAME, "", f"Vault at {settings.host} rejected the token "
                                        "(permission denied on auth/token/lookup-self)",
                              _HINT_REJECTED) from None
        except _CALL_ERRORS as exc:
            raise self._server_error(exc, settings) from None

    def _server_error(self, exc: Exception, settings: _Settings) -> SourceError:
        """Name a connection- or server-level failure as one whole-source SourceError."""
        message, hint = _server_problem(exc, settings.host)
        return SourceError(NAME, "", message, hint)

    # -- mounts --------------------------------------------------------------------------

    def _mounts(self, settings: _Settings) -> tuple[list[str], SourceFailure | None]:
        if self._cfg.mounts:
            return [m.strip("/") for m in self._cfg.mounts if m.strip("/")], None
        client = self._client()
        try:
            table = client.sys.list_mounted_secrets_engines()[  # type: ignore[no-untyped-call]
                "data"]
        except hvac.exceptions.Forbidden:
            try:
                # NOTE: any token may read this endpoint; it shows the mounts the token has
                # some capability on, which is what a least-privilege token can use anyway.
                table = client.adapter.get("/v1/sys/internal/ui/mounts")["data"]["secret"]
            except _CALL_ERRORS as exc:  # any failure: ask for explicit mounts
                return [], SourceFailure(NAME, "sys/mounts", "cannot discover KV v2 mounts "
                                         f"({_describe(exc)})", _HINT_MOUNTS)
            self._ctx.progress(NAME, "sys/mounts denied; using the mounts visible to the token")
        except _CALL_ERRORS as exc:
            message, hint = _server_problem(exc, settings.host)
            return [], SourceFailure(NAME, "sys/mounts", f"cannot discover mounts: {message}", hint)
        mounts = sorted(
            str(path).strip("/") for path, info in dict(table).items()
            if isinstance(info, Mapping) and info.get("type") == "kv"
            and str((info.get("options") or {}).get("version", "1")) == "2"
        )
        self._ctx.progress(NAME, f"{len(mounts)} KV v2 mounts")
        return mounts, None

    def _mount(self, pool: ThreadPoolExecutor, settings: _Settings, mount: str,
               budget: list[int]) -> Iterator[KeyRecord | SourceFailure]:
        """List one mount, then read each secret's metadata (and value) concurrently."""
        if self._cfg.mounts:
            wrong = self._not_kv2(mount)
            if wrong is not None:
                yield wrong
                return
        paths, failures = self._list(settings, mount, budget)
        yield from failures
        problems = _Problems()
        for outcome, path in zip(pool.map(lambda p: self._secret(mount, p), paths), paths,
                                 strict=True):
            yield from outcome.records
            if outcome.problem == "metadata-denied":
                problems.metadata_denied.append(path)
            elif outcome.problem == "data-denied":
                problems.data_denied.append(path)
            elif outcome.problem == "error":
                problems.errors.append((path, outcome.detail))
        yield from self._problem_failures(mount, problems)
        self._ctx.progress(NAME, f"{mount}: {len(paths)} secrets")

    def _not_kv2(self, mount: str) -> SourceFailure | None:
        """Return a failure when a configured mount is not KV version 2, as Vault describes it.

        A KV v1 mount would otherwise list as empty, silently: its secrets live at
        ``<mount>/<path>``, not under ``metadata/``.
        """
        try:
            info = self._client().adapter.get(f"/v1/sys/internal/ui/mounts/{mount}")["data"]
        except _CALL_ERRORS:
            return None  # no capability on it, or no such mount: the listing will say which
        kind = str(info.get("type", "?"))
        version = str((info.get("options") or {}).get("version", "1"))
        if kind == "kv" and version == "2":
            return None
        what = f"KV version {version}" if kind == "kv" else f"a {kind} mount"
        return SourceFailure(NAME, self._scope(mount), f"{mount}/ is {what}, not KV version 2",
                             "list only KV v2 mounts in [sources.vault] mounts")

    def _list(self, settings: _Settings, mount: str,
              budget: list[int]) -> tuple[list[str], list[SourceFailure]]:
        """Every secret path under ``mount``, depth-first in name order, within the budget."""
        client = self._client()
        found: list[str] = []
        denied: list[str] = []
        stack = [""]
        while stack:
            folder = stack.pop()
            try:
                keys = client.secrets.kv.v2.list_secrets(path=folder, mount_point=mount)["data"]["keys"]
            except hvac.exceptions.InvalidPath as exc:
                if not folder and any("no handler for route" in str(e) for e in exc.errors or ()):
                    return [], [SourceFailure(NAME, self._scope(mount), f"no mount at {mount}/",
                                              "check [sources.vault] mounts")]
                keys = []  # an empty mount or folder answers 404
            except hvac.exceptions.Forbidden:
                if not folder:
                    return [], [SourceFailure(
                        NAME, self._scope(mount), f"permission denied listing {mount}/metadata/",
                        _HINT_LIST.format(mount=mount))]
                denied.append(folder)
                continue
            except _CALL_ERRORS as exc:  # server gone or sealed mid-run
                message, hint = _server_problem(exc, settings.host)
                return [], [SourceFailure(NAME, self._scope(mount), f"{mount}: {message}", hint)]
            subfolders: list[str] = []
            for key in sorted(str(k) for k in keys):
                if key.endswith("/"):
                    subfolders.append(folder + key)
                    continue
                if budget[0] == 0:
                    budget[0] = -1
                    return found, [SourceFailure(
                        NAME, self._scope(mount),
                        f"stopped listing at {mount}/{folder}{key}: read the limit of "
                        f"{self._cfg.max_secrets} secrets", _HINT_MAX)]
                budget[0] -= 1
                found.append(folder + key)
            stack.extend(reversed(subfolders))
        failures = []
        if denied:
            failures.append(SourceFailure(
                NAME, self._scope(mount),
                f"permission denied listing {len(denied)} folder(s) of {mount}, first "
                f"{mount}/{denied[0]}", _HINT_LIST.format(mount=mount)))
        return found, failures

    def _problem_failures(self, mount: str, problems: _Problems) -> Iterator[SourceFailure]:
        scope = self._scope(mount)
        if problems.metadata_denied:
            first = problems.metadata_denied[0]
            yield SourceFailure(NAME, scope, f"permission denied reading metadata of "
                                f"{len(problems.metadata_denied)} secret(s) in {mount}, first "
                                f"{mount}/{first}", _HINT_LIST.format(mount=mount))
        if problems.data_denied:
            first = problems.data_denied[0]
            yield SourceFailure(NAME, scope, f"permission denied reading the value of "
                                f"{len(problems.data_denied)} secret(s) in {mount}, first "
                                f"{mount}/{first}; listed, not classified",
                                _HINT_DATA.format(mount=mount))
        if problems.errors:
            first, detail = problems.errors[0]
            yield SourceFailure(NAME, scope, f"{len(problems.errors)} secret(s) in {mount} could "
                                f"not be read, first {mount}/{first} ({detail})", _HINT_UNREACHABLE)

    # -- one secret ----------------------------------------------------------------------

    def _secret(self, mount: str, path: str) -> _Outcome:
        client = self._client()
        bare = KeyRecord(source=NAME, location=self._location(mount, path), name=path,
                         account=self._settings_cache.host)
        try:
            meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)["data"]
        except hvac.exceptions.InvalidPath:
            return _Outcome(())  # deleted (all versions and metadata) since the listing
        except hvac.exceptions.Forbidden:
            return _Outcome((bare,), "metadata-denied")
        except _CALL_ERRORS as exc:
            return _Outcome((bare,), "error", _describe(exc))
        base = self._record(bare, mount, meta)
        if not self._ctx.inspect_values or base.status in (KeyStatus.DELETED, KeyStatus.INACTIVE):
            return _Outcome((base,))
        try:
            value = _read_value(client, mount, path)
        except hvac.exceptions.InvalidPath:
            return _Outcome((base,))  # latest version deleted since the metadata read
        except hvac.exceptions.Forbidden:
            return _Outcome((base,), "data-denied")
        except _CALL_ERRORS as exc:
            return _Outcome((base,), "error", _describe(exc))
        if value is None:
            return _Outcome((base,))
        matches = inspect_value(value, self._ctx.fingerprinter, name=path)
        del value
        if not matches:
            return _Outcome((dataclasses.replace(base, value_inspected=True),))
        return _Outcome(tuple(
            dataclasses.replace(base, provider=m.provider, kind=m.kind, field=m.field,
                                key_id=m.key_id, fingerprint=m.fingerprint, links=m.links,
                                value_inspected=True)
            for m in matches
        ))

    def _record(self, bare: KeyRecord, mount: str, meta: Mapping[str, Any]) -> KeyRecord:
        """Turn KV v2 metadata into a record; the current version decides status and expiry."""
        call = METADATA_CALL.format(mount=mount)
        current = _int(meta.get("current_version"))
        versions = meta.get("versions") or {}
        version = versions.get(str(current)) or {} if isinstance(versions, Mapping) else {}
        created = _time(meta.get("created_time"))
        updated = _time(meta.get("updated_time"))
        version_created = _time(version.get("created_time"))
        deletion = _time(version.get("deletion_time"))
        status = KeyStatus.ACTIVE
        expires = None
        if current == 0:
            status = KeyStatus.INACTIVE  # metadata only: no version holds a value
        elif version.get("destroyed") or (deletion is not None and deletion <= self._ctx.now):
            status = KeyStatus.DELETED
        elif deletion is not None:
            expires = deletion  # delete_version_after scheduled the current version's deletion
        custom = meta.get("custom_metadata") or {}
        tags = {str(k): str(v) for k, v in sorted(custom.items())} if isinstance(custom, Mapping) else {}
        details = [f"mount={mount}", f"version={current}",
                   f"versions={len(versions) if isinstance(versions, Mapping) else 0}",
                   f"max-versions={_int(meta.get('max_versions'))}",
                   f"delete-version-after={meta.get('delete_version_after', '0s')}",
                   f"cas-required={str(bool(meta.get('cas_required'))).lower()}"]
        if self._settings_cache.namespace:
            details.insert(0, f"namespace={self._settings_cache.namespace}")
        provenance = {"status": f"{call} (versions[current].deletion_time, destroyed)",
                      "tags": f"{call} (custom_metadata)"}
        if created:
            provenance["created"] = f"{call} (created_time)"
        if updated:
            provenance["last_changed"] = f"{call} (updated_time)"
        # A KV secret is "rotated" by writing a new version: the current version's creation
        # is when its value last changed. Version 1 was never rotated.
        last_rotated = version_created if current > 1 else None
        if last_rotated:
            provenance["last_rotated"] = f"{call} (versions[current].created_time)"
        if expires:
            provenance["expires"] = f"{call} (delete_version_after)"
        return dataclasses.replace(
            bare, tags=tags, status=status, created=created, last_changed=updated,
            last_rotated=last_rotated, expires=expires, rotation=RotationSettings(supported=False),
            scope=Scope(details=tuple(details)), provenance=provenance,
        )

    def _location(self, mount: str, path: str) -> str:
        namespace = self._settings_cache.namespace
        return f"{namespace}/{mount}/{path}" if namespace else f"{mount}/{path}"

    def _scope(self, mount: str) -> str:
        namespace = self._settings_cache.namespace
        return f"{namespace}/{mount}" if namespace else mount


def _read_value(client: hvac.Client, mount: str, path: str) -> Secret | None:
    """The latest version's data as JSON, wrapped in a Secret at once; None if not an object."""
    response = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount, raise_on_deleted_version=True)
    data = (response.get("data") or {}).get("data")
    del response
    if not isinstance(data, Mapping):
        return None
    return Secret(json.dumps(data, sort_keys=True))


def _server_problem(exc: BaseException, host: str) -> tuple[str, str]:
    """One-line message and hint for a connection- or server-level failure."""
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS verification of Vault at {host} failed", _HINT_TLS
    if isinstance(exc, requests.exceptions.Timeout):
        return f"Vault at {host} did not answer in time", _HINT_UNREACHABLE
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"Vault at {host} is unreachable", _HINT_UNREACHABLE
    if isinstance(exc, hvac.exceptions.VaultDown):
        return f"Vault at {host} is sealed or unavailable (HTTP 503)", _HINT_SEALED
    if isinstance(exc, hvac.exceptions.VaultNotInitialized):
        return f"Vault at {host} is not initialized", "initialize and unseal it first"
    if isinstance(exc, hvac.exceptions.RateLimitExceeded):
        return f"Vault at {host} is rate limiting (HTTP 429)", "run again later"
    return f"Vault at {host} failed ({_describe(exc)})", _HINT_UNREACHABLE


def _describe(exc: BaseException) -> str:
    """Name an error briefly without quoting a response body (it may hold a secret)."""
    name = type(exc).__name__
    if isinstance(exc, hvac.exceptions.VaultError):
        errors = exc.errors if isinstance(exc.errors, list) else []
        text = " ".join(" ".join(str(e).replace("*", " ").split()) for e in errors)[:120]
        return f"{name}: {text}" if text else name
    if isinstance(exc, requests.exceptions.RequestException):
        return name  # their text repeats the URL at best
    return name


def _time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (nanoseconds, "Z"); "" and the zero time mean none."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


PLUGIN: type[Source] = VaultSource
