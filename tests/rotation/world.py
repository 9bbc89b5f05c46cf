"""A private AWS world for rotation tests: its own moto server process, users and copies.

NOTE: the rotation tests run their own ``moto_server`` *process*, not the session's
in-process server: moto's state is per process, and the session sandbox's hundreds of
seeded secrets would slow every inventory and could be rotated by mistake. Keys are
made due by moving the *CLI's* clock forward (freezegun at the CLI edge, or
``frozen_cli`` for subprocesses); the server keeps real time, so keys keyguard creates
are young again on the next run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from keyguard.sandbox import CLEARED_ENV, sandbox_env

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
SOURCES = ("--source", "aws-iam", "--source", "aws-secretsmanager", "--source", "aws-ssm",
           "--region", REGION)
POLICY_TOML = "[policy.rules.rotation-max-age]\nmax_age_days = {days}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def rotation_moto() -> Iterator[str]:
    """A moto server process of our own; stopped by its pid."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def rot_env(rotation_moto: str, monkeypatch: pytest.MonkeyPatch,
            tmp_path_factory: pytest.TempPathFactory) -> str:
    """boto3 in this process (and children) points at the rotation moto server."""
    for var in CLEARED_ENV:
        monkeypatch.delenv(var, raising=False)
    for name, value in sandbox_env(rotation_moto, REGION).items():
        monkeypatch.setenv(name, value)
    # NOTE: an empty file of our own rather than /dev/null: a tool that "atomically"
    # writes to /dev/null replaces the device with a regular file for the whole machine.
    empty = tmp_path_factory.getbasetemp() / "empty-aws-config"
    empty.touch()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    # every test starts from an empty world, so inventories stay small and fast
    reset = urllib.request.Request(f"{rotation_moto}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(reset, timeout=10):  # noqa: S310  (loopback moto)
        pass
    return rotation_moto


@dataclass
class Copy:
    """One stored copy the test created: where, which shape, and which field holds the secret."""

    store: str  # "sm" or "ssm"
    name: str
    shape: str  # json | plain | env
    field: str | None


@dataclass
class User:
    """An IAM user with one access key and its copies."""

    name: str
    old_id: str
    old_secret: str
    copies: list[Copy] = field(default_factory=list)
    arn: str = ""


def _value(shape: str, key_id: str, secret: str) -> str:
    if shape == "json":
        return json.dumps({"aws_access_key_id": key_id, "aws_secret_access_key": secret,
                           "region": REGION, "note": "keep me"})
    if shape == "env":
        return f"# app creds\nAWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nDEBUG=1\n"
    return secret


def _field(shape: str) -> str | None:
    return {"json": "aws_secret_access_key", "env": "AWS_SECRET_ACCESS_KEY"}.get(shape)


def make_user(prefix: str, layout: Sequence[tuple[str, str]], *, spare: str | None = None
              ) -> User:
    """Create a user, its key, and copies: layout items are (store, shape).

    ``spare`` = "inactive" or "active" adds a second key of that status.
    """
    iam = boto3.client("iam")
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if spare is not None:
        extra = iam.create_access_key(UserName=name)["AccessKey"]
        if spare == "inactive":
            iam.update_access_key(UserName=name, AccessKeyId=extra["AccessKeyId"], Status="Inactive")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = User(name, key["AccessKeyId"], key["SecretAccessKey"], arn=arn)
    sm = boto3.client("secretsmanager")
    ssm = boto3.client("ssm")
    for n, (store, shape) in enumerate(layout):
        # the name carries the AWS-like field name so plain values classify by name
        cname = f"{name}/c{n}/aws_secret_access_key" if shape == "plain" else f"{name}/c{n}/creds"
        value = _value(shape, user.old_id, user.old_secret)
        if store == "sm":
            sm.create_secret(Name=cname, SecretString=value)
        else:
            cname = "/" + cname
            ssm.put_parameter(Name=cname, Value=value, Type="SecureString")
        user.copies.append(Copy(store, cname, shape, _field(shape)))
    return user


def read_copy(copy: Copy) -> str:
    """The current value of one copy."""
    if copy.store == "sm":
        return boto3.client("secretsmanager").get_secret_value(SecretId=copy.name)["SecretString"]
    return boto3.client("ssm").get_parameter(Name=copy.name, WithDecryption=True)["Parameter"]["Value"]


def secret_in(copy: Copy, value: str) -> str:
    """The secret a copy's value holds, by its shape."""
    if copy.shape == "json":
        return str(json.loads(value)["aws_secret_access_key"])
    if copy.shape == "env":
        line = next(ln for ln in value.splitlines() if ln.startswith("AWS_SECRET_ACCESS_KEY="))
        return line.split("=", 1)[1]
    return value


def id_in(copy: Copy, value: str) -> str | None:
    """The access key id a copy holds, when its shape carries one."""
    if copy.shape == "json":
        return str(json.loads(value)["aws_access_key_id"])
    if copy.shape == "env":
        line = next(ln for ln in value.splitlines() if ln.startswith("AWS_ACCESS_KEY_ID="))
        return line.split("=", 1)[1]
    return None


def keys_of(user: User) -> dict[str, str]:
    """Access key id -> status of the user's keys now."""
    metas = boto3.client("iam").list_access_keys(UserName=user.name)["AccessKeyMetadata"]
    return {m["AccessKeyId"]: m["Status"] for m in metas}


@dataclass
class Snapshot:
    """The world of one user after a run: keys, and the secret/id each copy holds."""

    keys: dict[str, str]
    secrets: list[str]
    ids: list[str]

    @property
    def held_id(self) -> str:
        """The one key id the copies carry (they must agree)."""
        assert len(set(self.ids)) == 1, f"copies disagree on the key id: {self.ids}"
        return self.ids[0]


def snapshot(user: User) -> Snapshot:
    """Read every copy and the user's keys."""
    values = [(c, read_copy(c)) for c in user.copies]
    ids = [i for c, v in values if (i := id_in(c, v)) is not None]
    return Snapshot(keys_of(user), [secret_in(c, v) for c, v in values], ids)


def assert_invariants(user: User, *, complete: bool | None = None) -> Snapshot:
    """The safety invariants after any run, killed or not.

    Every copy holds the same secret and key id; that key is active; no key exists that
    no copy holds except the old one; once complete, the old key is inactive (or gone)
    and the copies hold the new key. ``complete=None`` accepts either end state.
    """
    snap = snapshot(user)
    assert len(set(snap.secrets)) == 1, "copies disagree on the secret"
    held = snap.held_id
    assert snap.keys.get(held) == "Active", f"copies hold {held}, which is {snap.keys.get(held)}"
    if held == user.old_id:
        assert snap.secrets[0] == user.old_secret
    orphans = set(snap.keys) - {held, user.old_id}
    assert not orphans, f"orphaned keys remain: {orphans}"
    rotated = held != user.old_id
    if complete is not None:
        assert rotated == complete, f"expected complete={complete}, copies hold {held}"
    if rotated:
        assert snap.keys.get(user.old_id) in (None, "Inactive"), "old key still active"
        assert snap.secrets[0] != user.old_secret
    else:
        assert snap.keys.get(user.old_id) == "Active"
    return snap


def policy_file(tmp: Path, days: int) -> Path:
    """A policy whose rotation-max-age is ``days``."""
    path = tmp / f"policy-{days}.toml"
    path.write_text(POLICY_TOML.format(days=days), encoding="utf-8")
    return path


def later(days: int) -> datetime:
    """Now plus ``days``: the CLI's clock for a run that should find keys ``days`` old."""
    return datetime.now(UTC) + timedelta(days=days)


def run_frozen(args: Sequence[str], at: datetime, env: dict[str, str], cwd: Path,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``keyguard ARGS`` in a subprocess whose clock starts at ``at``."""
    full = {**env, "KG_TEST_NOW": at.isoformat(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tests.rotation.frozen_cli", *args],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout,
                          check=False)


def child_env(home: Path) -> dict[str, str]:
    """Environment of a keyguard subprocess: this one's AWS settings, an isolated home."""
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    env.pop("KEYGUARD_CONFIG", None)
    return env
