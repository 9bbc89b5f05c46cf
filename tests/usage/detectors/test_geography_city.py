"""Geography detector, city level: impossible travel by distance and speed (MaxMind City db)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from keyguard.config import UsageConfig
from keyguard.errors import ConfigError
from keyguard.model import Alert, UsageEvent
from keyguard.usage.citydb import CityDatabase, Place, distance_km
from keyguard.usage.detectors import DetectorSettings
from keyguard.usage.detectors.geography import GeographyParams
from keyguard.usage.settings import load_settings
from tests.fixtures.citydb import PLACES, write_city_db
from tests.usage.detectors.common import START
from tests.usage.detectors.common import scan as scan_all


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_city_db(tmp_path_factory.mktemp("geoip") / "GeoLite2-City.mmdb")


def at(key: str, when: datetime, place: str) -> UsageEvent:
    ip, _city, country, *_ = PLACES[place]
    return UsageEvent(time=when, key_id=key, source_format="litellm", source_ip=ip,
                      country=country, origin=f"spend.jsonl:{int(when.timestamp())}")


def history(key: str, places: tuple[str, ...], days: int = 14) -> list[UsageEvent]:
    """Weeks of use, several times a day, each hour from the next of ``places`` in turn."""
    out: list[UsageEvent] = []
    for day in range(days):
        for i, hour in enumerate((9, 11, 13, 15)):
            out.append(at(key, START + timedelta(days=day, hours=hour), places[i % len(places)]))
    return out


def scan(events: list[UsageEvent], db: Path | None, **params: float) -> list[Alert]:
    geo = GeographyParams(city_database=str(db) if db else "", **params)
    window_start = START + timedelta(days=14)
    from keyguard.usage.store import Window

    window = Window(window_start, max(e.time for e in events))
    return scan_all(events, window, DetectorSettings(params={"geography": geo}), only="geography")


def test_same_country_hop_too_fast_for_a_plane_alerts_with_distance_and_speed(city_db: Path) -> None:
    day = START + timedelta(days=14, hours=10)
    events = [*history("k", ("nyc",)), at("k", day, "nyc"), at("k", day + timedelta(minutes=20), "sf")]
    alerts = scan(events, city_db)
    assert len(alerts) == 1
    evidence = alerts[0].evidence
    assert evidence["reasons"] == "impossible-travel"
    assert (evidence["country"], evidence["travel_from"], evidence["travel_to"]) == (
        "US", "New York, US", "San Francisco, US")
    assert 4000 < int(evidence["travel_km"]) < 4300
    assert evidence["travel_gap_minutes"] == 20.0
    assert "km/h, faster than travel" in alerts[0].message
    # the country-level check cannot see a hop inside one country
    assert scan(events, None) == []


def test_cross_border_neighbours_are_not_travel_at_city_level(city_db: Path) -> None:
    day = START + timedelta(days=14, hours=10)
    events = [*history("k", ("strasbourg",)), at("k", day, "strasbourg"),
              at("k", day + timedelta(minutes=10), "kehl")]
    city = scan(events, city_db)
    assert [a.evidence["reasons"] for a in city] == ["new-country"]  # DE is new; 5 km is no trip
    country = scan(events, None)
    assert [a.evidence["reasons"] for a in country] == ["new-country, impossible-travel"]


def test_slow_enough_hops_and_accuracy_radii_do_not_alert(city_db: Path) -> None:
    day = START + timedelta(days=14, hours=1)
    slow = [*history("k", ("nyc",)), at("k", day, "nyc"), at("k", day + timedelta(hours=6), "sf")]
    assert scan(slow, city_db) == []  # 4,130 km in 6 h is a flight
    # Boston is 300 km from New York but its address is only known within 200 km
    vague = [*history("k", ("nyc",)), at("k", day, "nyc"), at("k", day + timedelta(minutes=10), "boston")]
    assert scan(vague, city_db) == []
    assert scan(vague, city_db, min_travel_km=100.0) == []  # 86 km net in 10 min: reachable
    near = [*history("k", ("nyc",)), at("k", day, "nyc"), at("k", day + timedelta(minutes=2), "boston")]
    assert scan(near, city_db, min_travel_km=100.0, max_speed_kmh=500.0) != []


def test_pairs_of_places_the_key_already_uses_do_not_alert(city_db: Path) -> None:
    # a key shared by the New York and San Francisco offices, used from both every day
    day = START + timedelta(days=14, hours=10)
    events = [*history("k", ("nyc", "sf")), at("k", day, "nyc"), at("k", day + timedelta(minutes=15), "sf")]
    assert scan(events, city_db) == []


def test_the_new_place_is_blamed_whichever_side_it_is_on(city_db: Path) -> None:
    day = START + timedelta(days=14, hours=10)
    events = [*history("k", ("sf",)), at("k", day, "nyc"), at("k", day + timedelta(minutes=30), "sf")]
    alerts = scan(events, city_db)
    assert [(a.evidence["travel_to"], a.evidence["travel_from"]) for a in alerts] == [
        ("New York, US", "San Francisco, US")]


def test_no_travel_while_learning(city_db: Path) -> None:
    day = START + timedelta(days=2, hours=10)
    events = [*history("k", ("nyc",), days=2), at("k", day, "nyc"), at("k", day + timedelta(minutes=20), "sf")]
    from keyguard.usage.store import Window

    geo = GeographyParams(city_database=str(city_db))
    alerts = scan_all(events, Window(day, day + timedelta(hours=1)),
                      DetectorSettings(params={"geography": geo}), only="geography")
    assert alerts == []


# -- the database and its setting -------------------------------------------------------------

def test_city_database_lookups(city_db: Path) -> None:
    db = CityDatabase(city_db, "setting")
    try:
        found = db.locate(["20.1.1.1", "20.7.7.7", "192.0.2.1", "gateway.internal", "20.1.1.1"])
    finally:
        db.close()
    assert set(found) == {"20.1.1.1", "20.7.7.7"}
    assert found["20.7.7.7"].name == "US"  # no city: the country names the place
    assert round(distance_km(found["20.1.1.1"], Place("x", None, 37.7749, -122.4194, 0))) in range(4120, 4140)


def test_setting_is_checked_for_every_command_and_relative_to_the_config(
        city_db: Path, tmp_path: Path) -> None:
    config = tmp_path / "keyguard.toml"
    config.write_text("")
    (tmp_path / "geo").mkdir()
    (tmp_path / "geo" / "City.mmdb").write_bytes(city_db.read_bytes())
    usage = UsageConfig(detectors={"geography": {"city-database": "geo/City.mmdb"}})
    settings = load_settings(usage, str(config))
    resolved = settings.params_for("geography", GeographyParams)
    assert resolved.city_database == str(tmp_path / "geo" / "City.mmdb")

    missing = dataclasses.replace(usage, detectors={"geography": {"city-database": "nope.mmdb"}})
    with pytest.raises(ConfigError, match=r"usage.detectors.geography.city-database'.*nope.mmdb is not a file"):
        load_settings(missing, str(config))
    (tmp_path / "junk.mmdb").write_bytes(b"not a database")
    junk = dataclasses.replace(usage, detectors={"geography": {"city-database": "junk.mmdb"}})
    with pytest.raises(ConfigError, match="is not a MaxMind database"):
        load_settings(junk, str(config))
    country_db = write_city_db(tmp_path / "Country.mmdb", "GeoLite2-Country")
    wrong = dataclasses.replace(usage, detectors={"geography": {"city-database": str(country_db)}})
    with pytest.raises(ConfigError, match="not a City database"):
        load_settings(wrong, str(config))
    negative = dataclasses.replace(usage, detectors={"geography": {"max-speed-kmh": 0}})
    with pytest.raises(ConfigError, match="max-speed-kmh' must be positive"):
        load_settings(negative, str(config))
