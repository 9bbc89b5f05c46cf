"""The ``azure-keyvault`` source: secrets of the configured Azure Key Vaults.

Uses the official client (``pip install 'keyguard[azure]'``: azure-keyvault-secrets and
azure-identity), imported only when the source runs. Per vault, one paginated
``list_properties_of_secrets`` gives created/updated/expiry times, enabled, tags, content
type and whether the secret backs a certificate (``managed``); values are read with
``get_secret`` only with ``--inspect-values``.

Credentials come from ``DefaultAzureCredential`` (environment, workload identity, managed
identity, Azure CLI...) unless ``access-token`` names a reference to a bearer token for
``https://vault.azure.net``. Retries are the SDK's: 429 and 5xx answers, honouring
``retry-after``, at most :data:`RETRIES` times per call.

Key Vault has no rotation policy for secrets (rotation is Event Grid + a function) and no
last-access time (only AuditEvent diagnostic logs), so neither is reported.

Least privilege: list and get on secrets (RBAC: "Key Vault Reader" to list metadata plus
"Key Vault Secrets User" for ``--inspect-values``; access policies: secrets List, and Get
for values).
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import time
import urllib.parse
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from keyguard.classify import inspect_value
from keyguard.credentials import resolve
from keyguard.errors import ConfigError
from keyguard.model import KeyRecord, KeyStatus, RotationSettings, Scope, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.keyvault.secrets import SecretClient, SecretProperties

T = TypeVar("T")

LIST_CALL = "keyvault:list_properties_of_secrets"
#: Extra attempts the SDK makes after a 429/5xx answer or a dropped connection.
RETRIES = 3
_INSTALL_HINT = "pip install 'keyguard[azure]'"
_AUTH_HINT = ("sign in (`az login`, a managed identity or AZURE_CLIENT_ID/AZURE_TENANT_ID/"
              "AZURE_CLIENT_SECRET), or set [sources.azure-keyvault] access-token = \"env:VAR\"")
_DENIED_HINT = ("grant Key Vault Reader (list) and Key Vault Secrets User (values), or an access "
                "policy with secrets List/Get")


class _Unreadable(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _StaticToken:
    """A TokenCredential that hands out one configured bearer token.

    NOTE: the SDK only needs an expiry to decide when to ask again; an hour ahead of the
    wall clock means "as long as this run".
    """

    def __init__(self, token: Secret) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token.reveal(), int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "_StaticToken(***)"


class AzureKeyVaultSource:
    """Secrets of the configured Key Vaults; values only with ``inspect_values``."""

    name: ClassVar[str] = "azure-keyvault"
    description: ClassVar[str] = "Azure Key Vault secrets (needs keyguard[azure])"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg = ctx.config.sources.azure_keyvault

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield one record per secret (or per credential in its value) and per-vault failures."""
        try:
            importlib.import_module("azure.keyvault.secrets")
        except ImportError:
            yield SourceFailure(self.name, "", "azure-keyvault-secrets is not installed",
                                f"install keyguard[azure]: {_INSTALL_HINT}")
            return
        if not self._cfg.vaults:
            yield SourceFailure(self.name, "", "no vault to read",
                                "set [sources.azure-keyvault] vaults = [\"https://NAME.vault.azure.net\"]")
            return
        try:
            credential = self._credential()
        except _Unreadable as exc:
            yield SourceFailure(self.name, "", exc.message, exc.hint)
            return
        for vault in self._cfg.vaults:
            url = vault.rstrip("/")
            try:
                yield from self._vault(credential, url)
            except _Unreadable as exc:
                yield SourceFailure(self.name, url, exc.message, exc.hint)

    def _credential(self) -> TokenCredential:
        if self._cfg.access_token is not None:
            try:
                return _StaticToken(resolve(self._cfg.access_token))
            except ConfigError as exc:
                raise _Unreadable(f"[sources.azure-keyvault] access-token: {exc.message}",
                                  exc.hint) from None
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise _Unreadable("azure-identity is not installed",
                              f"install keyguard[azure]: {_INSTALL_HINT}") from None
        return DefaultAzureCredential()

    def _vault(self, credential: TokenCredential, url: str) -> Iterator[KeyRecord | SourceFailure]:
        from azure.keyvault.secrets import SecretClient

        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise _Unreadable(f"vault URL {url} is not https://NAME.vault.azure.net",
                              "Key Vault sends tokens over TLS only; fix [sources.azure-keyvault] vaults")
        client = SecretClient(
            vault_url=url, credential=credential,
            # NOTE: the challenge check ties a token's audience to *.vault.azure.net; a vault on
            # a loopback address (a local proxy or test server) can never match it.
            verify_challenge_resource=not _loopback(parts.hostname),
            retry_total=RETRIES, retry_backoff_factor=0.5, retry_backoff_max=8,
            connection_timeout=self._cfg.timeout, read_timeout=self._cfg.timeout,
        )
        with client:
            listed = self._call(lambda: list(client.list_properties_of_secrets()))
            self._ctx.progress(self.name, f"{parts.hostname}: {len(listed)} secrets")
            for props in listed:
                base = self._record(url, props)
                if not self._ctx.inspect_values or not props.enabled or not props.name:
                    yield base
                    continue
                try:
                    value = self._call(partial(_value, client, props.name))
                except _Unreadable as exc:
                    yield SourceFailure(self.name, base.location, f"cannot read the value: {exc.message}",
                                        exc.hint)
                    yield base
                    continue
                yield from self._inspected(base, Secret(value) if value is not None else None)
                del value

    def _inspected(self, base: KeyRecord, value: Secret | None) -> Iterator[KeyRecord]:
        matches = inspect_value(value, self._ctx.fingerprinter, name=base.name) if value else []
        if not matches:
            yield dataclasses.replace(base, value_inspected=True)
        for m in matches:
            yield dataclasses.replace(base, provider=m.provider, kind=m.kind, field=m.field,
                                      key_id=m.key_id, fingerprint=m.fingerprint, links=m.links, value_inspected=True)

    def _record(self, url: str, props: SecretProperties) -> KeyRecord:
        name = props.name or "?"
        expires = props.expires_on
        not_before = props.not_before
        status = KeyStatus.ACTIVE if props.enabled else KeyStatus.INACTIVE
        if expires is not None and expires <= self._ctx.now:
            status = KeyStatus.EXPIRED
        details: list[str] = []
        if props.content_type:
            details.append(f"content-type={props.content_type}")
        if props.managed:
            details.append("managed=true")  # backs a certificate: rotated with it
        if not_before is not None:
            details.append(f"not-before={not_before.isoformat()}")
        if props.recovery_level:  # a str enum: its value is the REST spelling
            level = getattr(props.recovery_level, "value", props.recovery_level)
            details.append(f"recovery-level={level}")
        provenance = {"status": LIST_CALL, "tags": LIST_CALL}
        for field, value in (("created", props.created_on), ("last_changed", props.updated_on),
                             ("expires", expires)):
            if value is not None:
                provenance[field] = LIST_CALL
        host = urllib.parse.urlsplit(url).hostname or url
        return KeyRecord(
            source=self.name, location=f"{url}/secrets/{name}", name=name,
            account=host.split(".", 1)[0], tags=dict(props.tags or {}), status=status,
            created=props.created_on, last_changed=props.updated_on, expires=expires,
            rotation=RotationSettings(supported=False), scope=Scope(details=tuple(details)),
            provenance=provenance,
        )

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one SDK call; turn its errors into a one-line :class:`_Unreadable`."""
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            return fn()
        except ClientAuthenticationError as exc:
            raise _Unreadable(f"credentials rejected ({_brief(exc)})", _AUTH_HINT) from None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise _Unreadable(f"access denied ({_brief(exc)})", _DENIED_HINT) from None
            if exc.status_code == 429 or (exc.status_code or 0) >= 500:
                raise _Unreadable(f"still failing after {RETRIES} retries ({_brief(exc)})",
                                  "try again later") from None
            raise _Unreadable(f"HTTP {exc.status_code} ({_brief(exc)})", "") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise _Unreadable(f"cannot reach the vault ({type(exc).__name__})",
                              "check the vault URL and the network") from None
        except AzureError as exc:
            raise _Unreadable(f"Key Vault error ({_brief(exc)})", "") from None


def _value(client: SecretClient, name: str) -> str | None:
    """The current value of secret ``name`` (``None`` for an empty secret)."""
    return client.get_secret(name).value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _brief(exc: BaseException) -> str:
    """One short line: the service's own message (its error code and text)."""
    message = getattr(exc, "message", None) or str(exc)
    text = " ".join(str(message).split())
    return text if len(text) <= 160 else text[:157] + "..."


PLUGIN: type[Source] = AzureKeyVaultSource
