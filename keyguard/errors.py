"""The KeyguardError tree; each branch maps to exactly one exit code in ``cli/_shared.py``.

Messages are one line, name the file, setting or source at fault, and say what to do.
They never contain a secret value: code that holds one wraps it in
:class:`keyguard.secret.Secret`, whose ``repr`` is redacted.
"""

from __future__ import annotations


class KeyguardError(Exception):
    """Base class: an expected failure reported as one line, never as a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        # NOTE: messages quote the values they reject, and a value in the wrong place can be
        # a pasted key (a token in a rule setting, a key where a date belongs); secret-looking
        # tokens are redacted here, once, for every message the error tree carries (issue 8).
        from keyguard.redact import scrub

        message, hint = scrub(message), scrub(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(KeyguardError):
    """Bad command-line usage or input: a missing file, a bad option value (exit 2)."""


class ConfigError(UsageError):
    """Malformed or invalid configuration (exit 2)."""


class PluginError(UsageError):
    """Unknown or broken plugin name (exit 2)."""


class SourceError(KeyguardError):
    """A store could not be read; recorded as a SourceFailure, the run goes on (exit 3)."""

    def __init__(self, source: str, scope: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.source = source
        self.scope = scope


class StateError(KeyguardError):
    """The state database is unusable (locked by another run, corrupt, wrong version)."""


class RotationStopped(KeyguardError):
    """A rotation stopped mid-plan; the journal holds the resume point (exit 4)."""
