"""Mobile consular days: a consulate's staff serving for a day or two in a
town of its district. Pure: no I/O.

A mobile day's hours are wall-clock times in the venue's zone, on the dates
it is held; they become the same hours rules as an office's (one rule per
date, valid on that date only), so its slots and counters come from the same
engine (service.domain.calendar).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain.calendar import CounterCell, HoursRule, SlotPlan, plan_counters, plan_slots
from service.domain.models import Office


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
