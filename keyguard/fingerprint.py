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

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from keyguard.model import Fingerprint
from keyguard.secret import Secret

log = logging.getLogger(__name__)

PREFIX = "kg1:"
KEY_BYTES = 32
DIGEST_BYTES = 16
KEYRING_SERVICE = "keyguard"
KEYRING_USERNAME = "fingerprint-key-v1"
KEY_FILE_NAME = "fingerprint.key"


class Fingerprinter:
    """Computes ``kg1:`` fingerprints with one installation key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("fingerprint key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(key=***)"

    def fingerprint(self, value: Secret) -> Fingerprint:
        """Fingerprint one secret value (surrounding whitespace is not part of it)."""
        digest = hmac.new(self._key, value.reveal().strip().encode(), hashlib.sha256).digest()
        return Fingerprint(PREFIX + digest[:DIGEST_BYTES].hex())


def load_key(data_dir: Path, warn: Callable[[str], None], use_keyring: bool = True) -> bytes:
    """Return this installation's fingerprint key, creating it on first use.

    Order: the keyring entry; else an existing key file (so fingerprints stay stable when
    a keyring appears later); else a new key, stored in the keyring, or in a 0600 file
    when the keyring cannot store it (``warn`` is called once, when the file is created).
    """
    key_file = data_dir / KEY_FILE_NAME
    if use_keyring:
        stored = _keyring_get()
        if stored is not None:
            return stored
    if key_file.exists():
        return _read_key_file(key_file)
    key = secrets.token_bytes(KEY_BYTES)
    if use_keyring and _keyring_set(key):
        return key
    _write_key_file(key_file, key)
    warn(
        f"no usable OS keyring; the fingerprint key was stored in {key_file} (mode 0600). "
        "Keep it: fingerprints in baselines and state depend on it."
    )
    return key


def _keyring_get() -> bytes | None:
    try:
        import keyring  # noqa: PLC0415  (lazy: keyring backends are slow to import)

        value = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except Exception as exc:  # noqa: BLE001  (any backend failure means "no keyring")
        log.debug("keyring unavailable for the fingerprint key: %s", type(exc).__name__)
        return None
    if not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        log.warning("keyring entry %s/%s is not a hex key; ignoring it", KEYRING_SERVICE,
                    KEYRING_USERNAME)
        return None


def _keyring_set(key: bytes) -> bool:
    try:
        import keyring  # noqa: PLC0415

        # NOTE: the "fail" backend raises NoKeyringError here, which lands in the except.
        keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key.hex())
    except Exception as exc:  # noqa: BLE001
        log.debug("cannot store the fingerprint key in the keyring: %s", type(exc).__name__)
        return False
    return True


def _read_key_file(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        from keyguard.errors import ConfigError  # noqa: PLC0415

        raise ConfigError(
            f"{path}: unreadable fingerprint key ({type(exc).__name__})",
            "restore it from backup; deleting it changes every fingerprint",
        ) from None


def _write_key_file(path: Path, key: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
