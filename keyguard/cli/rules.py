"""``keyguard rules`` and ``keyguard rules show ID``: the rule catalogue, explained."""

import enum
import json
from typing import Annotated

import typer

from keyguard.cli._shared import (
    OutputOpt,
    app_state,
    check_output_path,
    handle_errors,
    write_output,
)


class RulesFormat(enum.StrEnum):
    """Output formats of ``keyguard rules``."""

    TABLE = "table"
    JSON = "json"


def _rule_ids(incomplete: str) -> list[str]:
    from keyguard.policies import POLICIES

    return [n for n in POLICIES.names() if n.startswith(incomplete)]


@handle_errors
def rules(
    ctx: typer.Context,
    rule_id: Annotated[
        str | None,
        typer.Argument(metavar="[show] [ID]", autocompletion=_rule_ids,
                       help="A rule id to explain (`keyguard rules show ID` works too)."),
    ] = None,
    rule_id2: Annotated[str | None, typer.Argument(hidden=True, autocompletion=_rule_ids)] = None,
    output_format: Annotated[
        RulesFormat, typer.Option("--format", "-f", help="Output format.")
    ] = RulesFormat.TABLE,
    output: OutputOpt = "-",
) -> None:
    """List the policy rules, or explain one: risk, remediation, settings and their defaults.

    Examples:
      keyguard rules
      keyguard rules show rotation-max-age
      keyguard rules --format json

    """
    app_state(ctx).config()  # a config typo is exit 2 for every command
    from keyguard.engine import catalogue
    from keyguard.errors import UsageError

    check_output_path(output)
    wanted = rule_id2 if rule_id == "show" else rule_id
    if rule_id == "show" and rule_id2 is None:
        raise UsageError("keyguard rules show needs a rule id", "`keyguard rules` lists them")
    cat = catalogue()
    metas = {rid: meta for rid, (_cls, meta) in cat.items()}
    if wanted is not None and wanted not in metas:
        raise UsageError(f"unknown rule {wanted!r}", "`keyguard rules` lists the rule ids")
    chosen = [metas[wanted]] if wanted else [metas[r] for r in sorted(metas)]
    if output_format is RulesFormat.JSON:
        doc = [{"id": m.id, "title": m.title, "category": m.category,
                "severity": m.severity.label, "risk": m.risk,
                "remediation": {"summary": m.remediation.summary, "cli": m.remediation.cli,
                                "console": m.remediation.console},
                "settings": dict(m.settings), "references": list(m.references)} for m in chosen]
        write_output(json.dumps(doc, indent=2, default=str) + "\n", output)
        return
    if wanted is None:
        from tabulate import tabulate

        rows = [(m.id, m.category, m.severity.label, m.title) for m in chosen]
        write_output(tabulate(rows, headers=("RULE", "CATEGORY", "SEVERITY", "CHECKS")) + "\n"
                     "\n`keyguard rules show ID` explains one rule.\n", output)
        return
    m = chosen[0]
    lines = [f"{m.id}: {m.title}", f"category {m.category}, default severity {m.severity.label}",
             "", "Risk:", *_indent(m.risk), "", "Remediation:", *_indent(m.remediation.summary)]
    if m.remediation.cli:
        lines += ["", "  CLI:", *_indent(m.remediation.cli, 4)]
    if m.remediation.console:
        lines += ["", "  Console:", *_indent(m.remediation.console, 4)]
    lines += ["", "Settings ([policy.rules." + m.id + "] in keyguard.toml):"]
    lines += [f"  {k} = {json.dumps(v, default=str)}" for k, v in m.settings.items()] or ["  (none)"]
    lines += ["  enabled = true", f'  severity = "{m.severity.label}"',
              "  match = { provider = \"...\", environment = \"...\", tags = { team = \"...\" } }",
              "  [[policy.rules." + m.id + ".overrides]] match = {...} plus any setting above"]
    if m.references:
        lines += ["", "References:", *(f"  {r}" for r in m.references)]
    write_output("\n".join(lines) + "\n", output)


def _indent(text: str, width: int = 2) -> list[str]:
    return [" " * width + line for line in text.splitlines()]
