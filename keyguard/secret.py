"""A wrapper that keeps secret values out of reprs, logs, tracebacks and exceptions."""

from __future__ import annotations


class Secret:
    """A secret value that refuses to be printed.

    ``str()``, ``repr()`` and f-strings give ``Secret(***)``, so a value that reaches a log
    line, an exception message or a traceback's locals by accident leaks nothing. Only
    :mod:`keyguard.fingerprint` and :mod:`keyguard.classify` call :meth:`reveal`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the plaintext; callers must not store, log or print it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "Secret(***)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)
