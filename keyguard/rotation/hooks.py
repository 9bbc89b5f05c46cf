"""Consumer hooks: let consumers reload between "new key stored" and "old key disabled".

Hooks run after the new key is in every copy and verified, and before the old key is
deactivated, so a consumer can restart a deployment or refresh a cache in time.

A hooks file (``--hooks FILE``, TOML) maps selectors to commands::

    [[hook]]
    select = "owner=payments-team"          # same syntax as --select
    command = ["kubectl", "rollout", "restart", "deployment/payments"]
    timeout = 120                            # seconds (default 300)

Commands run without a shell, with stdin closed. They learn *which* key rotated from
environment variables (``KEYGUARD_KEY_NAME``, ``KEYGUARD_OLD_KEY_ID``,
``KEYGUARD_NEW_KEY_ID``, ``KEYGUARD_ROTATION_TOKEN``, ``KEYGUARD_COPIES``), never the
secret: consumers read it from the stores as they always do. A non-zero exit or a
timeout fails the ``hooks`` step, and the rotation rolls back while the old key is
still active. Hook output is not echoed (it could print a secret it read).
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from keyguard.errors import UsageError
from keyguard.model import KeyRecord
from keyguard.rotation.context import StepFailed
from keyguard.rotation.plan import RotationItem
from keyguard.rotation.schedule import parse_select

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Hook:
    """One consumer command and the keys it applies to."""

    select: str
    command: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT

    def matches(self) -> Callable[[KeyRecord], bool]:
        """The compiled selector."""
        return parse_select(self.select)


def load_hooks(path: Path) -> list[Hook]:
    """Parse a hooks file; every problem is one UsageError naming the file and the entry."""
    if not path.is_file():
        raise UsageError(f"{path}: hooks file not found", "check the --hooks path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read hooks ({exc})", "fix the TOML syntax") from None
    entries = raw.get("hook", [])
    if not isinstance(entries, list) or set(raw) - {"hook"}:
        raise UsageError(f"{path}: expected only [[hook]] tables")
    hooks: list[Hook] = []
    for n, entry in enumerate(entries):
        where = f"{path}: hook[{n}]"
        if not isinstance(entry, dict) or set(entry) - {"select", "command", "timeout"}:
            raise UsageError(f"{where}: allowed keys are select, command, timeout")
        select, command = entry.get("select"), entry.get("command")
        timeout = entry.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(select, str) or not select.strip():
            raise UsageError(f"{where}: 'select' must be a selector string",
                             "e.g. select = \"owner=payments-team\"")
        if (not isinstance(command, list) or not command
                or not all(isinstance(c, str) and c for c in command)):
            raise UsageError(f"{where}: 'command' must be a non-empty list of strings",
                             "it runs without a shell: [\"kubectl\", \"rollout\", ...]")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise UsageError(f"{where}: 'timeout' must be a positive number of seconds")
        hook = Hook(select, tuple(command), float(timeout))
        hook.matches()  # a bad selector is exit 2 before any work
        hooks.append(hook)
    return hooks


def hooks_param(hooks: Sequence[Hook], key: KeyRecord) -> str | None:
    """The matching hooks of ``key`` as the plan's JSON parameter (None when none match)."""
    chosen = [{"command": list(h.command), "timeout": h.timeout} for h in hooks if h.matches()(key)]
    return json.dumps(chosen) if chosen else None


def run_hooks(item: RotationItem, facts: Mapping[str, str],
              run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run
              ) -> Mapping[str, str]:
    """Run the item's hooks in order; the first failure raises StepFailed."""
    hooks = json.loads(item.params.get("hooks", "[]"))
    # NOTE: the hook inherits keyguard's environment (PATH, KUBECONFIG...) plus public facts.
    env = {**os.environ, "KEYGUARD_KEY_NAME": item.name,
           "KEYGUARD_OLD_KEY_ID": item.key_id or "",
           "KEYGUARD_NEW_KEY_ID": facts.get("new_key_id", ""),
           "KEYGUARD_ROTATION_TOKEN": item.token,
           "KEYGUARD_COPIES": " ".join(c.name for c in item.copies)}
    for n, hook in enumerate(hooks):
        command = [str(c) for c in hook["command"]]
        label = f"hook[{n}] ({Path(command[0]).name})"
        try:
            done = run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=float(hook["timeout"]), check=False, shell=False)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{label} timed out after {hook['timeout']:g} s") from None
        except OSError as exc:
            raise StepFailed(f"{label} could not start ({exc.strerror})") from None
        if done.returncode != 0:
            raise StepFailed(f"{label} exited {done.returncode}")
    return {"hooks": str(len(hooks))}
