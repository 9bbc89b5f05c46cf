"""[[usage.suppressions]]: validation as a whole, matching by type/key/alias/tag, expiry."""

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from keyguard.errors import ConfigError
from keyguard.model import Alert, Severity
from keyguard.usage.suppress import apply, load_suppressions

TYPES = ("canary", "geography", "prompt-mix", "velocity")
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
OK = {"owner": "ml-platform", "reason": "sanctioned distillation job", "expires": date(2026, 12, 31)}
ALERT = Alert(rule_id="prompt-mix", severity=Severity.HIGH, subject="sk-synth-1", message="m",
              key_alias="distill-nightly")


def load(*tables: dict[str, Any]) -> Any:
    return load_suppressions(tables, "keyguard.toml", TYPES)


def test_valid_entries_accept_both_type_spellings_and_a_toml_date() -> None:
    found = load({**OK, "type": "prompt_mix", "key": "sk-synth-*"},
                 {**OK, "type": "*", "alias": "distill-*", "expires": "2026-04-01"},
                 {**OK, "tag": "job=synthetic"})
    assert [s.type for s in found] == ["prompt-mix", "*", "*"]
    assert found[1].acceptance.expires == date(2026, 4, 1)
    assert found[0].describe() == "prompt-mix alerts on key sk-synth-*"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**OK, "key": "k", "until": 1}, "unknown key 'usage.suppressions[0].until'"),
        ({"reason": "r", "expires": "2027-01-01", "key": "k"}, "'usage.suppressions[0]' needs owner"),
        ({"owner": "a", "expires": "2027-01-01", "key": "k"}, "needs reason"),
        ({"owner": "a", "reason": "r", "key": "k"}, "needs expires"),
        ({**OK, "owner": " ", "key": "k"}, "'usage.suppressions[0].owner' must be a non-empty"),
        ({**OK, "expires": "soon", "key": "k"}, "'usage.suppressions[0].expires' must be a date"),
        ({**OK, "type": "nope", "key": "k"}, "'usage.suppressions[0].type' names unknown detector"),
        ({**OK, "type": 3, "key": "k"}, "'usage.suppressions[0].type' must be"),
        ({**OK, "type": "velocity"}, "'usage.suppressions[0]' picks no key"),
        ({**OK, "key": ""}, "'usage.suppressions[0].key' must be a non-empty string"),
        ({**OK, "tag": ["a"]}, "'usage.suppressions[0].tag' must be"),
    ],
)
def test_invalid_entries_name_the_dotted_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(table)
    assert message in str(info.value)
    assert str(info.value).startswith("keyguard.toml: ")


def test_the_whole_list_is_validated_before_any_use() -> None:
    with pytest.raises(ConfigError, match=r"usage\.suppressions\[1\]\.type"):
        load({**OK, "key": "k"}, {**OK, "key": "k", "type": "bogus"})


def test_matching_needs_every_selector_and_the_type() -> None:
    (by_key,) = load({**OK, "type": "prompt-mix", "key": "sk-synth-*"})
    assert by_key.covers(ALERT, {})
    assert not by_key.covers(replace(ALERT, rule_id="velocity"), {})
    assert not by_key.covers(replace(ALERT, subject="sk-prod-1"), {})
    (both,) = load({**OK, "key": "sk-synth-*", "alias": "other-*"})
    assert not both.covers(ALERT, {})
    (alias,) = load({**OK, "alias": "distill-*"})
    assert alias.covers(ALERT, {})
    assert not alias.covers(replace(ALERT, key_alias=None), {})


def test_tag_matching_uses_inventory_tags_with_value_globs() -> None:
    (tag,) = load({**OK, "tag": "job=synth*"})
    assert tag.covers(ALERT, {"job": "synthetic-data"})
    assert not tag.covers(ALERT, {"job": "web"})
    assert not tag.covers(ALERT, {})
    (bare,) = load({**OK, "tag": "sanctioned"})
    assert bare.covers(ALERT, {"sanctioned": ""})


def test_apply_splits_and_expired_entries_stop_suppressing() -> None:
    entries = load({**OK, "key": "sk-synth-*", "expires": "2026-03-09"},
                   {**OK, "tag": "job=synthetic"})
    other = replace(ALERT, subject="sk-prod-1")
    result = apply([ALERT, other], entries, NOW,
                   lambda key, alias: {"job": "synthetic"} if key == "sk-prod-1" else {})
    # the key glob expired yesterday: ALERT is shown again; the tag entry accepts other
    assert result.remaining == (ALERT,)
    assert [(a.subject, s.index) for a, s in result.suppressed] == [("sk-prod-1", 1)]
    assert [s.index for s in result.expired] == [0]


def test_valid_through_the_expiry_day() -> None:
    entries = load({**OK, "key": "sk-synth-*", "expires": "2026-03-10"})
    assert apply([ALERT], entries, NOW).remaining == ()
    assert apply([ALERT], entries, NOW.replace(day=11)).remaining == (ALERT,)


def test_without_inventory_a_tag_suppression_matches_nothing() -> None:
    entries = load({**OK, "tag": "job=synthetic"})
    assert apply([ALERT], entries, NOW).remaining == (ALERT,)


def test_every_command_validates_suppressions_up_front(tmp_path: Path) -> None:
    from keyguard.config import load_config
    from keyguard.validate import validate_config

    path = tmp_path / "keyguard.toml"
    path.write_text('[[usage.suppressions]]\nkey = "k"\nowner = "a"\nreason = "r"\n')
    with pytest.raises(ConfigError, match=r"'usage\.suppressions\[0\]' needs expires"):
        validate_config(load_config(path))
    full = Path(__file__).parents[1] / "data" / "config" / "valid" / "full.toml"
    validate_config(load_config(full))  # its geography suppression is valid
