"""[usage.detectors] and [[usage.scopes]] validation and merging with command-line values."""

from pathlib import Path

import pytest

from keyguard.config import load_config, parse_config
from keyguard.errors import ConfigError
from keyguard.usage.detectors.geography import GeographyParams
from keyguard.usage.settings import load_settings

FULL = Path(__file__).parents[1] / "data" / "config" / "valid" / "full.toml"


def settings_of(raw: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    config = parse_config({"usage": raw}, Path("kg.toml"))
    return load_settings(config.usage, "kg.toml", **kwargs)  # type: ignore[arg-type]


def test_full_file_settings_reach_the_detectors() -> None:
    config = load_config(FULL)
    settings = load_settings(config.usage, str(FULL), canaries=("cli-canary",),
                             allow_countries=("fr",))
    assert settings.canaries == ("AKIAEXAMPLECANARY001", "cli-canary")
    assert settings.allow_countries == ("DE", "FR", "US")
    assert settings.learning_days == 14.0
    assert settings.learning_min_events == 50
    assert settings.params_for("geography", GeographyParams).travel_within_minutes == 90.0


def test_defaults_when_nothing_is_configured() -> None:
    settings = settings_of({})
    assert settings.params_for("geography", GeographyParams) == GeographyParams()
    assert settings.disabled == frozenset()
    assert settings.allow_countries_for("any-key") == ()


def test_enabled_false_disables_a_detector() -> None:
    settings = settings_of({"detectors": {"geography": {"enabled": False}}})
    assert settings.disabled == frozenset({"geography"})


def test_scope_by_tag_replaces_the_global_allow_list() -> None:
    settings = settings_of(
        {"detectors": {"allow-countries": ["US"]},
         "scopes": [{"tag": "team=eu", "allow-countries": ["de", "FR"]},
                    {"keys": ["sk-apac-*"], "allow-countries": ["JP"]}]},
        key_tags={"key-eu": {"team": "eu"}, "key-us": {"team": "us"}})
    assert settings.allow_countries_for("key-eu") == ("DE", "FR")
    assert settings.allow_countries_for("key-us") == ("US",)
    assert settings.allow_countries_for("hash1", "sk-apac-batch") == ("JP",)
    assert settings.allow_countries_for("unknown") == ("US",)


@pytest.mark.parametrize(("raw", "message"), [
    ({"detectors": {"velocity-typo": {}}}, "unknown key 'usage.detectors.velocity-typo'"),
    ({"detectors": {"geography": {"travel-within": 5}}},
     "unknown key 'usage.detectors.geography.travel-within'"),
    ({"detectors": {"geography": {"travel-within-minutes": "soon"}}},
     "'usage.detectors.geography.travel-within-minutes' must be a non-negative number"),
    ({"detectors": {"geography": {"enabled": "no"}}}, "'usage.detectors.geography.enabled'"),
    ({"detectors": {"geography": 3}}, "'usage.detectors.geography' must be a table"),
    ({"detectors": {"allow-countries": ["USA"]}}, "two-letter country codes, got 'USA'"),
    ({"detectors": {"learning-days": -1}}, "'usage.detectors.learning-days' must be a non-negative"),
    ({"scopes": [{"allow-countries": ["US"]}]}, "'usage.scopes[0]' picks no key"),
    ({"scopes": [{"tag": "a", "bogus": 1}]}, "unknown key 'usage.scopes[0].bogus'"),
    ({"scopes": [{"keys": "k*"}]}, "'usage.scopes[0].keys' must be a list"),
])
def test_bad_settings_are_one_line_errors_naming_the_key(raw: dict[str, object],
                                                          message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_of(raw)
    assert message in info.value.message
    assert info.value.message.startswith("kg.toml: ")
    assert "\n" not in str(info.value)
