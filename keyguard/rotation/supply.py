"""A new key supplied by the operator (assisted rotation): read once, held only in memory.

Some providers cannot create keys through their admin API (Anthropic, OpenAI project
keys): a person creates the new key in the console and hands it to keyguard, which then
stores it everywhere, verifies it and disables the old one. The value must never be a
command-line argument (argv is world-readable in ``/proc`` and lands in shell history),
so it comes from the OS keyring (``keyguard auth set NAME`` then ``--from-keyring NAME``)
or from standard input (``--stdin``), is read exactly once by the CLI and lives in the
run's :class:`~keyguard.rotation.context.Scratch`, which also makes the journal refuse any
line containing it.

Interface for rotators (any rotator that takes a supplied value, not only the provider
ones):

* at planning, put :data:`SUPPLY_PARAM` in the item's params with the kind the new value
  must classify as (``anthropic-api``...), or ``any`` when no classification applies; the
  CLI then refuses to run the plan without a supplied value, and refuses one supplied value
  for two items;
* in a step, :func:`supplied` returns the value (or None: the run was not given one, e.g.
  ``resume``, which never re-reads stdin) and :func:`kind_of` classifies it.

Nothing here prints, exits or reads the environment; the CLI passes the stream in.
"""

from __future__ import annotations

from typing import TextIO

from keyguard.classify import classify_token
from keyguard.errors import UsageError
from keyguard.rotation.context import Scratch
from keyguard.rotation.plan import RotationItem
from keyguard.secret import Secret

#: Item parameter naming the kind a supplied value must have (``any``: not checked).
SUPPLY_PARAM = "supplied-kind"
#: Scratch name of the supplied value.
SCRATCH_NAME = "supplied"
#: Longest value accepted from stdin (a key is a few hundred characters at most), bytes.
MAX_LENGTH = 16 * 1024


def from_keyring(name: str) -> Secret:
    """The value stored with ``keyguard auth set NAME`` (keyguard's credentials service).

    Raises:
        UsageError: bad name, no usable keyring, or no such item.

    """
    from keyguard.credentials import fetch

    found = fetch(name)
    if found is None or not found.reveal().strip():
        raise UsageError(f"--from-keyring {name}: no such credential in the OS keyring",
                         f"store the new key with `keyguard auth set {name}` first")
    return _one_token(found.reveal(), f"--from-keyring {name}")


def from_stream(stream: TextIO, where: str = "standard input") -> Secret:
    """Read the new key from ``stream`` once: one token, surrounding whitespace ignored.

    Raises:
        UsageError: empty, too long, or more than one token (the message shows no value).

    """
    try:
        raw = stream.read(MAX_LENGTH + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the new key from {where} ({type(exc).__name__})") from None
    if len(raw) > MAX_LENGTH:
        raise UsageError(f"{where}: more than {MAX_LENGTH} characters; expected one key",
                         "pipe only the new key, e.g. `pass show new-key | keyguard ...`")
    return _one_token(raw, where)


def _one_token(raw: str, where: str) -> Secret:
    text = raw.strip()
    if not text:
        raise UsageError(f"{where}: no key given (empty)", "supply the new key's value")
    if len(text.split()) != 1:
        raise UsageError(f"{where}: expected one key, found text with spaces or several lines",
                         "supply only the new key's value")
    return Secret(text)


def hold(scratch: Scratch, value: Secret) -> None:
    """Keep the supplied value for this run's steps (and make the journal refuse it)."""
    scratch.put(SCRATCH_NAME, value)


def supplied(scratch: Scratch) -> Secret | None:
    """The value supplied to this run, if any."""
    return scratch.get(SCRATCH_NAME)


def kind_of(value: Secret) -> str | None:
    """The key kind the value classifies as (``anthropic-api``, ``openai-project``...)."""
    fmt = classify_token(value.reveal())
    return fmt.kind if fmt is not None else None


def needs_supply(item: RotationItem) -> bool:
    """Whether ``item`` rotates with a supplied value (its plan put :data:`SUPPLY_PARAM`)."""
    return item.action == "rotate" and bool(item.params.get(SUPPLY_PARAM))
