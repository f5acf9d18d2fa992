"""Plain records the rest of the code passes around. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("ar", "fr", "en", "es", "zgh")
# Texts an office writes (names, cities, practical information) are kept in
# these three; a page or a message in another language shows the text of its
# fallback: Spanish readers get the French text (the administration's second
# language), Tamazight readers the Arabic one (Moroccan documents pair them).
STORED_LANGUAGES = ("ar", "fr", "en")
TEXT_FALLBACK = {"es": "fr", "zgh": "ar"}


def in_every_language(texts: Mapping[str, str]) -> dict[str, str]:
    """The stored texts, with es and zgh filled from their fallback when absent."""
    filled = {language: texts.get(language, "") for language in STORED_LANGUAGES}
    for language, fallback in TEXT_FALLBACK.items():
        filled[language] = texts.get(language) or filled[fallback]
    return filled


def no_text() -> dict[str, str]:
    return dict.fromkeys(LANGUAGES, "")


@dataclass(frozen=True, slots=True)
class Office:
    id: str
    kind: str
    name: dict[str, str]
    city: dict[str, str]
    country: str
    timezone: str
    address: str
    reference_prefix: str
    holiday_countries: tuple[str, ...]
    reminder_offsets_minutes: tuple[int, ...] = (2880, 180)
    # Active public bookings per phone number and per e-mail address.
    household_cap: int = 4
    # Countries whose mobiles get SMS, besides its own and Morocco.
    sms_countries: tuple[str, ...] = ()
    # The languages it offers, in the order its pages list them.
    languages: tuple[str, ...] = LANGUAGES

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Service:
    office_id: str
    id: str
    name: dict[str, str]
    duration_minutes: int
    document_required: bool
    earliest_hours: int
    latest_days: int
    reschedule_cutoff_minutes: int
    bring: dict[str, str]
    # Practical information (service.domain.practical): a one-line
    # description, fees, what happens when late, minutes to arrive early.
    description: dict[str, str] = field(default_factory=no_text)
    fees: dict[str, str] = field(default_factory=no_text)
    late: dict[str, str] = field(default_factory=no_text)
    arrive_early_minutes: int = 10
    # Written by the demo seed: the pages say it is example text.
    info_demo: bool = False
    # A public booking waits for a code sent to the citizen's contact,
    # holding its seat for hold_minutes.
    verify_contact: bool = True
    hold_minutes: int = 10
    # instant (first come, first served) or draw (service.domain.draw.Mode).
    allocation_mode: str = "instant"


@dataclass(frozen=True, slots=True)
class Slot:
    id: int
    office_id: str
    service_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    taken: int
    pooled: bool = True
    # Seats left once the office's shared counters are counted (from the
    # availability queries); None when not computed.
    free: int | None = None
    # Held at one of the office's mobile days, not at the office itself.
    mobile_day_id: int | None = None

    @property
    def remaining(self) -> int:
        own = self.capacity - self.taken
        return max(own if self.free is None else min(own, self.free), 0)


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    reference: str
    office_id: str
    service_id: str
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    citizen_name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None
    created_at: datetime
    cancel_reason: str | None = None
    # When its personal data was removed (service.domain.retention).
    anonymised_at: datetime | None = None
    # Until when a held booking keeps its seat without its code.
    hold_expires_at: datetime | None = None
    # Whether messages may go to the phone / address (proved, or typed by staff).
    notify_phone: bool = True
    notify_email: bool = True
    citizen_reschedules: int = 0
    # Where its phone messages go: sms | whatsapp | email (e-mail only).
    message_channel: str = "sms"
    # Why the service moved them off WhatsApp itself (not_whatsapp_user), or
    # None when the channel is the citizen's choice.
    message_channel_reason: str | None = None
