"""Shape-preserving rewrite of a stored value: swap one credential, keep everything else.

A secret may be a bare key, a JSON document (``{"aws_access_key_id": ..., "region": ...}``)
or ``NAME=value`` text. Consumers parse that shape, so a rotation must change only the
credential's characters: the key id and the secret are replaced in place in the text,
which keeps field order, spacing and every other field byte for byte. When the text form
cannot be matched exactly (an escaped slash in JSON), the JSON is re-serialised with the
same indentation instead. Every result is read back to prove the new secret sits in the
same field. Values only ever travel inside :class:`~keyguard.secret.Secret`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from keyguard.classify import parse_env_line
from keyguard.errors import KeyguardError
from keyguard.secret import Secret

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class ValueShapeError(KeyguardError):
    """The stored value no longer has the field the plan expects (message names no value)."""


def extract(value: Secret, field: str | None) -> Secret | None:
    """The credential at ``field`` (JSON path or variable name); the whole value if None."""
    text = value.reveal()
    if field is None:
        stripped = text.strip()
        return Secret(stripped) if stripped else None
    if text.lstrip()[:1] == "{":
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            leaf = _get(doc, field)
            return Secret(leaf) if isinstance(leaf, str) else None
    for raw in re.split(r"\r\n|\r|\n", text):
        parsed = parse_env_line(raw)
        if parsed is not None and parsed[0] == field:
            return Secret(parsed[1])
    return None


def rewrite(value: Secret, field: str | None, old_id: str | None, new_id: str | None,
            new_secret: Secret) -> Secret:
    """Replace the secret at ``field`` (and every occurrence of ``old_id``) with the new ones.

    Raises:
        ValueShapeError: the field is missing, or the rewrite could not be proven.

    """
    old = extract(value, field)
    if old is None:
        raise ValueShapeError(f"field {field or '(whole value)'} is not in the stored value",
                              "the value changed since planning; plan again")
    text = value.reveal()
    old_text, new_text = old.reveal(), new_secret.reveal()
    out = text.replace(old_text, new_text) if old_text else text
    if old_id and new_id:
        out = out.replace(old_id, new_id)
    result = Secret(out)
    if _proves(result, field, new_secret):
        return result
    if text.lstrip()[:1] == "{":
        doc = json.loads(text)
        _set(doc, field or "", new_text)
        if old_id and new_id:
            doc = _swap(doc, old_id, new_id)
        indent = _indent(text)
        dumped = json.dumps(doc, indent=indent, ensure_ascii=False)
        if text.endswith("\n"):
            dumped += "\n"
        result = Secret(dumped)
        if _proves(result, field, new_secret):
            return result
    raise ValueShapeError(f"could not rewrite field {field or '(whole value)'} in place",
                          "update this copy by hand, or plan again")


def holds(value: Secret, field: str | None, secret: Secret) -> bool:
    """Whether ``field`` of ``value`` holds exactly ``secret``."""
    return _proves(value, field, secret)


def _proves(value: Secret, field: str | None, secret: Secret) -> bool:
    got = extract(value, field)
    return got is not None and got.reveal() == secret.reveal().strip()


def _parts(path: str) -> list[str | int]:
    return [int(idx) if idx else name for name, idx in _PATH_PART.findall(path)]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _parts(path):
        if not _has(node, part):
            return None
        node = node[part]
    return node


def _has(node: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(node, list) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node


def _set(doc: Any, path: str, new: str) -> None:
    parts = _parts(path)
    parent = _get(doc, _join(parts[:-1])) if len(parts) > 1 else doc
    last = parts[-1] if parts else None
    if last is not None and _has(parent, last):
        parent[last] = new
        return
    raise ValueShapeError(f"field {path} is not in the stored value", "plan again")


def _join(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _swap(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: _swap(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap(v, old, new) for v in node]
    return new if node == old else node


def _indent(text: str) -> int | None:
    found = re.search(r"\n( +)\S", text)
    return len(found.group(1)) if found else None
