"""Locale choice, gettext catalogs and Babel formatting for ar, fr, en, es and zgh.

Arabic dates use the ar_MA locale so that months carry their Moroccan names
(August is غشت, not أغسطس). Tamazight uses Babel's zgh locale: Tifinagh month
and day names (ⵖⵓⵛⵜ, ⴰⵙⵉⵏⴰⵙ) with Latin digits.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date, format_datetime, format_interval, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

from service.domain.errors import N_
from service.domain.models import LANGUAGES, TEXT_FALLBACK

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LANGUAGE = "fr"
# Babel locale used for formatting each supported language.
BABEL_LOCALES = {"ar": "ar_MA", "fr": "fr_FR", "en": "en_GB", "es": "es_ES", "zgh": "zgh"}


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """The catalog of a language; English is the source text.

    The compiled .mo (from `make i18n-compile`) is used when it is at least as
    new as its .po; otherwise the .po is compiled in memory, so a fresh
    checkout or an edited catalog never silently falls back to English.
    """
    if language == "en":
        return NullTranslations()
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return Translations(compiled, domain="messages")
    if not po.exists():
        return NullTranslations()
    from io import BytesIO

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of our languages for an Accept-Language header, by its q values."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0].split("_")[0]
        primary = LANGUAGE_ALIASES.get(primary, primary)
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else default


# A browser set to Tachelhit, Central Atlas Tamazight, Tarifit or "Berber"
# reads the standard Tamazight pages.
LANGUAGE_ALIASES = {"shi": "zgh", "tzm": "zgh", "rif": "zgh", "ber": "zgh"}


def babel_locale(language: str) -> str:
    return BABEL_LOCALES.get(language, BABEL_LOCALES[DEFAULT_LANGUAGE])


def local_datetime(instant: datetime, timezone: str) -> datetime:
    from zoneinfo import ZoneInfo

    return instant.astimezone(ZoneInfo(timezone))


def date_long(instant: datetime, timezone: str, language: str) -> str:
    return format_date(local_datetime(instant, timezone), "full", locale=babel_locale(language))


# A week page shows ~100 times, the same for every reader of that week:
# Babel's formatting is the costly part of the page, so each is made once.
@lru_cache(maxsize=16384)
def time_short(instant: datetime, timezone: str, language: str) -> str:
    return format_time(local_datetime(instant, timezone), "HH:mm", locale=babel_locale(language))


def datetime_medium(instant: datetime, timezone: str, language: str) -> str:
    return format_datetime(
        local_datetime(instant, timezone), "medium", locale=babel_locale(language)
    )


def date_range(first: date, last: date, language: str) -> str:
    """'1–7 févr. 2027', '1–7 فبراير 2027': a span of days, as the locale writes it."""
    return format_interval(first, last, "yMMMMd", locale=babel_locale(language))


def percent(ratio: float, language: str) -> str:
    """'12,5 %', '12.5%': one decimal at most, the locale's sign and spacing."""
    return format_percent(
        round(ratio, 3), locale=babel_locale(language), decimal_quantization=False
    )


def decimal(number: float, language: str) -> str:
    return format_decimal(round(number, 1), locale=babel_locale(language))


def money(amount: float, currency: str, language: str) -> str:
    """'12,60 $US', '0,07 €': an amount with its currency, in the locale's way."""
    return format_currency(amount, currency, locale=babel_locale(language))


# --------------------------------------------------------------------------- pages

# The citizen's explicit choice, kept across pages (not personal data).
LANG_COOKIE = "lang"
LANG_QUERY = "lang"
# Each language in its own name and script.
LANGUAGE_NAMES = {
    "ar": "العربية",
    "fr": "Français",
    "en": "English",
    "es": "Español",
    "zgh": "ⵜⴰⵎⴰⵣⵉⵖⵜ",
}
RTL_LANGUAGES = frozenset({"ar"})


def choose_language(
    from_url: str | None, from_cookie: str | None, accept_language: str | None
) -> str:
    """URL beats cookie beats Accept-Language; anything unknown is ignored."""
    for candidate in (from_url, from_cookie):
        if candidate and candidate in LANGUAGES:
            return candidate
    return negotiate(accept_language)


def text_direction(language: str) -> str:
    return "rtl" if language in RTL_LANGUAGES else "ltr"


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    return translations(language).ngettext(singular, plural, n)


def zone_label(country: str, city: str, language: str) -> str:
    """'heure de Paris', 'توقيت المغرب': the zone as a citizen names it.

    Every Moroccan office shares one zone, so it is named after the country;
    a consulate's zone is named after its own city (Montreal, not Toronto).
    """
    if country == "MA":
        return gettext(language, N_("Morocco time"))
    label: str = gettext(language, N_("%(city)s time")) % {"city": city}
    if language == "fr" and city[:1] in _FRENCH_ELIDING:
        # "heure d'Edmonton": French elides "de" before a vowel. The ASCII
        # apostrophe keeps an SMS carrying the label in GSM-7.
        label = label.replace(f"de {city}", f"d'{city}")
    return label


_FRENCH_ELIDING = frozenset("AEIOUYÂÉÈÊÎÔÛaeiouy")


@lru_cache(maxsize=4096)
def day_heading(day: date, language: str) -> str:
    return format_date(day, "full", locale=babel_locale(language))


def day_short(day: date, language: str) -> str:
    """'Tue 1 Dec', 'mar. 1 déc.': a day in a list of days or a short sentence."""
    return format_date(day, "EEE d MMM", locale=babel_locale(language))


def day_span(first: date, last: date, language: str, *, short: bool = False) -> str:
    """'lundi 15 février 2027 – vendredi 19 février 2027', or the one day
    when the span is a day: a draw's days, said as a clerk would."""
    day = day_short if short else day_heading
    if first == last:
        return day(first, language)
    return f"{day(first, language)} – {day(last, language)}"


def moment_short(instant: datetime, timezone: str, language: str) -> str:
    """'Tue 1 Dec 09:15' on the office's wall clock."""
    local = local_datetime(instant, timezone)
    return f"{day_short(local.date(), language)} {time_short(instant, timezone, language)}"


def _babel_country_names(language: str) -> dict[str, str]:
    from babel import Locale

    return dict(Locale.parse(babel_locale(language)).territories)


@lru_cache(maxsize=len(LANGUAGES))
def _country_names(language: str) -> dict[str, str]:
    """Babel's country names in `language`, with its fallback language's
    where it has none (Babel's Tamazight lacks twenty, Curaçao or Jersey):
    a bare code is no name, and sorted first in a menu."""
    fallback = TEXT_FALLBACK.get(language)
    names = _babel_country_names(language)
    return names if fallback is None else {**_babel_country_names(fallback), **names}


def country_name(code: str, language: str) -> str:
    return _country_names(language).get(code, code)


# Where most citizens live (DOMAIN.md), listed first in the phone country menu.
COMMON_PHONE_COUNTRIES = ("MA", "FR", "ES", "IT", "BE", "NL", "DE", "CA")
# Regions of the phone numbering data that are not countries to a Moroccan
# consular service: the Moroccan Sahara is Morocco (+212, listed as MA).
NOT_PHONE_COUNTRIES = frozenset({"EH"})


@lru_cache(maxsize=len(LANGUAGES))
def phone_countries(language: str) -> tuple[tuple[str, str], ...]:
    """(code, 'France (+33)') for every region phonenumbers knows, common ones first."""
    import phonenumbers

    names = _country_names(language)
    # Names in the fallback's script after the language's own, not among them.
    own = _babel_country_names(language)

    def label(code: str) -> str:
        return f"{names.get(code, code)} (+{phonenumbers.country_code_for_region(code)})"

    listed = set(phonenumbers.SUPPORTED_REGIONS) - {*COMMON_PHONE_COUNTRIES, *NOT_PHONE_COUNTRIES}
    rest = sorted(listed, key=lambda c: (c not in own, collation_key(names.get(c) or c)))
    return tuple((c, label(c)) for c in (*COMMON_PHONE_COUNTRIES, *rest))


def collation_key(text: str) -> str:
    """Sort key ignoring accents and case, so that Égypte files under E."""
    import unicodedata

    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
