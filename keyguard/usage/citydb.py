"""City-level IP geolocation from a MaxMind City database, for the impossible-travel check.

Why optional: the offline iptocc table knows countries only, which is enough for "first
use from a new country" but coarse for travel: New York to San Francisco in 20 minutes is
one country, and Strasbourg to Kehl is two countries 5 km apart. With a GeoIP2 or
GeoLite2 *City* database (``.mmdb``, which users licence and download from MaxMind
themselves) the geography detector judges travel by distance and speed instead.

``maxminddb`` is imported only when a database is configured (``pip install
'keyguard[geoip]'``). Lookups are memoised per address: a log repeats a few thousand
addresses a million times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyguard.errors import ConfigError

#: Accuracy radius assumed when the database gives none (km).
DEFAULT_RADIUS_KM = 100.0
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Place:
    """Where an address is, as precisely as the database knows."""

    name: str  # "New York, US"; the country alone when the city is unknown
    country: str | None
    lat: float
    lon: float
    radius_km: float  # the database's accuracy radius: the true place is probably within it


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance between two places (haversine), in km."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlon = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class CityDatabase:
    """A MaxMind City database opened once per scan.

    Raises:
        ConfigError: the file is missing or not a City database, or maxminddb is absent;
            ``setting`` names the configuration key in the message.

    """

    def __init__(self, path: Path, setting: str) -> None:
        self.path = path
        try:
            import maxminddb
        except ImportError:
            raise ConfigError(f"{setting}: reading {path} needs the maxminddb package",
                              "pip install 'keyguard[geoip]'") from None
        if not path.is_file():
            raise ConfigError(f"{setting}: {path} is not a file",
                              "give the path of a GeoIP2/GeoLite2 City .mmdb file") from None
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError(f"{setting}: {path} is not a MaxMind database ({exc})",
                              "give the path of a GeoIP2/GeoLite2 City .mmdb file") from None
        kind = str(self._reader.metadata().database_type)
        if "city" not in kind.lower():
            self._reader.close()
            raise ConfigError(f"{setting}: {path} is a {kind} database, not a City database",
                              "travel needs coordinates: use GeoIP2-City or GeoLite2-City")
        self._cache: dict[str, Place | None] = {}

    def locate(self, ips: Iterable[str]) -> dict[str, Place]:
        """The place of each address the database locates (others are left out)."""
        found: dict[str, Place] = {}
        for ip in ips:
            if ip not in self._cache:
                self._cache[ip] = self._lookup(ip)
            place = self._cache[ip]
            if place is not None:
                found[ip] = place
        return found

    def _lookup(self, ip: str) -> Place | None:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:  # not an IP address (a host name from a gateway log)
            return None
        if not isinstance(record, dict):
            return None
        location = record.get("location")
        if not isinstance(location, dict):
            return None
        lat, lon = location.get("latitude"), location.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return None
        radius = location.get("accuracy_radius")
        country = _get(record, "country", "iso_code")
        city = _get(record, "city", "names", "en")
        name = f"{city}, {country}" if city and country else city or country or f"{lat:.1f},{lon:.1f}"
        return Place(name, country, float(lat), float(lon),
                     float(radius) if isinstance(radius, int | float) else DEFAULT_RADIUS_KM)

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()


def _get(record: dict[str, Any], *path: str) -> str | None:
    current: Any = record
    for part in path:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current if isinstance(current, str) and current else None
