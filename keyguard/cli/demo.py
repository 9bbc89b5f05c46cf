"""``keyguard demo``: a guided tour on an embedded AWS sandbox; no cloud account, no network.

It starts a moto server on a free loopback port inside this process, seeds fake keys of
several providers, ages, owners and scopes (plus a .env file with a copy of one of them),
runs the real inventory against it, points out what deserves a look, shows ``--diff``
after a change, stops the server, and then runs the real ``usage scan`` command on three
weeks of a synthetic org's LiteLLM spend logs with planted attacks. Everything lives in a
temporary directory that is removed at the end; the user's keyring, state database,
config file and AWS settings are untouched.
"""

import dataclasses
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keyguard.cli._shared import Progress, app_state, err, handle_errors
from keyguard.cli.inventory import InventoryFormat, run_and_record
from keyguard.errors import UsageError

if TYPE_CHECKING:
    from keyguard.config import Config
    from keyguard.model import Inventory
    from keyguard.usage.synthetic import Corpus

DEMO_REGIONS = ("us-east-1", "eu-west-1")
DEMO_SOURCES = ("aws-secretsmanager", "aws-ssm", "aws-iam", "dotenv")
#: What a responder checks first, per alert type of the usage step.
LOOK_AT = {
    "canary": "a bait key was used: treat it as stolen; find who could read where it was "
              "planted, and start from the source IPs and the first file:line in the evidence",
    "geography": "a new country, or two countries minutes apart: check the addresses against "
                 "your offices and VPNs, then rotate the key (`keyguard rotate`) if unknown",
    "coordination": "several keys driven as one campaign (shared addresses, templates, timing): "
                    "they probably leaked together; look for the place they were all stored",
    "prompt-mix": "the key's prompts changed kind (templated extraction, model or output-ratio "
                  "shift): someone is running their own workload on it",
    "velocity": "request rates far outside the key's own hourly pattern (spikes, flat night "
                "plateaus, keys used in turns)",
}


@contextmanager
def _patched_env(values: dict[str, str], drop: tuple[str, ...]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *drop)}
    try:
        for k in drop:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@handle_errors
def demo(
    ctx: typer.Context,
    output_format: Annotated[
        InventoryFormat, typer.Option("--format", "-f", help="Format of the inventory shown.")
    ] = InventoryFormat.TABLE,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the fake keys.")] = 7,
    size: Annotated[
        int, typer.Option("--size", min=1, max=20,
                          help="Sandbox size multiplier (1 = ~60 secrets, 30 parameters, "
                               "12 IAM users).")
    ] = 1,
) -> None:
    """Tour keyguard on a local AWS sandbox with fake keys (no account, no network).

    Runs in well under a minute: starts a moto server on 127.0.0.1, seeds fake keys,
    inventories them with values inspected, lists what to look at, shows `inventory --diff`
    after a change, and cleans up. Needs the demo extra: pip install 'keyguard[demo]'.
    """
    from keyguard.config import AwsConfig, Config, DotenvConfig, SourcesConfig
    from keyguard.fingerprint import Fingerprinter
    from keyguard.report import REPORTERS

    app = app_state(ctx)
    try:
        from keyguard import demo_scenario, sandbox
    except ImportError as exc:
        raise UsageError(f"keyguard demo needs {exc.name}",
                         "install it with: pip install 'keyguard[demo]'") from None
    say = (lambda _msg: None) if app.quiet else err
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311  (fake data, not cryptography)
    now = datetime.now(UTC)
    # NOTE: an ephemeral fingerprint key: the demo must not create or touch the user's.
    fingerprinter = Fingerprinter(os.urandom(32))
    with tempfile.TemporaryDirectory(prefix="keyguard-demo-") as tmp, \
            sandbox.start_moto_server() as endpoint:
        workdir = Path(tmp)
        say(f"1. Started a local AWS sandbox (moto) at {endpoint}")
        # NOTE: sandbox_env asks callers to clear CLEARED_ENV, so no real profile, session
        # token or per-service endpoint of the user's leaks into the sandbox session.
        with _patched_env(sandbox.sandbox_env(endpoint), drop=sandbox.CLEARED_ENV):
            summary = sandbox.seed(endpoint, regions=DEMO_REGIONS, secrets=60 * size,
                                   parameters=30 * size, users=12 * size, rng=rng, now=now)
            planted = demo_scenario.plant_demo_extras(endpoint, workdir, rng=rng, region=DEMO_REGIONS[0])
            say(f"2. Seeded {summary.describe()} in {', '.join(DEMO_REGIONS)}, "
                f"and a .env file ({planted})")
            config = Config(
                default_sources=DEMO_SOURCES,
                aws=AwsConfig(regions=DEMO_REGIONS, endpoint_url=endpoint),
                sources=SourcesConfig(dotenv=DotenvConfig(paths=(str(workdir / "app"),))),
            )
            state_file = workdir / "state.db"
            say("3. Inventory with --inspect-values (values are fingerprinted, never shown):\n")
            result, report = run_and_record(
                config, list(DEMO_SOURCES), fingerprinter, DEMO_REGIONS, True,
                state_file=state_file, diff=False, record=True,
                progress=Progress.for_terminal(app.quiet),
            )
            typer.echo(REPORTERS.load(output_format.value)().render(report), nl=False)
            machine = output_format is not InventoryFormat.TABLE
            if not app.quiet:
                _print_insights(result, now)
            say("\n5. `keyguard check` with the built-in policy (the CI gate; exit 1 on high "
                "and above):\n")
            # NOTE: with --format json/csv, stdout carries exactly the inventory document
            # (pipe it to jq); the later tour steps go to stderr with the narration.
            typer.echo(_check(result, config, report.now), nl=False, err=machine)
            say("\n5b. `keyguard rotate plan`: a rotation dry run of what the policy says is "
                "due (nothing changes):\n")
            typer.echo(_rotation_dry_run(result, config, report.now), nl=False, err=True)
            changed = demo_scenario.make_demo_changes(endpoint, rng=rng, region=DEMO_REGIONS[0])
            say(f"\n6. Changed the sandbox ({changed}); `keyguard inventory --diff` shows:\n")
            _, diff_report = run_and_record(
                config, list(DEMO_SOURCES), fingerprinter, DEMO_REGIONS, True,
                state_file=state_file, diff=True, record=True,
                progress=Progress.for_terminal(app.quiet),
            )
            typer.echo(REPORTERS.load("table")().render(diff_report), nl=False, err=machine)
        _usage_step(ctx, config, workdir, say, machine=machine)
    say(f"\nDemo finished in {time.monotonic() - started:.1f}s; the sandbox is gone. Next: "
        "point keyguard at your own stores with `keyguard inventory` (standard AWS settings "
        "apply), or read `keyguard inventory --help`.")


def _usage_step(ctx: typer.Context, config: "Config", workdir: Path, say: Callable[[str], None],
                *, machine: bool) -> None:
    """Step 7: the real ``keyguard usage scan`` command on a synthetic org's spend logs.

    The scan runs with the demo's own config (never the user's keyguard.toml) and a store
    in the temporary directory; its table report is shown, then compared with what the
    generator planted (key ids are 64-hex hashes, so "the key appears in the report" is an
    exact test of "the key has an alert").
    """
    from keyguard import demo_scenario
    from keyguard.cli.check import FailOn
    from keyguard.cli.usage import UsageFormat, scan

    exports, corpus = demo_scenario.write_demo_usage(workdir)
    canary = next(k.alias for k in corpus.keys if k.key_id in corpus.canaries)
    say(f"\n7. `keyguard usage scan` on {corpus.spec.weeks} weeks of LiteLLM spend logs of a "
        f"synthetic org ({len(corpus.keys)} keys, {len(corpus.rows)} requests, one file per "
        f"day), with the key {canary} registered as a canary:\n")
    report = workdir / "usage-report.txt"
    root = ctx.find_root()
    app = app_state(ctx)
    root.obj = dataclasses.replace(app, _config=config)
    code = 0
    try:
        scan(ctx, [str(exports)], output_format=UsageFormat.TABLE, output=str(report),
             canary=list(corpus.canaries), state=workdir / "usage", fail_on=FailOn.HIGH)
    except typer.Exit as exc:
        code = exc.exit_code
    finally:
        root.obj = app
    if code not in (0, 1) or not report.exists():
        say(f"   the usage scan stopped with exit code {code}; see the message above")
        return
    text = report.read_text(encoding="utf-8")
    typer.echo(text, nl=False, err=machine)
    _print_usage_insights(corpus, text, code, say)


def _print_usage_insights(corpus: "Corpus", table: str, code: int,
                          say: Callable[[str], None]) -> None:
    from keyguard import demo_scenario

    attacked = {k for p in corpus.planted for k in p.keys}
    normal = [k for k in corpus.keys if k.key_id not in attacked]
    say("\n   Planted in this export:")
    for line in demo_scenario.planted_lines(corpus):
        say(f"   - {line}")
    say("   What to look at, per alert type:")
    for kind in sorted({p.alert_type for p in corpus.planted}):
        say(f"   - {kind}: {LOOK_AT.get(kind, 'see the alert summary and evidence')}")
    found = sum(1 for k in attacked if k in table)
    noisy = [k.alias for k in normal if k.key_id in table]
    profiles = ", ".join(sorted({k.profile for k in normal}))
    say(f"   {found} of {len(attacked)} attacked keys have alerts; {len(noisy)} of the "
        f"{len(normal)} normal keys ({profiles}) do" + (f" ({', '.join(noisy)})" if noisy else "")
        + f". Exit code {code}: "
        + ("alerts at or above high fail the gate." if code else "nothing fails the gate.")
        + " Try it on your own exports: `keyguard usage scan spend-logs/ --canary KEY`.")


def _check(result: "Inventory", config: "Config", now: datetime) -> str:
    """The gate-failing findings of the built-in policy on the sandbox, plus the totals."""
    from keyguard.engine import evaluate, load_policy
    from keyguard.report import REPORTERS, Report

    policy = load_policy(config.policy, "built-in policy")
    checked = evaluate(result, policy, now, config.labels)
    failing = tuple(checked.failing(policy.fail_on))
    report = Report(inventory=result, now=now, findings=failing, rules=policy.catalogue,
                    fail_on=policy.fail_on)
    counts: dict[str, int] = {}
    for f in checked.findings:
        counts[f.severity.label] = counts.get(f.severity.label, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: -x[1]))
    return (REPORTERS.load("table")().render(report)
            + f"Shown: the findings at or above {policy.fail_on.label}. In all "
            f"{len(checked.findings)} findings ({summary or 'none'}); `keyguard check` lists "
            "them, `keyguard rules show ID` explains a rule.\n")


def _rotation_dry_run(result: "Inventory", config: "Config", now: datetime) -> str:
    """Step 5b: the real rotation planner on the sandbox inventory (values were inspected).

    The same pure ``build_plan`` as ``keyguard rotate plan``, fed the inventory the demo
    already took with its ephemeral fingerprint key, so the user's key is never touched;
    nothing is applied. Long plans are cut to the first items for the tour.
    """
    from keyguard.cli.rotate import planners, render_plan
    from keyguard.engine import evaluate, load_policy
    from keyguard.rotation.plan import PlanInputs, build_plan
    from keyguard.rotation.schedule import due_keys
    from keyguard.rotation.stores import STORES

    policy = load_policy(config.policy, "built-in policy")
    checked = evaluate(result, policy, now, config.labels)
    built = build_plan(PlanInputs(keys=result.keys, due=due_keys(checked.findings),
                                  planners=planners(), writable_stores=frozenset(STORES.names()),
                                  now=now))
    text = render_plan(built)
    blocks = text.split("\n\n")
    shown = "\n\n".join(blocks[:4])
    more = len(blocks) - 4
    rotate = sum(1 for i in built.items if i.action == "rotate")
    return (shown.rstrip("\n") + (f"\n... and {more} more entries" if more > 0 else "")
            + f"\n\n{rotate} key(s) would be rotated and {len(built.skipped)} skipped with the "
            "reason. `keyguard rotate run --due --apply` does it: new key, every copy rewritten, "
            "verified, and only then the old key disabled; `rotate resume` recovers a crash.\n")


def _print_insights(result: "Inventory", now: datetime) -> None:
    from keyguard.insights import insights, provider_counts

    err("\n4. What to look at:")
    counts = ", ".join(f"{p} {n}" for p, n in provider_counts(result))
    err(f"   {len(result.keys)} key copies by provider: {counts}")
    for item in insights(result, now):
        err(f"   - {item.count:>3} {item.title}")
        for example in item.examples:
            err(f"         {example}")
