"""Plugin registry: every public module of a package is a plugin; other packages add entry points.

Names come from module names (``aws_ssm.py`` becomes ``aws-ssm``) without importing the
module, so listing plugins for ``--help`` and completion stays instant; only :meth:`load`
imports a plugin (and whatever heavy library it needs).
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterable
from functools import cache
from typing import Generic, TypeVar, cast

from keyguard.errors import PluginError

T = TypeVar("T")

#: Optional dependency (top-level module) -> the keyguard extra that installs it.
_EXTRAS = {"hvac": "vault", "google": "gcp", "azure": "azure", "moto": "demo", "freezegun": "demo"}


class Registry(Generic[T]):
    """Plugins of one kind (sources, reporters...), found by module name or entry point."""

    def __init__(self, package: str, path: Iterable[str], group: str, noun: str) -> None:
        self._package = package
        self._path = list(path)
        self.group = group
        self.noun = noun

    def names(self) -> list[str]:
        """All plugin names, sorted; imports no plugin module."""
        return sorted(self._targets())

    def builtin(self, name: str) -> bool:
        """True when ``name`` ships with keyguard rather than coming from an entry point."""
        return self._targets().get(name, "").startswith(f"{self._package}.")

    def target(self, name: str) -> str:
        """The ``module:attr`` a name resolves to (for ``keyguard plugins``)."""
        return self._targets()[name]

    def load(self, name: str) -> type[T]:
        """Import and return the plugin class registered as ``name``.

        Raises:
            PluginError: the name is unknown (the message lists the valid names).

        """
        target = self._targets().get(name)
        if target is None:
            raise PluginError(
                f"unknown {self.noun} {name!r}", f"choose from: {', '.join(self.names())}"
            )
        from importlib.metadata import EntryPoint

        try:
            return cast("type[T]", EntryPoint(name, target, self.group).load())
        except (ImportError, AttributeError) as exc:
            # NOTE: a missing optional dependency (keyguard[gcp]) lands here; name it.
            missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
            extra = _EXTRAS.get((missing or "").split(".")[0])
            raise PluginError(
                f"{self.noun} {name!r} cannot be loaded from {target}"
                + (f": module {missing!r} is not installed" if missing else f": {exc}"),
                f"install it with: pip install 'keyguard[{extra}]'" if extra
                else "install the package that provides it, or choose another",
            ) from None

    def _targets(self) -> dict[str, str]:
        return _targets(self._package, tuple(self._path), self.group)


@cache
def _targets(package: str, path: tuple[str, ...], group: str) -> dict[str, str]:
    from importlib.metadata import entry_points

    found = {
        m.name.replace("_", "-"): f"{package}.{m.name}:PLUGIN"
        for m in pkgutil.iter_modules(list(path))
        if not m.name.startswith("_")
    }
    for ep in entry_points(group=group):
        if ep.name in found:
            raise PluginError(f"{ep.value} may not replace built-in {group} {ep.name!r}")
        found[ep.name] = ep.value
    return found
