"""Shared pytest setup: real-service fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.keyring_service", "tests.fixtures.providers",
                  "tests.fixtures.vault"]
