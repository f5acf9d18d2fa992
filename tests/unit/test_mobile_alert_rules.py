"""Mobile day alerts, the pure rules: the subscription form keeps one
contact, who hears of a published day (within the distance, once, outside
quiet hours on the venue's clock), when a subscription stands, and that the
announcement goes only while it does; and its messages in every language
(the SMS within its segment budget with both links, the e-mail, the code)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.errors import ValidationFailed
from service.domain.messages import MOBILE_DAY_PLANNED, QuietHours, quiet_applies, skip_reason
from service.domain.mobile_alerts import Subscriber, announcements, parse_form, standing
from service.domain.sms import is_gsm7
from service.notify.render import MessageData, Renderer, format_when
from tests.unit.test_messages_render import BASE_URL, LANGS, SMS_BUDGET, WORST_DATES, worst_case

PARIS = ZoneInfo("Europe/Paris")
QUIET = QuietHours(time(21), time(8))
BLOIS = (47.5861, 1.3359)
NOW = datetime(2027, 2, 1, 10, tzinfo=UTC)
DEADLINE = datetime(2027, 3, 5, 23, tzinfo=UTC)


def form(**changes: str) -> dict[str, object]:
    return {"town": "Tours", "channel": "sms", "phone_country": "FR", "phone": "06 12 34 56 78",
            "email": "", "language": "fr", **changes}  # fmt: skip


def test_the_form_keeps_only_the_contact_of_the_chosen_channel() -> None:
    by_sms = parse_form(form(email="a@example.org"), "FR", (), whatsapp=True)
    assert (by_sms.channel, by_sms.contact, by_sms.code_channel) == ("sms", "+33612345678", "sms")
    by_mail = parse_form(form(channel="email", email="A@Example.org"), "FR", (), whatsapp=True)
    assert (by_mail.channel, by_mail.contact, by_mail.code_channel) == (
        "email", "A@example.org", "email",
    )  # fmt: skip
    # WhatsApp's code goes by SMS: a code is no template message.
    whatsapp = parse_form(form(channel="whatsapp"), "FR", (), whatsapp=True)
    assert (whatsapp.channel, whatsapp.code_channel) == ("whatsapp", "sms")


@pytest.mark.parametrize(
    ("changes", "fields", "whatsapp"),
    [
        ({"channel": "email"}, {"email"}, True),
        ({"phone": ""}, {"phone"}, True),
        ({"phone": "12"}, {"phone"}, True),
        ({"phone_country": "ZZ"}, {"phone_country"}, True),
        # A Belgian mobile, for the Paris consulate: no SMS goes there.
        ({"phone": "+32470123456"}, {"phone"}, True),
        ({"channel": "whatsapp"}, {"channel"}, False),
        ({"channel": "pigeon"}, {"channel"}, True),
        ({"language": "de"}, {"language"}, True),
        ({"town": " "}, {"town"}, True),
        ({"town": "", "phone": ""}, {"town", "phone"}, True),
    ],
)
def test_the_form_names_each_field_at_fault(
    changes: dict[str, str], fields: set[str], whatsapp: bool
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_form(form(**changes), "FR", (), whatsapp=whatsapp)
    assert set(refused.value.fields) == fields


def test_without_a_consulate_only_what_does_not_depend_on_it_is_checked() -> None:
    # Any number will do until a consulate says which countries get SMS.
    assert parse_form(form(phone="+32470123456"), None, (), whatsapp=True).contact == "+32470123456"
    with pytest.raises(ValidationFailed) as refused:
        parse_form(form(town="", phone="", language="de"), None, (), whatsapp=True)
    assert set(refused.value.fields) == {"town", "phone", "language"}


def subscriber(n: int, place: tuple[float, float], language: str = "fr") -> Subscriber:
    return Subscriber(n, "sms", f"+3361234567{n}", language, *place)


def test_one_message_to_each_subscriber_within_the_distance() -> None:
    near = subscriber(1, (47.9025, 1.9041), "ar")  # Orléans, 55 km
    edge = subscriber(2, (48.4469, 1.4893))  # Chartres, 95 km
    far = subscriber(3, (43.2965, 5.3698))  # Marseille
    told = announcements([near, edge, far], BLOIS, 90, now=NOW, deadline=DEADLINE,
                         quiet=QUIET, zone=PARIS)  # fmt: skip
    assert [(a.subscription_id, a.language) for a in told] == [(1, "ar")]
    [message] = [a.message for a in told]
    assert (message.kind, message.channel, message.recipient) == (
        MOBILE_DAY_PLANNED, "sms", "+33612345671",
    )  # fmt: skip
    assert message.send_at == NOW and message.appointment_at == DEADLINE
    wider = announcements([near, edge, far], BLOIS, 100, now=NOW, deadline=DEADLINE,
                          quiet=QUIET, zone=PARIS)  # fmt: skip
    assert [a.subscription_id for a in wider] == [1, 2]


def test_published_at_night_it_goes_when_quiet_hours_end_on_the_venues_clock() -> None:
    night = datetime(2027, 2, 1, 22, tzinfo=UTC)  # 23:00 in Blois
    [told] = announcements([subscriber(1, BLOIS)], BLOIS, 10, now=night, deadline=DEADLINE,
                           quiet=QUIET, zone=PARIS)  # fmt: skip
    assert told.message.send_at == datetime(2027, 2, 2, 8, tzinfo=PARIS)
    assert quiet_applies(MOBILE_DAY_PLANNED)
    # No time left before the day: nothing is written.
    soon = night + timedelta(hours=1)
    assert not announcements(
        [subscriber(1, BLOIS)], BLOIS, 10, now=night, deadline=soon, quiet=QUIET, zone=PARIS
    )


def test_a_subscription_stands_from_its_proof_until_it_runs_out_or_stops() -> None:
    year = NOW + timedelta(days=365)
    args = {"verified_at": NOW, "expires_at": year, "stopped_at": None, "anonymised_at": None}
    assert standing(**args, now=NOW)  # type: ignore[arg-type]
    assert not standing(**args, now=year)  # type: ignore[arg-type]
    assert not standing(**{**args, "verified_at": None}, now=NOW)  # type: ignore[arg-type]
    assert not standing(**{**args, "stopped_at": NOW}, now=NOW)  # type: ignore[arg-type]
    assert not standing(**{**args, "anonymised_at": NOW}, now=NOW)  # type: ignore[arg-type]


def test_an_announcement_goes_only_while_it_stands_and_before_the_day() -> None:
    args = {"booking_starts_at": DEADLINE, "appointment_at": DEADLINE, "now": NOW}
    assert skip_reason(MOBILE_DAY_PLANNED, booking_status="held", **args) is None
    assert skip_reason(MOBILE_DAY_PLANNED, booking_status="cancelled", **args) is not None
    late = {**args, "now": DEADLINE}
    assert skip_reason(MOBILE_DAY_PLANNED, booking_status="held", **late) is not None


def announcement(lang: str, when: datetime, *days: date) -> MessageData:
    return replace(
        worst_case(MOBILE_DAY_PLANNED, lang, when),
        alert=True,
        reference="1234567",
        mobile_day_id=123456,
        days=days,
        booking_opens_at=when,
        office_address="Salle polyvalente municipale, 12 avenue de la République",
    )


@pytest.mark.parametrize("lang", LANGS)
def test_the_announcement_sms_fits_its_budget_with_both_links(lang: str) -> None:
    renderer = Renderer()
    for when in WORST_DATES:
        first = when.date()
        for days in ((first,), (first, first + timedelta(days=1)), (first, first + timedelta(30))):
            data = announcement(lang, when, *days)
            sms = renderer.sms(data)
            assert sms.count.segments <= SMS_BUDGET[lang], (lang, sms.count, sms.body)
            assert f"{BASE_URL}/mobile-days/123456" in sms.body
            assert f"{BASE_URL}/m/1234567/{data.manage_token}" in sms.body
            # Latin ones stay GSM-7; Arabic and Tifinagh are UCS-2 anyway.
            assert is_gsm7(sms.body) == (lang not in ("ar", "zgh")), sms.body
            assert str(days[0].day) in sms.body
    # Where it fits, the consulate says who speaks, and when bookings open.
    french = renderer.sms(announcement("fr", WORST_DATES[0], WORST_DATES[0].date()))
    assert french.body.startswith("Consulat") and "Réservations dès le" in french.body


@pytest.mark.parametrize("lang", LANGS)
def test_the_announcement_email_has_the_venue_and_both_links_and_no_invitation(
    lang: str,
) -> None:
    data = announcement(lang, WORST_DATES[1], WORST_DATES[1].date())
    email = Renderer().email(data, to="a@example.org", sender="c@example.org", reply_to=None)
    assert data.office_address in email.text and data.office_name in email.text
    assert f"{BASE_URL}/mobile-days/123456" in email.text
    assert f"{BASE_URL}/m/1234567/{data.manage_token}" in email.text
    assert not list(email.message.iter_attachments())
    assert data.office_city in str(email.message["Subject"])


@pytest.mark.parametrize("lang", LANGS)
def test_a_subscriptions_code_speaks_of_the_alerts_not_an_appointment(lang: str) -> None:
    data = replace(worst_case("code", lang, WORST_DATES[0]), code="042917", alert=True,
                   reference="1234567")  # fmt: skip
    sms = Renderer().sms(data)
    assert "042917" in sms.body and sms.count.segments <= SMS_BUDGET[lang]
    assert format_when(WORST_DATES[0], data.timezone, lang, sms=True) not in sms.body
    email = Renderer().email(data, to="a@example.org", sender="c@example.org", reply_to=None)
    assert "042917" in email.text
