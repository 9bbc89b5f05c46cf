"""Store writers: put a rotated value where the old one lived, and put the old one back.

One module per writable store, named like the source that lists it (``aws_ssm.py`` for
source ``aws-ssm``), so a plan's copy maps to its writer by name. Versions are the
store's public version ids; they go into the journal so a rollback can restore the exact
previous value without keyguard ever keeping a copy of it.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from keyguard.registry import Registry
from keyguard.rotation.context import RotationContext
from keyguard.rotation.plan import StoreCopy
from keyguard.secret import Secret


class StoreWriter(Protocol):
    """Read, write and restore one stored value; every method is idempotent."""

    name: ClassVar[str]

    def __init__(self, ctx: RotationContext) -> None: ...

    def read(self, copy: StoreCopy) -> tuple[Secret, str]:
        """The current value and its version id."""
        ...

    def write(self, copy: StoreCopy, value: Secret) -> str:
        """Store ``value`` as the new current version; returns its version id."""
        ...

    def restore(self, copy: StoreCopy, version: str) -> bool:
        """Make ``version``'s value current again; False when it already was."""
        ...


STORES: Registry[StoreWriter] = Registry(__name__, __path__, "keyguard.rotation_stores",
                                         "rotation store")
