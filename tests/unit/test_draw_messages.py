"""The offer message of a draw and of an instant service's waiting list: in
each language, within the SMS budget, with its expiry in the office's zone
and the link to the offer's page, and no calendar invitation (nothing is
booked until the citizen accepts); the code of a request and of a place on
a waiting list, each saying what it confirms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.messages import DRAW_NOT_SERVED, DRAW_OFFER, WAITLIST_OFFER, skip_reason
from service.domain.sms import is_gsm7
from service.notify.render import Renderer
from tests.unit.test_messages_render import BASE_URL, LANGS, SMS_BUDGET, WORST_DATES, worst_case

# 2027-02-10 14:00 UTC is 09:00 in Montreal (America/Toronto, UTC-5).
EXPIRES = datetime(2027, 2, 10, 14, 0, tzinfo=UTC)


DRAW_WORD = {
    "en": "request in the draw",
    "fr": "tirage au sort",
    "ar": "القرعة",
    "es": "sorteo",
    "zgh": "ⵜⵇⵔⵄⴰ",
}


LIST_WORD = {
    "en": "waiting list",
    "fr": "liste d'attente",
    "ar": "لائحة الانتظار",
    "es": "lista de espera",
    "zgh": "ⵜⴰⵍⴳⴰⵎⵜ ⵏ ⵓⵔⴰⵊⵓ",
}
OFFERS = (DRAW_OFFER, WAITLIST_OFFER)
# How a waiting list's offer SMS opens ("waiting" alone in Tamazight: the
# budget has no room for the whole phrase).
OFFER_MARK = {
    "en": "Waiting list:",
    "fr": "Liste d'attente:",
    "ar": "لائحة الانتظار:",
    "es": "Lista de espera:",
    "zgh": "ⴰⵔⴰⵊⵓ:",
}


def offer(lang: str, when: datetime, kind: str = DRAW_OFFER) -> object:
    return replace(worst_case(kind, lang, when), reason=EXPIRES.isoformat())


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("kind", OFFERS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_offer_sms_fits_its_budget_and_carries_link_and_expiry(
    renderer: Renderer, lang: str, kind: str
) -> None:
    for when in WORST_DATES:
        data = offer(lang, when, kind)
        sms = renderer.sms(data)  # type: ignore[arg-type]
        assert sms.count.segments <= SMS_BUDGET[lang], (lang, sms.count, sms.body)
        assert f"{BASE_URL}/d/MTL-7KQ9X3/" in sms.body
        # The expiry, in the office's zone: 09:00 in Montreal.
        assert "09:00" in sms.body or "09h00" in sms.body or "9:00" in sms.body
        # Arabic and Tifinagh are UCS-2 (3 segments); the Latin ones stay GSM-7.
        assert is_gsm7(sms.body) == (lang not in ("ar", "zgh"))
        if kind == WAITLIST_OFFER:
            # The seat comes from the waiting list the citizen joined.
            assert OFFER_MARK[lang] in sms.body


@pytest.mark.parametrize("kind", OFFERS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_offer_email_links_to_the_offer_without_an_invitation(
    renderer: Renderer, lang: str, kind: str
) -> None:
    data = offer(lang, WORST_DATES[1], kind)
    email = renderer.email(
        data,  # type: ignore[arg-type]
        sender="consulat@example.org",
        to="a@example.org",
        reply_to=None,
    )
    assert f"{BASE_URL}/d/MTL-7KQ9X3/" in email.text
    assert "/b/MTL-7KQ9X3/" not in email.text
    assert not [p for p in email.message.iter_attachments()]
    assert EXPIRES.isoformat() not in email.text


@pytest.mark.parametrize("kind", OFFERS)
def test_an_offer_goes_only_while_its_seat_is_held(kind: str) -> None:
    now = datetime(2027, 2, 1, 10, tzinfo=UTC)
    start = now + timedelta(days=10)
    args = {"booking_starts_at": start, "appointment_at": start, "now": now}
    assert skip_reason(kind, booking_status="held", **args) is None
    assert skip_reason(kind, booking_status="expired", **args) is not None
    assert skip_reason(kind, booking_status="confirmed", **args) is not None
    assert skip_reason(kind, booking_status="cancelled", **args) is not None


def not_served(lang: str, when: datetime) -> object:
    return replace(
        worst_case(DRAW_NOT_SERVED, lang, when),
        reason="1234",
        reference="0f" * 16,
        manage_token="Tk" * 11,
        draw_request=True,
    )


@pytest.mark.parametrize("lang", LANGS)
def test_not_served_says_the_place_on_the_list_within_the_budget(
    renderer: Renderer, lang: str
) -> None:
    for when in WORST_DATES:
        sms = renderer.sms(not_served(lang, when))  # type: ignore[arg-type]
        assert sms.count.segments <= SMS_BUDGET[lang], (lang, sms.count, sms.body)
        assert "1234" in sms.body and "/b/" not in sms.body
        assert f"{BASE_URL}/r/{'0f' * 16}/" in sms.body
        if lang not in ("ar", "zgh"):  # Arabic and Tifinagh are UCS-2
            assert is_gsm7(sms.body)
    email = renderer.email(
        not_served(lang, WORST_DATES[0]),  # type: ignore[arg-type]
        sender="consulat@example.org",
        to="a@example.org",
        reply_to=None,
    )
    assert "1234" in email.text and f"{BASE_URL}/r/{'0f' * 16}/" in email.text
    assert not list(email.message.iter_attachments())


@pytest.mark.parametrize("lang", LANGS)
def test_a_draw_requests_code_speaks_of_the_request_not_an_appointment(
    renderer: Renderer, lang: str
) -> None:
    data = replace(worst_case("code", lang, WORST_DATES[0]), code="042917", draw_request=True)
    sms = renderer.sms(data)
    assert "042917" in sms.body and sms.count.segments <= SMS_BUDGET[lang]
    assert DRAW_WORD[lang] in sms.body
    email = renderer.email(data, sender="c@example.org", to="a@example.org", reply_to=None)
    assert DRAW_WORD[lang] in email.text


@pytest.mark.parametrize("lang", LANGS)
def test_a_waiting_lists_code_speaks_of_the_list_not_the_draw(
    renderer: Renderer, lang: str
) -> None:
    data = replace(
        worst_case("code", lang, WORST_DATES[0]), code="042917", draw_request=True, waitlist=True
    )
    sms = renderer.sms(data)
    assert "042917" in sms.body and sms.count.segments <= SMS_BUDGET[lang]
    assert LIST_WORD[lang] in sms.body and DRAW_WORD[lang] not in sms.body
    if lang not in ("ar", "zgh"):
        assert is_gsm7(sms.body)
    email = renderer.email(data, sender="c@example.org", to="a@example.org", reply_to=None)
    assert LIST_WORD[lang] in email.text.replace("’", "'") and DRAW_WORD[lang] not in email.text


def test_not_served_goes_only_while_the_request_waits_on_the_list() -> None:
    args = {
        "booking_starts_at": EXPIRES,
        "appointment_at": EXPIRES,
        "now": EXPIRES - timedelta(days=1),
    }
    assert skip_reason(DRAW_NOT_SERVED, booking_status="held", **args) is None
    assert skip_reason(DRAW_NOT_SERVED, booking_status="cancelled", **args) is not None
