"""Keyed fingerprints of secret values: the one place (with classify.py) that sees a secret.

A fingerprint is ``kg1:`` + the first 128 bits of HMAC-SHA256(key, value), in hex. The
key is random per installation and kept in the OS keyring (service ``keyguard``), or,
where no keyring works (CI containers, cron on a headless box), in a 0600 file under the
user data directory, with a one-time warning. Equal values give equal fingerprints on one
installation, which is what duplicate detection needs; without the key an attacker who
reads a report cannot test guesses against a fingerprint, unlike a plain hash.

The version prefix is API: baselines and state databases store fingerprints, so a change
of algorithm gets a new prefix (``kg2:``) and an upgrade step, never a silent change.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from keyguard.errors import ConfigError
from keyguard.model import Fingerprint
from keyguard.secret import Secret

log = logging.getLogger(__name__)

PREFIX = "kg1:"
KEY_BYTES = 32
MIN_KEY_BYTES = 16  # shorter keys are rejected: they would make fingerprints guessable
DIGEST_BYTES = 16
KEYRING_SERVICE = "keyguard"
KEYRING_USERNAME = "fingerprint-key-v1"
KEY_FILE_NAME = "fingerprint.key"
DBUS_TIMEOUT_S = 10.0  # per D-Bus call when checking whether the Secret Service is locked


class Fingerprinter:
    """Computes ``kg1:`` fingerprints with one installation key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError("fingerprint key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(key=***)"

    def fingerprint(self, value: Secret) -> Fingerprint:
        """Fingerprint one secret value (surrounding whitespace is not part of it)."""
        digest = hmac.new(self._key, value.reveal().strip().encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        return Fingerprint(PREFIX + digest[:DIGEST_BYTES].hex())


def load_key(data_dir: Path, warn: Callable[[str], None], use_keyring: bool = True) -> bytes:
    """Return this installation's fingerprint key, creating it on first use.

    Order: the keyring entry; else an existing key file (so fingerprints stay stable when
    a keyring appears later); else a new key, stored in the keyring, or in a 0600 file
    when there is no usable keyring (``warn`` is called once, when the file is created).

    A *locked* keyring is not "no keyring": it may hold the key, and writing a new one to a
    file would fork the installation's fingerprints between locked and unlocked runs. So
    with no key file yet, a locked keyring is an error naming the two ways out.

    Raises:
        ConfigError: the keyring is locked and there is no key file, or the key file is
            unreadable.

    """
    key_file = data_dir / KEY_FILE_NAME
    state = _Keyring.UNAVAILABLE
    if use_keyring:
        state, stored = _keyring_get()
        if stored is not None:
            return stored
    if key_file.exists():
        return _read_key_file(key_file)
    if state is _Keyring.LOCKED:
        raise ConfigError(
            "the OS keyring that holds keyguard's fingerprint key is locked",
            "unlock the login keyring and retry, or set "
            "PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring to keep the key in a file",
        )
    key = secrets.token_bytes(KEY_BYTES)
    if state is _Keyring.AVAILABLE and _keyring_set(key):
        return key
    key, created = _create_key_file(key_file, key)
    if created:
        warn(
            f"no usable OS keyring; the fingerprint key was stored in {key_file} (mode 0600). "
            "Keep it: fingerprints in baselines and state depend on it."
        )
    return key


class _Keyring(enum.Enum):
    """What the keyring said when asked for the key."""

    AVAILABLE = "available"  # it answered (with the key, or "no such entry")
    LOCKED = "locked"  # it exists but is locked: it may hold the key
    UNAVAILABLE = "unavailable"  # no backend, no D-Bus, no collection: it holds nothing


def _keyring_get() -> tuple[_Keyring, bytes | None]:
    try:
        import keyring
        import keyring.errors

        backend = keyring.get_keyring()
        if _secret_service_locked(backend):
            return _Keyring.LOCKED, None
        value = backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except ImportError:
        return _Keyring.UNAVAILABLE, None
    except keyring.errors.KeyringLocked:
        return _Keyring.LOCKED, None
    except Exception as exc:  # noqa: BLE001  (any other backend failure means "no keyring")
        log.debug("keyring unavailable for the fingerprint key: %s", type(exc).__name__)
        return _Keyring.UNAVAILABLE, None
    if not value:
        return _Keyring.AVAILABLE, None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        log.warning("keyring entry %s/%s is not a hex key; ignoring it", KEYRING_SERVICE,
                    KEYRING_USERNAME)
        return _Keyring.AVAILABLE, None
    return _Keyring.AVAILABLE, key


def _secret_service_locked(backend: object) -> bool:
    """Tell whether ``backend`` is the Secret Service one and its collection is locked.

    NOTE: asked first because keyring's Secret Service backend answers a locked collection
    with an unlock *prompt*: on a desktop reached over SSH that waits for a click on a
    screen nobody is looking at. The Locked property is read without prompting, with a
    timeout so a wedged daemon cannot hang keyguard's start-up either.
    """
    cls = type(backend)
    if f"{cls.__module__}.{cls.__qualname__}" != "keyring.backends.SecretService.Keyring":
        return False
    import secretstorage

    conn = secretstorage.dbus_init()
    try:
        send = conn.send_and_get_reply
        conn.send_and_get_reply = lambda msg, *, timeout=None: send(
            msg, timeout=DBUS_TIMEOUT_S if timeout is None else timeout)
        path = getattr(backend, "preferred_collection", None) or secretstorage.collection.DEFAULT_COLLECTION
        return secretstorage.Collection(conn, path).is_locked()
    finally:
        conn.close()


def _keyring_set(key: bytes) -> bool:
    try:
        import keyring

        # NOTE: the "fail" backend raises NoKeyringError here, which lands in the except.
        keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key.hex())
    except Exception as exc:  # noqa: BLE001
        log.debug("cannot store the fingerprint key in the keyring: %s", type(exc).__name__)
        return False
    return True


def _read_key_file(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(key) < MIN_KEY_BYTES:
            raise ValueError("too short")
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: unreadable fingerprint key ({type(exc).__name__})",
            "restore it from backup; deleting it changes every fingerprint",
        ) from None
    return key


def _create_key_file(path: Path, key: bytes) -> tuple[bytes, bool]:
    """Write ``key`` to a new 0600 file; return (the key in the file, whether we created it).

    NOTE: the key is written to a temporary file and hard-linked into place, so the key file
    is never seen half-written (an empty file would be an unreadable key forever), and two
    first runs racing each other agree on one key: the loser reads the winner's file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key_file(path), False
    finally:
        tmp.unlink(missing_ok=True)
    return key, True
