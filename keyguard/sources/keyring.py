"""The ``keyring`` source: API keys kept in the OS keyring (Secret Service, Keychain, Credential Locker).

Two ways in, because python-keyring has no list API:

* entries named in ``[sources.keyring] entries`` work with every keyring backend;
* with ``enumerate = true`` on a Secret Service backend (gnome-keyring, KeePassXC on Linux),
  every item of the collection is listed through ``secretstorage``, with its created and
  modified dates.

On a Secret Service backend both go through ``secretstorage``, so a configured entry gets
the same metadata as an enumerated one and its value is never fetched unless
``--inspect-values`` asks; other backends are read with ``keyring.get_password``, the only
portable call.

NOTE: this module is ``keyguard.sources.keyring``. ``import keyring`` below is an absolute
import and gets the python-keyring library, not this module (a test checks it).

The source never prompts. A locked collection becomes a :class:`SourceFailure` ("unlock the
login keyring") instead of an unlock request, which on a desktop reached over SSH would wait
for a click nobody can give; every D-Bus call has a timeout, so a wedged daemon costs
seconds, not the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import keyring
import keyring.backend
import keyring.errors

from keyguard.classify import inspect_value
from keyguard.config import KeyringConfig, KeyringEntry
from keyguard.fingerprint import KEYRING_SERVICE
from keyguard.model import KeyRecord, SourceFailure
from keyguard.secret import Secret
from keyguard.sources import Source, SourceContext

if TYPE_CHECKING:  # secretstorage is a Linux-only dependency: imported where it is used
    from secretstorage import Collection, Item

#: Seconds any single D-Bus call may take before the source gives up on the Secret Service.
DBUS_TIMEOUT_S = 10.0

#: Backends that store in a Secret Service collection, so secretstorage can enumerate it.
_SECRET_SERVICE_BACKENDS = frozenset({
    "keyring.backends.SecretService.Keyring",
    "keyring.backends.libsecret.Keyring",
})
#: Backends that hold nothing: reading entries from them would only report each one missing.
_NO_KEYRING_BACKENDS = frozenset({"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"})
#: Item attributes that make up the location rather than tags.
_LOCATION_ATTRIBUTES = frozenset({"service", "username", "xdg:schema"})

_HINT_NO_BACKEND = ("start a Secret Service (gnome-keyring) on the session bus, or set "
                    "PYTHON_KEYRING_BACKEND to a working keyring backend")
_HINT_NO_DBUS = ("start gnome-keyring-daemon and check DBUS_SESSION_BUS_ADDRESS, or set "
                 "PYTHON_KEYRING_BACKEND to another backend")
_HINT_LOCKED = "unlock the login keyring (log in to the desktop, or gnome-keyring-daemon --unlock)"
_HINT_ENTRY = "check [sources.keyring] entries (service and username must match exactly)"


@dataclass(frozen=True, slots=True)
class _ItemInfo:
    """The non-secret metadata of one Secret Service item."""

    path: str
    service: str | None
    username: str | None
    label: str
    tags: Mapping[str, str]
    created: datetime | None
    modified: datetime | None

    @property
    def where(self) -> str:
        """Name the item: ``service/username`` as python-keyring stores them, else its label."""
        if self.service is not None:
            return f"{self.service}/{self.username or ''}"
        return self.label or self.path.rsplit("/", 1)[-1]


class KeyringSource:
    """Keys in the OS keyring: configured entries, plus every Secret Service item when enabled."""

    name: ClassVar[str] = "keyring"
    description: ClassVar[str] = "OS keyring: configured entries; all Secret Service items on Linux"

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self._cfg: KeyringConfig = ctx.config.sources.keyring

    def collect(self) -> Iterator[KeyRecord | SourceFailure]:
        """Yield a record per key found and a failure per entry or store that could not be read."""
        try:
            backend = keyring.get_keyring()
        # NOTE: selecting a backend runs third-party code (PYTHON_KEYRING_BACKEND may name any
        # class, and the Secret Service backend raises RuntimeError without D-Bus); whatever
        # it raises means "no keyring", reported as one line rather than a traceback.
        except Exception as exc:  # noqa: BLE001
            yield self._failure("", f"no usable OS keyring backend ({_describe(exc)})", _HINT_NO_BACKEND)
            return
        names = {_backend_name(b) for b in _chained(backend)}
        if names <= _NO_KEYRING_BACKENDS:
            yield self._failure("", f"no usable OS keyring backend ({_backend_name(backend)})",
                                _HINT_NO_BACKEND)
            return
        if names & _SECRET_SERVICE_BACKENDS and _has_secretstorage():
            yield from self._from_secret_service()
            return
        yield from self._from_keyring_api(backend)
        if self._cfg.enumerate:
            self._ctx.progress(self.name, f"{_backend_name(backend)} cannot list its items; "
                                          "only configured entries were read")

    # -- Secret Service (secretstorage) -------------------------------------------------------

    def _from_secret_service(self) -> Iterator[KeyRecord | SourceFailure]:
        import secretstorage
        from jeepney.wrappers import DBusErrorResponse
        from secretstorage.collection import DEFAULT_COLLECTION
        from secretstorage.util import open_session

        errors = (secretstorage.SecretStorageException, TimeoutError, OSError, DBusErrorResponse)
        path = self._cfg.collection or DEFAULT_COLLECTION
        try:
            conn = secretstorage.dbus_init()
        except errors as exc:
            yield self._failure("", f"Secret Service not reachable ({_describe(exc)})", _HINT_NO_DBUS)
            return
        with contextlib.closing(conn):
            _bound_calls(conn)
            try:
                session = open_session(conn) if self._ctx.inspect_values else None
                try:
                    # NOTE: not get_default_collection(): that *creates* a missing collection,
                    # with a password prompt; a read-only inventory must never do either.
                    collection = secretstorage.Collection(conn, path, session)
                except secretstorage.ItemNotFoundException:
                    yield self._failure(path, f"Secret Service collection {path} does not exist",
                                        "set [sources.keyring] collection to an existing collection")
                    return
                if collection.is_locked():
                    yield self._failure(path, f"Secret Service collection {path} is locked",
                                        _HINT_LOCKED)
                    return
                yield from self._collection_records(collection)
            except errors as exc:
                yield self._failure(path, f"Secret Service error ({_describe(exc)})", _HINT_NO_DBUS)

    def _collection_records(self, collection: Collection) -> Iterator[KeyRecord | SourceFailure]:
        import secretstorage

        seen: set[str] = set()
        for entry in self._entries():
            query = {"service": entry.service, "username": entry.username}
            found = next(iter(collection.search_items(query)), None)
            if found is None:
                yield self._missing(entry)
                continue
            seen.add(found.item_path)
            yield from self._item_records(found)
        if not self._cfg.enumerate:
            return
        listed: list[tuple[_ItemInfo, Item]] = []
        for item in collection.get_all_items():
            if item.item_path in seen:
                continue  # a configured entry, already reported
            try:
                listed.append((_item_info(item), item))
            except secretstorage.ItemNotFoundException:
                continue  # deleted while we listed: not a key any more
        self._ctx.progress(self.name, f"{collection.collection_path}: {len(listed)} items")
        for info, item in sorted(listed, key=lambda pair: (pair[0].where, pair[0].path)):
            yield from self._item_records(item, info)

    def _item_records(self, item: Item, info: _ItemInfo | None = None) -> Iterator[KeyRecord | SourceFailure]:
        import secretstorage

        try:
            info = info or _item_info(item)
            if info.service == KEYRING_SERVICE:
                return  # keyguard's own fingerprint key: not an API key, never reported
            raw = item.get_secret() if self._ctx.inspect_values else None
        except secretstorage.ItemNotFoundException:
            return
        except secretstorage.LockedException:
            yield self._failure(item.item_path, f"keyring item {item.item_path} is locked", _HINT_LOCKED)
            return
        base = KeyRecord(
            source=self.name, location=info.where, name=info.where, tags=info.tags,
            created=info.created, last_changed=info.modified,
            provenance={"created": "secret-service:Item.Created",
                        "last_changed": "secret-service:Item.Modified"},
        )
        value = _decode(raw) if raw is not None else None
        if raw is not None and value is None:
            yield self._failure(info.where, f"keyring:{info.where}: value is not UTF-8 text",
                                "binary secrets are listed but not classified")
        del raw
        yield from self._records(base, value, info.where)

    # -- any other backend (keyring API) ------------------------------------------------------

    def _from_keyring_api(self, backend: keyring.backend.KeyringBackend) -> Iterator[KeyRecord | SourceFailure]:
        for entry in self._entries():
            where = f"{entry.service}/{entry.username}"
            # NOTE: the keyring API cannot test whether an entry exists without fetching its
            # value; it goes straight into a Secret and is dropped unless inspecting.
            try:
                raw = backend.get_password(entry.service, entry.username)
            except keyring.errors.KeyringLocked:
                yield self._failure(where, f"keyring is locked; cannot read {where}", _HINT_LOCKED)
                continue
            except UnicodeDecodeError:  # str(exc) would quote bytes of the value: never shown
                yield self._failure(where, f"keyring:{where}: value is not UTF-8 text",
                                    "binary secrets are not classified")
                continue
            except Exception as exc:  # noqa: BLE001  (third-party backend: any error is "unreadable")
                yield self._failure(where, f"cannot read keyring entry {where} ({_describe(exc)})",
                                    _HINT_NO_BACKEND)
                continue
            if raw is None:
                yield self._missing(entry)
                continue
            value = Secret(raw)
            del raw
            base = KeyRecord(source=self.name, location=where, name=where)
            yield from self._records(base, value if self._ctx.inspect_values else None, where)

    # -- shared -------------------------------------------------------------------------------

    def _entries(self) -> Iterator[KeyringEntry]:
        for entry in self._cfg.entries:
            if entry.service == KEYRING_SERVICE:
                self._ctx.progress(self.name, f"skipping {entry.service}/{entry.username}: "
                                              "keyguard's own keyring namespace")
                continue
            yield entry

    def _records(self, base: KeyRecord, value: Secret | None, where: str) -> Iterator[KeyRecord]:
        """Yield one record per credential in the value, or ``base`` alone when not inspected."""
        if value is None:
            yield base
            return
        # The service/username doubles as the "variable name" for formats that need one
        # (a bare 32-character Mistral key is only recognised under a mistral name).
        matches = inspect_value(value, self._ctx.fingerprinter, name=where)
        if not matches:  # an empty value: the item exists, there is nothing to classify
            yield dataclasses.replace(base, value_inspected=True)
            return
        for match in matches:
            yield dataclasses.replace(
                base, provider=match.provider, kind=match.kind, field=match.field,
                key_id=match.key_id, fingerprint=match.fingerprint, links=match.links, value_inspected=True,
            )

    def _missing(self, entry: KeyringEntry) -> SourceFailure:
        where = f"{entry.service}/{entry.username}"
        return self._failure(where, f"keyring entry {where} not found", _HINT_ENTRY)

    def _failure(self, scope: str, message: str, hint: str) -> SourceFailure:
        return SourceFailure(source=self.name, scope=scope, message=message, hint=hint)


def _backend_name(backend: keyring.backend.KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _chained(backend: keyring.backend.KeyringBackend) -> Iterable[keyring.backend.KeyringBackend]:
    """Return the backend itself, or the backends a ChainerBackend tries in turn."""
    inner = getattr(backend, "backends", None)
    return inner if isinstance(inner, list) else (backend,)


def _has_secretstorage() -> bool:
    """Tell whether secretstorage is importable (it is a Linux-only dependency)."""
    try:
        import secretstorage  # noqa: F401
    except ImportError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    """Name an exception in one short line (these never carry a value: none was passed in)."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _epoch(seconds: int) -> datetime | None:
    """Convert Secret Service UNIX seconds to UTC; 0 means "not recorded"."""
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


def _bound_calls(conn: Any) -> None:
    """Give every D-Bus call on ``conn`` a timeout.

    NOTE: secretstorage calls ``conn.send_and_get_reply(msg)`` with no timeout, so a daemon
    that never answers would hang the run until D-Bus's own 25 s reply timeout, per call.
    Shadowing the method on this one connection object is the only hook it offers; jeepney
    then raises TimeoutError, which the caller reports.
    """
    send = conn.send_and_get_reply

    def send_bounded(message: object, *, timeout: float | None = None) -> Any:
        return send(message, timeout=DBUS_TIMEOUT_S if timeout is None else timeout)

    conn.send_and_get_reply = send_bounded


def _item_info(item: Item) -> _ItemInfo:
    attributes = item.get_attributes()
    return _ItemInfo(
        path=item.item_path,
        service=attributes.get("service"),
        username=attributes.get("username"),
        label=item.get_label(),
        tags={k: v for k, v in sorted(attributes.items()) if k not in _LOCATION_ATTRIBUTES},
        created=_epoch(item.get_created()),
        modified=_epoch(item.get_modified()),
    )


def _decode(raw: bytes) -> Secret | None:
    """Decode an item's secret as text; None when it is not UTF-8 (binary, so not an API key)."""
    try:
        return Secret(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


PLUGIN: type[Source] = KeyringSource
