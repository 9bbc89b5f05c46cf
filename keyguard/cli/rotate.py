"""``keyguard rotate plan|apply|run|status|resume``: safe, journaled key rotation.

This module parses options, builds the inventory and the policy verdict, and hands a
plan to :mod:`keyguard.rotation.apply`; the journal and the lock live in
``<state dir>/rotation/`` next to the state database.
"""

import enum
import io
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keyguard.cli._shared import (
    ExitCode,
    OutputOpt,
    Progress,
    RegionOpt,
    SourceOpt,
    StateOpt,
    app_state,
    check_output_path,
    command_help,
    err,
    handle_errors,
    user_data_dir,
    write_output,
)
from keyguard.errors import UsageError

if TYPE_CHECKING:
    from keyguard.cli._shared import AppState
    from keyguard.model import Inventory, KeyRecord
    from keyguard.rotation.apply import Outcome, Runner
    from keyguard.rotation.journal import Journal
    from keyguard.rotation.lock import RotationLock
    from keyguard.rotation.plan import Planner, RotationItem, RotationPlan
    from keyguard.secret import Secret
    from keyguard.usage.notify import Webhook

#: Test hook: SIGKILL this process at the N-th journal boundary (fault-injection tests).
KILL_AT_ENV = "KEYGUARD_TEST_KILL_AT_BOUNDARY"

rotate_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         pretty_exceptions_show_locals=False)


class PlanFormat(enum.StrEnum):
    """Output formats of the rotate commands."""

    TABLE = "table"
    JSON = "json"


PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", "-p", metavar="FILE",
                 help="Policy file deciding which keys are due (rotation-max-age, "
                      "rotation-overdue). Default: [policy] in keyguard.toml."),
]
SelectOpt = Annotated[
    str | None,
    typer.Option("--select", metavar="EXPR",
                 help="Only keys matching all comma-separated terms: field=value, "
                      "field!=value, field~regex (fields: source, name, provider, kind, owner, "
                      "env, account, region, key_id, location, tag:NAME)."),
]
FormatOpt = Annotated[PlanFormat, typer.Option("--format", "-f", help="Output format.")]
GraceOpt = Annotated[
    int, typer.Option("--grace-days", min=0, metavar="DAYS",
                      help="Days an old key stays inactive before a later run deletes it.")
]
MaxKeysOpt = Annotated[
    int | None, typer.Option("--max-keys", min=1, metavar="N",
                             help="Rotate at most N keys this run (blast radius); the rest "
                                  "are listed as deferred.")
]
HooksOpt = Annotated[
    Path | None,
    typer.Option("--hooks", metavar="FILE",
                 help="Consumer hooks (TOML [[hook]] select plus command or url): commands "
                      "(no shell) or webhooks (JSON POST, optionally signed) run after the new "
                      "key is stored and verified, before the old key is disabled; a failing "
                      "hook rolls the rotation back."),
]
AlertsOpt = Annotated[
    list[Path] | None,
    typer.Option("--alerts", metavar="REPORT.json",
                 help="`keyguard usage scan --format json` report(s): keys named in an alert "
                      "are held back unless --approve (repeatable)."),
]
ApproveOpt = Annotated[
    bool, typer.Option("--approve", help="Also rotate keys named in --alerts (after review).")
]
NotifyOpt = Annotated[
    str | None,
    typer.Option("--notify", metavar="URL",
                 help="Post the rotation report to a webhook (Slack-compatible or JSON), as "
                      "`usage scan --notify` does: an http(s) URL, keyring:NAME or env:VAR."),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, metavar="SECONDS",
                        help="Wait up to SECONDS for another rotation run to finish "
                             "(default: fail at once).")
]
FromKeyringOpt = Annotated[
    str | None,
    typer.Option("--from-keyring", metavar="NAME",
                 help="Assisted rotation (Anthropic, OpenAI): the new key, created in the "
                      "provider's console and stored with `keyguard auth set NAME`. A key is "
                      "never taken as a command-line argument."),
]
StdinOpt = Annotated[
    bool,
    typer.Option("--stdin",
                 help="Assisted rotation: read the new key from standard input, once (a "
                      "hidden prompt on a terminal; piped input needs --yes)."),
]


# -- commands ----------------------------------------------------------------------------------


@handle_errors
def plan(
    ctx: typer.Context,
    policy: PolicyOpt = None,
    source: SourceOpt = None,
    region: RegionOpt = None,
    select: SelectOpt = None,
    max_keys: MaxKeysOpt = None,
    grace_days: GraceOpt = 7,
    hooks: HooksOpt = None,
    alerts: AlertsOpt = None,
    approve: ApproveOpt = False,
    output_format: FormatOpt = PlanFormat.TABLE,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="PLAN.json",
                                  help="Also write the plan as JSON for `keyguard rotate apply`.")
    ] = None,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Show which keys are due for rotation and exactly what rotating each one will do.

    For each due key: the rotator, the ordered steps, every store location holding the
    same key (found by key id and fingerprint) that will be rewritten, and the risk. Keys
    that cannot be rotated safely (a copy in a store keyguard cannot write, a user with
    two active keys) are listed with the reason. Values are read to find copies, never
    shown. Planning changes nothing and is deterministic.

    Examples:
      keyguard rotate plan --source aws-iam --source aws-secretsmanager --source aws-ssm
      keyguard rotate plan --select 'owner=payments-team' --out plan.json

    """
    app = app_state(ctx)
    check_output_path(output)
    if out is not None:
        check_output_path(str(out))
    journal = _journal(app, state)
    result, built = _plan(app, policy, source, region, select, max_keys, grace_days, state,
                          journal, hooks, alerts, approve)
    if out is not None:
        from keyguard.atomic import atomic_write
        from keyguard.rotation.plan import plan_to_dict

        atomic_write(out.expanduser(), json.dumps(plan_to_dict(built), indent=2) + "\n")
    write_output(_render_plan(built, output_format), output)
    if not app.quiet:
        err(_plan_summary(built, result) + (f"; plan written to {out}" if out else ""))
    if result.partial:
        raise typer.Exit(int(ExitCode.PARTIAL))


@handle_errors
def apply(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.json",
                                              help="Plan written by `keyguard rotate plan --out`.")],
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    notify: NotifyOpt = None,
    from_keyring: FromKeyringOpt = None,
    stdin: StdinOpt = False,
    output_format: FormatOpt = PlanFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Execute a reviewed rotation plan, one journaled step at a time.

    Each key: make room (an inactive spare is deleted, never an active key), create the
    new key, write it to every copy, verify it, and only then deactivate the old key. A
    failed step rolls that rotation back (the copies return to the old, still-active
    key and the new key is deleted). The old key is deleted by a later run after the
    grace period. Asks for confirmation unless --yes.

    Anthropic and OpenAI keys cannot be created through their admin APIs: create the new
    key in the console, then supply it with --from-keyring NAME or --stdin (one supplied
    key per run; it must be the same kind of key as the old one).

    Examples:
      keyguard rotate plan --out plan.json && keyguard rotate apply plan.json
      keyguard auth set new-ci-key && keyguard rotate apply plan.json --from-keyring new-ci-key

    """
    from keyguard.rotation.plan import plan_from_json

    app = app_state(ctx)
    check_output_path(output)
    hook = _webhook(notify)
    if not plan_file.is_file():
        raise UsageError(f"{plan_file}: plan file not found",
                         "write one with `keyguard rotate plan --out PLAN.json`")
    try:
        text = plan_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{plan_file}: cannot read the plan ({exc})") from None
    built = plan_from_json(text, str(plan_file))
    if not built.items:
        write_output(_render_outcomes([], output_format, ""), output)
        if not app.quiet:
            err("keyguard: the plan has nothing to do")
        return
    journal = _journal(app, state)
    supplied = _read_supply(from_keyring, stdin)
    _check_supply(built, supplied, journal)
    _confirm(yes, f"Rotate {_count(built)} as planned in {plan_file}?")
    with _lock(app, state, wait):
        runner, run_id = _runner(app, journal, supplied)
        outcomes = runner.apply(built)
    _finish(app, outcomes, output_format, output, run_id, partial=False, hook=hook)


@handle_errors
def run(
    ctx: typer.Context,
    due: Annotated[bool, typer.Option("--due", help="Rotate what the policy says is due.")] = False,
    do_apply: Annotated[bool, typer.Option("--apply", help="Actually rotate (default: dry run).")
                        ] = False,
    yes: YesOpt = False,
    max_keys: MaxKeysOpt = None,
    policy: PolicyOpt = None,
    source: SourceOpt = None,
    region: RegionOpt = None,
    select: SelectOpt = None,
    grace_days: GraceOpt = 7,
    hooks: HooksOpt = None,
    alerts: AlertsOpt = None,
    approve: ApproveOpt = False,
    wait: WaitOpt = 0.0,
    notify: NotifyOpt = None,
    from_keyring: FromKeyringOpt = None,
    stdin: StdinOpt = False,
    output_format: FormatOpt = PlanFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Plan and apply in one go, for cron or a Kubernetes CronJob (a dry run unless --apply).

    With --apply it first resumes any interrupted rotation, then inventories, plans and
    rotates what is due, deletes old keys whose grace period has passed, and prints a
    rotation report. A partial inventory (a store could not be read) rotates nothing:
    a copy in the unread store would be left with a disabled key. Keys that need a
    supplied new key (Anthropic, OpenAI) are skipped unless --from-keyring or --stdin
    gives one, and then exactly one such key may be due (narrow it with --select).

    Examples:
      keyguard rotate run --due                       # dry run: what would rotate
      keyguard rotate run --due --apply --yes --max-keys 5

    """
    app = app_state(ctx)
    check_output_path(output)
    hook = _webhook(notify)
    if not due:
        raise UsageError("rotate run needs --due", "`keyguard rotate run --due [--apply]`")
    journal = _journal(app, state)
    if not do_apply and (from_keyring is not None or stdin):
        raise UsageError("--from-keyring and --stdin only apply with --apply",
                         "a dry run needs no new key")
    if not do_apply:
        result, built = _plan(app, policy, source, region, select, max_keys, grace_days,
                              state, journal, hooks, alerts, approve)
        write_output(_render_plan(built, output_format), output)
        if not app.quiet:
            pending = len(journal.incomplete())
            note = f"; {pending} interrupted rotation(s) would be resumed first" if pending else ""
            err(_plan_summary(built, result) + note + "; dry run, pass --apply to rotate")
        if result.partial:
            raise typer.Exit(int(ExitCode.PARTIAL))
        return
    supplied = _read_supply(from_keyring, stdin)
    if not yes:
        _confirm(False, "Rotate every due key now?")
    with _lock(app, state, wait):
        runner, run_id = _runner(app, journal, supplied)
        resumed = runner.resume()
        if any(o.status == "stopped" for o in resumed):
            _finish(app, resumed, output_format, output, run_id, partial=False, hook=hook)
            return
        result, built = _plan(app, policy, source, region, select, max_keys, grace_days,
                              state, journal, hooks, alerts, approve)
        if result.partial:
            _finish(app, resumed, output_format, output, run_id, partial=True, hook=hook,
                    note="partial inventory: nothing rotated (a copy in an unread store "
                         "would keep a disabled key)")
            return
        built, waiting = _without_assisted(built, supplied, journal)
        _check_supply(built, supplied, journal)
        outcomes = [*waiting, *runner.apply(built)]
    _finish(app, [*resumed, *outcomes], output_format, output, run_id, partial=False,
            hook=hook)


@handle_errors
def status(
    ctx: typer.Context,
    output_format: FormatOpt = PlanFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Show interrupted rotations (exit 4 when any needs `resume`) and old keys awaiting deletion.

    Reads the journal only: no store is contacted and no option beyond --state is needed.
    """
    app = app_state(ctx)
    check_output_path(output)
    journal = _journal(app, state)
    open_ = journal.incomplete()
    waiting = journal.completed()
    if output_format is PlanFormat.JSON:
        doc = {"journal": str(journal.path),
               "interrupted": [{"token": s.token, "rotator": s.item.rotator, "key": s.item.name,
                                "attempt": s.attempt, "began": _iso(s.began),
                                "interrupted_step": s.interrupted_step,
                                "done_steps": s.done_steps, "rolling_back": s.rolling_back}
                               for s in open_],
               "awaiting_deletion": [{"token": c.token, "rotator": c.rotator,
                                      "old_key_id": c.old_key_id, "finished": _iso(c.finished)}
                                     for c in waiting]}
        text = json.dumps(doc, indent=2) + "\n"
    else:
        lines = [f"journal: {journal.path}"]
        if not open_:
            lines.append("no interrupted rotation")
        for s in open_:
            where = s.interrupted_step or (s.done_steps[-1] if s.done_steps else "begin")
            mode = "rolling back" if s.rolling_back else "in progress"
            lines.append(f"INTERRUPTED {s.token} {s.item.rotator} {s.item.name}: {mode}, "
                         f"stopped at {where} (attempt {s.attempt}, began {_iso(s.began)})")
        lines.extend(f"awaiting deletion: {c.rotator} old key {c.old_key_id} "
                     f"(rotation {c.token} finished {_iso(c.finished)})" for c in waiting)
        text = "\n".join(lines) + "\n"
    write_output(text, output)
    if open_:
        if not app.quiet:
            err(f"keyguard: {len(open_)} interrupted rotation(s); run `keyguard rotate resume`")
        raise typer.Exit(int(ExitCode.ROTATION_STOPPED))


@handle_errors
def resume(
    ctx: typer.Context,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    notify: NotifyOpt = None,
    output_format: FormatOpt = PlanFormat.TABLE,
    output: OutputOpt = "-",
    state: StateOpt = None,
) -> None:
    """Finish or roll back every interrupted rotation, using only the journal.

    A rotation whose new key reached every copy is finished (verified, then the old key
    deactivated); one that died earlier is rolled back (copies restored to their
    journaled versions, the new key, even one whose creation response was lost, deleted).
    An assisted rotation needs no --from-keyring or --stdin here: the supplied key is read
    back from a copy holding it, or the rotation is rolled back. A LiteLLM rotation that
    got past regenerate is always finished (the old key no longer works).

    Examples:
      keyguard rotate status && keyguard rotate resume --yes

    """
    app = app_state(ctx)
    check_output_path(output)
    hook = _webhook(notify)
    journal = _journal(app, state)
    pending = journal.incomplete()
    if not pending:
        write_output(_render_outcomes([], output_format, ""), output)
        if not app.quiet:
            err("keyguard: no interrupted rotation to resume")
        return
    _confirm(yes, f"Resume {len(pending)} interrupted rotation(s)?")
    with _lock(app, state, wait):
        runner, run_id = _runner(app, journal)
        outcomes = runner.resume()
    _finish(app, outcomes, output_format, output, run_id, partial=False, hook=hook)


# -- plumbing ----------------------------------------------------------------------------------


def _rotation_dir(app: "AppState", state: Path | None) -> Path:
    from keyguard.config import state_path

    return state_path(app.config(), state, user_data_dir()).expanduser().parent / "rotation"


def _journal(app: "AppState", state: Path | None) -> "Journal":
    from keyguard.rotation.journal import Journal

    return Journal(_rotation_dir(app, state) / "journal.jsonl")


def _lock(app: "AppState", state: Path | None, wait: float) -> "RotationLock":
    from keyguard.rotation.lock import RotationLock

    return RotationLock(_rotation_dir(app, state) / "lock", wait,
                        stamp=f"since {datetime.now(UTC).isoformat(timespec='seconds')}")


def _runner(app: "AppState", journal: "Journal", supplied: "Secret | None" = None
            ) -> "tuple[Runner, str]":
    from keyguard.cli.inventory import make_fingerprinter
    from keyguard.rotation.apply import Runner
    from keyguard.rotation.context import RotationContext, Scratch
    from keyguard.rotation.supply import hold

    scratch = Scratch()
    if supplied is not None:
        hold(scratch, supplied)
    journal.guard = scratch.check
    ctx = RotationContext(config=app.config(), fingerprinter=make_fingerprinter(quiet=app.quiet),
                          now=lambda: datetime.now(UTC))
    run_id = uuid.uuid4().hex[:12]
    return Runner(ctx, journal, run_id, scratch, boundary=_boundary()), run_id


def _read_supply(from_keyring: str | None, use_stdin: bool) -> "Secret | None":
    """The supplied new key, read once (keyring item, stdin, or a hidden prompt on a tty)."""
    from keyguard.rotation import supply

    if from_keyring is not None and use_stdin:
        raise UsageError("--from-keyring and --stdin both supply the new key",
                         "pass only one of them")
    if from_keyring is not None:
        return supply.from_keyring(from_keyring)
    if not use_stdin:
        return None
    if sys.stdin.isatty():
        typed = typer.prompt("New key (input hidden)", hide_input=True, err=True)
        return supply.from_stream(io.StringIO(typed), "the prompt")
    return supply.from_stream(sys.stdin)


def _check_supply(built: "RotationPlan", supplied: "Secret | None", journal: "Journal") -> None:
    """Before any change: one supplied key for exactly one item that needs one, same kind."""
    from keyguard.rotation.supply import SUPPLY_PARAM, kind_of, needs_supply

    states = journal.states()
    needing = [i for i in built.items if needs_supply(i)
               and (states[i.token].status != "done" if i.token in states else True)]
    if supplied is None:
        if needing:
            raise UsageError(f"rotating {needing[0].name} ({needing[0].rotator}) needs the new "
                             "key, which its provider's API cannot create",
                             "create it in the provider's console, then pass --from-keyring NAME "
                             "(stored with `keyguard auth set NAME`) or --stdin")
        return
    if not needing:
        raise UsageError("a new key was supplied, but no rotation in the plan takes one",
                         "drop --from-keyring/--stdin, or plan the key it was made for")
    if len(needing) > 1:
        raise UsageError(f"{len(needing)} rotations in the plan need a supplied key; one "
                         "supplied key rotates one key",
                         "plan them one at a time: `keyguard rotate plan --select key_id=ID --out`")
    item = needing[0]
    expected = item.params.get(SUPPLY_PARAM, "")
    got = kind_of(supplied)
    if expected != "any" and got != expected:
        raise UsageError(f"the supplied key is {'a ' + got if got else 'not a recognised key'}, "
                         f"but {item.name} needs {expected}; nothing changed",
                         "supply the key created for this rotation")


def _without_assisted(built: "RotationPlan", supplied: "Secret | None", journal: "Journal"
                      ) -> "tuple[RotationPlan, list[Outcome]]":
    """Without a supplied key, `run` skips the rotations that need one (and says so)."""
    import dataclasses

    from keyguard.rotation.apply import Outcome
    from keyguard.rotation.supply import needs_supply

    if supplied is not None:
        return built, []
    states = journal.states()
    waiting = [i for i in built.items if needs_supply(i)
               and not (i.token in states and states[i.token].status == "done")]
    if not waiting:
        return built, []
    skipped = [Outcome(token=i.token, action=i.action, rotator=i.rotator, subject=i.subject,
                       name=i.name, status="skipped",
                       message="needs its new key: create it in the provider's console, then "
                               "`keyguard rotate run --due --apply --select "
                               f"{_select_term(i)} --from-keyring NAME`") for i in waiting]
    kept = tuple(i for i in built.items if i not in waiting)
    return dataclasses.replace(built, items=kept), skipped


def _select_term(item: "RotationItem") -> str:
    """A ``--select`` term that picks this item's key (its id, else its name)."""
    return f"key_id={item.key_id}" if item.key_id else f"name={item.name}"


def _boundary() -> Callable[[], None] | None:
    """The fault-injection hook: SIGKILL at the N-th journal line when the test env asks."""
    raw = os.environ.get(KILL_AT_ENV, "")
    if not raw.isdigit():
        return None
    target = int(raw)
    seen = [0]

    def hit() -> None:
        seen[0] += 1
        if seen[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return hit


def _plan(app: "AppState", policy: Path | None, source: list[str] | None,
          region: list[str] | None, select: str | None, max_keys: int | None, grace_days: int,
          state: Path | None, journal: "Journal",
          hooks_file: Path | None = None, alert_files: list[Path] | None = None,
          approve: bool = False) -> "tuple[Inventory, RotationPlan]":
    """Inventory (values inspected, to find copies), policy verdict, then the pure plan."""
    from keyguard.canary.store import load_index
    from keyguard.cli.inventory import make_fingerprinter, run_and_record
    from keyguard.config import load_policy_file, state_path
    from keyguard.engine import evaluate, load_policy
    from keyguard.rotation.hooks import hooks_param, load_hooks
    from keyguard.rotation.plan import PlanInputs, build_plan
    from keyguard.rotation.schedule import due_keys, load_alerted, parse_select
    from keyguard.rotation.stores import STORES
    from keyguard.sources import SOURCES

    config = app.config()
    matcher = parse_select(select) if select is not None else None  # exit 2 before any work
    hooks = load_hooks(hooks_file) if hooks_file is not None else []
    alerted = load_alerted(alert_files or [])
    if policy is not None:
        policy_cfg, where = load_policy_file(policy), str(policy)
    else:
        policy_cfg, where = config.policy, str(config.path or "built-in policy")
    loaded = load_policy(policy_cfg, where)
    names = list(dict.fromkeys(source or config.default_sources))
    for name in names:
        SOURCES.load(name)
    progress = Progress.for_terminal(app.quiet)
    state_file = state_path(config, state, user_data_dir())
    result, report = run_and_record(
        config, names, make_fingerprinter(quiet=app.quiet), region or (), True,
        state_file=state_file, diff=False, record=False, progress=progress)
    progress.done()
    # canaries look stale on purpose: a canary key and its planted copies are never rotated
    result = load_index(state_file).without(result)
    checked = evaluate(result, loaded, report.now, config.labels, set())
    built = build_plan(PlanInputs(
        keys=result.keys, due=due_keys(checked.findings), planners=planners(),
        writable_stores=frozenset(STORES.names()), completed=journal.completed(), now=report.now,
        grace_days=grace_days, max_keys=max_keys, select=matcher,
        hooks_for=(lambda key: hooks_param(hooks, key)) if hooks else None,
        alerted=alerted, approve=approve))
    return result, built


def planners() -> "list[tuple[str, Callable[[KeyRecord], bool], Planner]]":
    """Every registered rotator's (name, claims, plan), built-ins in their documented order."""
    from keyguard.rotation.rotators import ORDER, ROTATORS

    order = [n for n in ORDER if n in ROTATORS.names()]
    order += [n for n in ROTATORS.names() if n not in order]
    found: list[tuple[str, Callable[[KeyRecord], bool], Planner]] = []
    for name in order:
        cls = ROTATORS.load(name)
        found.append((name, cls.claims, cls.plan))
    return found


def render_plan(built: "RotationPlan") -> str:
    """The table view of a plan (``keyguard rotate plan``; also the demo's dry run)."""
    return _render_plan(built, PlanFormat.TABLE)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to rotate without confirmation (stdin is not a terminal)",
                         "review the plan, then pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(int(ExitCode.OK))


def _count(built: "RotationPlan") -> str:
    rot = sum(1 for i in built.items if i.action == "rotate")
    dele = len(built.items) - rot
    return f"{rot} key(s)" + (f" and delete {dele} old key(s)" if dele else "")


def _iso(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else ""


def _render_plan(built: "RotationPlan", fmt: PlanFormat) -> str:
    from keyguard.rotation.plan import plan_to_dict

    if fmt is PlanFormat.JSON:
        return json.dumps(plan_to_dict(built), indent=2) + "\n"
    lines = [f"rotation plan {built.plan_id} ({_count(built)}; grace {built.grace_days} days)"]
    for item in built.items:
        lines.append(f"\n{item.action.upper()} {item.name} [{item.rotator}] risk={item.risk} "
                     f"token={item.token}")
        lines.append(f"  why:   {item.reason}")
        lines.append(f"  steps: {' -> '.join(item.steps)}")
        for copy in item.copies:
            field = f" field {copy.field}" if copy.field else ""
            lines.append(f"  copy:  {copy.store} {copy.name}{field}"
                         + (f" ({copy.region})" if copy.region else ""))
    lines.extend(f"\nSKIP {skip.subject}: {skip.reason}" for skip in built.skipped)
    if built.deferred:
        lines.append(f"\nDEFERRED by --max-keys: {len(built.deferred)} key(s): "
                     + ", ".join(built.deferred))
    if not built.items and not built.skipped:
        lines.append("nothing is due")
    return "\n".join(lines) + "\n"


def _plan_summary(built: "RotationPlan", result: "Inventory") -> str:
    text = (f"keyguard: {_count(built)} planned, {len(built.skipped)} skipped, "
            f"{len(built.deferred)} deferred, from {len(result.keys)} keys")
    if result.partial:
        text += (f"; {len(result.failures)} part(s) of the stores could not be read: partial "
                 "inventory, exit 3")
    return text


def _render_outcomes(outcomes: "Sequence[Outcome]", fmt: PlanFormat, run_id: str) -> str:
    if fmt is PlanFormat.JSON:
        from keyguard.rotation.notify import outcome_dict

        return json.dumps({"run": run_id, "outcomes": [outcome_dict(o) for o in outcomes]},
                          indent=2) + "\n"
    if not outcomes:
        return "nothing to do\n"
    lines = [f"{'STATUS':<12} {'ROTATOR':<9} KEY / DETAIL"]
    for o in outcomes:
        ids = " ".join(f"{k}={v}" for k, v in o.facts.items())
        lines.append(f"{o.status:<12} {o.rotator:<9} {o.name} ({o.token})")
        lines.append(f"{'':<22} {o.message}" + (f" [{ids}]" if ids else ""))
    return "\n".join(lines) + "\n"


def _webhook(notify: str | None) -> "Webhook | None":
    """Parse --notify before any work (a bad value is exit 2)."""
    if notify is None:
        return None
    from keyguard.usage.notify import parse_webhook

    return parse_webhook(notify)


def _notify(app: "AppState", hook: "Webhook", outcomes: "Sequence[Outcome]", run_id: str) -> bool:
    """Post the report; a failure is a warning (host only) and returns False."""
    from keyguard.rotation.notify import payload
    from keyguard.usage.notify import HttpPoster, NotifyError

    try:
        HttpPoster()(hook, payload(hook.style, outcomes, run_id))
    except NotifyError as exc:
        err(f"keyguard: warning: could not notify {exc}")
        return False
    return True


def _finish(app: "AppState", outcomes: "Sequence[Outcome]", fmt: PlanFormat, output: str,
            run_id: str, *, partial: bool, note: str = "", hook: "Webhook | None" = None) -> None:
    """Write the rotation report, notify, and pick the exit code.

    4 stopped, 1 rolled back, 3 partial inventory or failed notification, else 0.
    """
    write_output(_render_outcomes(outcomes, fmt, run_id), output)
    if hook is not None and outcomes and not _notify(app, hook, outcomes, run_id):
        partial = True
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    if not app.quiet:
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
        err(f"keyguard: rotation run {run_id}: {parts}" + (f"; {note}" if note else ""))
    if counts.get("stopped") or counts.get("not-run"):
        if not app.quiet:
            err("keyguard: rotation stopped mid-plan; `keyguard rotate status` shows where, "
                "`keyguard rotate resume` finishes it")
        raise typer.Exit(int(ExitCode.ROTATION_STOPPED))
    if counts.get("rolled-back"):
        raise typer.Exit(int(ExitCode.FINDINGS))
    if partial:
        raise typer.Exit(int(ExitCode.PARTIAL))


ROTATION_EXIT_CODES = (
    "Exit codes: 0 done (or nothing to do); 1 a rotation failed and was rolled back; 2 usage "
    "error (bad plan, hooks or alerts file, --select, lock held); 3 partial inventory "
    "(nothing rotated) or a failed --notify; 4 stopped mid-plan (`keyguard rotate resume`)."
)

for _fn in (plan, apply, run, status, resume):
    rotate_app.command(_fn.__name__,
                       help=command_help(_fn, exit_codes=False) + "\n\n" + ROTATION_EXIT_CODES)(_fn)
