"""Two tiny rules (a package of their own) for engine tests that must not depend on the real catalogue."""
