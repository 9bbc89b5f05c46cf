"""``keyguard usage scan``: usage exports -> event store -> detectors -> alerts -> exit code.

Heavy modules (duckdb, the importers, the detectors) load inside the command, so
``keyguard --help`` and completion never import them.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keyguard.cli._shared import (
    ExitCode,
    OutputOpt,
    Progress,
    app_state,
    check_output_path,
    command_help,
    err,
    handle_errors,
    user_data_dir,
    write_output,
)
from keyguard.cli.check import FailOn
from keyguard.errors import UsageError

if TYPE_CHECKING:
    from keyguard.model import Alert
    from keyguard.usage.reader import ImportStats
    from keyguard.usage.store import AddResult, Window

#: Version of the JSON report; bump on any incompatible change of its shape.
SCHEMA_VERSION = 1

usage_app = typer.Typer(
    help="Detect stolen or abused keys in provider usage exports (CloudTrail, LiteLLM, "
         "Anthropic and OpenAI usage reports, generic CSV/JSONL).",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


class UsageFormat(enum.StrEnum):
    """Output formats of ``keyguard usage scan``."""

    TABLE = "table"
    JSON = "json"


def _importer_names(incomplete: str) -> list[str]:
    from keyguard.usage.importers import IMPORTERS

    return [n for n in IMPORTERS.names() if n.startswith(incomplete)]


@handle_errors
def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH...", help="Export files, directories (walked) or globs; "
                                               "gzip is read transparently."),
    ],
    input_format: Annotated[
        str | None,
        typer.Option("--input-format", metavar="FORMAT", autocompletion=_importer_names,
                     help="Force the export format instead of detecting it per file "
                          "(`keyguard plugins` lists the importers)."),
    ] = None,
    output_format: Annotated[
        UsageFormat, typer.Option("--format", "-f", help="Output format.")
    ] = UsageFormat.TABLE,
    output: OutputOpt = "-",
    canary: Annotated[
        list[str] | None,
        typer.Option("--canary", metavar="KEY",
                     help="A key that must never be used: key id, access key id, key hash, "
                          "alias or principal ARN (repeatable). Any use is a critical alert."),
    ] = None,
    allow_country: Annotated[
        list[str] | None,
        typer.Option("--allow-country", metavar="CC",
                     help="ISO country code where use is sanctioned (repeatable); use from "
                          "any other country alerts."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME",
                     help="Import only events at or after TIME (ISO 8601, UTC if no offset) "
                          "and judge every stored event from TIME on, even if judged before."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", metavar="PATH",
                     help="Directory of the usage store usage.duckdb, or a .duckdb file. "
                          "Default: beside the state database ($XDG_DATA_HOME/keyguard)."),
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when an alert at or above this "
                                               "severity is raised.")
    ] = FailOn.HIGH,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop with exit 3 before detection when any row "
                                            "or file cannot be parsed; nothing is stored.")
    ] = False,
) -> None:
    """Import usage exports into the local store and alert on anomalous use of keys.

    Each run adds only new events to the store (duplicate request ids are dropped and each
    file's watermark skips what an earlier run read), then judges the new events (or all
    events from --since) against each key's own earlier history. Detectors: canary (any
    use of a --canary key: critical) and geography (first use from a new country after a
    key's 7-day learning period, country-level impossible travel within 1 hour, use from
    outside --allow-country: high).

    Unparseable rows are counted and sampled in the report and the scan goes on; the run
    then exits 3 (unless an alert already makes it exit 1). With --strict the first
    check after import stops the run with exit 3 and the store is left unchanged.

    Examples:
      keyguard usage scan AWSLogs/ --canary AKIAEXAMPLECANARY01
      keyguard usage scan spend-logs/*.jsonl.gz --allow-country US --allow-country DE
      keyguard usage scan export.json --format json -o usage.json --fail-on critical

    """
    from keyguard.config import state_path
    from keyguard.policies import SEVERITIES
    from keyguard.usage.detectors import DETECTORS
    from keyguard.usage.reader import ImportStats, UsageReader
    from keyguard.usage.settings import load_settings
    from keyguard.usage.store import UsageStore, Window, store_file

    app = app_state(ctx)
    config = app.config()
    check_output_path(output)
    since_at = _parse_since(since)
    countries = tuple(sorted({_country(c) for c in allow_country or ()}))
    canaries = tuple(dict.fromkeys(c.strip() for c in canary or () if c.strip()))
    settings = load_settings(config.usage, str(config.path or "config"), canaries=canaries,
                             allow_countries=countries)
    reader = UsageReader(config.usage, input_format)  # PluginError (exit 2) if unknown
    reader.expand(paths)  # missing paths are exit 2 before any work
    path = store_file(state) if state is not None else (
        state_path(config, None, user_data_dir()).parent / "usage.duckdb")
    stats = ImportStats(max_samples=config.usage.max_error_samples)
    progress = Progress.for_terminal(app.quiet)
    progress("usage", "importing")
    now = datetime.now(UTC)
    with UsageStore(path) as store:
        added = store.add(reader.events(paths, stats), since=since_at)
        progress.done()
        if strict and stats.errors:
            for sample in stats.error_samples:
                err(f"keyguard: {sample}")
            err(f"keyguard: error: {stats.errors} row(s) or file(s) could not be parsed; "
                "--strict stops before detection and stores nothing")
            raise typer.Exit(int(ExitCode.PARTIAL))
        new = store.run_range(added.run)
        window: Window | None = new
        if since_at is not None:
            window = Window(since_at, max(now, new.end if new else since_at))
        alerts: list[Alert] = []
        if window is not None:
            for name in DETECTORS.names():
                if name in settings.disabled:
                    continue
                alerts.extend(DETECTORS.load(name)().evaluate(store, window, now, settings))
        alerts.sort(key=lambda a: (-a.severity, a.subject, a.first_seen or now, a.rule_id))
        if output_format is UsageFormat.JSON:
            text = render_json(alerts, stats, added, window)
        else:
            text = render_table(alerts)
        write_output(text, output)
        store.commit()  # only now: events count as seen once their alerts were reported
    threshold = SEVERITIES[fail_on.value]
    failing = sum(1 for a in alerts if a.severity >= threshold)
    if not app.quiet:
        err(_summary(alerts, stats, added, failing, threshold.label))
    if failing:
        raise typer.Exit(int(ExitCode.FINDINGS))
    if stats.errors:
        raise typer.Exit(int(ExitCode.PARTIAL))


def _parse_since(value: str | None) -> datetime | None:
    from keyguard.serialize import parse_iso

    if value is None:
        return None
    try:
        parsed = parse_iso(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise UsageError(f"--since {value!r}: not an ISO 8601 date or time",
                         "e.g. 2026-03-01 or 2026-03-01T12:00Z")
    return parsed.astimezone(UTC)


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or not code.isalpha():
        raise UsageError(f"--allow-country {value!r}: not an ISO 3166 two-letter code",
                         "e.g. US, DE")
    return code


def _iso(value: datetime | None) -> str | None:
    from keyguard.serialize import iso

    return iso(value)


def alert_dict(alert: Alert) -> dict[str, Any]:
    """One alert as the JSON contract describes it."""
    return {
        "key": alert.subject,
        "key_alias": alert.key_alias,
        "type": alert.rule_id,
        "severity": alert.severity.label,
        "start": _iso(alert.first_seen),
        "end": _iso(alert.last_seen),
        "summary": alert.message,
        "evidence": dict(alert.evidence),
    }


def render_json(alerts: list[Alert], stats: ImportStats, added: AddResult,
                window: Window | None) -> str:
    """The ``--format json`` report (schema_version 1)."""
    report = {
        "schema_version": SCHEMA_VERSION,
        "alerts": [alert_dict(a) for a in alerts],
        "stats": {
            "files": stats.files,
            "records": stats.records,
            "events": stats.events,
            "new_events": added.inserted,
            "duplicates": stats.duplicates + added.duplicates,
            "already_imported": added.below_watermark,
            "before_since": added.before_since,
            "errors": stats.errors,
            "error_samples": list(stats.error_samples),
            "by_format": dict(sorted(stats.events_per_format.items())),
            "alerts_by_type": dict(sorted(Counter(a.rule_id for a in alerts).items())),
            "window": None if window is None else {"start": _iso(window.start),
                                                   "end": _iso(window.end)},
        },
        "errors": list(stats.error_samples),
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_table(alerts: list[Alert]) -> str:
    """Alerts grouped by key, most severe key first."""
    from tabulate import tabulate

    if not alerts:
        return "No alerts.\n"
    by_key: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_key.setdefault(alert.subject, []).append(alert)
    parts = []
    for key, group in by_key.items():
        alias = next((a.key_alias for a in group if a.key_alias), None)
        rows = [[a.severity.label, a.rule_id, _iso(a.first_seen), _iso(a.last_seen), a.message]
                for a in group]
        parts.append(f"KEY {key}" + (f" ({alias})" if alias else "") + "\n" + tabulate(
            rows, headers=["SEVERITY", "TYPE", "START", "END", "SUMMARY"], tablefmt="simple"))
    return "\n\n".join(parts) + "\n"


def _summary(alerts: list[Alert], stats: ImportStats, added: AddResult, failing: int,
             threshold: str) -> str:
    """One stderr line: what was read, what was new, what was found, and the gate's verdict."""
    parts = [f"keyguard: {stats.events} event(s) from {stats.files} file(s), "
             f"{added.inserted} new", f"{len(alerts)} alert(s)"]
    if stats.errors:
        parts.append(f"{stats.errors} row(s) or file(s) could not be parsed")
    verdict = f"FAIL, {failing} at or above it" if failing else "pass"
    parts.append(f"gate ({threshold} and above): {verdict}")
    return "; ".join(parts)


usage_app.command("scan", help=command_help(scan))(scan)
