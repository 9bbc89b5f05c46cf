"""Sparkline of a key's hourly volume around its alerts, from the real store."""

from datetime import UTC, datetime, timedelta

from keyguard.model import UsageEvent
from keyguard.usage.sparkline import HOURS_BEFORE, hourly_volume, markers, sparkline
from keyguard.usage.store import UsageStore

T0 = datetime(2026, 3, 9, 14, 35, tzinfo=UTC)


def event(key: str, when: datetime, requests: int = 1) -> UsageEvent:
    return UsageEvent(time=when, key_id=key, source_format="litellm", requests=requests)


def test_levels_scale_to_the_peak_and_blank_means_no_use() -> None:
    assert sparkline([0, 1, 4, 8]) == " ▁▄█"
    assert sparkline([0, 1, 4, 8], unicode=False) == " .=@"
    assert sparkline([0, 0]) == "  "
    assert sparkline([]) == ""
    # any use shows, however small next to the peak
    assert sparkline([1, 1000])[0] == "▁"


def test_volume_around_the_first_alert_from_the_store() -> None:
    with UsageStore() as store:
        store.add([event("k", T0 - timedelta(hours=3), 5), event("k", T0 - timedelta(hours=3)),
                   event("k", T0, 40), event("k", T0 + timedelta(minutes=70), 20),
                   event("k", T0 - timedelta(days=3), 99),  # outside the span
                   event("other", T0, 1000)])
        volume = hourly_volume(store, "k", [(T0, T0 + timedelta(minutes=70)),
                                            (T0 + timedelta(hours=30), None)])
    assert volume is not None
    assert volume.start == datetime(2026, 3, 8, 14, tzinfo=UTC)
    assert len(volume.counts) == 48
    assert volume.counts[HOURS_BEFORE - 3] == 6
    assert volume.counts[HOURS_BEFORE] == 40
    assert volume.counts[HOURS_BEFORE + 1] == 20
    assert sum(volume.counts) == 66
    assert volume.peak == 40
    # the first alert covers two hours; the second starts past the span and is clipped
    assert volume.marked == frozenset({HOURS_BEFORE, HOURS_BEFORE + 1})
    assert markers(volume) == " " * HOURS_BEFORE + "^^"


def test_no_alert_start_means_no_volume() -> None:
    with UsageStore() as store:
        assert hourly_volume(store, "k", [(None, None)]) is None
