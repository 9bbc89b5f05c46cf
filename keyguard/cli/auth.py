"""``keyguard auth set|get|delete|list``: keyguard's own credentials, kept in the OS keyring.

Values never pass through argv (visible in ``ps`` and shell history): ``set`` reads a hidden,
confirmed prompt on a terminal, else standard input. ``get`` prints a redacted form unless
``--reveal`` is given *and* stdout is a terminal, so a value never lands in a pipe, a log or
a CI transcript by accident. keyring is imported inside the commands: ``--help`` stays light.
"""

import sys
from typing import Annotated

import typer

from keyguard.cli._shared import command_help, err, handle_errors
from keyguard.errors import UsageError
from keyguard.secret import Secret

#: The largest value ``set`` accepts from stdin; an API key or webhook URL is far smaller.
MAX_VALUE_BYTES = 64 * 1024
#: Values shorter than this are shown as ``****``: first 4 + last 2 would give most of them away.
MIN_REDACT_LENGTH = 16

auth_app = typer.Typer(
    help=("keyguard's own credentials (provider admin keys, webhook URLs, Vault tokens) in the "
          "OS keyring, service 'keyguard-credentials'. Config refers to them as keyring:NAME."),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Credential name, e.g. openai-admin.")]


def redact(value: Secret) -> str:
    """First 4 + "…" + last 2 characters, or ``****`` for short values."""
    text = value.reveal().strip()
    if len(text) < MIN_REDACT_LENGTH:
        return "****"
    return f"{text[:4]}…{text[-2:]}"


@handle_errors
def set_(name: NameArg) -> None:
    """Store a credential under NAME, replacing any previous value.

    On a terminal the value is read from a hidden prompt, typed twice; otherwise from
    standard input (one value; trailing newlines dropped). Never pass it as an argument:
    argv is visible to every user of the machine and lands in shell history.

    Examples:
      keyguard auth set openai-admin
      pass show openai/admin | keyguard auth set openai-admin

    """
    from keyguard import credentials

    credentials.check_name(name)
    if sys.stdin.isatty():
        raw = typer.prompt(f"Value for {name}", hide_input=True, confirmation_prompt=True)
    else:
        raw = sys.stdin.read(MAX_VALUE_BYTES + 1)
        if len(raw) > MAX_VALUE_BYTES:
            raise UsageError(f"value on stdin is over {MAX_VALUE_BYTES} bytes", "pass one credential")
        raw = raw.rstrip("\r\n")
    value = Secret(raw)
    del raw
    if not value.reveal().strip():
        raise UsageError(f"no value given for {name}",
                         "type it at the prompt, or pipe it on stdin")
    replaced = credentials.store(name, value)
    err(f"keyguard: {'replaced' if replaced else 'stored'} {name}; refer to it as keyring:{name}")


@handle_errors
def get(
    name: NameArg,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print the full value; only when stdout is a terminal.")
    ] = False,
) -> None:
    """Show a stored credential, redacted (first 4 and last 2 characters).

    --reveal prints the whole value, and only to a terminal: piped or redirected output is
    refused, so the value cannot end up in a file or a CI log.
    """
    from keyguard import credentials

    credentials.check_name(name)
    if reveal and not sys.stdout.isatty():
        raise UsageError("refusing --reveal: stdout is not a terminal",
                         "run it in a terminal, or drop --reveal for the redacted form")
    value = credentials.fetch(name)
    if value is None:
        raise UsageError(f"no credential named {name}", "see `keyguard auth list`")
    typer.echo(value.reveal() if reveal else redact(value))


@handle_errors
def delete(name: NameArg) -> None:
    """Delete a stored credential."""
    from keyguard import credentials

    if not credentials.remove(name):
        raise UsageError(f"no credential named {name}", "see `keyguard auth list`")
    err(f"keyguard: deleted {name}")


@handle_errors
def list_() -> None:
    """List the names of stored credentials, one per line (never their values)."""
    from keyguard import credentials

    found = credentials.names()
    for name in found:
        typer.echo(name)
    if not found:
        err("keyguard: no credentials stored; add one with `keyguard auth set NAME`")


auth_app.command("set", help=command_help(set_))(set_)
auth_app.command("get", help=command_help(get))(get)
auth_app.command("delete", help=command_help(delete))(delete)
auth_app.command("list", help=command_help(list_))(list_)
