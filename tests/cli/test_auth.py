"""`keyguard auth` and credentials.resolve against a real gnome-keyring (private D-Bus session)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import random
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
import secretstorage
from typer.testing import CliRunner, Result

from keyguard import credentials
from keyguard.cli import app
from keyguard.cli.auth import redact
from keyguard.credentials import CREDENTIALS_SERVICE, INDEX_USERNAME
from keyguard.errors import ConfigError, UsageError
from keyguard.fakes import fake_key
from keyguard.fingerprint import KEYRING_SERVICE, KEYRING_USERNAME
from keyguard.secret import Secret
from tests.fixtures.keyring_service import KeyringService

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AuthCli:
    """Runs keyguard in-process against the private gnome-keyring."""

    service: KeyringService
    home: Path

    def __call__(self, args: Sequence[str], input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), prog_name="keyguard", input=input)

    def stored(self, name: str) -> str | None:
        return keyring.get_password(CREDENTIALS_SERVICE, name)

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess using the same keyring and home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGUARD_")}
        env.update(self.service.env, HOME=str(self.home), XDG_DATA_HOME=str(self.home / "data"),
                   XDG_CONFIG_HOME=str(self.home / "config"))
        return env


@pytest.fixture
def auth(secret_service: KeyringService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuthCli:
    """Like the `cli` fixture, but on the real Secret Service instead of the fail backend."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("KEYGUARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return AuthCli(secret_service, home)


def fake(kind: str = "anthropic-admin", seed: int = 1) -> str:
    return fake_key(kind, random.Random(seed))


def assert_not_in(value: str, *texts: str) -> None:
    """Neither the value nor any 12-character slice of it appears in the texts."""
    joined = "\n".join(texts)
    for i in range(len(value) - 11):
        assert value[i:i + 12] not in joined, "the credential leaked"


# -- set / get --------------------------------------------------------------------------------


def test_set_from_stdin_then_get_redacted(auth: AuthCli) -> None:
    value = fake()
    args = ["auth", "set", "anthropic-admin"]
    result = auth(args, input=value + "\n")
    assert result.exit_code == 0, result.output
    assert "stored anthropic-admin" in result.stderr
    assert "keyring:anthropic-admin" in result.stderr
    assert auth.stored("anthropic-admin") == value  # trailing newline dropped
    assert_not_in(value, " ".join(args), result.output)

    result = auth(["auth", "get", "anthropic-admin"])
    assert result.exit_code == 0
    assert result.stdout == f"{value[:4]}…{value[-2:]}\n"
    assert_not_in(value, result.output)


def test_set_replaces_and_says_so(auth: AuthCli) -> None:
    assert auth(["auth", "set", "hook"], input=fake("slack-webhook", 1)).exit_code == 0
    second = fake("slack-webhook", 2)
    result = auth(["auth", "set", "hook"], input=second)
    assert result.exit_code == 0
    assert "replaced hook" in result.stderr
    assert auth.stored("hook") == second


def test_short_values_redact_completely() -> None:
    assert redact(Secret("hunter2")) == "****"
    assert redact(Secret("0123456789abcdef")) == "0123…ef"


def test_value_is_never_taken_from_argv(auth: AuthCli) -> None:
    value = fake()
    result = auth(["auth", "set", "admin", value])
    assert result.exit_code == 2
    assert auth.stored("admin") is None
    assert_not_in(value, result.stdout)


def test_empty_stdin_is_a_usage_error(auth: AuthCli) -> None:
    result = auth(["auth", "set", "admin"], input="\n")
    assert result.exit_code == 2
    assert "no value given for admin" in result.stderr
    assert auth.stored("admin") is None


def test_reveal_is_refused_when_stdout_is_not_a_tty(auth: AuthCli) -> None:
    value = fake()
    auth(["auth", "set", "admin"], input=value)
    result = auth(["auth", "get", "admin", "--reveal"])
    assert result.exit_code == 2
    assert "refusing --reveal: stdout is not a terminal" in result.stderr
    assert result.stdout == ""
    assert_not_in(value, result.output)


def test_missing_name_is_exit_2(auth: AuthCli) -> None:
    for args in (["auth", "get", "nope"], ["auth", "delete", "nope"]):
        result = auth(args)
        assert result.exit_code == 2
        assert "no credential named nope" in result.stderr
        assert "keyguard auth list" in result.stderr


def test_invalid_name_is_exit_2(auth: AuthCli) -> None:
    result = auth(["auth", "set", ".index"], input="whatever-value-123")
    assert result.exit_code == 2
    assert "invalid credential name" in result.stderr
    assert auth.stored(".index") is None


# -- list / delete ----------------------------------------------------------------------------


def test_list_and_delete(auth: AuthCli) -> None:
    keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, "00" * 32)  # the fingerprint key
    keyring.set_password("someone-else", "token", "not-ours-0123456789")
    values = {"openai-admin": fake("openai-admin"), "slack-hook": fake("slack-webhook")}
    for name, value in values.items():
        assert auth(["auth", "set", name], input=value).exit_code == 0

    result = auth(["auth", "list"])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["openai-admin", "slack-hook"]
    for value in values.values():
        assert_not_in(value, result.output)

    result = auth(["auth", "delete", "openai-admin"])
    assert result.exit_code == 0
    assert "deleted openai-admin" in result.stderr
    assert auth.stored("openai-admin") is None
    assert auth(["auth", "list"]).stdout.splitlines() == ["slack-hook"]
    # Other services, and keyguard's own fingerprint key, are never touched.
    assert keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME) == "00" * 32
    assert keyring.get_password("someone-else", "token") == "not-ours-0123456789"


def test_list_when_empty(auth: AuthCli) -> None:
    result = auth(["auth", "list"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no credentials stored" in result.stderr


def test_items_live_under_the_credentials_service(auth: AuthCli) -> None:
    auth(["auth", "set", "admin"], input=fake())
    with auth.service.connection() as conn:
        items = list(secretstorage.Collection(conn).get_all_items())
        found = [item.get_attributes() for item in items]
    assert [(a["service"], a["username"]) for a in found] == [(CREDENTIALS_SERVICE, "admin")]


def test_no_keyring_is_exit_2(auth: AuthCli, no_keyring: None) -> None:
    result = auth(["auth", "list"])
    assert result.exit_code == 2
    assert "no usable OS keyring" in result.stderr
    assert "PYTHON_KEYRING_BACKEND" in result.stderr


# -- backends that cannot enumerate -----------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring without enumeration, like macOS Keychain through python-keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous: keyring.backend.KeyringBackend | None = keyring.core._keyring_backend
    backend = MemoryKeyring()
    keyring.core.set_keyring(backend)
    try:
        yield backend
    finally:
        if previous is None:
            keyring.core._keyring_backend = None
        else:
            keyring.core.set_keyring(previous)


def test_index_item_lists_names_on_other_backends(memory_keyring: MemoryKeyring) -> None:
    credentials.store("b-key", Secret(fake(seed=3)))
    credentials.store("a-key", Secret(fake(seed=4)))
    assert credentials.names() == ["a-key", "b-key"]
    assert credentials.remove("b-key") is True
    assert credentials.remove("b-key") is False
    assert credentials.names() == ["a-key"]
    index = memory_keyring.items[(CREDENTIALS_SERVICE, INDEX_USERNAME)]
    assert index == '["a-key"]'  # names only, never a value


# -- credentials.resolve ----------------------------------------------------------------------


def test_resolve_keyring_and_env_references(auth: AuthCli) -> None:
    value = fake()
    auth(["auth", "set", "admin"], input=value)
    assert credentials.resolve("keyring:admin").reveal() == value
    assert credentials.resolve("env:KG_TEST", {"KG_TEST": "abc-123"}).reveal() == "abc-123"


@pytest.mark.parametrize(("reference", "message", "hint"), [
    ("keyring:missing", "credential keyring:missing is not in the OS keyring",
     "keyguard auth set missing"),
    ("env:KG_UNSET", "credential env:KG_UNSET is not set", "export KG_UNSET"),
    ("keyring:", "is not a valid name", "keyring:NAME"),
    ("sk-ant-admin01-literal-value", "holds a literal value", "keyguard auth set NAME"),
])
def test_resolve_failures_are_one_line_config_errors(auth: AuthCli, reference: str, message: str,
                                                    hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        credentials.resolve(reference, {})
    assert message in caught.value.message
    assert hint in caught.value.hint
    assert "\n" not in str(caught.value)
    assert "literal-value" not in str(caught.value)


def test_resolve_without_a_keyring(no_keyring: None) -> None:
    with pytest.raises(ConfigError) as caught:
        credentials.resolve("keyring:admin")
    assert "cannot resolve keyring:admin" in caught.value.message
    assert isinstance(caught.value, UsageError)


# -- on a real terminal -----------------------------------------------------------------------


def _controlling_tty() -> None:
    """In the child, after setsid(): make stdin (the pty) the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A keyguard subprocess whose stdin, stdout and stderr are a pseudo-terminal."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keyguard", *args], stdin=slave, stdout=slave, stderr=slave,
            env=env, cwd=ROOT, start_new_session=True, preexec_fn=_controlling_tty,
        )
        os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {needle!r}; got {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                assert chunk, f"terminal closed before {needle!r}; got {self.output!r}"
                self.output += chunk

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        code = self.proc.wait(timeout=20)
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 4096):
                self.output += chunk
        os.close(self.master)
        return code


def test_on_a_terminal_set_prompts_hidden_and_reveal_prints(auth: AuthCli) -> None:
    value = fake("openai-admin", seed=9)
    term = Terminal(["auth", "set", "openai-admin"], auth.env)
    term.read_until(b"Value for openai-admin: ")
    term.send(value + "\n")
    term.read_until(b"Repeat for confirmation: ")
    term.send(value + "\n")
    assert term.finish() == 0, term.output
    assert b"stored openai-admin" in term.output
    assert value.encode() not in term.output  # the prompt did not echo it
    assert auth.stored("openai-admin") == value

    term = Terminal(["auth", "get", "openai-admin", "--reveal"], auth.env)
    assert term.finish() == 0, term.output
    assert value.encode() in term.output
