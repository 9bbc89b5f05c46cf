"""``keyguard check``: the CI gate. Inventory -> policy -> findings -> report -> exit code."""

import enum
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
from keyguard.errors import UsageError

if TYPE_CHECKING:
    from keyguard.engine import CheckResult
    from keyguard.model import Severity


class CheckFormat(enum.StrEnum):
    """Output formats of ``keyguard check``."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    OCSF = "ocsf"
    CSV = "csv"


class FailOn(enum.StrEnum):
    """Gate thresholds."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@handle_errors
def check(
    ctx: typer.Context,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", "-p", metavar="FILE",
                     help="Policy file ([policy] table). Default: [policy] in keyguard.toml, "
                          "else the built-in policy."),
    ] = None,
    source: SourceOpt = None,
    region: RegionOpt = None,
    inspect_values: InspectOpt = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", help="Exit 1 when a finding at or above this severity "
                                       "remains. Default: policy fail_on, else high."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", metavar="FILE",
                     help="Accepted findings; only findings not in it fail the gate."),
    ] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline",
                           help="Write today's findings (after waivers) to --baseline and pass.")
    ] = False,
    fail_on_partial: Annotated[
        bool | None,
        typer.Option("--fail-on-partial/--no-fail-on-partial",
                     help="Exit 3 when a source, region or file could not be read. "
                          "Default: policy fail_on_partial (true)."),
    ] = None,
    output_format: Annotated[
        CheckFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CheckFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Check every key against the policy and fail the build on what matters.

    Rules cover rotation age, unused and never-used keys, expiry, over-broad scopes,
    placement (prod keys outside prod stores, plaintext .env files), duplicates across
    stores and required tags; `keyguard rules` lists them. Waivers (owner, reason, expiry)
    accept a finding for a while; an expired waiver is a finding itself. A baseline
    accepts today's findings so a gate fails on new ones only.

    Examples:
      keyguard check --fail-on high --format sarif -o keyguard.sarif
      keyguard check --source dotenv --fail-on medium
      keyguard check --baseline .keyguard-baseline.json --update-baseline
      keyguard check --baseline .keyguard-baseline.json

    """
    from keyguard.baseline import load_baseline, write_baseline
    from keyguard.canary.store import load_index
    from keyguard.cli.inventory import make_fingerprinter, run_and_record
    from keyguard.config import load_policy_file, state_path
    from keyguard.engine import evaluate, load_policy
    from keyguard.policies import SEVERITIES
    from keyguard.report import REPORTERS, Report
    from keyguard.sources import SOURCES

    app = app_state(ctx)
    config = app.config()
    check_output_path(output)
    if policy is not None:
        policy_cfg, where = load_policy_file(policy), str(policy)
    else:
        policy_cfg, where = config.policy, str(config.path or "built-in policy")
    loaded = load_policy(policy_cfg, where)  # the whole policy is valid before any work
    threshold = SEVERITIES[fail_on.value] if fail_on else loaded.fail_on
    gate_partial = loaded.fail_on_partial if fail_on_partial is None else fail_on_partial
    if update_baseline and baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    accepted = load_baseline(baseline) if baseline is not None and not update_baseline else set()
    names = list(dict.fromkeys(source or config.default_sources))
    for name in names:
        SOURCES.load(name)
    reporter = REPORTERS.load(output_format.value)()
    progress = Progress.for_terminal(app.quiet)
    result, report = run_and_record(
        config, names, make_fingerprinter(quiet=app.quiet), region or (), inspect_values,
        state_file=state_path(config, state, user_data_dir()), diff=False, record=True,
        progress=progress,
    )
    progress.done()
    now = report.now
    # canaries are meant to look stale and exposed: they never produce policy findings
    canaries = load_index(state_path(config, state, user_data_dir()))
    checked = evaluate(canaries.without(result), loaded, now, config.labels, accepted)
    if update_baseline and baseline is not None:
        write_baseline(baseline, [*checked.findings, *checked.baselined], now)
    report = Report(
        inventory=result, now=now, first_seen=report.first_seen,
        findings=() if update_baseline else checked.findings,
        # only the rules that ran: a disabled rule must not show as "checked, passed"
        rules={rid: meta for rid, meta in loaded.catalogue.items()
               if rid in checked.rules_run or rid == "waiver-expired"},
        waived=checked.waived,
        baselined=(*checked.baselined, *checked.findings) if update_baseline else checked.baselined,
        fail_on=threshold,
    )
    write_output(reporter.render(report), output)
    failing = [] if update_baseline else checked.failing(threshold)
    if not app.quiet:
        err(_summary(checked, len(failing), threshold, len(result.failures),
                     baseline if update_baseline else None))
    if failing:
        raise typer.Exit(int(ExitCode.FINDINGS))
    if result.partial and gate_partial:
        raise typer.Exit(int(ExitCode.PARTIAL))


def _summary(checked: "CheckResult", failing: int, threshold: "Severity", failures: int,
             baseline_written: Path | None) -> str:
    """One stderr line: counts, what was accepted, and the gate's verdict."""
    parts = [f"keyguard: {len(checked.findings)} finding(s)"]
    if checked.waived:
        parts.append(f"{len(checked.waived)} waived")
    if checked.baselined:
        parts.append(f"{len(checked.baselined)} in baseline")
    if failures:
        parts.append(f"{failures} part(s) of the stores could not be read")
    if baseline_written is not None:
        parts.append(f"baseline written to {baseline_written}; gate passes")
    else:
        verdict = f"FAIL, {failing} at or above it" if failing else "pass"
        parts.append(f"gate ({threshold.label} and above): {verdict}")
    return "; ".join(parts)
