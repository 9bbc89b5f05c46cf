"""What the provider rotators (litellm, anthropic, openai) share: HTTP calls, copies, checks.

* :class:`ProviderApi`: JSON over HTTP with the standard library, like the read-only
  sources (:mod:`keyguard.sources._http`), plus POST and DELETE. Only requests that were
  certainly not processed are retried (any 429; a 5xx only for GET), because retrying a
  POST whose answer was lost could regenerate a key twice. A 429 waits what its
  ``retry-after`` asks (else the doubling backoff), and fails at once when that is more
  than ``max-retry-wait``. Error messages are one line and scrubbed of every credential
  the call carried.
* :func:`write_copy`, :func:`restore_copies` and :func:`recover`: the store steps, which
  the IAM rotator uses too (the previous version is journaled before a write,
  a copy changed since planning stops the step, and after a crash the new value is read
  back from a copy that holds it, found by its keyed fingerprint).
* :func:`copies_problem`: planning refuses a key with no stored copy, or whose copies
  disagree on the value (a link collision would otherwise rewrite an unrelated secret).

The leading underscore keeps this module out of the ROTATORS registry.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from keyguard.config import ProviderApiConfig
from keyguard.model import KeyRecord
from keyguard.rotation.context import RotationContext, StepFailed
from keyguard.rotation.plan import RotationItem, StoreCopy
from keyguard.rotation.rotators import StepState
from keyguard.rotation.stores import STORES
from keyguard.rotation.values import extract, holds, rewrite
from keyguard.secret import Secret
from keyguard.sources._http import retry_after, retry_wait

#: Most copies one provider key may have (LiteLLM lists its store steps as final steps).
MAX_COPIES = 64
_MAX_DETAIL = 160

Json = object


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished HTTP exchange: status and parsed JSON body (None when empty or not JSON)."""

    status: int
    body: Json


class ProviderApi:
    """One provider endpoint: base URL, default headers (secrets wrapped), retry budget."""

    def __init__(self, ctx: RotationContext, base_url: str, headers: Mapping[str, str | Secret],
                 cfg: ProviderApiConfig, label: str) -> None:
        self._ctx = ctx
        self._base = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = float(cfg.timeout) if cfg.timeout > 0 else None
        self._retries = cfg.max_retries
        self._max_wait = float(cfg.max_retry_wait)
        self._label = label

    def call(self, method: str, path: str, *, body: Mapping[str, object] | None = None,
             params: Mapping[str, str] | None = None,
             headers: Mapping[str, str | Secret] | None = None,
             accept: Collection[int] = ()) -> Reply:
        """Send one request; 2xx and the ``accept`` statuses return, anything else raises.

        ``headers`` replace default headers of the same name (a verification call sends the
        new key instead of the admin key).

        Raises:
            StepFailed: refused, unreachable, or still failing after the retry budget; the
                message names the call and status, never a credential.

        """
        merged = {**self._headers, **(headers or {})}
        url = self._base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        what = f"{self._label} {method} {path}"
        attempt = 0
        while True:
            attempt += 1
            status, raw, asked = self._once(method, url, body, merged, what)
            retryable = status == 429 or (method == "GET" and status >= 500)
            if retryable and attempt <= self._retries:
                wait = retry_wait(asked, attempt)
                if wait > self._max_wait:
                    raise StepFailed(f"{what}: HTTP {status}, the API asks to retry after "
                                     f"{wait:.0f}s, more than max-retry-wait "
                                     f"({self._max_wait:.0f}s); try again later")
                self._ctx.sleep(wait)
                continue
            parsed = _parse(raw)
            if 200 <= status < 300 or status in accept:
                return Reply(status, parsed)
            detail = _scrub(_detail(parsed, raw), merged.values())
            raise StepFailed(f"{what}: HTTP {status}{f': {detail}' if detail else ''}")

    def _once(self, method: str, url: str, body: Mapping[str, object] | None,
              headers: Mapping[str, str | Secret], what: str
              ) -> tuple[int, bytes, float | None]:
        """``(status, body, retry-after seconds of a 429 or None)``."""
        sent = {"accept": "application/json", "user-agent": "keyguard"}
        for name, value in headers.items():
            sent[name] = value.reveal() if isinstance(value, Secret) else value
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        # NOTE: the scheme comes from config or the provider's variable (https by default),
        # never from data an API returned.
        request = urllib.request.Request(url, data=data, headers=sent, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status), response.read(), None
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read(4096)
            except OSError:
                raw = b""
            asked = retry_after(exc.headers.get("retry-after")) if exc.code == 429 else None
            return int(exc.code), raw, asked
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else type(exc).__name__
            raise StepFailed(f"{what}: cannot reach {_origin(self._base)} "
                             f"({_scrub(str(cause), headers.values())})") from None


def _parse(raw: bytes) -> Json:
    if not raw:
        return None
    try:
        parsed: Json = json.loads(raw)
    except ValueError:
        return None
    return parsed


def _detail(parsed: Json, raw: bytes) -> str:
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed.get("detail", parsed.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err.get("type"))
        return "" if err is None else str(err)
    text = raw[:400].decode("utf-8", "replace")
    return "" if "<" in text else text


def _scrub(text: str, secrets: Collection[str | Secret]) -> str:
    for value in secrets:
        if isinstance(value, Secret) and value:
            whole = value.reveal()
            for token in {whole, *whole.split()}:
                if len(token) >= 8:
                    text = text.replace(token, "***")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL - 3] + "..."


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def obj(value: Json) -> Mapping[str, Json]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text(value: Json, key: str) -> str | None:
    """``value[key]`` when it is a non-empty string."""
    found = obj(value).get(key)
    return found if isinstance(found, str) and found else None


def detail(record: KeyRecord, name: str) -> str | None:
    """The value of ``name=...`` in the record's scope details (workspace, alias, project)."""
    prefix = name + "="
    return next((d[len(prefix):] for d in record.scope.details if d.startswith(prefix)), None)


# -- planning ----------------------------------------------------------------------------------


def copies_problem(copies: Sequence[StoreCopy]) -> str | None:
    """Why a provider key cannot be rotated given its copies, or None when it can."""
    if not copies:
        return ("no stored copy of this key was found (inventory the stores that hold it with "
                "--inspect-values); rotating would leave its consumers without a working key")
    if len(copies) > MAX_COPIES:
        return f"{len(copies)} copies; keyguard rotates a key with at most {MAX_COPIES}"
    prints = {c.fingerprint for c in copies if c.fingerprint}
    if len(prints) > 1:
        return ("the copies linked to this key hold different values (a provider hint matched "
                "more than one secret); rotate it by hand")
    return None


def store_steps(copies: Sequence[StoreCopy]) -> tuple[str, ...]:
    """One ``store:N`` step per copy, in the plan's copy order."""
    return tuple(f"store:{i}" for i in range(len(copies)))


# -- steps -------------------------------------------------------------------------------------


def scratch_name(item: RotationItem) -> str:
    """Where this item's new value lives in the run's Scratch (one run may rotate many keys)."""
    return f"new:{item.token}"


def write_copy(ctx: RotationContext, item: RotationItem, index: int, state: StepState,
               new_secret: Secret, old_id: str | None = None,
               new_id: str | None = None) -> Mapping[str, str]:
    """Rewrite copy ``index`` with the new value; the old version is journaled first.

    ``old_id``/``new_id``: a public key id stored next to the secret (an AWS access key
    id in a JSON secret) that changes with it. Idempotent: a copy already holding the new
    value is left alone, and a copy that no longer holds the planned old value stops the
    step (someone changed it since planning).
    """
    copy = item.copies[index]
    writer = STORES.load(copy.store)(ctx)
    value, version = writer.read(copy)
    if holds(value, copy.field, new_secret):
        return {f"store:{index}:after": version}
    old = extract(value, copy.field)
    if old is not None:
        state.scratch.watch(old)
    if copy.fingerprint and (old is None or ctx.fingerprinter.fingerprint(old) != copy.fingerprint):
        raise StepFailed(f"store {copy.name}: the copy no longer holds the old key (changed "
                         "since planning); plan again")
    new_value = rewrite(value, copy.field, old_id, new_id, new_secret)
    state.note({f"store:{index}:before": version})
    return {f"store:{index}:after": writer.write(copy, new_value)}


def restore_copies(ctx: RotationContext, item: RotationItem, state: StepState) -> None:
    """Put every copy this rotation wrote back to its journaled previous version."""
    for index, copy in enumerate(item.copies):
        before = state.facts.get(f"store:{index}:before")
        if before:
            STORES.load(copy.store)(ctx).restore(copy, before)


def recover(ctx: RotationContext, item: RotationItem, state: StepState,
            name: str | None = None) -> Secret | None:
    """The new value: from memory (Scratch ``name``), else from a copy holding it.

    A copy is recognised by the journaled fingerprint: after a crash nothing secret
    survives but the copies themselves.
    """
    name = name or scratch_name(item)
    got = state.scratch.get(name)
    if got is not None:
        return got
    wanted = state.facts.get("new_fingerprint")
    if not wanted:
        return None
    for copy in item.copies:
        value, _ = STORES.load(copy.store)(ctx).read(copy)
        candidate = extract(value, copy.field)
        if candidate is not None and ctx.fingerprinter.fingerprint(candidate) == wanted:
            state.scratch.put(name, candidate)
            return candidate
    return None


def all_stored(item: RotationItem, done: frozenset[str]) -> bool:
    """Whether every copy's store step finished."""
    return set(store_steps(item.copies)) <= done


# -- assisted rotation (the new key is supplied) -----------------------------------------------


class AssistedRotator:
    """The flow shared by providers whose admin API cannot create keys (Anthropic, OpenAI).

    Steps: ``prepare`` (the supplied key classifies as the planned kind, is not the old
    key, and is found in the admin API's key list next to the old one, which must still
    be active), ``store:N`` for each copy, ``verify`` (a cheap call authenticated with the
    new key), ``deactivate-old``. Subclasses supply the provider calls.

    Rollback restores every written copy; the supplied key is left as it is (a person made
    it for this rotation, and the next ``apply`` can use it again). Resume finishes once
    every copy holds the new key (read back from a copy by fingerprint: stdin is never
    read again) and rolls back otherwise, so it needs no ``--from-keyring`` or ``--stdin``.
    """

    name: ClassVar[str]
    final_steps: ClassVar[frozenset[str]] = frozenset({"deactivate-old", "delete-old"})
    #: Fact naming the replaced key: ``old_key_id`` makes a later run clean it up after
    #: the grace period; a provider whose ``deactivate-old`` deletes uses another name.
    old_fact: ClassVar[str] = "old_key_id"

    def __init__(self, ctx: RotationContext) -> None:
        self._ctx = ctx

    @classmethod
    def resume_forward(cls, item: RotationItem, done: frozenset[str]) -> bool:
        """Finish once every copy holds the new key; otherwise roll back."""
        return "prepare" in done and all_stored(item, done)

    def run(self, item: RotationItem, step: str, state: StepState) -> Mapping[str, str]:
        """Run one step (see the class docstring)."""
        if step == "prepare":
            return self._prepare(item, state)
        if step.startswith("store:"):
            secret = recover(self._ctx, item, state)
            if secret is None:
                raise StepFailed(f"store {item.name}: the supplied key is not in memory "
                                 "(interrupted run); roll back")
            return write_copy(self._ctx, item, int(step.split(":", 1)[1]), state, secret)
        if step == "verify":
            secret = recover(self._ctx, item, state)
            if secret is None:
                raise StepFailed(f"verify {item.name}: no copy holds the new key any more")
            return self.verify(item, secret)
        if step == "deactivate-old":
            return self.deactivate(item)
        if step == "delete-old":
            return self.delete_old(item)
        raise StepFailed(f"{item.name}: unknown step {step!r} for rotator {self.name}")

    def _prepare(self, item: RotationItem, state: StepState) -> Mapping[str, str]:
        from keyguard.rotation.supply import SUPPLY_PARAM, kind_of, supplied

        secret = supplied(state.scratch)
        if secret is None:
            raise StepFailed(f"prepare {item.name}: no new key was supplied to this run (create "
                             "it in the provider's console, then pass --from-keyring NAME or "
                             "--stdin); nothing changed")
        expected = item.params.get(SUPPLY_PARAM, "")
        got = kind_of(secret)
        if got != expected:
            raise StepFailed(f"prepare {item.name}: the supplied key is "
                             f"{'a ' + got if got else 'not a recognised key'}, not {expected}; "
                             "nothing changed")
        fingerprint = self._ctx.fingerprinter.fingerprint(secret)
        if fingerprint in {c.fingerprint for c in item.copies}:
            raise StepFailed(f"prepare {item.name}: the supplied key is the key being replaced; "
                             "nothing changed")
        new_id = self.match(item, secret)
        state.scratch.put(scratch_name(item), secret)
        return {self.old_fact: str(item.key_id), "new_key_id": new_id,
                "new_fingerprint": fingerprint}

    def rollback(self, item: RotationItem, state: StepState) -> None:
        """Restore written copies; re-enable the old key if this rotation disabled it."""
        if item.action != "rotate":
            return
        restore_copies(self._ctx, item, state)
        if "deactivate-old" in state.started:
            self.undo_deactivate(item)

    # -- provider calls (subclasses) ----------------------------------------------------------

    def match(self, item: RotationItem, secret: Secret) -> str:
        """Check the old key is active and find the supplied key's id; raise StepFailed if not."""
        raise NotImplementedError

    def verify(self, item: RotationItem, secret: Secret) -> Mapping[str, str]:
        """A cheap call authenticated with the new key."""
        raise NotImplementedError

    def deactivate(self, item: RotationItem) -> Mapping[str, str]:
        """Disable (or delete) the old key; idempotent."""
        raise NotImplementedError

    def undo_deactivate(self, item: RotationItem) -> None:
        """Re-enable the old key when the provider can."""
        raise NotImplementedError

    def delete_old(self, item: RotationItem) -> Mapping[str, str]:
        """The grace-period cleanup of the old key."""
        raise StepFailed(f"{item.name}: rotator {self.name} has no cleanup step")
