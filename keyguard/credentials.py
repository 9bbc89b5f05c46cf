"""keyguard's own credentials (provider admin keys, webhook URLs, Vault tokens) in the OS keyring.

Config files are read by many tools, copied into repositories and pasted into tickets, so a
credential keyguard itself needs is never written there. ``keyguard auth set NAME`` stores it
in the OS keyring under :data:`CREDENTIALS_SERVICE` and config refers to it by reference:

* ``keyring:NAME`` - the item stored by ``keyguard auth set NAME``;
* ``env:VAR`` - an environment variable (CI systems inject secrets this way).

:func:`resolve` turns a reference into a :class:`~keyguard.secret.Secret`; anything else is a
:class:`ConfigError`, so a literal key pasted into a config file is refused rather than used.

The service is deliberately not ``keyguard`` (:data:`keyguard.fingerprint.KEYRING_SERVICE`):
the fingerprint key must never be listed, overwritten or deleted through ``keyguard auth``.
Unlike that key, these items *are* API keys, so the ``keyring`` source inventories them.

python-keyring has no list API. On a Secret Service backend (gnome-keyring, KeePassXC)
:func:`names` enumerates the items through ``secretstorage``; on any other backend (macOS
Keychain, Windows Credential Locker) it reads an index item (:data:`INDEX_USERNAME`, a JSON
list of names, no values) that :func:`store` and :func:`remove` keep current.

Like :mod:`keyguard.classify`, this module calls :meth:`Secret.reveal` - to hand a value to the
keyring and, via :func:`resolve`'s callers, to the API that needs it - and never logs it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from keyguard.errors import ConfigError, UsageError
from keyguard.secret import Secret

if TYPE_CHECKING:
    import keyring.backend

#: Keyring service of every credential keyguard keeps for itself.
CREDENTIALS_SERVICE = "keyguard-credentials"
#: Username of the index item on backends that cannot list their items; not a valid NAME.
INDEX_USERNAME = ".index"
#: Credential names: short, shell-safe, no leading dot (which would clash with the index).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")

T = TypeVar("T")

_SECRET_SERVICE_MODULES = frozenset({"keyring.backends.SecretService", "keyring.backends.libsecret"})
_HINT_KEYRING = ("start a Secret Service (gnome-keyring) or set PYTHON_KEYRING_BACKEND to a "
                 "working keyring backend")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid credential name.

    Raises:
        UsageError: the name is empty, too long, or has characters other than
            letters, digits and ``. _ @ -`` (or starts with one of those).

    """
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(f"invalid credential name {name[:40]!r}",
                         "use letters, digits and . _ @ - (starting with a letter or digit)")
    return name


def resolve(value: str, env: Mapping[str, str] | None = None) -> Secret:
    """Turn a config reference (``keyring:NAME`` or ``env:VAR``) into the secret it names.

    ``env`` defaults to the process environment; callers below the CLI pass it explicitly
    when they have one.

    Raises:
        ConfigError: the reference is malformed, names nothing, names an empty value, the
            keyring cannot be read, or ``value`` is a literal (credentials never live in
            config files).

    """
    scheme, sep, rest = value.partition(":")
    if sep and scheme == "keyring":
        name = rest
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"credential reference keyring:{name[:40]} is not a valid name",
                              "use keyring:NAME with the NAME given to `keyguard auth set`")
        try:
            found = fetch(name)
        except UsageError as exc:  # no keyring: say which reference needed it
            raise ConfigError(f"cannot resolve keyring:{name}: {exc.message}", exc.hint) from None
        if found is None:
            raise ConfigError(f"credential keyring:{name} is not in the OS keyring",
                              f"store it with `keyguard auth set {name}`")
        return found
    if sep and scheme == "env":
        environ = os.environ if env is None else env
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rest):
            raise ConfigError(f"credential reference env:{rest[:40]} is not a variable name",
                              "use env:VAR")
        raw = environ.get(rest, "")
        if not raw.strip():
            raise ConfigError(f"credential env:{rest} is not set (or empty)",
                              f"export {rest}, or store it with `keyguard auth set NAME` and "
                              "refer to keyring:NAME")
        return Secret(raw)
    # NOTE: the value is probably a pasted credential: never echo any of it.
    raise ConfigError("a credential setting holds a literal value, not a reference",
                      "store it with `keyguard auth set NAME` and write keyring:NAME "
                      "(or env:VAR) instead; then rotate the exposed value")


def fetch(name: str) -> Secret | None:
    """Return the stored credential ``name``, or None when there is none.

    Raises:
        UsageError: no usable keyring backend, or the keyring is locked.

    """
    check_name(name)
    backend = _backend()
    raw = _call(lambda: backend.get_password(CREDENTIALS_SERVICE, name))
    return None if raw is None else Secret(raw)


def store(name: str, value: Secret) -> bool:
    """Store (or replace) credential ``name``; return True when it replaced an existing one.

    Raises:
        UsageError: bad name, empty value, no usable keyring, or a locked keyring.

    """
    check_name(name)
    if not value.reveal().strip():
        raise UsageError(f"refusing to store an empty value for {name}", "")
    backend = _backend()
    existed = _call(lambda: backend.get_password(CREDENTIALS_SERVICE, name)) is not None
    _call(lambda: backend.set_password(CREDENTIALS_SERVICE, name, value.reveal()))
    _update_index(backend, add=name)
    return existed


def remove(name: str) -> bool:
    """Delete credential ``name``; return False when there was none.

    Raises:
        UsageError: bad name, no usable keyring, or a locked keyring.

    """
    import keyring.errors

    check_name(name)
    backend = _backend()
    if _call(lambda: backend.get_password(CREDENTIALS_SERVICE, name)) is None:
        _update_index(backend, remove=name)
        return False
    try:
        _call(lambda: backend.delete_password(CREDENTIALS_SERVICE, name))
    except keyring.errors.PasswordDeleteError:
        return False
    _update_index(backend, remove=name)
    return True


def names() -> list[str]:
    """Sorted names of the stored credentials (never their values).

    Raises:
        UsageError: no usable keyring, or a locked keyring.

    """
    backend = _backend()
    listed = _secret_service_names(backend)
    if listed is None:
        listed = set(_read_index(backend))
    return sorted(n for n in listed if NAME_PATTERN.fullmatch(n))


# -- helpers --------------------------------------------------------------------------------


def _backend() -> keyring.backend.KeyringBackend:
    import keyring

    try:
        backend = keyring.get_keyring()
    # NOTE: PYTHON_KEYRING_BACKEND may name any class; whatever selecting it raises means
    # "no keyring", reported as one line.
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"no usable OS keyring ({type(exc).__name__})", _HINT_KEYRING) from None
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if name in ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"):
        raise UsageError(f"no usable OS keyring ({name})", _HINT_KEYRING)
    return backend


def _call(fn: Callable[[], T]) -> T:
    """Run one keyring call, turning its errors into one-line UsageErrors (never a value)."""
    import keyring.errors

    try:
        return fn()
    except keyring.errors.KeyringLocked:
        raise UsageError("the OS keyring is locked",
                         "unlock the login keyring (log in to the desktop, or "
                         "gnome-keyring-daemon --unlock)") from None
    except keyring.errors.PasswordDeleteError:
        raise
    except keyring.errors.KeyringError as exc:
        raise UsageError(f"OS keyring error ({type(exc).__name__})", _HINT_KEYRING) from None


def _chained(backend: keyring.backend.KeyringBackend) -> list[keyring.backend.KeyringBackend]:
    inner = getattr(backend, "backends", None)
    return list(inner) if isinstance(inner, list) else [backend]


def _secret_service_names(backend: keyring.backend.KeyringBackend) -> set[str] | None:
    """Names found by enumerating Secret Service items; None when the backend is not one."""
    if not any(type(b).__module__ in _SECRET_SERVICE_MODULES for b in _chained(backend)):
        return None
    try:
        import secretstorage
        from jeepney.wrappers import DBusErrorResponse
    except ImportError:
        return None
    errors = (secretstorage.SecretStorageException, DBusErrorResponse, OSError, TimeoutError)
    try:
        conn = secretstorage.dbus_init()
    except errors:
        return None
    try:
        # Attributes are readable on locked items too: listing names never needs an unlock.
        items = secretstorage.search_items(conn, {"service": CREDENTIALS_SERVICE})
        return {str(item.get_attributes().get("username", "")) for item in items}
    except errors as exc:
        raise UsageError(f"cannot list Secret Service items ({type(exc).__name__})",
                         _HINT_KEYRING) from None
    finally:
        conn.close()


def _read_index(backend: keyring.backend.KeyringBackend) -> list[str]:
    raw = _call(lambda: backend.get_password(CREDENTIALS_SERVICE, INDEX_USERNAME))
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []  # a damaged index only loses the listing, never a credential
    return [n for n in parsed if isinstance(n, str)] if isinstance(parsed, list) else []


def _update_index(backend: keyring.backend.KeyringBackend, *, add: str = "", remove: str = "") -> None:
    """Keep the index item in step; skipped where the Secret Service can enumerate instead."""
    if _secret_service_names(backend) is not None:
        return
    current = set(_read_index(backend))
    updated = (current | {add} if add else current) - {remove}
    updated.discard("")
    if updated != current:
        text = json.dumps(sorted(updated))
        _call(lambda: backend.set_password(CREDENTIALS_SERVICE, INDEX_USERNAME, text))
