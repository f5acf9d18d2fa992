"""Mobile consular days: a consulate's staff serving for a day or two in a
town of its district. Pure: no I/O.

A mobile day's hours are wall-clock times in the venue's zone, on the dates
it is held; they become the same hours rules as an office's (one rule per
date, valid on that date only), so its slots and counters come from the same
engine (service.domain.calendar).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from service.domain.calendar import CounterCell, HoursRule, SlotPlan, plan_counters, plan_slots
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import TOWN_MAX, VENUE_ADDRESS_MAX, parse_day, parse_int
from service.domain.holidays import known_region
from service.domain.hours_form import _wall as parse_wall
from service.domain.models import STORED_LANGUAGES, Office, in_every_language
from service.domain.places import parse_alert_km, parse_coordinates


@dataclass(frozen=True, slots=True)
class MobileHours:
    day: date  # in the venue's zone
    opens_at: time
    closes_at: time
    counters: int


@dataclass(frozen=True, slots=True)
class MobileDay:
    id: int
    office_id: str
    town: dict[str, str]  # language -> name
    country: str
    address: str
    timezone: str
    holiday_countries: tuple[str, ...]
    booking_opens_at: datetime
    hours: tuple[MobileHours, ...]
    service_ids: tuple[str, ...]
    # Where the venue is (latitude, longitude), and how far from it the
    # subscribers who hear of the day may live (service.domain.mobile_alerts).
    place: tuple[float, float] | None = None
    alert_km: int | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def dates(self) -> list[date]:
        return sorted({h.day for h in self.hours})

    def open_for_booking(self, now: datetime) -> bool:
        return now >= self.booking_opens_at

    def rules(self) -> list[HoursRule]:
        return [
            HoursRule(h.day.weekday(), h.opens_at, h.closes_at, h.counters, h.day, h.day)
            for h in self.hours
        ]


def at_venue(office: Office, mobile_day: MobileDay) -> Office:
    """The office as a booking at its mobile day sees it: the venue's town,
    address and zone in place of the consulate's (name and rules stay)."""
    return replace(
        office, city=mobile_day.town, address=mobile_day.address, timezone=mobile_day.timezone
    )


def plan_mobile_day(
    mobile_day: MobileDay,
    durations: Mapping[str, timedelta],
    holidays: Iterable[date],
    first: date,
) -> tuple[list[SlotPlan], list[CounterCell]]:
    """The slots (of the services offered there) and the shared counters of a
    mobile day's dates from `first` on, leaving out the venue's holidays."""
    dates = [d for d in mobile_day.dates if d >= first]
    if not dates:
        return [], []
    offered = {s: d for s, d in durations.items() if s in mobile_day.service_ids}
    rules = mobile_day.rules()
    closed = list(holidays)
    zone = mobile_day.zone
    return (
        plan_slots(rules, closed, zone, offered, dates[0], dates[-1]),
        plan_counters(rules, closed, zone, dates[0], dates[-1]),
    )


# The fields of the manager's form, in the order problems are listed.
FORM_FIELDS = (
    "town_fr", "town_ar", "town_en", "country", "address", "timezone", "holidays",
    "first_day", "days", "opens", "closes", "counters", "services", "opens_on", "opens_time",
    "alert_km", "latitude",
)  # fmt: skip
MAX_DAYS = 7  # the message below says so
_REGION_RE = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$")


def parse_mobile_day_form(
    form: Mapping[str, str], office_id: str, services: Sequence[str]
) -> MobileDay:
    """A new mobile day from the manager's form (services ticked as
    `service-<id>`), or ValidationFailed naming each field at fault."""
    problems: dict[str, str] = {}

    def text(name: str, limit: int, problem: str) -> str:
        value = " ".join(form.get(name, "").split())
        if not 1 <= len(value) <= limit:
            problems[name] = problem
        return value

    town = {
        lang: text(f"town_{lang}", TOWN_MAX, N_("Enter the town's name, at most 100 characters."))
        for lang in STORED_LANGUAGES
    }
    address = text(
        "address", VENUE_ADDRESS_MAX, N_("Enter the venue's address, at most 300 characters.")
    )
    country = form.get("country", "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        problems["country"] = N_("Enter the country's two-letter code, like FR or CA.")
    zone = form.get("timezone", "").strip()
    if zone not in available_timezones():
        problems["timezone"] = N_("Enter a time zone such as Europe/Paris or America/Edmonton.")
    holidays = tuple(form.get("holidays", "").upper().split())
    if not holidays or not all(_REGION_RE.fullmatch(h) and known_region(h) for h in holidays):
        problems["holidays"] = N_("Enter holiday regions such as MA FR or MA CA-AB.")
    first = parse_day(form.get("first_day", "").strip())
    if first is None:
        problems["first_day"] = N_("Enter a date as YYYY-MM-DD, between 2000-01-01 and 2199-12-31.")
    raw_days = form.get("days", "").strip()
    days = parse_int(raw_days, 1, MAX_DAYS) or 0
    if not days:
        problems["days"] = N_("Enter 1 to 7 days.")
    opens, closes = parse_wall(form.get("opens", "")), parse_wall(form.get("closes", ""))
    if opens is None or closes is None or opens >= closes:
        problems["opens"] = N_("Enter the hours as HH:MM, closing after opening.")
    raw_counters = form.get("counters", "").strip()
    counters = parse_int(raw_counters, 1, 100) or 0
    if not counters:
        problems["counters"] = N_("Give the counters open: 1 to 100.")
    offered = tuple(s for s in services if form.get(f"service-{s}"))
    if not offered:
        problems["services"] = N_("Choose at least one service.")
    opens_on = parse_day(form.get("opens_on", "").strip())
    opens_time = parse_wall(form.get("opens_time", ""))
    if opens_on is None or opens_time is None:
        problems["opens_on"] = N_("Enter when bookings open: a date and a time (HH:MM).")
    elif first is not None and opens_on >= first:
        problems["opens_on"] = N_("Bookings must open before the first day.")
    alert_km = place = None
    try:
        alert_km = parse_alert_km(form.get("alert_km", ""))
    except ValidationFailed as failed:
        problems.update(failed.fields)
    try:
        place = parse_coordinates(form.get("latitude", ""), form.get("longitude", ""))
    except ValidationFailed as failed:
        problems.update(failed.fields)
    if problems:
        raise ValidationFailed(problems)
    assert first is not None and opens is not None and closes is not None
    assert opens_on is not None and opens_time is not None
    venue = ZoneInfo(zone)
    return MobileDay(
        id=0,
        office_id=office_id,
        town=in_every_language(town),
        country=country,
        address=address,
        timezone=zone,
        holiday_countries=holidays,
        booking_opens_at=datetime.combine(opens_on, opens_time, venue).astimezone(UTC),
        hours=tuple(
            MobileHours(first + timedelta(days=n), opens, closes, counters) for n in range(days)
        ),
        service_ids=offered,
        place=place,
        alert_km=alert_km,
    )
