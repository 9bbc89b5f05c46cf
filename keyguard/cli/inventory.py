"""``keyguard inventory``: list every key across the configured stores, or what changed."""

import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keyguard.cli._shared import (
    ExitCode,
    InspectOpt,
    OutputOpt,
    Progress,
    RegionOpt,
    SourceOpt,
    StateOpt,
    app_state,
    check_output_path,
    err,
    handle_errors,
    user_data_dir,
    write_output,
)

if TYPE_CHECKING:
    from keyguard.config import Config
    from keyguard.fingerprint import Fingerprinter
    from keyguard.model import Inventory
    from keyguard.report import Report, Reporter


class InventoryFormat(enum.StrEnum):
    """Output formats of ``keyguard inventory``."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@handle_errors
def inventory(
    ctx: typer.Context,
    source: SourceOpt = None,
    region: RegionOpt = None,
    inspect_values: InspectOpt = False,
    output_format: Annotated[
        InventoryFormat, typer.Option("--format", "-f", help="Output format.")
    ] = InventoryFormat.TABLE,
    output: OutputOpt = "-",
    diff: Annotated[
        bool, typer.Option("--diff", help="Show what appeared, disappeared or changed since the "
                                          "last snapshot instead of the full list.")
    ] = False,
    state: StateOpt = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record",
                           help="Store this run as a snapshot in the state database.")
    ] = True,
) -> None:
    """List every key in the configured stores: provider, kind, age, last use, scope.

    Values are never shown. Without --inspect-values keyguard reads metadata only; with it,
    values are read to classify them and compute a keyed fingerprint (kg1:...), which is
    how the same key is recognised in two stores. Each run is recorded as a snapshot so
    `--diff` can show what changed.

    Examples:
      keyguard inventory --source aws-ssm --region eu-west-1
      keyguard inventory --inspect-values --format json -o keys.json
      keyguard inventory --diff

    """
    from keyguard.config import state_path
    from keyguard.report import REPORTERS
    from keyguard.sources import SOURCES

    app = app_state(ctx)
    config = app.config()
    check_output_path(output)
    names = list(dict.fromkeys(source or config.default_sources))
    for name in names:
        SOURCES.load(name)  # an unknown name is exit 2 before any work starts
    reporter: Reporter = REPORTERS.load(output_format.value)()
    progress = Progress.for_terminal(app.quiet)
    fingerprinter = make_fingerprinter(quiet=app.quiet)
    result, report = run_and_record(
        config, names, fingerprinter, region or (), inspect_values,
        state_file=state_path(config, state, user_data_dir()), diff=diff, record=record,
        progress=progress,
    )
    progress.done()
    write_output(reporter.render(report), output)
    if not app.quiet:
        err(summary_line(result))
    if result.partial:
        raise typer.Exit(int(ExitCode.PARTIAL))


def make_fingerprinter(quiet: bool) -> "Fingerprinter":
    """The installation's fingerprinter (key from the keyring, else a 0600 file)."""
    from keyguard.fingerprint import Fingerprinter, load_key

    def warn(message: str) -> None:
        if not quiet:
            err(f"keyguard: warning: {message}")

    return Fingerprinter(load_key(user_data_dir(), warn))


def run_and_record(
    config: "Config",
    names: list[str],
    fingerprinter: "Fingerprinter",
    regions: tuple[str, ...] | list[str],
    inspect_values: bool,
    *,
    state_file: Path,
    diff: bool,
    record: bool,
    progress: Progress,
) -> "tuple[Inventory, Report]":
    """Run the sources, compare with and record into the state database, build a Report.

    The state database is opened before any source runs, so a bad ``--state`` is exit 2
    before work starts.
    """
    from keyguard.inventory import run_inventory
    from keyguard.report import Report
    from keyguard.sources import SOURCES, SourceContext
    from keyguard.state import StateDB
    from keyguard.state import diff as diff_snapshots

    now = datetime.now(UTC)
    with StateDB(state_file) as db:
        ctx = SourceContext(config=config, fingerprinter=fingerprinter, now=now,
                            inspect_values=inspect_values, regions=tuple(regions),
                            progress=progress)
        result = run_inventory(names, ctx, SOURCES)
        previous = db.last_snapshot()
        changes = None
        if diff:
            before = db.known_records(previous) if previous else {}
            changes = tuple(diff_snapshots(before, result, previous.sources if previous else ()))
        if record:
            db.record_snapshot(result, now)
        first_seen = db.first_seen(r.identity for r in result.keys)
    report = Report(inventory=result, now=now, first_seen=first_seen, changes=changes,
                    previous_snapshot=previous.taken_at if previous else None)
    return result, report


def summary_line(result: "Inventory") -> str:
    """One stderr line: how many keys, from which sources, and what failed."""
    text = f"keyguard: {len(result.keys)} keys from {len(result.sources)} source(s)"
    if result.failures:
        failed = sorted({f.source for f in result.failures})
        text += (f"; {len(result.failures)} part(s) could not be read ({', '.join(failed)}): "
                 "partial result, exit 3")
    return text

