"""Prompt fingerprints: a 64-bit SimHash of normalised prompt text, so prompts are never stored.

Why a SimHash and not a plain hash: the prompt-mix detector (next increment) asks "does
this key suddenly send a different *kind* of prompt?". Requests built from one template
differ in names, numbers and ids; after normalisation (lowercase, digit runs -> ``0``, long
hex/base64-ish tokens -> ``#``) they share most word n-grams, so their SimHashes differ in
few bits (compare with :func:`distance`; typically <= 12), while unrelated prompts differ
in 20-40 (tests/usage/test_prompt.py checks the separation).

Privacy: 64 bits of a locality-sensitive hash cannot give the text back, but short,
guessable prompts could be confirmed by hashing candidates; treat fingerprints as internal
data, not as public identifiers. Only the first ``MAX_CHARS`` characters are hashed, so the
cost per request is bounded.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping

#: Version tag: bump it if normalisation or hashing changes (stored fingerprints differ).
PREFIX = "sh1:"
MAX_CHARS = 4_096  # templates show in the first few KB; cost stays bounded

_TOKEN = re.compile(r"\w+", re.UNICODE)
_DIGITS = re.compile(r"\d+")


def normalise(text: str) -> list[str]:
    """Word tokens of a prompt with its variable parts (numbers, ids) replaced.

    A token of 16+ characters with a digit (a hex id, a key, a hash) becomes ``#``; other
    digit runs become ``0``. Tokenising first and touching only tokens with non-letters is
    several times faster than regex substitutions over the whole text.
    """
    out: list[str] = []
    for token in _TOKEN.findall(text[:MAX_CHARS].lower()):
        if token.isalpha():
            out.append(token)
        elif len(token) >= 16 and any(c.isdigit() for c in token):
            out.append("#")
        else:
            out.append(_DIGITS.sub("0", token))
    return out


def fingerprint(text: str) -> str:
    """``sh1:<16 hex>``: SimHash over the distinct word 1-, 2- and 3-grams of the text.

    Mixing n-gram sizes keeps one changed word from flipping many bits (trigrams alone are
    noisy on short prompts) while word order still counts. Distinct n-grams, so a phrase
    repeated a hundred times weighs as much as once.
    """
    tokens = normalise(text)
    # Distinct n-grams as tuples first (C-speed zip/set), joined to text only once each.
    grams: set[tuple[str, ...]] = set(zip(tokens, strict=False))
    grams.update(itertools.pairwise(tokens))
    grams.update(zip(tokens, tokens[1:], tokens[2:], strict=False))
    features = {" ".join(gram) for gram in grams} or {""}
    # NOTE: per-bit counting in Python costs 64 steps per feature. Instead the digests are
    # bit-sliced: byte j of every digest forms one column, and the count of features with
    # bit i set in byte j is a single C-level popcount of that column under a mask.
    n = len(features)
    digests = b"".join(hashlib.blake2b(f.encode(), digest_size=8).digest() for f in features)
    masks = [int.from_bytes(bytes((1 << i,)) * n, "little") for i in range(8)]
    result = 0
    for j in range(8):
        column = int.from_bytes(digests[j::8], "little")
        for i, mask in enumerate(masks):
            if 2 * (column & mask).bit_count() > n:
                result |= 1 << (8 * j + i)
    return f"{PREFIX}{result:016x}"


def distance(a: str, b: str) -> int:
    """Hamming distance between two fingerprints (0 = same template, ~32 = unrelated)."""
    return (int(a.removeprefix(PREFIX), 16) ^ int(b.removeprefix(PREFIX), 16)).bit_count()


def messages_text(messages: object) -> str | None:
    """The text of OpenAI/Anthropic-style ``messages`` (or a bare prompt string), else None.

    Content may be a string or a list of parts (``{"type": "text", "text": ...}``); images
    and tool calls carry no text and are skipped.
    """
    if isinstance(messages, str):
        return messages or None
    if isinstance(messages, Mapping):
        inner = messages.get("messages")
        return messages_text(inner) if inner is not None else None
    if not isinstance(messages, list):
        return None
    parts: list[str] = []
    for message in messages:
        if isinstance(message, str):
            parts.append(message)
            continue
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                part["text"]
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
    text = "\n".join(parts)
    return text or None
