"""What every command shares: exit codes, option aliases, error handling, output, progress.

Only ``cli/`` touches argv, the environment, files and exit codes; this module is where
those edges live. Heavy libraries are never imported here.
"""

import enum
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from keyguard.errors import KeyguardError, RotationStopped, SourceError, UsageError

if TYPE_CHECKING:
    from keyguard.config import Config

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in README and ``keyguard --help``."""

    OK = 0
    FINDINGS = 1  # findings/alerts at or above --fail-on
    USAGE = 2  # usage, configuration or input error
    PARTIAL = 3  # a source, region or file failed; the report lists what worked
    ROTATION_STOPPED = 4  # rotation stopped mid-plan; resume needed


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 findings or alerts at or above the threshold; 2 usage, "
    "configuration or input error, or another run holds the state (lock or usage store); "
    "3 partial result (a source, region or file failed; "
    "the report names it); 4 rotation stopped mid-plan (resume needed)."
)


def exit_code_for(exc: KeyguardError) -> ExitCode:
    """Map each branch of the error tree to exactly one exit code."""
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, SourceError):
        return ExitCode.PARTIAL
    if isinstance(exc, RotationStopped):
        return ExitCode.ROTATION_STOPPED
    return ExitCode.USAGE


def command_help(fn: Callable[..., object], exit_codes: bool = True) -> str:
    """A command's ``--help`` text from its docstring.

    Paragraphs starting with ``Examples:`` are kept verbatim (Click's no-rewrap marker), and
    the exit-code table is appended so every command documents it.
    """
    import inspect

    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    out = ["\b\n" + p if p.startswith("Examples:") else p for p in paragraphs]
    if exit_codes:
        out.append(EXIT_CODES_HELP)
    return "\n\n".join(out)


def err(message: str) -> None:
    """One line to stderr."""
    typer.echo(message, err=True)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a KeyguardError into one stderr line and its exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KeyguardError as exc:
            err(f"keyguard: error: {exc}")
            raise typer.Exit(int(exit_code_for(exc))) from None
        except KeyboardInterrupt:
            err("keyguard: interrupted")
            raise typer.Exit(130) from None

    return wrapper


@dataclass
class AppState:
    """Global options, resolved lazily so ``--help`` never reads config or keyrings."""

    config_path: Path | None = None
    verbose: int = 0
    quiet: bool = False
    no_color: bool = False
    _config: "Config | None" = field(default=None, repr=False)

    def config(self) -> "Config":
        """Load and validate the configuration once per run."""
        if self._config is None:
            from keyguard.config import find_config, load_config
            from keyguard.validate import validate_config

            found = find_config(self.config_path, Path.cwd(), user_config_dir())
            config = load_config(found)
            validate_config(config)  # every table, whatever the command (exit 2 on a typo)
            self._config = config
        return self._config

    def set_config(self, config: "Config") -> None:
        """Use an in-memory config (``keyguard demo``)."""
        self._config = config


def user_config_dir() -> Path:
    """``$XDG_CONFIG_HOME/keyguard`` (or the platform's equivalent)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("keyguard", appauthor=False))


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/keyguard`` (or the platform's equivalent): state and key file."""
    import platformdirs

    return Path(platformdirs.user_data_dir("keyguard", appauthor=False))


def app_state(ctx: typer.Context) -> AppState:
    """The AppState the root callback stored (a default one when run without it)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def setup_logging(verbose: int, quiet: bool) -> None:
    """Stderr logging: warnings by default, -v info, -vv debug, -q errors only.

    ``KEYGUARD_LOG_LEVEL`` overrides (DEBUG, INFO...). Records never carry secret values.
    """
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    env_level = os.environ.get("KEYGUARD_LOG_LEVEL", "").upper()
    if env_level in logging.getLevelNamesMapping():
        level = logging.getLevelNamesMapping()[env_level]
    logging.basicConfig(level=level, format="keyguard: %(levelname)s: %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    # NOTE: botocore logs full response bodies at DEBUG, and a GetSecretValue response body
    # *is* the secret. Third-party HTTP loggers are therefore capped at INFO whatever -v says.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "hvac", "secretstorage"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose >= 3 else logging.WARNING)


def check_output_path(output: str) -> None:
    """Fail before any work when ``--output`` cannot be written (``-`` is stdout)."""
    if output == "-":
        return
    parent = Path(output).expanduser().resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--output {output}: directory {parent} does not exist",
                         "create it or choose another path")
    if Path(output).is_dir():
        raise UsageError(f"--output {output}: is a directory", "give a file path")


def write_output(text: str, output: str) -> None:
    """Write the report to stdout or atomically to a file (never a half-written report)."""
    if output == "-":
        typer.echo(text, nl=False)
        return
    from keyguard.atomic import atomic_write

    atomic_write(Path(output).expanduser(), text)


class Progress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._shown = False

    @classmethod
    def for_terminal(cls, quiet: bool) -> "Progress":
        """Enabled when stderr is a TTY and --quiet is off."""
        return cls(enabled=not quiet and sys.stderr.isatty())

    def __call__(self, source: str, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            line = f"[{source}] {message}"[:120]
            sys.stderr.write("\r\x1b[K" + line)
            sys.stderr.flush()
            self._shown = True

    def done(self) -> None:
        """Clear the status line."""
        if self.enabled and self._shown:
            with self._lock:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()


def source_names_completion(incomplete: str) -> list[str]:
    """Shell completion for --source: registered names, no plugin imported."""
    from keyguard.sources import SOURCES

    return [n for n in SOURCES.names() if n.startswith(incomplete)]


OutputOpt = Annotated[
    str,
    typer.Option("--output", "-o", metavar="FILE",
                 help="Write the report to FILE ('-' = stdout). Written atomically."),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", metavar="NAME", autocompletion=source_names_completion,
                 help="Source to read (repeatable). Default: `default_sources` in config, "
                      "else aws-secretsmanager, aws-ssm, aws-iam, dotenv. "
                      "`keyguard plugins` lists them."),
]
RegionOpt = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", metavar="REGION",
                 help="AWS region (repeatable). Default: [aws] regions in config, then "
                      "AWS_REGION / the profile's region."),
]
InspectOpt = Annotated[
    bool,
    typer.Option("--inspect-values/--no-inspect-values",
                 help="Also read secret values to classify and fingerprint them. Values are "
                      "never printed or stored; needs read permission on the values."),
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state", metavar="PATH",
                 help="State database (default: $XDG_DATA_HOME/keyguard/state.db)."),
]
