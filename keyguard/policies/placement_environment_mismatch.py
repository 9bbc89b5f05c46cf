"""placement-environment-mismatch: a key labelled for one environment, stored in another's place.

A production key in a staging store is readable by everything that can read staging
(usually far more people and workloads); a dev key in a production path means production
runs on a throwaway credential. Three independent claims are compared: the environment
tag (``[labels] environment-tags``), the environment the name or location implies
(``[labels] environment-patterns``) and the account's environment (``accounts``). Any two
that disagree make a finding. Tag values are normalised with the same patterns, so
``production`` and ``prod`` agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, ClassVar

from keyguard.config import LabelsConfig
from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import Policy, RuleContext, applicable


@cache
def _compiled(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((env, re.compile(rx, re.IGNORECASE)) for env, rx in items)


def pattern_environment(text: str, labels: LabelsConfig) -> str | None:
    """The first environment whose pattern matches ``text`` (as the inventory labels)."""
    for env, pattern in _compiled(tuple(labels.environment_patterns.items())):
        if pattern.search(text):
            return env
    return None


def claims(key: KeyRecord, settings: Mapping[str, Any], labels: LabelsConfig) -> dict[str, str]:
    """What the tag, the name/location and the account each say the environment is."""
    out: dict[str, str] = {}
    lowered = {k.lower(): v.strip() for k, v in key.tags.items() if v.strip()}
    tag = next((lowered[t.lower()] for t in labels.environment_tags if t.lower() in lowered), None)
    if tag is not None:
        out["tag"] = pattern_environment(tag, labels) or tag.lower()
    if key.source not in settings["account_only_sources"]:
        named = pattern_environment(f"{key.name} {key.location}", labels)
        if named is not None:
            out["location"] = named
    accounts: Mapping[str, Any] = settings["accounts"]
    if key.account is not None and key.account in accounts:
        out["account"] = str(accounts[key.account]).lower()
    return out


class PlacementEnvironmentMismatch:
    """Flag keys whose tag, location and account disagree about the environment."""

    id: ClassVar[str] = "placement-environment-mismatch"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per key with two or more conflicting environment claims."""
        for key, settings, severity in applicable(inventory, ctx):
            said = claims(key, settings, ctx.labels)
            if len(set(said.values())) < 2:
                continue
            text = ", ".join(f"{origin} says {env}" for origin, env in said.items())
            yield ctx.finding(key, f"environment mismatch: {text}", severity,
                              **{f"{origin}_environment": env for origin, env in said.items()})


PLUGIN: type[Policy] = PlacementEnvironmentMismatch
