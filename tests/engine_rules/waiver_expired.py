"""The real waiver-expired rule, registered in the test catalogue (its metadata stays in keyguard)."""

from keyguard.policies.waiver_expired import PLUGIN

__all__ = ["PLUGIN"]
