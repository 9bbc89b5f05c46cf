"""scope-admin-key-placement: an organisation admin key stored somewhere not meant for admin keys.

Anthropic and OpenAI admin keys manage the whole organisation (create and revoke keys,
invite members, read usage). They belong in a few places marked for them; a copy next to
application secrets will eventually be read by an application or a person who only
needed an inference key. A store entry is "meant for admin keys" when it carries the
``admin_tag`` tag (any value but ``false``) or matches a glob in ``allowed_locations``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from keyguard.model import Finding, Inventory, KeyRecord
from keyguard.policies import NOT_USABLE, Policy, RuleContext, applicable


def admin_place(key: KeyRecord, settings: Mapping[str, Any]) -> bool:
    """True when the key's store entry is tagged or listed as a place for admin keys."""
    tag = str(settings["admin_tag"]).lower()
    value = next((v for k, v in key.tags.items() if k.lower() == tag), None)
    if value is not None and value.strip().lower() != "false":
        return True
    return any(fnmatch.fnmatchcase(key.name, glob) or fnmatch.fnmatchcase(key.location, glob)
               for glob in settings["allowed_locations"])


class ScopeAdminKeyPlacement:
    """Flag admin-kind keys (``admin_kinds``) outside places marked for admin keys."""

    id: ClassVar[str] = "scope-admin-key-placement"

    def evaluate(self, inventory: Inventory, ctx: RuleContext) -> Iterator[Finding]:
        """Yield one finding per admin key copy in an unmarked location.

        The provider's own listing of its admin keys (the issuing source, with no stored
        value) is not a placement: only records holding a value (a fingerprint) count.
        """
        for key, settings, severity in applicable(inventory, ctx, skip=NOT_USABLE):
            if key.kind not in settings["admin_kinds"] or key.fingerprint is None:
                continue
            if not admin_place(key, settings):
                yield ctx.finding(key, f"{key.kind} key stored in a location not tagged "
                                  f"{settings['admin_tag']}", severity, kind=key.kind,
                                  admin_tag=str(settings["admin_tag"]))


PLUGIN: type[Policy] = ScopeAdminKeyPlacement
