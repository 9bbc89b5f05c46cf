"""Every command validates the whole configuration first: a typo is exit 2, not ignored."""

import pytest

from tests.cli.conftest import Cli

TYPO = '[policy.rules.rotation-max-age]\nmax-age-dayz = 3\n'


@pytest.mark.parametrize("args", [["inventory", "--source", "dotenv"], ["rules"], ["plugins"],
                                  ["usage", "scan", "missing.jsonl"]])
def test_every_command_refuses_a_typo_with_exit_2(cli: Cli, args: list[str]) -> None:
    (cli.workdir / "keyguard.toml").write_text(TYPO)
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert "max-age-dayz" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["rules"], ["plugins"], ["usage", "scan", "missing.jsonl"]])
def test_a_missing_city_database_is_exit_2_before_any_work(cli: Cli, args: list[str]) -> None:
    (cli.workdir / "keyguard.toml").write_text(
        '[usage.detectors.geography]\ncity-database = "GeoLite2-City.mmdb"\n')
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert "usage.detectors.geography.city-database" in result.output
    assert "GeoLite2-City.mmdb is not a file" in result.output
    assert "Traceback" not in result.output
