"""WhatsApp content templates: every kind in every language has a template
text whose numbered variables are exactly the ones the code fills, each
filled with the message's own values (never empty, never on two lines)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_datetime

from service.config import ConfigError, Settings, parse_templates
from service.domain.messages import (
    DRAW_NOT_SERVED,
    ENTRY_RECEIVED,
    MOBILE_DAY_PLANNED,
    OFFER_KINDS,
    SMS_KINDS,
)
from service.domain.models import LANGUAGES
from service.notify import whatsapp
from service.notify.render import MessageData, Renderer, format_when
from service.web.i18n import zone_label

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
LANGS = ("ar", "fr", "en")
WHEN = datetime(2027, 3, 17, 13, 30, tzinfo=UTC)
OFFICE = {
    "ar": "القنصلية العامة للمملكة المغربية بباريس",
    "fr": "Consulat général du Maroc à Paris",
    "en": "Consulate General of Morocco in Paris",
}
SERVICE = {"ar": "جواز السفر", "fr": "Passeport", "en": "Passport"}
REASON = "Fermeture\nexceptionnelle   du bureau"
# A draw request's place on the waiting list.
PLACE = "3"


def data(kind: str, lang: str, **changes: object) -> MessageData:
    base = MessageData(
        kind=kind,
        language=lang,
        reference="PAR-7KQ9X3",
        citizen_name="Amina El Idrissi",
        office_name=OFFICE[lang],
        office_address="19 rue Saint-Didier, 75116 Paris",
        office_kind="consulate",
        office_country="FR",
        office_city={"ar": "باريس", "fr": "Paris", "en": "Paris"}[lang],
        office_prefix="PAR",
        timezone="Europe/Paris",
        service_name=SERVICE[lang],
        bring="",
        starts_at=WHEN,
        ends_at=WHEN + timedelta(minutes=15),
        reason=(WHEN - timedelta(days=2)).isoformat()
        if kind in OFFER_KINDS
        else PLACE
        if kind == DRAW_NOT_SERVED
        else REASON,
        base_url="https://rdv.mawid.example",
        sequence=1,
        manage_token="" if kind == "code" else "tok-" + "x" * 40,
        code="048213" if kind == "code" else "",
        # "Not served" and "received" are a draw request's messages: its receipt's link.
        draw_request=kind in (DRAW_NOT_SERVED, ENTRY_RECEIVED),
    )
    if kind == MOBILE_DAY_PLANNED:
        # An announcement: the subscription's id, the day announced.
        base = replace(base, alert=True, reference="4711", mobile_day_id=12, days=(WHEN.date(),))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_kind_that_goes_to_a_phone_has_a_template() -> None:
    # A mobile day's announcement goes by WhatsApp to whoever chose it.
    assert set(SMS_KINDS) | OFFER_KINDS | {
        MOBILE_DAY_PLANNED,
        DRAW_NOT_SERVED,
        ENTRY_RECEIVED,
    } == set(whatsapp.KINDS)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", whatsapp.KINDS)
def test_each_template_uses_exactly_its_variables(kind: str, lang: str) -> None:
    text = whatsapp.template_text(TEMPLATES, kind, lang)
    numbers = whatsapp.placeholders(text)
    assert sorted(set(numbers)) == list(range(1, len(whatsapp.VARIABLES[kind]) + 1))
    # WhatsApp refuses a template that starts or ends with a variable.
    assert not text.startswith("{{") and not text.endswith("}}")
    assert "\n" not in text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", whatsapp.KINDS)
def test_each_kind_renders_its_variables(kind: str, lang: str) -> None:
    rendered = Renderer().whatsapp(data(kind, lang))
    values = rendered.variables
    assert list(values) == [str(n) for n in range(1, len(whatsapp.VARIABLES[kind]) + 1)]
    for value in values.values():
        assert value and value == " ".join(value.split())
    by_name = dict(zip(whatsapp.VARIABLES[kind], values.values(), strict=True))
    zone = zone_label("FR", "Paris" if lang != "ar" else "باريس", lang)
    if "when" in by_name:
        when = format_when(WHEN, "Europe/Paris", lang, sms=False)
        assert by_name["when"].startswith(when)
        assert by_name["when"] == f"{when} ({zone})"  # the zone follows, for a consulate
    elif kind == MOBILE_DAY_PLANNED:
        # The day's town (the venue's), its date, where, and the two links.
        assert by_name["town"] == {"ar": "باريس"}.get(lang, "Paris")
        assert by_name["days"] == format_date(WHEN.date(), "EEEE d MMMM y", locale=lang)
        assert by_name["address"] == "19 rue Saint-Didier, 75116 Paris"
        assert by_name["book_link"] == "https://rdv.mawid.example/mobile-days/12"
        assert by_name["stop_link"] == "https://rdv.mawid.example/m/4711/tok-" + "x" * 40
    elif kind not in (DRAW_NOT_SERVED, ENTRY_RECEIVED):
        # After the visit, a document: its pickup hours and their zone, no time.
        assert (by_name["pickup_from"], by_name["pickup_until"]) == ("14:00", "16:00")
        assert by_name["zone"] == zone
        assert by_name["address"] == "19 rue Saint-Didier, 75116 Paris"
    assert by_name["office"] == OFFICE[lang]
    if "service" in by_name:
        assert by_name["service"] == SERVICE[lang]
    if "reference" in by_name:
        assert by_name["reference"] == "PAR-7KQ9X3"
    if "link" in by_name:
        assert by_name["link"] == "https://rdv.mawid.example/b/PAR-7KQ9X3/tok-" + "x" * 40
    if "again" in by_name:
        assert by_name["again"].startswith("https://rdv.mawid.example/")
    if "reason" in by_name:
        assert by_name["reason"] == "Fermeture exceptionnelle du bureau"
    if "feedback_link" in by_name:
        assert by_name["feedback_link"] == "https://rdv.mawid.example/f/PAR-7KQ9X3/tok-" + "x" * 40
    if "code" in by_name:
        assert by_name["code"] == "048213"
    if "place" in by_name:
        assert by_name["place"] == PLACE
    if "receipt_link" in by_name:
        assert by_name["receipt_link"] == "https://rdv.mawid.example/r/PAR-7KQ9X3/tok-" + "x" * 40
    if "expires" in by_name:
        local = (WHEN - timedelta(days=2)).astimezone(ZoneInfo("Europe/Paris"))
        assert format_datetime(local, "y", locale="fr") in by_name["expires"]
    # The kept text is the template with these values in place.
    assert "{{" not in rendered.body
    for value in values.values():
        assert value in rendered.body


def test_an_empty_optional_value_is_a_dash() -> None:
    rendered = Renderer().whatsapp(data("confirmation", "fr", office_address=""))
    assert rendered.variables["6"] == whatsapp.EMPTY
    office_cancelled = Renderer().whatsapp(data("cancelled_by_office", "en", reason=None))
    assert office_cancelled.variables["6"] == whatsapp.EMPTY


def test_the_registry_maps_kind_and_language_to_a_template() -> None:
    settings = Settings(whatsapp_templates='{"confirmation": {"fr": "HX1", "ar": "HX2"}}')
    registry = settings.whatsapp_template_ids
    assert whatsapp.content_sid(registry, "confirmation", "fr") == "HX1"
    assert whatsapp.content_sid(registry, "confirmation", "en") is None
    assert whatsapp.content_sid(registry, "reminder", "fr") is None
    assert parse_templates("") == {}


@pytest.mark.parametrize(
    "raw", ["not json", "[]", '{"confirmation": "HX1"}', '{"confirmation": {"fr": ""}}']
)
def test_a_malformed_registry_is_refused_at_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="WHATSAPP_TEMPLATES"):
        Settings.from_env({"WHATSAPP_TEMPLATES": raw})
