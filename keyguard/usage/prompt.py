"""Prompt fingerprints: a 64-bit SimHash of normalised prompt text, so prompts are never stored.

Why a SimHash and not a plain hash: the prompt-mix detector (next increment) asks "does
this key suddenly send a different *kind* of prompt?". Requests built from one template
differ in names, numbers and ids; after normalisation (lowercase, digit runs -> ``0``, long
hex/base64-ish tokens -> ``#``) they share most word n-grams, so their SimHashes differ in
few bits (compare with :func:`distance`), while unrelated prompts differ in about 32.

Privacy: 64 bits of a locality-sensitive hash cannot give the text back, but short,
guessable prompts could be confirmed by hashing candidates; treat fingerprints as internal
data, not as public identifiers. Only the first ``MAX_CHARS`` characters are hashed, so the
cost per request is bounded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

#: Version tag: bump it if normalisation or hashing changes (stored fingerprints differ).
PREFIX = "sh1:"
MAX_CHARS = 20_000

_TOKEN = re.compile(r"\w+", re.UNICODE)
_HEXISH = re.compile(r"\b(?=\w*\d)[0-9a-z_-]{16,}\b")
_DIGITS = re.compile(r"\d+")


def normalise(text: str) -> list[str]:
    """Word tokens of a prompt with its variable parts (numbers, ids) replaced."""
    lowered = text[:MAX_CHARS].lower()
    lowered = _HEXISH.sub("#", lowered)
    lowered = _DIGITS.sub("0", lowered)
    return _TOKEN.findall(lowered) or (["#"] if "#" in lowered else [])


def fingerprint(text: str) -> str:
    """``sh1:<16 hex>``: SimHash over word 1-, 2- and 3-grams of the normalised text.

    Mixing n-gram sizes keeps one changed word from flipping many bits (trigrams alone are
    noisy on short prompts) while word order still counts.
    """
    tokens = normalise(text)
    shingles = [
        " ".join(tokens[i : i + n]) for n in (1, 2, 3) for i in range(max(1, len(tokens) - n + 1))
    ]
    weights = [0] * 64
    for shingle in shingles:
        value = int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if value >> bit & 1 else -1
    result = sum(1 << bit for bit in range(64) if weights[bit] > 0)
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
