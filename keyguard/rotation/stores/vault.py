"""Vault / OpenBao KV v2 writer: a new version with check-and-set; rollback re-writes the old.

KV v2 keeps every version, so the previous value stays readable by version number while
consumers move to the new one (``delete_version_after``/``max_versions`` on the mount
decide how long, which is the "keep the previous per policy" of the issue). Writes use
``cas`` = the version just read, so a concurrent edit makes the step fail (and the
rotation roll back) instead of being overwritten. The value is the secret's data object,
serialised exactly as the ``vault`` source does (sorted JSON), so the plan's field paths
match. Least privilege: ``read`` and ``create``/``update`` on ``<mount>/data/<path>``.

NOTE: connection settings and login come from the vault source (config ``[sources.vault]``
and the standard ``VAULT_*`` variables), so both always talk to the same server.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import StoreCopy
from keyguard.rotation.stores import StoreWriter
from keyguard.secret import Secret

if TYPE_CHECKING:
    import hvac


class VaultWriter:
    """KV v2 secrets whose data object holds the key (one field of it)."""

    name: ClassVar[str] = "vault"

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx
        self._client: hvac.Client | None = None
        self._namespace: str | None = None

    def _connect(self) -> hvac.Client:
        if self._client is not None:
            return self._client
        from keyguard.errors import SourceError
        from keyguard.sources import SourceContext
        from keyguard.sources.vault import VaultSource

        source = VaultSource(SourceContext(config=self._ctx.config,
                                           fingerprinter=self._ctx.fingerprinter,
                                           now=self._ctx.now(), inspect_values=False,
                                           regions=()))
        try:
            self._client, self._namespace = source.connect()
        except SourceError as exc:
            raise StepFailed(f"vault: {exc}") from None
        return self._client

    def _where(self, copy: StoreCopy) -> tuple[str, str]:
        """(mount, path) from the record's location ``[namespace/]mount/path``."""
        self._connect()
        location = copy.location
        if self._namespace and location.startswith(self._namespace + "/"):
            location = location[len(self._namespace) + 1:]
        if not location.endswith("/" + copy.name):
            raise StepFailed(f"vault {copy.location}: cannot tell the mount from the path")
        return location[: -len(copy.name) - 1], copy.name

    def _read(self, copy: StoreCopy, version: int | None = None) -> tuple[dict[str, Any], int]:
        import hvac

        mount, path = self._where(copy)
        try:
            got = self._connect().secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount, version=version, raise_on_deleted_version=True)
        except (hvac.exceptions.VaultError, OSError) as exc:
            raise StepFailed(f"read vault {mount}/{path}: {type(exc).__name__}") from None
        data = (got.get("data") or {}).get("data")
        meta = (got.get("data") or {}).get("metadata") or {}
        if not isinstance(data, dict):
            raise StepFailed(f"read vault {mount}/{path}: the data is not an object")
        return data, int(meta.get("version", 0))

    def read(self, copy: StoreCopy) -> tuple[Secret, str]:
        """The latest version's data as sorted JSON, and its version number."""
        data, version = self._read(copy)
        return Secret(json.dumps(data, sort_keys=True)), str(version)

    def write(self, copy: StoreCopy, value: Secret) -> str:
        """Write a new version with check-and-set against the current one."""
        import hvac

        try:
            data = json.loads(value.reveal())
        except ValueError:
            raise StepFailed(f"write vault {copy.name}: the new value is not a JSON object") from None
        _, current = self._read(copy)
        mount, path = self._where(copy)
        try:
            put = self._connect().secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, mount_point=mount, cas=current)
        except (hvac.exceptions.VaultError, OSError) as exc:
            raise StepFailed(f"write vault {mount}/{path}: {type(exc).__name__} (changed "
                             "concurrently?)") from None
        return str((put.get("data") or {}).get("version", ""))

    def restore(self, copy: StoreCopy, version: str) -> bool:
        """Write ``version``'s data back as a new version unless the latest equals it."""
        current, _ = self._read(copy)
        previous, _ = self._read(copy, int(version))
        if current == previous:
            return False
        self.write(copy, Secret(json.dumps(previous, sort_keys=True)))
        return True


PLUGIN: type[StoreWriter] = VaultWriter
