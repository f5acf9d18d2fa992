"""Public holidays that close an office, from the `holidays` package. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import holidays as holidays_lib
from hijridate import Gregorian, Hijri

from service.domain.models import LANGUAGES, TEXT_FALLBACK


@dataclass(frozen=True, slots=True)
class Holiday:
    day: date
    names: dict[str, str]  # language -> name (every language of LANGUAGES)


# A holiday on a page in a language the package has no names in: a name in
# another language was read by few (a French holiday on an Arabic page said
# "Christmas Day"). The catalogs' words for a closure's source "holiday".
PUBLIC_HOLIDAY = {
    "ar": "عطلة رسمية",
    "fr": "Jour férié",
    "en": "Public holiday",
    "es": "Día festivo",
    "zgh": "ⴰⵙⵙ ⵏ ⵓⵙⵓⵏⴼⵓ",
}
# Our own names for a country's holidays in a language the package lacks, by
# the package's American English name: the Spanish pages of a consulate in
# Spain named Morocco's holidays in French. A day with a name not listed
# here keeps the fallback language's.
_OUR_NAMES: dict[str, dict[str, dict[str, str]]] = {
    "es": {
        "MA": {
            "New Year's Day": "Año Nuevo",
            "Proclamation of Independence Day": "Manifiesto de la Independencia",
            "Amazigh New Year": "Año Nuevo amazigh",
            "Eid al-Fitr": "Aid al Fitr",
            "Labor Day": "Fiesta del Trabajo",
            "Eid al-Adha": "Aid al Adha",
            "Islamic New Year": "Año Nuevo islámico",
            "Throne Day": "Fiesta del Trono",
            "Oued Ed-Dahab Day": "Día de Oued Eddahab",
            "Revolution Day": "Revolución del Rey y del Pueblo",
            "Youth Day": "Fiesta de la Juventud",
            "Prophet's Birthday": "Nacimiento del Profeta",
            "Unity Day": "Fiesta de la Unidad",
            "Green March": "Marcha Verde",
            "Independence Day": "Fiesta de la Independencia",
        },
        "FR": {
            "New Year's Day": "Año Nuevo",
            "Easter Monday": "Lunes de Pascua",
            "Labor Day": "Fiesta del Trabajo",
            "Victory Day": "Día de la Victoria",
            "Ascension Day": "Ascensión",
            "Pentecost Monday": "Lunes de Pentecostés",
            "National Day": "Fiesta Nacional",
            "Assumption Day": "Asunción",
            "All Saints' Day": "Todos los Santos",
            "Armistice Day": "Día del Armisticio",
            "Christmas Day": "Navidad",
            # Alsace and Moselle's own.
            "Good Friday": "Viernes Santo",
            "Saint Stephen's Day": "San Esteban",
        },
    },
}
# What the package adds to a name whose date is an estimate (Islamic holidays).
_ESTIMATED = (" (estimated)", {"es": " (fecha estimada)"})
# Two countries' names of one day, joined as each language punctuates a list.
_JOIN = {"ar": "، ", "fr": " ; "}
# Our languages the package spells otherwise.
_PACKAGE_LANGUAGE = {"en": "en_US"}


def _names(region: str, years: list[int], language: str) -> dict[date, str | None]:
    """Holiday names of a country ("FR") or a subdivision ("CA-QC": Quebec's
    holidays, which a consulate in Montreal keeps, beside the federal ones);
    None where the package has no name in `language` (nor its fallback)."""
    country, _, subdiv = region.partition("-")
    cls = holidays_lib.country_holidays(country).__class__
    supported = getattr(cls, "supported_languages", ())
    ours = _OUR_NAMES.get(language, {}).get(country) if language not in supported else None
    if ours is not None:
        english = _names(region, years, "en")
        fallback = _names(region, years, TEXT_FALLBACK[language])
        return {
            day: _our_name(name, ours, language) or fallback[day] for day, name in english.items()
        }
    # A Tamazight page shows the Arabic name when the package has no zgh one;
    # an English page the package's American English.
    wanted = (language, TEXT_FALLBACK.get(language, language), _PACKAGE_LANGUAGE.get(language))
    lang = next((w for w in wanted if w in supported), None)
    table = holidays_lib.country_holidays(
        country, subdiv=subdiv or None, years=years, language=lang
    )
    return {day: name if lang else None for day, name in table.items()}


def _our_name(english: str | None, ours: dict[str, str], language: str) -> str | None:
    """The package's English name of a day (its holidays joined by "; ") in
    our words, or None when a part of it has none."""
    if english is None:
        return None
    suffix, estimated = _ESTIMATED
    parts = []
    for part in english.split("; "):
        name = ours.get(part.removesuffix(suffix))
        if name is None:
            return None
        parts.append(name + estimated[language] if part.endswith(suffix) else name)
    return _JOIN.get(language, "; ").join(parts)


def known_region(code: str) -> bool:
    """Whether the package has the holidays of `code`: a country ("MA") or
    one of its subdivisions ("CA-AB"), in capitals."""
    country, _, subdivision = code.partition("-")
    supported = holidays_lib.list_supported_countries()
    return country in supported and (not subdivision or subdivision in supported[country])


def holidays_for(countries: Iterable[str], first: date, last: date) -> list[Holiday]:
    """Holidays of every country (or "CC-SUB" region) between two dates, names joined.

    Islamic holidays are estimates in the package; offices move or add a
    closure by hand when the date is announced.
    """
    years = list(range(first.year, last.year + 1))
    merged: dict[date, dict[str, list[str]]] = {}
    for country in countries:
        for language in LANGUAGES:
            for day, name in _names(country, years, language).items():
                if first <= day <= last:
                    names = merged.setdefault(day, {lang: [] for lang in LANGUAGES})
                    if name is not None and name not in names[language]:
                        names[language].append(name)
    return [
        Holiday(
            day,
            {
                lang: _JOIN.get(lang, "; ").join(parts) or PUBLIC_HOLIDAY[lang]
                for lang, parts in merged[day].items()
            },
        )
        for day in sorted(merged)
    ]


# Gregorian years whose every day the Umm al-Qura calendar (hijridate)
# knows: it runs from 1924-08-01 (1 Muharram 1343) to 2077-11-16.
UMM_AL_QURA_YEARS = (1925, 2076)


def ramadan_periods(first_year: int, last_year: int) -> list[tuple[date, date]]:
    """Gregorian [first day, last day] of each Ramadan starting in the given years.

    Umm al-Qura dates (hijridate); Morocco follows its own moon sighting, so a
    manager may still shift a day by hand.
    """
    periods: list[tuple[date, date]] = []
    # The calendar knows Hijri years 1343 to 1500 (1924 to 2077): years
    # outside it have no Ramadan known, rather than an error on a page whose
    # manager typed hours for 2080.
    first_year = max(first_year, UMM_AL_QURA_YEARS[0])
    last_year = min(last_year, UMM_AL_QURA_YEARS[1])
    if first_year > last_year:
        return periods
    start_h = Gregorian(first_year, 1, 1).to_hijri().year
    end_h = Gregorian(last_year, 12, 31).to_hijri().year
    for hijri_year in range(start_h, end_h + 1):
        begins = Hijri(hijri_year, 9, 1).to_gregorian()
        ends = Hijri(hijri_year, 10, 1).to_gregorian() - timedelta(days=1)
        periods.append(
            (date(begins.year, begins.month, begins.day), date(ends.year, ends.month, ends.day))
        )
    return periods
