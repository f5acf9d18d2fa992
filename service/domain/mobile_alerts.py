"""Mobile day alerts ("tell me when a mobile day is planned near me"): the
subscription form's rules, when a subscription stands, and who hears of a
newly published mobile day. Pure: no I/O.

A subscription is one contact (a mobile by SMS or WhatsApp, or an e-mail
address), the coordinates of the subscriber's town, a language and a
consulate. It waits for a code like a held booking (unless its contact was
proved lately), stands for `days` (a year) from then or from its last
renewal, and ends when the citizen stops it. Publishing a mobile day writes
one message to each standing subscriber of its consulate within the
distance the manager set, in the subscriber's language, never at night on
the venue's clock, and never twice (a unique index says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from service.domain.errors import N_, ValidationFailed
from service.domain.messages import (
    MOBILE_DAY_PLANNED,
    PlannedMessage,
    QuietHours,
    outside_quiet_hours,
)
from service.domain.models import LANGUAGES
from service.domain.places import town_text, within
from service.domain.validation import checked_email, checked_phone, stripped
from service.domain.verification import Channel

# How long the code sent to an unproved contact may be typed.
CODE_MINUTES = 15
# The subscription form's fields, in the order problems are listed.
FORM_FIELDS = ("office", "town", "channel", "phone_country", "phone", "email", "language")

AlertChannel = Literal["sms", "whatsapp", "email"]


@dataclass(frozen=True, slots=True)
class SubscriptionRef:
    """A subscription as the subject of an outbox row or of a contact check
    (bookings are ints, draw requests strs)."""

    id: int


@dataclass(frozen=True, slots=True)
class SubscriptionForm:
    """What the form asked, checked: the one contact kept, and the town as
    typed (located by the caller, service.places)."""

    channel: AlertChannel
    contact: str
    language: str
    town: str

    @property
    def code_channel(self) -> Channel:
        """Where the code goes: a WhatsApp subscriber's by SMS (a code is
        not a template message), an e-mail subscriber's by e-mail."""
        return "email" if self.channel == "email" else "sms"


def parse_form(
    raw: Mapping[str, object],
    office_country: str | None,
    sms_countries: tuple[str, ...] | list[str],
    *,
    whatsapp: bool,
) -> SubscriptionForm:
    """The form read, or ValidationFailed naming each field at fault. Only
    the contact of the chosen channel is read (and kept). With no consulate
    (`office_country` None), a number is only required: whether an SMS may
    go to it depends on the consulate, and the caller refuses the form for
    want of one anyway, naming with it every other field left empty."""
    errors: dict[str, str] = {}
    choices: tuple[str, ...] = ("sms", "whatsapp", "email") if whatsapp else ("sms", "email")
    channel = raw.get("channel") or "sms"
    if channel not in choices:
        errors["channel"] = N_("Choose how we tell you: by SMS, WhatsApp or e-mail.")
    contact: str | None = None
    if channel == "email":
        contact = checked_email(raw.get("email"), errors)
        if contact is None and "email" not in errors:
            errors["email"] = N_("Give an email address to be told by e-mail.")
    elif channel in choices:
        if office_country is None:
            contact = stripped(raw.get("phone")) or None
        else:
            contact = checked_phone(
                raw.get("phone"), raw.get("phone_country"), office_country, sms_countries, errors
            )
        if contact is None and not {"phone", "phone_country"} & errors.keys():
            errors["phone"] = N_("Give a mobile number to be told by SMS or WhatsApp.")
    language = raw.get("language") or "fr"
    if language not in LANGUAGES:
        errors["language"] = N_("Choose one of the languages in the list.")
    town = ""
    try:
        town = town_text(raw.get("town"), "town")
    except ValidationFailed as failed:
        errors.update(failed.fields)
    if errors:
        raise ValidationFailed(errors)
    assert contact is not None and isinstance(language, str) and isinstance(channel, str)
    chosen: AlertChannel = "email" if channel == "email" else (
        "whatsapp" if channel == "whatsapp" else "sms"
    )  # fmt: skip
    return SubscriptionForm(chosen, contact, language, town)


def standing(
    *,
    verified_at: datetime | None,
    expires_at: datetime,
    stopped_at: datetime | None,
    anonymised_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether a subscription gets announcements now."""
    return (
        verified_at is not None
        and stopped_at is None
        and anonymised_at is None
        and now < expires_at
    )


def renewed_until(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


def subscription_url(subscription_id: int, token: str) -> str:
    """The subscription's page (the code step, then stop or renew)."""
    return f"/m/{subscription_id}/{token}"


def mobile_day_url(mobile_day_id: int) -> str:
    return f"/mobile-days/{mobile_day_id}"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A standing subscription, as publishing reads it."""

    id: int
    channel: AlertChannel
    contact: str
    language: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Announcement:
    subscription_id: int
    language: str
    message: PlannedMessage


def announcements(
    subscribers: Iterable[Subscriber],
    venue: tuple[float, float],
    km: int,
    *,
    now: datetime,
    deadline: datetime,
    quiet: QuietHours,
    zone: ZoneInfo,
) -> list[Announcement]:
    """One message to each subscriber within `km` of the venue, due now or,
    at night on the venue's clock, when quiet hours end; none when that
    is past `deadline` (the mobile day has begun)."""
    send_at = outside_quiet_hours(now, deadline=deadline, quiet=quiet, zone=zone)
    if send_at is None:
        return []
    return [
        Announcement(
            s.id,
            s.language,
            PlannedMessage(MOBILE_DAY_PLANNED, s.channel, s.contact, send_at, deadline),
        )
        for s in subscribers
        if within((s.latitude, s.longitude), venue, km)
    ]
