"""completions/ must match what the app generates; regenerate with KEYGUARD_UPDATE_COMPLETIONS=1."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keyguard.cli import app

ROOT = Path(__file__).resolve().parents[2]
SHELLS = {"bash": "keyguard.bash", "zsh": "keyguard.zsh", "fish": "keyguard.fish"}


def generate(shell: str) -> str:
    result = CliRunner().invoke(app, [], prog_name="keyguard",
                                env={"_KEYGUARD_COMPLETE": f"source_{shell}"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_script_is_current(shell: str) -> None:
    path = ROOT / "completions" / SHELLS[shell]
    fresh = generate(shell)
    assert "keyguard" in fresh
    if os.environ.get("KEYGUARD_UPDATE_COMPLETIONS") == "1":
        path.write_text(fresh, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == fresh, (
        f"{path} drifted from the CLI; regenerate with KEYGUARD_UPDATE_COMPLETIONS=1 pytest {__file__}"
    )


def test_completion_offers_commands_and_sources() -> None:
    env = {"_KEYGUARD_COMPLETE": "complete_bash", "COMP_WORDS": "keyguard inv", "COMP_CWORD": "1"}
    result = CliRunner().invoke(app, [], prog_name="keyguard", env=env)
    assert "inventory" in result.stdout.split()
    env = {"_KEYGUARD_COMPLETE": "complete_bash",
           "COMP_WORDS": "keyguard inventory --source aws-s", "COMP_CWORD": "3"}
    result = CliRunner().invoke(app, [], prog_name="keyguard", env=env)
    offered = result.stdout.split()
    assert "aws-ssm" in offered
    assert "aws-secretsmanager" in offered
    assert "dotenv" not in offered
