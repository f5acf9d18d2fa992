"""The WhatsApp answers that turn its messages off or on, and where a
booking's messages go once its number has no WhatsApp or said STOP."""

from __future__ import annotations

import pytest

from service.domain.messages import (
    KINDS,
    channel_without_whatsapp,
    goes_despite_opt_out,
)
from service.domain.opt_out import STOP_WORDS, answer, normalise
from service.domain.phone import served_countries

PARIS = served_countries("FR")


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOP!",
        "Stopall",
        "unsubscribe",
        "Arrêt",
        "ARRET",
        "arrêter",
        "désabonner",
        "Baja",
        "¡baja!",
        "parar",
        "توقف",
        "إيقاف",
        "ايقاف",
        "أوقف",
        "قف.",
        "توقـف",  # with a tatweel
        "ⵃⴱⵙ",
    ],
)
def test_the_stop_words_of_each_language_stop(text: str) -> None:
    assert answer(text) == "stop"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Merci",
        "stop sending me this",
        "Don't stop",
        # Cancel words may ask for the appointment to be cancelled: not a STOP.
        "CANCEL",
        "annuler",
        "cancelar",
        "إلغاء",
        "stopp",
        "s t o p",
        "123456",
    ],
)
def test_anything_else_is_not_an_answer(text: str) -> None:
    assert answer(text) is None


@pytest.mark.parametrize("text", ["START", "start", " Start! ", "unstop"])
def test_start_turns_them_on_again(text: str) -> None:
    assert answer(text) == "start"


def test_every_stop_word_is_kept_as_normalise_leaves_it() -> None:
    assert all(normalise(word) == word for word in STOP_WORDS)


def test_a_number_without_whatsapp_goes_by_sms_where_the_office_may_text_it() -> None:
    assert channel_without_whatsapp("+33612345678", None, PARIS) == "sms"
    assert channel_without_whatsapp("+212612345678", "a@example.org", PARIS) == "sms"
    # A country the office does not text, a landline: e-mail only when there
    # is an address, else nothing changes.
    assert channel_without_whatsapp("+32470123456", "a@example.org", PARIS) == "email"
    assert channel_without_whatsapp("+33142685300", "a@example.org", PARIS) == "email"
    assert channel_without_whatsapp("+32470123456", None, PARIS) is None
    assert channel_without_whatsapp(None, "a@example.org", PARIS) == "email"


def test_after_stop_only_what_answers_the_citizen_or_the_office_still_goes() -> None:
    kinds = (*KINDS, "draw_offer", "draw_not_served")
    still = {kind for kind in kinds if goes_despite_opt_out(kind)}
    assert still == {
        "confirmation",
        "rescheduled",
        "cancelled_by_citizen",
        "cancelled_by_office",
        "sms_fallback",
        "code",
        "document_ready",
        "draw_offer",
        "draw_not_served",
    }
