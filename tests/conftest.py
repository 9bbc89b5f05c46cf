"""Shared pytest setup: real-service fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.keyring_service", "tests.fixtures.providers",
                  "tests.fixtures.vault",
                  # Hypothesis profiles (ci default, HYPOTHESIS_PROFILE=nightly) and the
                  # generated-case count with its 10,000 floor on a full run.
                  "tests.fuzz.profiles"]
