"""Property-based fuzz tests: importers, config and policy files, .env, hooks, journal."""
