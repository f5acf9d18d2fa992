"""Places: which town a citizen means by what they typed, and how far two
places are. Pure: no I/O (the towns themselves are read by service.places).

A town is matched on a key that forgets case, accents, Arabic hamza and
vowel marks, hyphens and apostrophes ("saint-etienne", "Saint Étienne" and
"SAINT-ÉTIENNE" are one key), among the names GeoNames gives it in every
language. When several towns of the countries asked share the key (a
Saint-Denis in every region), the most populous is meant: a citizen who
lives in a smaller one gets the nearest large town's distance, which is what
the distance is for.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from service.domain.errors import N_, ValidationFailed
from service.domain.fields import TOWN_MAX

# The mean radius of the Earth (IUGG), in kilometres.
EARTH_RADIUS_KM = 6371.0088
# What a manager may set as the distance of a mobile day's announcement.
ALERT_KM_MIN = 1
ALERT_KM_MAX = 1000

# Alef with hamza or madda, and alef wasla, read as a bare alef; the
# tatweel (a stretching stroke) is dropped.
_ARABIC = str.maketrans({"\u0622": "\u0627", "\u0623": "\u0627", "\u0625": "\u0627",
                         "\u0671": "\u0627", "\u0640": None})  # fmt: skip
# Separators inside a name: hyphens, apostrophes, dots, commas, slashes.
_SEPARATORS = str.maketrans(dict.fromkeys("-\u2010\u2011\u2012\u2013\u2014'\u2019\u02bc.,/()", " "))


@dataclass(frozen=True, slots=True)
class Place:
    """A town: its name (as GeoNames writes it), country and coordinates."""

    name: str
    country: str
    latitude: float
    longitude: float
    population: int


def place_key(text: str) -> str:
    """The key a typed town and a known name are compared on."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_ARABIC).translate(_SEPARATORS).split())


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def within(a: tuple[float, float], b: tuple[float, float], km: float) -> bool:
    return distance_km(a, b) <= km


def best(candidates: Iterable[Place]) -> Place | None:
    """The town meant among those sharing a key: the most populous (then by
    name and place, so that the choice never depends on the data's order)."""
    return max(
        candidates,
        key=lambda p: (p.population, p.name, p.latitude, p.longitude),
        default=None,
    )


def keys_of(text: str) -> list[str]:
    """The keys tried for what was typed, best first: all of it, then what
    comes before a comma ("Orléans, France")."""
    keys = [place_key(text)]
    if "," in text:
        keys.append(place_key(text.split(",", 1)[0]))
    return [k for k in dict.fromkeys(keys) if k]


def find(
    text: str, countries: Sequence[str], index: Mapping[str, Mapping[str, Sequence[Place]]]
) -> Place | None:
    """The town `text` names in one of `countries`, from `index` (country ->
    key -> towns), or None."""
    for key in keys_of(text):
        found = best(p for c in countries for p in index.get(c, {}).get(key, ()))
        if found is not None:
            return found
    return None


def town_text(raw: object, field: str) -> str:
    """What was typed as a town, cleaned, or ValidationFailed naming `field`."""
    text = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not text or len(text) > TOWN_MAX:
        raise ValidationFailed({field: N_("Enter the name of your town, at most 100 characters.")})
    return text


def unknown_town(field: str) -> ValidationFailed:
    return ValidationFailed(
        {
            field: N_(
                "We do not know this town in this consulate's countries. Check its spelling, "
                "or give the nearest larger town."
            )
        }
    )


def parse_alert_km(raw: object, field: str = "alert_km") -> int:
    text = raw.strip() if isinstance(raw, str) else ""
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 5 else 0
    if not ALERT_KM_MIN <= value <= ALERT_KM_MAX:
        raise ValidationFailed({field: N_("Give a distance from 1 to 1000 km.")})
    return value


def parse_coordinates(
    raw_latitude: object, raw_longitude: object, field: str = "latitude"
) -> tuple[float, float] | None:
    """Coordinates a manager typed (decimal degrees), None when both are
    empty, or ValidationFailed naming `field`."""
    texts = [r.strip() if isinstance(r, str) else "" for r in (raw_latitude, raw_longitude)]
    if not any(texts):
        return None
    try:
        latitude, longitude = (float(t.replace(",", ".")) for t in texts)
    except ValueError:
        latitude = longitude = math.nan
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValidationFailed(
            {field: N_("Give the latitude and longitude in degrees, like 47.90 and 1.90.")}
        )
    return latitude, longitude
