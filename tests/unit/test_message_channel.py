"""The citizen's choice of channel for their phone's messages: which rows an
event plans, what the details form accepts, and where a WhatsApp message
that will never arrive goes instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.messages import (
    MESSAGE_CHANNELS,
    plan_event,
    wants_email_fallback,
    whatsapp_fallback,
)
from service.domain.models import Service
from service.domain.phone import served_countries
from service.domain.validation import RawDetails, ValidationFailed, validate_details

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
APPOINTMENT = NOW + timedelta(days=5)
PARIS = ZoneInfo("Europe/Paris")
MOBILE = "+33612345678"
SERVICE = Service(
    office_id="consulate-paris",
    id="passport",
    name={"ar": "جواز", "fr": "Passeport", "en": "Passport"},
    duration_minutes=15,
    document_required=False,
    earliest_hours=2,
    latest_days=60,
    reschedule_cutoff_minutes=120,
    bring={"ar": "", "fr": "", "en": ""},
)


def planned_channels(phone_channel: str, email: str | None = "a@example.org") -> set[str]:
    rows = plan_event(
        "confirmed",
        phone=MOBILE,
        email=email,
        appointment_at=APPOINTMENT,
        now=NOW,
        zone=PARIS,
        phone_channel=phone_channel,  # type: ignore[arg-type]
    )
    assert {r.kind for r in rows} == {"confirmation", "reminder"}
    return {r.channel for r in rows}


def test_the_phone_messages_go_by_the_channel_chosen() -> None:
    assert planned_channels("sms") == {"sms", "email"}
    assert planned_channels("whatsapp") == {"whatsapp", "email"}
    assert planned_channels("email") == {"email"}
    assert planned_channels("whatsapp", email=None) == {"whatsapp"}


def test_no_whatsapp_to_a_landline() -> None:
    rows = plan_event(
        "confirmed", phone="+33142345678", email=None, appointment_at=APPOINTMENT, now=NOW,
        zone=PARIS, phone_channel="whatsapp",
    )  # fmt: skip
    assert rows == []


def details(**raw: object) -> RawDetails:
    base: dict[str, object] = {"name": "Amina El Idrissi", "phone_country": "FR", "language": "fr"}
    return RawDetails(**(base | raw))  # type: ignore[arg-type]


def test_without_a_choice_sms_with_a_phone_else_email() -> None:
    with_phone = validate_details(details(phone="0612345678"), SERVICE, "FR")
    assert with_phone.message_channel == "sms"
    email_only = validate_details(details(email="a@example.org"), SERVICE, "FR")
    assert email_only.message_channel == "email"


@pytest.mark.parametrize("channel", MESSAGE_CHANNELS)
def test_each_choice_is_kept(channel: str) -> None:
    got = validate_details(
        details(phone="0612345678", email="a@example.org", channel=channel), SERVICE, "FR"
    )
    assert got.message_channel == channel


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"email": "a@example.org", "channel": "whatsapp"}, "phone"),
        ({"email": "a@example.org", "channel": "sms"}, "phone"),
        ({"phone": "0612345678", "channel": "email"}, "email"),
        ({"phone": "0612345678", "channel": "telegram"}, "channel"),
        ({"phone": "0612345678", "channel": ["sms"]}, "channel"),
    ],
)
def test_a_choice_the_contacts_cannot_serve_is_refused(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(details(**raw), SERVICE, "FR")
    assert list(refused.value.fields) == [field]


def fallback(kind: str = "confirmation", **changes: object) -> str | None:
    args: dict[str, object] = {
        "phone": MOBILE,
        "served": served_countries("FR"),
        "message_channel": "whatsapp",
        "booking_status": "confirmed",
        "booking_starts_at": APPOINTMENT,
        "appointment_at": APPOINTMENT,
        "now": NOW,
    }
    return whatsapp_fallback(kind, **(args | changes))  # type: ignore[arg-type]


def test_a_whatsapp_message_falls_back_to_sms_then_email() -> None:
    assert fallback() == "sms"
    assert fallback("reminder") == "sms"
    assert fallback("code", booking_status="held") == "sms"
    # A number this office may not text (its country is not served): e-mail.
    assert fallback(served=served_countries("BE")) == "email"
    # The citizen has since chosen e-mail only.
    assert fallback(message_channel="email") == "email"


def test_no_fallback_for_a_message_that_no_longer_needs_to_go() -> None:
    assert fallback(booking_status="cancelled") is None
    assert fallback("reminder", booking_starts_at=APPOINTMENT + timedelta(days=1)) is None
    assert fallback(now=APPOINTMENT) is None


def test_the_email_step_is_the_one_an_undelivered_sms_takes() -> None:
    facts = {
        "booking_status": "confirmed",
        "booking_starts_at": APPOINTMENT,
        "appointment_at": APPOINTMENT,
        "now": NOW,
    }
    assert wants_email_fallback("confirmation", "whatsapp", **facts)  # type: ignore[arg-type]
    assert not wants_email_fallback("reminder", "whatsapp", **facts)  # type: ignore[arg-type]
    assert not wants_email_fallback("confirmation", "email", **facts)  # type: ignore[arg-type]
