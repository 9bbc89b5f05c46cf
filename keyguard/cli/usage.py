"""``keyguard usage scan``: usage exports -> event store -> detectors -> alerts -> exit code.

Heavy modules (duckdb, the importers, the detectors) load inside the command, so
``keyguard --help`` and completion never import them.
"""

import enum
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, assert_never

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
    from keyguard.config import Config
    from keyguard.model import Alert, Severity
    from keyguard.usage.notify import Delivery
    from keyguard.usage.reader import ImportStats
    from keyguard.usage.render import ReportedAlert, SuppressedAlert, UsageReport
    from keyguard.usage.sparkline import Volume
    from keyguard.usage.store import AddResult, UsageStore, Window
    from keyguard.usage.suppress import Suppression, TagLookup

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
    SARIF = "sarif"
    CSV = "csv"


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
    min_severity: Annotated[
        FailOn, typer.Option("--min-severity", help="Show (and notify) only alerts at or above "
                                                    "this severity; the rest are counted in "
                                                    "stats.below_min_severity.")
    ] = FailOn.INFO,
    notify: Annotated[
        str | None,
        typer.Option("--notify", metavar="URL",
                     help="Post new alerts to a Slack-compatible or JSON webhook: an http(s) "
                          "URL, keyring:NAME (`keyguard auth set NAME`) or env:VAR. Each alert "
                          "is sent once; failed posts are retried by the next run (exit 3)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop with exit 3 before detection when any row "
                                            "or file cannot be parsed; nothing is stored.")
    ] = False,
) -> None:
    """Import usage exports into the local store and alert on anomalous use of keys.

    Each run adds only new events to the store (duplicate request ids are dropped and each
    file's watermark skips what an earlier run read), then judges the new events (or all
    events from --since) against each key's own earlier history.

    Detectors (tune or switch each off in [usage.detectors.<id>]):
      canary        any use of a --canary key id, alias or principal (critical)
      geography     new country after learning, impossible travel, --allow-country
      velocity      request/token spikes, plateaus and ramps above the key's baseline
      prompt-mix    prompts shift to templated or extraction-style phrasing
      coordination  several keys used in concert (shared IPs, agents, templates)

    Accepted alerts go in [[usage.suppressions]] (type, key/alias/tag, owner, reason,
    expires); they are counted, not shown, and an expired one is reported. The table
    groups alerts by key with a sparkline of its hourly volume around the alert; json,
    sarif and csv are for machines (stable alert ids, schemas/usage.schema.json).

    Unparseable rows are counted and sampled in the report and the scan goes on; the run
    then exits 3 (unless an alert already makes it exit 1), as does a failed --notify
    post. With --strict the first check after import stops the run with exit 3 and the
    store is left unchanged.

    Examples:
      keyguard usage scan AWSLogs/ --canary AKIAEXAMPLECANARY01
      keyguard usage scan spend-logs/*.jsonl.gz --allow-country US --allow-country DE
      keyguard usage scan export.json --format json -o usage.json --fail-on critical
      keyguard usage scan spend.jsonl --min-severity high --notify keyring:slack-alerts
      keyguard usage scan spend.jsonl --since 2026-03-01 --format sarif -o usage.sarif

    """
    from keyguard.config import state_path
    from keyguard.policies import SEVERITIES
    from keyguard.redact import scrub
    from keyguard.usage.detectors import DETECTORS
    from keyguard.usage.notify import parse_webhook
    from keyguard.usage.reader import ImportStats, UsageReader, clean_key_id
    from keyguard.usage.render import UsageReport
    from keyguard.usage.settings import load_settings
    from keyguard.usage.store import UsageStore, Window, store_file
    from keyguard.usage.suppress import load_suppressions

    app = app_state(ctx)
    config = app.config()
    where = str(config.path or "config")
    check_output_path(output)
    since_at = _parse_since(since)
    countries = tuple(sorted({_country(c) for c in allow_country or ()}))
    recorded, tags = _from_state(config)
    # a raw key given as --canary is matched by its SHA-256, as the store keeps raw key ids
    canaries = tuple(dict.fromkeys([*(clean_key_id(c.strip()) for c in canary or () if c.strip()),
                                    *recorded]))
    settings = load_settings(config.usage, where, canaries=canaries,
                             allow_countries=countries, key_tags=tags)
    suppressions = load_suppressions(config.usage.suppressions, where, DETECTORS.names())
    hook = parse_webhook(notify) if notify is not None else None  # exit 2 before any work
    reader = UsageReader(config.usage, input_format)  # PluginError (exit 2) if unknown
    reader.expand(paths)  # missing paths are exit 2 before any work
    path = store_file(state) if state is not None else (
        state_path(config, None, user_data_dir()).parent / "usage.duckdb")
    stats = ImportStats(max_samples=config.usage.max_error_samples)
    progress = Progress.for_terminal(app.quiet)
    progress("usage", "importing")
    now = datetime.now(UTC)
    threshold = SEVERITIES[fail_on.value]
    detectors = [n for n in DETECTORS.names() if n not in settings.disabled]
    with UsageStore(path) as store:
        added = store.add(reader.items(paths, stats), since=since_at)
        progress.done()
        if strict and stats.errors:
            for sample in stats.error_samples:
                err(f"keyguard: {scrub(sample)}")
            err(f"keyguard: error: {stats.errors} row(s) or file(s) could not be parsed; "
                "--strict stops before detection and stores nothing")
            raise typer.Exit(int(ExitCode.PARTIAL))
        new = store.run_range(added.run)
        window: Window | None = new
        if since_at is not None:
            window = Window(since_at, max(now, new.end if new else since_at))
        raised: list[Alert] = []
        if window is not None:
            for name in detectors:
                progress("usage", f"detector {name}")
                raised.extend(DETECTORS.load(name)().evaluate(store, window, now, settings))
            progress.done()
        outcome = _triage(raised, suppressions, SEVERITIES[min_severity.value], now,
                          settings.tags_of)
        delivery = None
        if hook is not None:
            from keyguard.usage.notify import deliver
            from keyguard.usage.render import alert_dict

            delivery = deliver(store, hook, [alert_dict(r) for r in outcome.shown], now)
        report = UsageReport(
            alerts=outcome.shown, now=now, fail_on=threshold, suppressed=outcome.suppressed,
            stats=_stats(stats, added, window, outcome, detectors, min_severity.value,
                         delivery),
            errors=tuple(scrub(e) for e in stats.error_samples),
            volumes=_volumes(store, outcome) if output_format is UsageFormat.TABLE else {},
            detectors=_detector_docs(detectors) if output_format is UsageFormat.SARIF else {},
        )
        write_output(render(report, output_format, _unicode_ok(output)), output)
        store.commit()  # only now: events count as seen once their alerts were reported
    for expired in outcome.expired:
        err(f"keyguard: warning: usage.suppressions[{expired.index}] ({expired.describe()}, "
            f"owner {expired.acceptance.owner}) expired on "
            f"{expired.acceptance.expires.isoformat()} and no longer suppresses; renew or "
            "remove it")
    if delivery is not None and delivery.error is not None:
        err(f"keyguard: warning: could not notify {delivery.error}; {delivery.pending} "
            "alert(s) stay queued and are retried by the next run")
    failing = sum(1 for r in outcome.shown if r.alert.severity >= threshold)
    if not app.quiet:
        err(_summary(outcome, stats, added, failing, threshold.label, delivery))
    if failing:
        raise typer.Exit(int(ExitCode.FINDINGS))
    if stats.errors or (delivery is not None and delivery.error is not None):
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


@dataclass(frozen=True, slots=True)
class _Outcome:
    """Raised alerts split into shown, suppressed and below --min-severity."""

    raised: int
    shown: "tuple[ReportedAlert, ...]"
    suppressed: "tuple[SuppressedAlert, ...]"
    below: int
    expired: "tuple[Suppression, ...]"
    raw: dict[str, str]  # shown key (scrubbed) -> key id as stored, for store lookups


def _triage(raised: "list[Alert]", suppressions: "tuple[Suppression, ...]", minimum: "Severity",
            now: datetime, tags_of: "TagLookup") -> _Outcome:
    """Suppressions first (an explicit decision), then --min-severity; ids before scrubbing."""
    from keyguard.redact import scrub_alert
    from keyguard.usage.alerts import alert_id, at_least, sort_key
    from keyguard.usage.render import ReportedAlert, SuppressedAlert
    from keyguard.usage.suppress import apply

    ordered = sorted(raised, key=sort_key)
    triage = apply(ordered, suppressions, now, tags_of)
    cut = at_least(triage.remaining, minimum)
    shown = tuple(ReportedAlert(alert_id(a), scrub_alert(a)) for a in cut.shown)
    suppressed = tuple(
        SuppressedAlert(alert_id(a), scrub_alert(a), s.index, s.acceptance.owner,
                        s.acceptance.reason, s.acceptance.expires.isoformat())
        for a, s in triage.suppressed)
    raw = {r.alert.subject: a.subject for r, a in zip(shown, cut.shown, strict=True)}
    return _Outcome(len(raised), shown, suppressed, cut.below, triage.expired, raw)


def _volumes(store: "UsageStore", outcome: _Outcome) -> "dict[str, Volume]":
    """Hourly volume around each shown key's alerts (one small query per key)."""
    from keyguard.usage.sparkline import hourly_volume

    spans: dict[str, list[tuple[datetime | None, datetime | None]]] = {}
    for r in outcome.shown:
        spans.setdefault(r.alert.subject, []).append((r.alert.first_seen, r.alert.last_seen))
    out = {}
    for key, key_spans in spans.items():
        volume = hourly_volume(store, outcome.raw[key], key_spans)
        if volume is not None:
            out[key] = volume
    return out


def _detector_docs(names: list[str]) -> dict[str, str]:
    """Each detector's module docstring: method, parameters and defaults (SARIF rule help)."""
    import inspect
    import sys

    from keyguard.usage.detectors import DETECTORS

    docs = {}
    for name in names:
        module = sys.modules.get(DETECTORS.load(name).__module__)
        docs[name] = (inspect.getdoc(module) if module is not None else None) or ""
    return docs


def _from_state(config: "Config") -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """Recorded canaries and inventory tags, from one read of the state database.

    Canaries (``keyguard canary create|register``) alert without ``--canary``; tags (by key
    id and by name, from the latest snapshot) feed tag scopes and tag suppressions.
    Read-only: no state database means neither; an unreadable one is a warning, and the
    scan still runs with what the command line gives.
    """
    from keyguard.canary.store import canary_identifiers
    from keyguard.config import state_path
    from keyguard.errors import StateError

    path = state_path(config, None, user_data_dir())
    if not path.is_file():
        return (), {}
    from keyguard.state import StateDB

    try:
        with StateDB(path) as db:
            canaries = canary_identifiers(db)
            snapshot = db.last_snapshot()
            # a partial snapshot's unread keys keep their tags from the last clean read
            records = db.known_records(snapshot) if snapshot is not None else {}
    except StateError as exc:
        err(f"keyguard: warning: state database unavailable (canaries, tags): {exc}")
        return (), {}
    tags: dict[str, dict[str, str]] = {}
    for record in sorted(records.values(), key=lambda r: r.identity):
        if not record.tags:
            continue
        for name in (record.key_id, record.name):
            if name:
                merged = tags.setdefault(name, {})
                for tag, value in record.tags.items():
                    merged.setdefault(tag, value)
    return canaries, tags


def _unicode_ok(output: str) -> bool:
    """Whether the table may use block characters: files are UTF-8; stdout must encode them."""
    from keyguard.usage.sparkline import UNICODE_LEVELS

    if output != "-":
        return True
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(UNICODE_LEVELS).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def alert_dict(alert: "Alert") -> dict[str, Any]:
    """One alert as the JSON contract describes it (stable ``id``, secret-looking text scrubbed).

    Kept here for other commands' JSON reports (``keyguard canary check``).
    """
    from keyguard.redact import scrub_alert
    from keyguard.usage.alerts import alert_id
    from keyguard.usage.render import ReportedAlert
    from keyguard.usage.render import alert_dict as contract

    return contract(ReportedAlert(alert_id(alert), scrub_alert(alert)))


def render(report: "UsageReport", fmt: UsageFormat, unicode: bool = True) -> str:
    """The report text in ``fmt``; exhaustive over UsageFormat (mypy checks the ``assert_never``)."""
    from keyguard.usage.render import csv, json, sarif, table

    if fmt is UsageFormat.TABLE:
        return table.render(report, unicode)
    if fmt is UsageFormat.JSON:
        return json.render(report)
    if fmt is UsageFormat.SARIF:
        return sarif.render(report)
    if fmt is UsageFormat.CSV:
        return csv.render(report)
    assert_never(fmt)


def _stats(stats: "ImportStats", added: "AddResult", window: "Window | None", outcome: _Outcome,
           detectors: list[str], min_severity: str, delivery: "Delivery | None") -> dict[str, Any]:
    """The JSON ``stats`` object: import counts, then what happened to each raised alert."""
    from keyguard.redact import scrub
    from keyguard.serialize import iso
    from keyguard.usage.alerts import report_type

    return {
        "files": stats.files,
        "records": stats.records,
        "events": stats.events,
        "new_events": added.inserted,
        "duplicates": stats.duplicates + added.duplicates,
        "already_imported": added.below_watermark,
        "before_since": added.before_since,
        "bulk_files": stats.bulk_files,
        "prompts_analysed": stats.prompts_analysed,
        "prompts_estimated": stats.prompts_estimated,
        "errors": stats.errors,
        "error_samples": [scrub(e) for e in stats.error_samples],
        "by_format": dict(sorted(stats.events_per_format.items())),
        "window": None if window is None else {"start": iso(window.start),
                                               "end": iso(window.end)},
        "detectors": list(detectors),
        "raised": outcome.raised,
        "alerts_by_type": dict(sorted(Counter(report_type(r.alert.rule_id)
                                              for r in outcome.shown).items())),
        "min_severity": min_severity,
        "below_min_severity": outcome.below,
        "suppressed": len(outcome.suppressed),
        "suppressed_alerts": [
            {"id": s.id, "type": report_type(s.alert.rule_id), "key": s.alert.subject,
             "severity": s.alert.severity.label, "suppression": s.suppression,
             "owner": s.owner, "expires": s.expires}
            for s in outcome.suppressed],
        "expired_suppressions": [
            {"index": e.index, "type": e.type, "owner": e.acceptance.owner,
             "reason": e.acceptance.reason, "expires": e.acceptance.expires.isoformat()}
            for e in outcome.expired],
        "notify": None if delivery is None else delivery.as_dict(),
    }


def _summary(outcome: _Outcome, stats: "ImportStats", added: "AddResult", failing: int,
             threshold: str, delivery: "Delivery | None") -> str:
    """One stderr line: what was read, what was new, what was found, and the gate's verdict."""
    parts = [f"keyguard: {stats.events} event(s) from {stats.files} file(s), "
             f"{added.inserted} new", f"{len(outcome.shown)} alert(s)"]
    if outcome.suppressed:
        parts.append(f"{len(outcome.suppressed)} suppressed")
    if outcome.below:
        parts.append(f"{outcome.below} below --min-severity")
    if stats.errors:
        parts.append(f"{stats.errors} row(s) or file(s) could not be parsed")
    if stats.prompts_estimated:
        parts.append(f"{stats.prompts_analysed} prompt(s) analysed, "
                     f"{stats.prompts_estimated} estimated from a sample")
    if delivery is not None:
        parts.append(f"notified {delivery.host}: {delivery.sent} sent, "
                     f"{delivery.pending} pending")
    verdict = f"FAIL, {failing} at or above it" if failing else "pass"
    parts.append(f"gate ({threshold} and above): {verdict}")
    return "; ".join(parts)


def _scan_help() -> str:
    """``scan``'s help: the docstring, with the detector list kept one line per detector."""
    # NOTE: "\b" on its own line is Click's no-rewrap marker (command_help adds it for
    # Examples:); without it the detector list would be reflowed into one paragraph.
    return command_help(scan).replace("\n\nDetectors (", "\n\n\b\nDetectors (", 1)


usage_app.command("scan", help=_scan_help())(scan)
