"""Locale choice and Babel formatting (pure: no I/O beyond the catalogs)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from service.bookings import household_cap
from service.domain.models import LANGUAGES
from service.web import i18n
from service.web.errors import refusal_text
from service.web.limits import too_many


def test_moroccan_month_names_for_arabic() -> None:
    instant = datetime(2026, 8, 10, 9, 0, tzinfo=UTC)
    assert i18n.date_long(instant, "Africa/Casablanca", "ar") == "الاثنين، 10 غشت 2026"
    assert "أغسطس" not in i18n.day_heading(date(2027, 8, 3), "ar")


def test_times_are_shown_in_the_office_zone() -> None:
    # 2027-02-15 is in Ramadan (Morocco at UTC+0); 2027-03-15 is after (UTC+1).
    assert (
        i18n.time_short(datetime(2027, 2, 15, 9, 0, tzinfo=UTC), "Africa/Casablanca", "fr")
        == "09:00"
    )
    assert (
        i18n.time_short(datetime(2027, 3, 15, 8, 0, tzinfo=UTC), "Africa/Casablanca", "fr")
        == "09:00"
    )
    assert i18n.time_short(datetime(2027, 2, 15, 8, 0, tzinfo=UTC), "Europe/Paris", "ar") == "09:00"


def test_zone_is_named_after_the_country_or_the_consulate_city() -> None:
    assert i18n.zone_label("FR", "Paris", "fr") == "heure de Paris"
    # French elides before a vowel, with the apostrophe an SMS keeps in GSM-7.
    assert i18n.zone_label("CA", "Edmonton", "fr") == "heure d'Edmonton"
    assert i18n.zone_label("FR", "Orléans", "fr") == "heure d'Orléans"
    assert i18n.zone_label("CA", "Edmonton", "es") == "hora de Edmonton"
    assert i18n.zone_label("CA", "Edmonton", "en") == "Edmonton time"
    assert i18n.zone_label("MA", "تيزنيت", "ar") == "توقيت المغرب"
    assert i18n.zone_label("CA", "Montreal", "en") == "Montreal time"


def test_language_choice_url_then_cookie_then_header() -> None:
    assert i18n.choose_language("ar", "fr", "en") == "ar"
    assert i18n.choose_language(None, "en", "ar") == "en"
    assert i18n.choose_language("xx", None, "ar-MA,fr;q=0.8") == "ar"
    assert i18n.choose_language(None, "zz", "de-DE") == i18n.DEFAULT_LANGUAGE
    assert i18n.choose_language(None, None, "en-GB;q=0.5, fr;q=0.9") == "fr"


def test_spanish_and_tamazight_are_negotiated() -> None:
    assert i18n.negotiate("es-ES,es;q=0.9,fr;q=0.5") == "es"
    assert i18n.negotiate("zgh-Tfng-MA") == "zgh"
    # Tachelhit (Souss: Tiznit, Agadir) and Central Atlas readers get zgh.
    assert i18n.negotiate("shi-MA,ar;q=0.8") == "zgh"
    assert i18n.negotiate("tzm;q=0.9,fr;q=0.8") == "zgh"
    assert i18n.text_direction("zgh") == "ltr"


def test_tamazight_dates_have_tifinagh_names_and_latin_digits() -> None:
    assert i18n.day_heading(date(2027, 8, 3), "zgh") == "ⴰⵙⵉⵏⴰⵙ 3 ⵖⵓⵛⵜ 2027"
    assert i18n.day_heading(date(2027, 8, 3), "es") == "martes, 3 de agosto de 2027"
    assert i18n.day_short(date(2027, 2, 1), "zgh") == "ⴰⵢⵏ 1 ⴱⵕⴰ"


def test_every_language_has_its_own_name_and_a_babel_locale() -> None:
    from service.domain.models import LANGUAGES

    assert set(i18n.LANGUAGE_NAMES) == set(LANGUAGES) == set(i18n.BABEL_LOCALES)
    assert i18n.LANGUAGE_NAMES["zgh"] == "ⵜⴰⵎⴰⵣⵉⵖⵜ"
    assert i18n.LANGUAGE_NAMES["es"] == "Español"


def test_direction() -> None:
    assert i18n.text_direction("ar") == "rtl"
    assert i18n.text_direction("fr") == "ltr"


def test_catalogs_translate_the_api_errors() -> None:
    message = "This time is no longer available. Please choose another time."
    assert (
        i18n.gettext("fr", message)
        == "Cet horaire n’est plus disponible. Veuillez en choisir un autre."
    )
    assert i18n.gettext("ar", message) == "هذا الموعد لم يعد متاحًا. يرجى اختيار موعد آخر."
    assert i18n.gettext("en", message) == message


def test_arabic_plurals() -> None:
    forms = [
        i18n.ngettext("ar", "%(num)d minute", "%(num)d minutes", n) % {"num": n}
        for n in (1, 2, 5, 15)
    ]
    assert forms == ["دقيقة واحدة", "دقيقتان", "5 دقائق", "15 دقيقة"]


def test_a_refusal_with_a_count_reads_in_the_form_its_language_asks_for() -> None:
    waits = {lang: [refusal_text(lang, too_many(60 * n)) for n in (1, 2, 5, 15)] for lang in
             ("en", "fr", "ar")}  # fmt: skip
    assert [w.rpartition(" in ")[2] for w in waits["en"]] == [
        "1 minute.", "2 minutes.", "5 minutes.", "15 minutes.",
    ]  # fmt: skip
    assert [w.rpartition(" dans ")[2] for w in waits["fr"]] == [
        "1 minute.", "2 minutes.", "5 minutes.", "15 minutes.",
    ]  # fmt: skip
    assert [w.rpartition("بعد ")[2] for w in waits["ar"]] == [
        "دقيقة واحدة.", "دقيقتين.", "5 دقائق.", "15 دقيقة.",
    ]  # fmt: skip
    # A cap of one is said in the singular, in English (str) as on the page.
    one = household_cap("phone", 1)
    assert str(one).startswith("This phone number already has 1 active appointment at ")
    assert "Cancel it first" in str(one)
    assert "ce bureau" in refusal_text("fr", one) and "1 rendez-vous actif " in refusal_text(
        "fr", one
    )
    assert "3 active appointments" in str(household_cap("email", 3))


def test_a_span_of_one_day_names_the_day_once() -> None:
    one = date(2027, 2, 15)
    assert i18n.day_span(one, one, "fr") == "lundi 15 février 2027"
    assert i18n.day_span(one, one, "fr", short=True) == "lun. 15 févr."
    assert i18n.day_span(one, date(2027, 2, 19), "fr") == (
        "lundi 15 février 2027 – vendredi 19 février 2027"
    )


def test_phone_countries_list_common_ones_first_and_sort_by_name() -> None:
    countries = i18n.phone_countries("fr")
    assert [code for code, _ in countries[:3]] == ["MA", "FR", "ES"]
    assert dict(countries)["FR"] == "France (+33)"
    rest = [label for _, label in countries[len(i18n.COMMON_PHONE_COUNTRIES) :]]
    assert rest.index("Égypte (+20)") < rest.index("Finlande (+358)")


@pytest.mark.parametrize("language", LANGUAGES)
def test_phone_countries_are_named_and_the_moroccan_sahara_is_morocco(language: str) -> None:
    countries = i18n.phone_countries(language)
    codes = [code for code, _ in countries]
    assert "EH" not in codes and "MA" in codes
    # Every one named (Babel's Tamazight lacks some: its fallback's names,
    # after its own), none a bare code.
    assert all(not label.startswith(f"{code} (") for code, label in countries)
    assert i18n.country_name("CW", language) != "CW"
