"""Validate the whole configuration up front, whatever the command.

Why: ``[policy.rules]`` and ``[usage.detectors]`` are raw tables checked by the code that
owns them (the rule catalogue, the detector catalogue). Without this step a typo in a rule
setting would only be caught by ``keyguard check`` and silently ignored by ``inventory``
or a cron job running ``usage scan``; a typo must never silently disable a policy.
"""

from __future__ import annotations

from keyguard.config import Config


def validate_config(config: Config) -> None:
    """Raise ConfigError (one line naming the file and dotted key) for any invalid table.

    Built-in defaults are valid by construction, so catalogues are only loaded when the
    file sets one of the owner-checked tables (keeps commands that need no policy fast).
    """
    where = str(config.path or "config")
    policy = config.policy
    if policy.rules or policy.waivers:
        from keyguard.engine import load_policy

        load_policy(policy, where)
    usage = config.usage
    if usage.detectors or usage.scopes:
        from keyguard.usage.settings import load_settings

        load_settings(usage, where)
    if usage.suppressions:
        from keyguard.usage.detectors import DETECTORS
        from keyguard.usage.suppress import load_suppressions

        load_suppressions(usage.suppressions, where, DETECTORS.names())
