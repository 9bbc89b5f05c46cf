"""Random fake keys shaped like real formats, for the demo, tests and benchmarks.

Fakes are random strings that only *look* like credentials (no valid checksums, no
real account); every one is built from a row of :data:`keyguard.classify.FORMATS`, so a
format added to the table gets a fake for free.
"""

from __future__ import annotations

import random

from keyguard.classify import FORMATS, format_by_kind

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def fake_key(kind: str, rng: random.Random) -> str:
    """A random token of the given kind (``KeyError`` for a kind not in the table)."""
    fmt = format_by_kind(kind)
    if fmt is None:
        raise KeyError(kind)
    parts: list[str] = []
    for part in fmt.shape:
        if isinstance(part, str):
            parts.append(part)
        else:
            alphabet, length = part
            parts.append("".join(rng.choice(alphabet) for _ in range(length)))
    return "".join(parts)


def fake_aws_pair(rng: random.Random) -> tuple[str, str]:
    """A fake (access key id, secret access key) pair."""
    return fake_key("aws-access-key", rng), fake_key("aws-secret-key", rng)


def fake_kinds() -> list[str]:
    """Every kind a fake can be built for."""
    return [f.kind for f in FORMATS]
