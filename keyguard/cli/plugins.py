"""``keyguard plugins``: every registered plugin and where it comes from."""

import enum
import json
from typing import Annotated, Any

import typer

from keyguard.cli._shared import (
    OutputOpt,
    app_state,
    check_output_path,
    handle_errors,
    write_output,
)
from keyguard.registry import Registry


class PluginsFormat(enum.StrEnum):
    """Output formats of ``keyguard plugins``."""

    TABLE = "table"
    JSON = "json"


def _registries() -> dict[str, Registry[Any]]:
    from keyguard.policies import POLICIES
    from keyguard.report import REPORTERS
    from keyguard.rotation.rotators import ROTATORS
    from keyguard.rotation.stores import STORES
    from keyguard.sources import SOURCES
    from keyguard.usage.detectors import DETECTORS
    from keyguard.usage.importers import IMPORTERS

    return {"source": SOURCES, "rule": POLICIES, "format": REPORTERS, "importer": IMPORTERS,
            "detector": DETECTORS, "rotator": ROTATORS, "rotation-store": STORES}


@handle_errors
def plugins(
    ctx: typer.Context,
    output_format: Annotated[
        PluginsFormat, typer.Option("--format", "-f", help="Output format.")
    ] = PluginsFormat.TABLE,
    output: OutputOpt = "-",
) -> None:
    """List sources, rules, output formats and usage importers, built-in or from other packages.

    Third-party packages add plugins through the entry-point groups keyguard.sources,
    keyguard.policies, keyguard.reporters, keyguard.importers, keyguard.detectors,
    keyguard.rotators and keyguard.rotation_stores; nothing is imported to list them.
    """
    app_state(ctx).config()  # a config typo is exit 2 for every command
    check_output_path(output)
    rows = [
        {"type": kind, "name": name, "builtin": reg.builtin(name), "target": reg.target(name)}
        for kind, reg in _registries().items()
        for name in reg.names()
    ]
    if output_format is PluginsFormat.JSON:
        text = json.dumps({"plugins": rows}, indent=2) + "\n"
    else:
        from tabulate import tabulate

        text = tabulate(
            [(r["type"], r["name"], "built-in" if r["builtin"] else "entry point", r["target"])
             for r in rows],
            headers=("TYPE", "NAME", "ORIGIN", "TARGET"),
        ) + "\n"
    write_output(text, output)
