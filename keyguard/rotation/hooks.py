"""Consumer hooks: let consumers reload between "new key stored" and "old key disabled".

Hooks run after the new key is in every copy and verified, and before the old key is
deactivated, so a consumer can restart a deployment or refresh a cache in time.

A hooks file (``--hooks FILE``, TOML) maps selectors to commands or webhooks::

    [[hook]]
    select = "owner=payments-team"          # same syntax as --select
    command = ["kubectl", "rollout", "restart", "deployment/payments"]
    timeout = 120                            # seconds (default 300)

    [[hook]]
    select = "tag:consumer=billing"
    url = "keyring:billing-reload-hook"      # or env:VAR, or a literal https://... URL
    secret = "env:BILLING_HOOK_SECRET"       # optional: sign the body (keyring:NAME|env:VAR)
    timeout = 10                             # seconds per attempt (default 30)
    retries = 2                              # extra attempts on 429/5xx/network (default 3)

Each entry has exactly one of ``command`` and ``url``; any other key is an error (exit 2,
naming the file and the entry), checked before any work.

Commands run without a shell, with stdin closed. They learn *which* key rotated from
environment variables (``KEYGUARD_KEY_NAME``, ``KEYGUARD_OLD_KEY_ID``,
``KEYGUARD_NEW_KEY_ID``, ``KEYGUARD_ROTATION_TOKEN``, ``KEYGUARD_COPIES``), never the
secret: consumers read it from the stores as they always do. A non-zero exit or a
timeout fails the ``hooks`` step, and the rotation rolls back while the old key is
still active. Hook output is not echoed (it could print a secret it read).

Webhooks get one JSON POST (:func:`webhook_body`: key name, old and new key ids, rotation
token, rotator, copies; never the secret) through :class:`keyguard.usage.notify.HttpPoster`,
so they share ``--notify``'s rules: no redirects, a timeout per attempt, retries with
backoff on 429/5xx/connection errors, and only the host in messages. Any other answer
than 2xx (a 3xx or 4xx at once, a 429/5xx or a timeout once the retries are spent) fails
the step like a failing command. With ``secret``, the header :data:`SIGNATURE_HEADER`
carries ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes keyed with the
secret. The body carries no timestamp; a resumed rotation may post again, so a receiver
that must not act twice drops a ``(rotation_token, new_key_id)`` pair it has seen.

Why webhook URLs never reach the plan: a URL can carry a token, so the plan and the
journal (which store the hooks for ``apply`` and ``resume``) hold only a reference:
``keyring:NAME`` / ``env:VAR`` as written, or ``file:PATH#N`` (entry N of this hooks
file) for a literal URL, re-read when the hook runs (its host must still be the planned
one). Keep that file in place until the rotation finished, or use a reference.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyguard.errors import KeyguardError, UsageError
from keyguard.model import KeyRecord
from keyguard.rotation.context import StepFailed
from keyguard.rotation.plan import RotationItem
from keyguard.rotation.schedule import parse_select

if TYPE_CHECKING:
    from keyguard.usage.notify import Webhook

#: Seconds a command hook may run.
DEFAULT_TIMEOUT = 300.0
#: Seconds per webhook attempt (a reload endpoint should answer quickly; it may work async).
DEFAULT_WEBHOOK_TIMEOUT = 30.0
#: Extra webhook attempts on 429, 5xx and connection errors (as ``--notify``).
DEFAULT_RETRIES = 3
#: Header holding ``sha256=<hex HMAC-SHA256(secret, body)>`` when a hook has a ``secret``.
SIGNATURE_HEADER = "X-Keyguard-Signature-256"
#: ``event`` of the webhook body; a receiver can route on it.
WEBHOOK_EVENT = "keyguard.rotation.hook"
#: Bump when the webhook body changes incompatibly.
WEBHOOK_SCHEMA = 1

_COMMAND_KEYS = frozenset({"select", "command", "timeout"})
_URL_KEYS = frozenset({"select", "url", "secret", "timeout", "retries"})
_REFS = ("keyring:", "env:")


@dataclass(frozen=True, slots=True)
class Hook:
    """One consumer command or webhook and the keys it applies to.

    ``url`` is never a literal URL: it is the reference stored in the plan (``keyring:``,
    ``env:`` or ``file:PATH#N``), so a Hook is safe to print and to persist.
    """

    select: str
    command: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    url: str | None = None
    host: str = ""
    secret: str | None = None
    retries: int = DEFAULT_RETRIES

    def matches(self) -> Callable[[KeyRecord], bool]:
        """The compiled selector."""
        return parse_select(self.select)

    def as_param(self) -> dict[str, Any]:
        """The JSON object the plan stores for this hook (no secret, no literal URL)."""
        if self.url is None:
            return {"command": list(self.command), "timeout": self.timeout}
        return {"url": self.url, "host": self.host, "secret": self.secret,
                "timeout": self.timeout, "retries": self.retries}


def load_hooks(path: Path) -> list[Hook]:
    """Parse a hooks file; every problem is one UsageError naming the file and the entry.

    Webhook references are resolved here too, so a missing keyring entry or variable is
    exit 2 before any work, not a rollback halfway through the plan.
    """
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
        hook = _entry(path, n, entry)
        try:
            hook.matches()  # a bad selector is exit 2 before any work
        except UsageError as exc:
            raise UsageError(f"{path}: hook[{n}]: select: {exc.message}", exc.hint) from None
        hooks.append(hook)
    return hooks


def _entry(path: Path, n: int, entry: object) -> Hook:
    where = f"{path}: hook[{n}]"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a [[hook]] table")
    if ("command" in entry) == ("url" in entry):
        raise UsageError(f"{where}: needs exactly one of 'command' or 'url'",
                         "a command runs without a shell; a url gets a JSON POST")
    is_url = "url" in entry
    allowed = _URL_KEYS if is_url else _COMMAND_KEYS
    if set(entry) - allowed:
        unknown = ", ".join(sorted(set(entry) - allowed))
        raise UsageError(f"{where}: unknown key(s) {unknown}; allowed keys are "
                         f"{', '.join(sorted(allowed))}")
    select = entry.get("select")
    if not isinstance(select, str) or not select.strip():
        raise UsageError(f"{where}: 'select' must be a selector string",
                         "e.g. select = \"owner=payments-team\"")
    timeout = entry.get("timeout", DEFAULT_WEBHOOK_TIMEOUT if is_url else DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise UsageError(f"{where}: 'timeout' must be a positive number of seconds")
    if not is_url:
        command = entry["command"]
        if (not isinstance(command, list) or not command
                or not all(isinstance(c, str) and c for c in command)):
            raise UsageError(f"{where}: 'command' must be a non-empty list of strings",
                             "it runs without a shell: [\"kubectl\", \"rollout\", ...]")
        return Hook(select, tuple(command), float(timeout))
    retries = entry.get("retries", DEFAULT_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise UsageError(f"{where}: 'retries' must be a whole number from 0 to 10")
    url, secret = entry["url"], entry.get("secret")
    if not isinstance(url, str) or not url.strip():
        raise UsageError(f"{where}: 'url' must be an http(s) URL, keyring:NAME or env:VAR")
    if secret is not None and (not isinstance(secret, str) or not secret.startswith(_REFS)):
        # NOTE: the value is never quoted: it may be the signing secret itself.
        raise UsageError(f"{where}: 'secret' must be keyring:NAME or env:VAR",
                         "a signing secret never lives in the hooks file")
    ref = url.strip() if url.strip().startswith(_REFS) else f"file:{path.resolve()}#{n}"
    host = _webhook(url, where).host
    if secret is not None:
        _signing_key(secret, where)
    return Hook(select, timeout=float(timeout), url=ref, host=host, secret=secret,
                retries=retries)


def _webhook(value: str, where: str) -> Webhook:
    """``parse_webhook`` with this entry named in its errors (a ConfigError names the ref)."""
    from keyguard.usage.notify import parse_webhook

    try:
        return parse_webhook(value, option=f"{where} url")
    except UsageError as exc:
        if exc.message.startswith(where):
            raise
        raise UsageError(f"{where}: {exc.message}", exc.hint) from None


def _signing_key(ref: str, where: str) -> bytes:
    from keyguard.credentials import resolve

    try:
        return resolve(ref).reveal().encode()
    except UsageError as exc:
        raise UsageError(f"{where}: secret: {exc.message}", exc.hint) from None


def hooks_param(hooks: Sequence[Hook], key: KeyRecord) -> str | None:
    """The matching hooks of ``key`` as the plan's JSON parameter (None when none match)."""
    chosen = [h.as_param() for h in hooks if h.matches()(key)]
    return json.dumps(chosen) if chosen else None


def webhook_body(item: RotationItem, facts: Mapping[str, str]) -> bytes:
    """The JSON a webhook hook receives: which key rotated, never its value."""
    return json.dumps({
        "source": "keyguard", "event": WEBHOOK_EVENT, "schema_version": WEBHOOK_SCHEMA,
        "key_name": item.name, "rotator": item.rotator, "old_key_id": item.key_id,
        "new_key_id": facts.get("new_key_id"), "rotation_token": item.token,
        "copies": [{"store": c.store, "name": c.name, "region": c.region, "field": c.field}
                   for c in item.copies],
    }, ensure_ascii=False, sort_keys=True).encode()


def signature(key: bytes, body: bytes) -> str:
    """The :data:`SIGNATURE_HEADER` value for ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


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
        if "url" in hook:
            _post(n, hook, webhook_body(item, facts))
            continue
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


def _post(n: int, hook: Mapping[str, Any], body: bytes) -> None:
    """POST one webhook hook; any failure (unresolvable reference, HTTP) is StepFailed."""
    from keyguard.usage.notify import HttpPoster, NotifyError

    label = f"hook[{n}] (webhook {hook.get('host') or '?'})"
    try:
        target = _resolve_url(str(hook["url"]), str(hook.get("host") or ""), label)
        headers = ({SIGNATURE_HEADER: signature(_signing_key(hook["secret"], label), body)}
                   if hook.get("secret") else {})
        HttpPoster(timeout=float(hook["timeout"]), retries=int(hook["retries"]))(
            target, body, headers)
    except NotifyError as exc:
        raise StepFailed(f"{label} failed: {exc}") from None
    except KeyguardError as exc:
        raise StepFailed(str(exc)) from None


def _resolve_url(ref: str, host: str, label: str) -> Webhook:
    """The Webhook a plan reference names; ``file:PATH#N`` re-reads entry N of that file.

    The host must still be the planned one: the body goes only where the reviewed plan said.
    """
    if ref.startswith("file:"):
        path, _, index = ref.removeprefix("file:").rpartition("#")
        try:
            entry = tomllib.loads(Path(path).read_text(encoding="utf-8"))["hook"][int(index)]
            ref = str(entry["url"])
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, IndexError,
                KeyError, TypeError):
            raise UsageError(f"{label}: entry {index} of the hooks file {path} is unreadable, "
                             "gone or no longer a url hook",
                             "re-plan with the current hooks file") from None
    hook = _webhook(ref, label)
    if host and hook.host != host:
        raise UsageError(f"{label}: the webhook now points at {hook.host}, not the planned host",
                         "re-plan to review the new target")
    return hook
