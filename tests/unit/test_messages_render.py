"""Rendering every message template, and the SMS segment budget."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from icalendar import Calendar

from service.domain.booking import new_manage_token
from service.domain.messages import AFTER_VISIT_KINDS, KINDS, SMS_KINDS
from service.domain.models import in_every_language
from service.domain.sms import is_gsm7
from service.notify.render import MessageData, Renderer, format_when, short_reason

DATA = Path(__file__).resolve().parents[2] / "service" / "data" / "offices.json"
LANGS = ("ar", "fr", "en", "es", "zgh")
# The budget kept in the code: what a message may cost, in segments.
# Tifinagh is UCS-2 like Arabic; Spanish stays GSM-7 like French.
SMS_BUDGET = {"ar": 3, "fr": 2, "en": 2, "es": 2, "zgh": 3}
# A realistic production address: the link is part of every SMS.
BASE_URL = "https://rdv.mawid.gov.ma"
REASONS = {
    "ar": "إغلاق استثنائي للمكتب بسبب أشغال الصيانة والترميم",
    "fr": "Fermeture exceptionnelle du bureau pour travaux de rénovation",
    "en": "Exceptional closure of the office for renovation works",
    "es": "Cierre excepcional de la oficina por obras de renovacion",
    "zgh": "ⴰⵇⵇⵏ ⴰⵎⵥⵍⴰⵢ ⵏ ⵓⴱⵉⵔⵓ ⵙ ⵜⵡⵓⵔⵉⵡⵉⵏ ⵏ ⵓⵙⵏⴼⵍ ⴷ ⵓⵙⵎⴰⵢⵏⵓ",
}


def demo() -> dict[str, object]:
    data: dict[str, object] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def longest(names: list[dict[str, str]], lang: str) -> str:
    # es and zgh show the stored texts of their fallback (French, Arabic).
    return max((in_every_language(n)[lang] for n in names), key=len)


def worst_case(kind: str, lang: str, when: datetime) -> MessageData:
    d = demo()
    offices = d["offices"]
    services = d["services"]
    assert isinstance(offices, list) and isinstance(services, dict)
    return MessageData(
        kind=kind,
        language=lang,
        reference="MTL-7KQ9X3",
        citizen_name="Amina El Idrissi",
        office_name=longest([o["name"] for o in offices], lang),
        office_address="placeholder address (demo data)",
        # A consulate: its SMS always name the zone, after the longest city.
        office_kind="consulate",
        office_country="CA",
        office_city=longest([o["city"] for o in offices], lang),
        office_prefix="MTL",
        timezone="America/Toronto",
        service_name=longest([s["name"] for s in services.values()], lang),
        bring="",
        starts_at=when,
        ends_at=when + timedelta(minutes=15),
        reason=REASONS[lang],
        base_url=BASE_URL,
        sequence=1,
        manage_token="" if kind == "code" else new_manage_token(),
        code="048213" if kind == "code" else "",
    )


# A Wednesday in September: the longest weekday names ("mercredi", الأربعاء)
# and month (شتنبر / September) that the SMS formats carry.
WORST_DATES = [
    datetime(2026, 9, 9, 13, 0, tzinfo=UTC),
    datetime(2027, 9, 8, 13, 0, tzinfo=UTC),
    datetime(2027, 12, 8, 14, 0, tzinfo=UTC),
    datetime(2027, 2, 10, 14, 0, tzinfo=UTC),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", SMS_KINDS)
def test_sms_segment_budget(renderer: Renderer, kind: str, lang: str) -> None:
    for when in WORST_DATES + [WORST_DATES[0] + timedelta(days=n) for n in range(7)]:
        sms = renderer.sms(worst_case(kind, lang, when))
        assert sms.count.segments <= SMS_BUDGET[lang], (kind, lang, sms.count, sms.body)


@pytest.mark.parametrize("kind", SMS_KINDS)
@pytest.mark.parametrize("lang", ["fr", "en", "es"])
def test_latin_sms_stay_gsm7_every_month(renderer: Renderer, kind: str, lang: str) -> None:
    # "août" would switch French to UCS-2: the SMS date format avoids month names.
    for month in range(1, 13):
        when = datetime(2027, month, 10, 9, 0, tzinfo=UTC)
        sms = renderer.sms(worst_case(kind, lang, when))
        assert sms.count.encoding == "gsm7", sms.body


def test_french_demo_names_are_gsm7() -> None:
    d = demo()
    offices, services = d["offices"], d["services"]
    assert isinstance(offices, list) and isinstance(services, dict)
    for o in offices:
        assert is_gsm7(o["name"]["fr"]), o["name"]["fr"]
    for s in services.values():
        assert is_gsm7(s["name"]["fr"]), s["name"]["fr"]


def test_arabic_is_sent_as_arabic(renderer: Renderer) -> None:
    sms = renderer.sms(worst_case("confirmation", "ar", WORST_DATES[0]))
    assert sms.count.encoding == "ucs2"
    assert "?" not in sms.body.replace("https://", "")
    assert "القنصلية العامة" in sms.body


def test_arabic_dates_use_moroccan_month_names() -> None:
    when = datetime(2026, 8, 10, 9, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
    text = format_when(when, "Africa/Casablanca", "ar", sms=True)
    assert "غشت" in text and "أغسطس" not in text
    assert text.startswith("10 غشت 2026")
    assert format_date(date(2026, 8, 10), "full", locale="ar_MA") == "الاثنين، 10 غشت 2026"


def test_tifinagh_is_sent_as_tifinagh_with_tifinagh_months_and_latin_digits(
    renderer: Renderer,
) -> None:
    sms = renderer.sms(worst_case("confirmation", "zgh", WORST_DATES[0]))
    assert sms.count.encoding == "ucs2"
    assert "ⴰⵎⵙⴰⴳⴰⵔ ⵉⵜⵜⵓⵙⵏⵜⵎ" in sms.body
    when = datetime(2026, 8, 10, 9, 0, tzinfo=ZoneInfo("Africa/Casablanca"))
    assert format_when(when, "Africa/Casablanca", "zgh", sms=True) == "10 ⵖⵓⵛⵜ 2026, 09:00"
    email = format_when(when, "Africa/Casablanca", "zgh", sms=False)
    assert email == "ⴰⵢⵏⴰⵙ 10 ⵖⵓⵛⵜ 2026, 09:00"


def test_spanish_dates_in_sms_carry_no_accented_day_names() -> None:
    # "miércoles" and "sábado" have letters outside GSM-7: the SMS gives digits.
    when = datetime(2027, 9, 8, 13, 0, tzinfo=UTC)
    assert format_when(when, "Europe/Madrid", "es", sms=True) == "08/09/2027, 15:00"
    assert format_when(when, "Europe/Madrid", "es", sms=False) == (
        "miércoles 8 de septiembre de 2027, 15:00"
    )


def test_times_are_shown_in_the_office_zone_across_ramadan() -> None:
    # 09:00 in Tiznit is 09:00 UTC in Ramadan 2027 and 08:00 UTC after it.
    tz = "Africa/Casablanca"
    assert format_when(datetime(2027, 2, 15, 9, 0, tzinfo=UTC), tz, "fr", sms=True).endswith(
        "à 09:00"
    )
    assert format_when(datetime(2027, 3, 15, 8, 0, tzinfo=UTC), tz, "fr", sms=True).endswith(
        "à 09:00"
    )


def test_short_reason_is_gsm_safe() -> None:
    assert short_reason("a" * 100).endswith("...")
    assert len(short_reason("a" * 100)) == 40
    assert short_reason("  two\nlines  ") == "two lines"
    assert short_reason(None) == ""


@pytest.mark.parametrize("lang", LANGS)
# A message after the visit has no appointment to add to a calendar.
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "code" and k not in AFTER_VISIT_KINDS])
def test_every_email_renders_multipart_with_ics(renderer: Renderer, kind: str, lang: str) -> None:
    data = worst_case(kind, lang, WORST_DATES[0])
    rendered = renderer.email(
        data, to="a@example.org", sender="Mawid <x@example.org>", reply_to="r@example.org"
    )
    msg = rendered.message
    assert isinstance(msg, EmailMessage)
    assert msg["Reply-To"] == "r@example.org"
    assert "MTL-7KQ9X3" in msg["Subject"]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "Amina El Idrissi" in text.get_content()
    assert f'lang="{lang}"' in html.get_content()
    assert ("rtl" in html.get_content()) == (lang == "ar")
    [ics_part] = list(msg.iter_attachments())
    cal = Calendar.from_ical(ics_part.get_content())
    [event] = cal.walk("VEVENT")
    assert event["dtstart"].params["TZID"] == "America/Toronto"
    assert event.decoded("dtstart") == data.starts_at
    cancelled = kind.startswith("cancelled")
    assert str(cal["method"]) == ("CANCEL" if cancelled else "PUBLISH")
    link = f"{BASE_URL}/b/MTL-7KQ9X3/{data.manage_token}"
    assert (link in text.get_content()) != cancelled


def test_html_escapes_names(renderer: Renderer) -> None:
    data = worst_case("confirmation", "fr", WORST_DATES[0])
    evil = replace(data, citizen_name="<script>x</script>")
    html = renderer.email(evil, to="a@example.org", sender="x@example.org", reply_to=None)
    body = html.message.get_body(("html",))
    assert body is not None
    assert "<script>" not in body.get_content()
    assert "&lt;script&gt;" in body.get_content()


# --------------------------------------------------------------------------- issue 11


def test_the_budget_is_the_one_in_the_code() -> None:
    from service.domain.sms import SEGMENT_BUDGET

    assert SEGMENT_BUDGET == SMS_BUDGET


def nearby(kind: str, lang: str) -> MessageData:
    """A short-named office in Morocco: room for every optional part."""
    return replace(
        worst_case(kind, lang, WORST_DATES[0]),
        office_name=in_every_language(
            {"ar": "عمالة إقليم تيزنيت", "fr": "Province de Tiznit", "en": "Tiznit"}
        )[lang],
        service_name=in_every_language(
            {"ar": "شهادة إدارية", "fr": "Attestation", "en": "Certificate"}
        )[lang],
        office_address="1 av. Hassan II, Tiznit",
        office_kind="prefecture",
        office_country="MA",
        office_city="Tiznit",
        office_prefix="TIZ",
        timezone="Africa/Casablanca",
    )


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", SMS_KINDS)
def test_a_consulate_sms_names_its_zone_as_the_pages_do(
    renderer: Renderer, kind: str, lang: str
) -> None:
    from service.web.i18n import zone_label

    data = worst_case(kind, lang, WORST_DATES[0])
    sms = renderer.sms(data)
    assert f"({zone_label('CA', data.office_city, lang)})" in sms.body, sms.body
    # A prefecture in Morocco's zone saves the characters in its SMS...
    local = renderer.sms(nearby(kind, lang))
    assert zone_label("MA", "Tiznit", lang) not in local.body
    # ... and names it in its e-mails, as every page does.
    email = renderer.email(nearby(kind, lang), to="a@example.org", sender="x@example.org",
                           reply_to=None)  # fmt: skip
    assert f"({zone_label('MA', 'Tiznit', lang)})" in email.text


@pytest.mark.parametrize("lang", LANGS)
# The code message carries neither (test_the_code_message_carries_...).
@pytest.mark.parametrize("kind", [k for k in SMS_KINDS if k != "code"])
def test_sms_carry_address_and_reference_when_they_fit(
    renderer: Renderer, kind: str, lang: str
) -> None:
    sms = renderer.sms(nearby(kind, lang))
    assert "MTL-7KQ9X3." in sms.body
    if kind.startswith("cancelled") or kind == "feedback":
        # The office's address is no use for a cancelled appointment, nor
        # for asking about a visit that is over.
        return
    assert "1 av. Hassan II, Tiznit" in sms.body
    # With the longest names the address goes first, the budget holds.
    worst = renderer.sms(worst_case(kind, lang, WORST_DATES[0]))
    assert "placeholder address" not in worst.body or lang != "ar"


@pytest.mark.parametrize("kind", ["confirmation", "reminder", "rescheduled"])
def test_the_arabic_link_is_labelled(renderer: Renderer, kind: str) -> None:
    for data in (worst_case(kind, "ar", WORST_DATES[0]), nearby(kind, "ar")):
        body = renderer.sms(data).body
        assert body.endswith(f"للتدبير: {BASE_URL}/b/MTL-7KQ9X3/{data.manage_token}"), body
        # The Arabic comma only, outside the office's own (Latin) address.
        assert "," not in body.replace(data.office_address, "")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", ["cancelled_by_citizen", "cancelled_by_office"])
def test_cancellations_link_to_booking_again(renderer: Renderer, kind: str, lang: str) -> None:
    again = f"{BASE_URL}/o/MTL"
    assert renderer.sms(worst_case(kind, lang, WORST_DATES[0])).body.endswith(again)
    email = renderer.email(worst_case(kind, lang, WORST_DATES[0]), to="a@example.org",
                           sender="x@example.org", reply_to=None)  # fmt: skip
    assert email.text.rstrip().endswith(again)
    html = email.message.get_body(("html",))
    assert html is not None and f'href="{again}"' in html.get_content()


@pytest.mark.parametrize("lang", LANGS)
def test_plain_text_email_keeps_one_field_a_line(renderer: Renderer, lang: str) -> None:
    data = replace(worst_case("confirmation", lang, WORST_DATES[0]), bring="Passeport, 2 photos")
    text = renderer.email(data, to="a@example.org", sender="x@example.org", reply_to=None).text
    lines = text.splitlines()
    address = next(i for i, line in enumerate(lines) if "placeholder address (demo data)" in line)
    assert lines[address].endswith(": placeholder address (demo data)")
    assert lines[address + 1].endswith(": Passeport, 2 photos")
    assert lines[address + 2] == ""
    assert ".ics" not in text


def test_arabic_email_uses_the_arabic_comma(renderer: Renderer) -> None:
    email = renderer.email(worst_case("confirmation", "ar", WORST_DATES[0]), to="a@example.org",
                           sender="x@example.org", reply_to=None)  # fmt: skip
    assert email.text.splitlines()[0] == "مرحبا Amina El Idrissi،"
    html = email.message.get_body(("html",))
    assert html is not None
    assert "<bdi>Amina El Idrissi</bdi>،" in html.get_content()
    assert '<bdi dir="ltr">MTL-7KQ9X3</bdi>' in html.get_content()


# What the code message may carry: the office, the time and the code. The
# name, the reference, the service, the link: none of it.
TYPED = "Amina El Idrissi"


@pytest.mark.parametrize("lang", LANGS)
def test_the_code_message_carries_the_office_the_time_and_the_code_only(
    renderer: Renderer, lang: str
) -> None:
    data = replace(worst_case("code", lang, WORST_DATES[0]), citizen_name=TYPED)
    sms = renderer.sms(data).body
    email = renderer.email(data, to="a@example.org", sender="x@example.org", reply_to=None)
    text = email.message.get_body(("plain",))
    html = email.message.get_body(("html",))
    assert text is not None and html is not None
    for body in (sms, str(email.message["Subject"]), text.get_content(), html.get_content()):
        assert "048213" in body
        assert TYPED not in body and "Amina" not in body
        assert data.reference not in body and BASE_URL not in body
        assert data.service_name not in body
    assert data.office_name in sms and data.office_name in text.get_content()
    assert format_when(data.starts_at, data.timezone, lang, sms=True) in sms
    # No invitation: the booking is not made yet.
    assert list(email.message.iter_attachments()) == []


def test_an_email_goes_to_one_recipient_or_nowhere(renderer: Renderer) -> None:
    data = worst_case("confirmation", "fr", WORST_DATES[0])
    for to in ("postmaster,abuse,root@example.com", "a@example.org, b@example.org", "a\x07@x.org"):
        with pytest.raises(ValueError, match="one e-mail address"):
            renderer.email(data, to=to, sender="x@example.org", reply_to=None)


def test_old_names_and_reasons_lose_their_bidi_tricks_in_messages(renderer: Renderer) -> None:
    trick = "Amina\u202e\u200bmoc.liam"
    data = replace(
        worst_case("cancelled_by_office", "fr", WORST_DATES[0]),
        citizen_name=trick,
        reason="Travaux\u2066 urgents\u2069",
    )
    email = renderer.email(data, to="a@example.org", sender="x@example.org", reply_to=None)
    text = email.message.get_body(("plain",))
    assert text is not None
    assert "Aminamoc.liam" in text.get_content()
    assert "Travaux urgents" in text.get_content()
    sms = renderer.sms(data).body
    for body in (text.get_content(), sms):
        assert not any(ch in body for ch in "\u202e\u200b\u2066\u2069")


@pytest.mark.parametrize("waitlist", [False, True])
@pytest.mark.parametrize("lang", LANGS)
def test_an_entry_is_told_it_counts_with_its_receipt_link(
    renderer: Renderer, lang: str, waitlist: bool
) -> None:
    # A draw request's or a waiting-list place's reference is its entry id.
    entry = replace(
        worst_case("entry_received", lang, WORST_DATES[0]),
        reference="0f" * 16,
        draw_request=True,
        waitlist=waitlist,
    )
    receipt = f"{BASE_URL}/r/{entry.reference}/{entry.manage_token}"
    sms = renderer.sms(entry)
    assert receipt in sms.body
    assert sms.count.segments <= SMS_BUDGET[lang], (lang, sms.count, sms.body)
    if lang in ("fr", "en", "es"):
        assert sms.count.encoding == "gsm7", sms.body
    mail = renderer.email(entry, to="amina@example.org", sender="rdv@mawid.example", reply_to=None)
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None and html is not None
    assert receipt in text.get_content() and f'href="{receipt}"' in html.get_content()
    # Nothing is booked yet: no calendar invitation.
    assert not [p for p in mail.message.walk() if p.get_content_type() == "text/calendar"]
    other = renderer.email(
        replace(entry, waitlist=not waitlist), to="amina@example.org",
        sender="rdv@mawid.example", reply_to=None,
    )  # fmt: skip
    assert mail.message["Subject"] != other.message["Subject"]


@pytest.mark.parametrize("kind", ["code", "confirmation"])
def test_an_arabic_name_in_a_left_to_right_message_keeps_its_run(
    renderer: Renderer, kind: str
) -> None:
    """A Tamazight message names a prefecture in Arabic: closed by a
    left-to-right mark, the date after it keeps its order ("2 ,عمالة"
    otherwise); Arabic messages need none for their own script."""
    office = "عمالة إقليم تيزنيت"
    for lang in ("zgh", "ar", "fr"):
        data = replace(worst_case(kind, lang, WORST_DATES[0]), office_name=office)
        body = renderer.sms(data).body
        if lang == "ar":
            assert office in body and "\u200e" not in body
        else:
            assert f"{office}\u200e" in body, body
