"""Root Typer app: global options, one module per command group, and ``main()``.

Import-light on purpose: ``keyguard --help`` and shell completion import typer and
keyguard's own small modules only; boto3, keyring backends and duckdb load inside the
commands that use them.

The CLI modules do not use ``from __future__ import annotations``: typer reads every
command's annotations with ``get_type_hints`` on each start, and a string annotation costs
an ``eval`` (a compile) each, about 10 ms of ``--help``. Annotations that name
``TYPE_CHECKING``-only types are quoted instead (``bench/cli_startup.py``,
tests/cli/test_app.py).
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from keyguard import __version__
from keyguard.cli import check as check_cmd
from keyguard.cli import demo as demo_cmd
from keyguard.cli import inventory as inventory_cmd
from keyguard.cli import plugins as plugins_cmd
from keyguard.cli import rules as rules_cmd
from keyguard.cli._shared import EXIT_CODES_HELP, AppState, command_help, setup_logging
from keyguard.cli.auth import auth_app
from keyguard.cli.canary import canary_app
from keyguard.cli.rotate import rotate_app
from keyguard.cli.usage import usage_app


class _ScrubbingGroup(TyperGroup):
    """The root command group: usage errors never echo a pasted secret.

    Click repeats a bad argument in its error ("Got unexpected extra argument(s)
    (sk-ant-...)"), so a key pasted on the command line by mistake would land in the
    terminal scrollback and CI logs. Every parse error of every sub-command passes through
    here (sub-commands parse inside the group's ``invoke``) and is redacted first.
    """

    def make_context(self, info_name: str | None, args: list[str],
                     parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.TyperException as exc:
            raise _scrubbed(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            raise _scrubbed(exc) from None


def _scrubbed(exc: typer.TyperException) -> typer.TyperException:
    """The same error with any secret-looking text in its message redacted."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        from keyguard.redact import scrub

        exc.message = scrub(message)
    return exc


app = typer.Typer(
    name="keyguard",
    cls=_ScrubbingGroup,
    help=(
        "API-key hygiene: inventory keys across secret stores (AWS Secrets Manager, SSM, "
        "IAM, OS keyring, .env files, Vault / OpenBao KV), without ever printing a secret.\n\n"
        "Start with `keyguard demo` (no cloud account needed), then `keyguard inventory`.\n\n"
        + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold key material
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keyguard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", metavar="PATH", envvar="KEYGUARD_CONFIG",
                     help="Config file. Default: ./keyguard.toml, then "
                          "$XDG_CONFIG_HOME/keyguard/keyguard.toml, else built-in defaults."),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True,
                          help="More logging on stderr (-v info, -vv debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr; no progress or summary.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", envvar="NO_COLOR", help="Plain output without colour.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options; parsed before any command runs."""
    ctx.obj = AppState(config_path=config, verbose=verbose, quiet=quiet, no_color=no_color)
    setup_logging(verbose, quiet)


app.command("inventory", help=command_help(inventory_cmd.inventory))(inventory_cmd.inventory)
app.command("check", help=command_help(check_cmd.check))(check_cmd.check)
app.command("rules", help=command_help(rules_cmd.rules, exit_codes=False))(rules_cmd.rules)
app.command("demo", help=command_help(demo_cmd.demo))(demo_cmd.demo)
app.command("plugins", help=command_help(plugins_cmd.plugins, exit_codes=False))(
    plugins_cmd.plugins
)
app.add_typer(auth_app, name="auth", help="Keep keyguard's own credentials (admin keys, webhook "
              "URLs) in the OS keyring; config refers to them as keyring:NAME.")
app.add_typer(usage_app, name="usage", help="Detect stolen or abused keys in provider usage "
              "exports: `keyguard usage scan PATH...` (canary and geography detectors).")
app.add_typer(canary_app, name="canary", help="Canary keys: plant trap credentials and "
              "catch their first use (`keyguard canary create aws --name ... --plant ...`).")
app.add_typer(rotate_app, name="rotate", help="Safe key rotation: `keyguard rotate plan`, "
              "`apply`, `run --due`, `status`, `resume` (journaled, resumable, never leaves a "
              "consumer without a working key).")


def main() -> None:
    """Console-script entry point; ``prog_name`` keeps ``python -m keyguard`` consistent."""
    app(prog_name="keyguard")
