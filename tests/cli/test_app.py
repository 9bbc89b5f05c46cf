"""Root app: --version, --help that teaches, lazy imports, `python -m keyguard`, plugins."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keyguard import __version__
from tests.cli.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]


def test_version(cli: Cli) -> None:
    result = cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"keyguard {__version__}"


def test_help_documents_exit_codes_and_commands(cli: Cli) -> None:
    result = cli(["--help"])
    assert result.exit_code == 0
    for needle in ("inventory", "check", "rules", "demo", "plugins", "Exit codes",
                   "3 partial result", "--config"):
        assert needle in result.stdout


@pytest.mark.parametrize("command", ["inventory", "check", "rules", "demo", "plugins"])
def test_every_command_has_help(cli: Cli, command: str) -> None:
    result = cli([command, "--help"])
    assert result.exit_code == 0
    assert "--format" in result.stdout
    assert len(result.stdout.splitlines()) > 8


def test_readme_mentions_every_command_and_exit_code(cli: Cli) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("inventory", "check", "rules", "demo", "plugins"):
        assert f"keyguard {command}" in readme
    for code in range(5):
        assert f"| {code} |" in readme


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom keyguard.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0\n"
        "r = CliRunner().invoke(app, ['inventory', '--help'])\nassert r.exit_code == 0\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'keyring', 'duckdb', 'secretstorage',"
        " 'moto', 'sqlite3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_command_annotations_are_objects_not_strings() -> None:
    """typer evaluates string annotations on every start (see keyguard/cli/__init__.py)."""
    from keyguard.cli import main as _  # noqa: F401 - registers every command

    cli_modules = [name for name in sys.modules if name.startswith("keyguard.cli")]
    assert len(cli_modules) >= 10
    for name in cli_modules:
        module = sys.modules[name]
        assert getattr(module, "annotations", None) is None, name  # no __future__ import
    from keyguard.cli import app

    commands = list(app.registered_commands)
    groups = [group.typer_instance for group in app.registered_groups]
    while groups:
        sub = groups.pop()
        if sub is not None:
            commands += sub.registered_commands
            groups += [group.typer_instance for group in sub.registered_groups]
    assert len(commands) >= 20
    for info in commands:
        callback = info.callback
        assert callback is not None
        strings = [k for k, v in callback.__annotations__.items() if isinstance(v, str)]
        assert strings == [], (callback.__name__, strings)


def test_python_dash_m_matches_console_script() -> None:
    result = subprocess.run([sys.executable, "-m", "keyguard", "--version"], capture_output=True,
                            text=True, check=False, cwd=ROOT)
    assert result.returncode == 0
    assert result.stdout.strip() == f"keyguard {__version__}"


def test_no_args_shows_help(cli: Cli) -> None:
    result = cli([])
    assert "Usage: keyguard" in result.output
    assert result.exit_code in (0, 2)


def test_unknown_option_is_usage_error(cli: Cli) -> None:
    result = cli(["inventory", "--bogus"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_plugins_lists_sources_and_formats(cli: Cli) -> None:
    result = cli(["plugins", "-f", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)["plugins"]
    names = {(r["type"], r["name"]) for r in rows}
    for expected in (("source", "dotenv"), ("source", "aws-ssm"), ("source", "aws-iam"),
                     ("source", "aws-secretsmanager"), ("source", "keyring"),
                     ("format", "json"), ("format", "table"), ("format", "csv"),
                     ("format", "sarif"), ("rule", "rotation-max-age"), ("rule", "waiver-expired"),
                     ("importer", "cloudtrail"), ("importer", "litellm"),
                     ("detector", "velocity"), ("detector", "prompt-mix"),
                     ("detector", "coordination"), ("rotator", "aws-iam"),
                     ("rotation-store", "aws-ssm"), ("rotation-store", "vault")):
        assert expected in names
    assert all(r["builtin"] for r in rows)
    table = cli(["plugins"])
    assert "keyguard.sources.dotenv:PLUGIN" in table.stdout


PASTED = "sk-ant-api03-" + "Zr4k" * 23 + "wAA"  # pragma: allowlist secret


@pytest.mark.parametrize("args", [["inventory", PASTED], ["check", "--fail-on", PASTED],
                                  ["rotate", "status", PASTED], ["usage", "scan", PASTED, PASTED],
                                  [PASTED]])
def test_a_key_pasted_on_the_command_line_is_never_echoed(cli: Cli, args: list[str]) -> None:
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert "error" in result.output.lower()
    assert PASTED[:24] not in result.output
