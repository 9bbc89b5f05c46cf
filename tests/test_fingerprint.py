"""Fingerprints are stable, keyed and versioned; the key lives in the keyring or a 0600 file."""

from __future__ import annotations

import hashlib
import hmac
import random
import stat
import time
from pathlib import Path

import keyring
import pytest

from keyguard.errors import ConfigError
from keyguard.fakes import fake_key
from keyguard.fingerprint import (
    KEY_BYTES,
    KEY_FILE_NAME,
    KEYRING_SERVICE,
    KEYRING_USERNAME,
    PREFIX,
    Fingerprinter,
    _secret_service_locked,
    load_key,
)
from keyguard.secret import Secret
from tests.fixtures.keyring_service import KeyringService

GOLDEN_KEY = bytes(range(32))
GOLDEN_VALUE = "keyguard-golden-value"  # pragma: allowlist secret
#: Pinned output of kg1 for GOLDEN_KEY/GOLDEN_VALUE: baselines store these, so this may
#: only change together with the prefix (kg2:) and an upgrade step.
GOLDEN_FINGERPRINT = "kg1:9302cc5e40083b31053e4fa64bfa8e6b"


class Warnings:
    """Collects warn() calls so tests can count them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


# -- Fingerprinter ------------------------------------------------------------------------


def test_fingerprint_is_versioned_and_fixed_length() -> None:
    fp = Fingerprinter(GOLDEN_KEY).fingerprint(Secret("sk-anything"))
    assert fp.startswith(PREFIX)
    assert PREFIX == "kg1:"
    digest = fp[len(PREFIX):]
    assert len(digest) == 32
    assert set(digest) <= set("0123456789abcdef")  # 128 bits, lowercase hex


def test_kg1_algorithm_is_pinned() -> None:
    expected = hmac.new(GOLDEN_KEY, GOLDEN_VALUE.encode(), hashlib.sha256).digest()[:16].hex()
    assert f"kg1:{expected}" == GOLDEN_FINGERPRINT
    assert Fingerprinter(GOLDEN_KEY).fingerprint(Secret(GOLDEN_VALUE)) == GOLDEN_FINGERPRINT


def test_equal_values_give_equal_fingerprints_across_instances() -> None:
    value = fake_key("openai-project", random.Random(1))
    first = Fingerprinter(GOLDEN_KEY).fingerprint(Secret(value))
    assert Fingerprinter(bytes(GOLDEN_KEY)).fingerprint(Secret(value)) == first
    # Surrounding whitespace (a trailing newline in a file) is not part of the value.
    assert Fingerprinter(GOLDEN_KEY).fingerprint(Secret(f"  {value}\n")) == first


def test_different_values_and_keys_give_different_fingerprints() -> None:
    rng = random.Random(2)
    a, b = fake_key("anthropic-api", rng), fake_key("anthropic-api", rng)
    fp = Fingerprinter(GOLDEN_KEY)
    assert fp.fingerprint(Secret(a)) != fp.fingerprint(Secret(b))
    other = Fingerprinter(bytes(reversed(GOLDEN_KEY)))
    assert other.fingerprint(Secret(a)) != fp.fingerprint(Secret(a))


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Fingerprinter(b"x" * 15)


def test_repr_hides_the_key() -> None:
    fp = Fingerprinter(GOLDEN_KEY)
    for text in (repr(fp), str(fp), f"{fp!r}"):
        assert text == "Fingerprinter(key=***)"
        assert GOLDEN_KEY.hex()[:12] not in text


def test_fingerprint_never_contains_the_value() -> None:
    value = fake_key("github-classic-pat", random.Random(3))
    fp = Fingerprinter(GOLDEN_KEY).fingerprint(Secret(value))
    assert all(value[i:i + 6] not in fp for i in range(len(value) - 6))


# -- load_key with the real gnome-keyring -----------------------------------------------


def test_load_key_stores_a_new_key_in_the_keyring(secret_service: KeyringService, tmp_path: Path) -> None:
    warned = Warnings()
    key = load_key(tmp_path, warned)
    assert len(key) == KEY_BYTES
    assert keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME) == key.hex()
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert warned.messages == []
    # The second call reads the same key back from the keyring.
    assert load_key(tmp_path, warned) == key
    assert warned.messages == []


def test_load_key_reuses_a_key_already_in_the_keyring(secret_service: KeyringService, tmp_path: Path) -> None:
    stored = bytes(range(100, 132))
    keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, stored.hex())
    assert load_key(tmp_path, Warnings()) == stored


def test_load_key_prefers_an_existing_file_when_the_keyring_is_empty(
    secret_service: KeyringService, tmp_path: Path
) -> None:
    """A keyring that appears after a file fallback must not change the fingerprints."""
    file_key = bytes(range(50, 82))
    (tmp_path / KEY_FILE_NAME).write_text(file_key.hex() + "\n", encoding="ascii")
    assert load_key(tmp_path, Warnings()) == file_key
    assert keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME) is None


def test_locked_keyring_is_an_error_not_a_second_key(secret_service: KeyringService, tmp_path: Path) -> None:
    key = load_key(tmp_path, Warnings())
    secret_service.lock()
    started = time.monotonic()
    with pytest.raises(ConfigError, match="locked") as caught:
        load_key(tmp_path, Warnings())
    assert time.monotonic() - started < 5  # no unlock prompt waited on
    assert "unlock" in caught.value.hint
    assert "PYTHON_KEYRING_BACKEND" in caught.value.hint
    assert not (tmp_path / KEY_FILE_NAME).exists()
    secret_service.unlock()
    assert load_key(tmp_path, Warnings()) == key


def test_locked_keyring_with_a_key_file_uses_the_file(secret_service: KeyringService, tmp_path: Path) -> None:
    file_key = bytes(range(7, 39))
    (tmp_path / KEY_FILE_NAME).write_text(file_key.hex(), encoding="ascii")
    secret_service.lock()
    assert load_key(tmp_path, Warnings()) == file_key


def test_lock_state_is_read_without_prompting(secret_service: KeyringService) -> None:
    """The pre-check that keeps keyring from raising an unlock prompt (a GUI one on a desktop)."""
    backend = keyring.get_keyring()
    assert _secret_service_locked(backend) is False
    secret_service.lock()
    assert _secret_service_locked(backend) is True


@pytest.mark.usefixtures("no_keyring")
def test_lock_check_ignores_other_backends() -> None:
    assert _secret_service_locked(keyring.get_keyring()) is False


# -- file fallback ------------------------------------------------------------------------


@pytest.mark.usefixtures("no_keyring")
def test_file_fallback_when_the_keyring_fails(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    warned = Warnings()
    key = load_key(data_dir, warned)
    key_file = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text(encoding="ascii").strip() == key.hex()
    assert len(warned.messages) == 1
    assert str(key_file) in warned.messages[0]
    assert key.hex()[:12] not in warned.messages[0]
    # Reused on the next run, without a second warning.
    assert load_key(data_dir, warned) == key
    assert len(warned.messages) == 1
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary file left


@pytest.mark.usefixtures("no_keyring")
def test_use_keyring_false_never_touches_the_keyring(tmp_path: Path) -> None:
    warned = Warnings()
    key = load_key(tmp_path, warned, use_keyring=False)
    assert (tmp_path / KEY_FILE_NAME).read_text(encoding="ascii").strip() == key.hex()
    assert len(warned.messages) == 1


def test_use_keyring_false_ignores_a_working_keyring(secret_service: KeyringService, tmp_path: Path) -> None:
    key = load_key(tmp_path, Warnings(), use_keyring=False)
    assert (tmp_path / KEY_FILE_NAME).exists()
    assert keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME) is None
    assert load_key(tmp_path, Warnings(), use_keyring=False) == key


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize("content", ["", "not hex", "abcd"])
def test_unreadable_key_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    (tmp_path / KEY_FILE_NAME).write_text(content, encoding="ascii")
    with pytest.raises(ConfigError, match="unreadable fingerprint key") as caught:
        load_key(tmp_path, Warnings())
    assert "deleting it changes every fingerprint" in caught.value.hint


def test_short_key_in_the_keyring_is_replaced(secret_service: KeyringService, tmp_path: Path) -> None:
    keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, "abcd")
    key = load_key(tmp_path, Warnings())
    assert len(key) == KEY_BYTES
    assert keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME) == key.hex()
