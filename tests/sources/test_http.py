"""The provider sources' JSON helpers: timestamp parsing and retry-after, on arbitrary input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from keyguard.sources._http import retry_after, rfc3339, unix

# NOTE: hypothesis takes naive bounds and attaches the timezone itself.
AWARE = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),  # noqa: DTZ001
                     timezones=st.just(UTC))


@given(AWARE, st.integers(min_value=0, max_value=999))
def test_rfc3339_round_trips_with_nanoseconds(when: datetime, nanos: int) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos:03d}Z"  # GCP style: 9 digits
    assert rfc3339(text) == when


@given(AWARE, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_rfc3339_offsets_become_utc(when: datetime, minutes: int) -> None:
    local = when.astimezone(timezone(timedelta(minutes=minutes)))
    assert rfc3339(local.isoformat()) == when


def test_rfc3339_naive_is_utc_and_junk_is_none() -> None:
    assert rfc3339("2025-06-01T10:00:00.120") == datetime(2025, 6, 1, 10, 0, 0, 120000, tzinfo=UTC)
    for junk in ("", "yesterday", None, 5, "2025-13-01T00:00:00Z"):
        assert rfc3339(junk) is None


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()))
def test_unix_never_raises(value: object) -> None:
    got = unix(value)
    assert got is None or got.tzinfo is UTC


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("0.5") == 0.5
    assert retry_after("-3") == 0.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    later = retry_after(format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True))
    assert later is not None
    assert 25 <= later <= 31
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # already past
