"""keyguard: API-key hygiene for platform teams.

This module holds only the version: ``import keyguard`` must never pull in boto3, duckdb
or a keyring backend, so ``keyguard --help`` and shell completion stay instant.
"""

__version__ = "0.1.0"
