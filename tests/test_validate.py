"""The whole configuration is validated whatever the command: a typo is exit 2 everywhere."""

import re
import tomllib
from pathlib import Path

import pytest

from keyguard.config import load_config, parse_config
from keyguard.errors import ConfigError
from keyguard.validate import validate_config

TYPOS = {
    "policy-setting": ('[policy.rules.rotation-max-age]\nmax-age-dayz = 3\n',
                       "unknown setting 'policy.rules.rotation-max-age.max-age-dayz'"),
    "policy-rule": ('[policy.rules.rotation-max-agee]\n', "unknown rule 'policy.rules.rotation-max-agee'"),
    "waiver": ('[[policy.waivers]]\nrule = "key-unused"\nowner = "a"\nreason = "r"\n',
               "'policy.waivers[0]' needs expires"),
    "detector": ('[usage.detectors.geograpy]\n', "unknown key 'usage.detectors.geograpy'"),
    "detector-param": ('[usage.detectors.geography]\ntravel-within = 5\n',
                       "unknown key 'usage.detectors.geography.travel-within'"),
    "scope": ('[[usage.scopes]]\nallow-countries = ["US"]\n', "'usage.scopes[0]' picks no key"),
}


@pytest.mark.parametrize("name", sorted(TYPOS))
def test_owner_checked_tables_are_validated_up_front(tmp_path: Path, name: str) -> None:
    text, message = TYPOS[name]
    path = tmp_path / "keyguard.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        validate_config(load_config(path))
    assert info.value.message.startswith(f"{path}: ")
    assert message in info.value.message


def test_valid_full_file_passes() -> None:
    full = Path(__file__).parent / "data" / "config" / "valid" / "full.toml"
    validate_config(load_config(full))  # raises on any problem


def test_every_keyguard_toml_example_in_the_readme_is_valid() -> None:
    """Documentation drift guard: a README example that no longer validates is a bug."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    checked = 0
    for block in blocks:
        raw = tomllib.loads(block)
        if "hook" in raw:  # `keyguard rotate --hooks FILE`, not keyguard.toml
            continue
        validate_config(parse_config(raw, Path("README.md")))
        checked += 1
    assert checked >= 2
