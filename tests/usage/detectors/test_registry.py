"""Every detector module registers under its id and documents its parameters."""

from keyguard.usage.detectors import DETECTORS


def test_registry_names_match_detector_ids() -> None:
    assert {"canary", "geography"} <= set(DETECTORS.names())
    for name in DETECTORS.names():
        assert DETECTORS.load(name).id == name
