"""The office's day: its schedule and counters' load, a booking's history,
status changes, and booking for a citizen at the counter.

Status changes and bookings made for citizens go through service.bookings,
the only booking path, so staff obey the same rules as the public form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from service import bookings
from service.domain import errors
from service.domain.booking import Status
from service.domain.calendar import local_day_bounds
from service.domain.feedback import DEFAULT_DELAY
from service.domain.models import Booking, Office, Service
from service.domain.office_day import Load, load_per_time
from service.domain.staff import StaffMember
from service.domain.validation import RawDetails, validate_details
from service.office.common import actor_of, office_or_404
from service.store import audit
from service.store import bookings as booking_store
from service.store import offices as office_store
from service.store import schedule as schedule_store
from service.store import slots as slot_store


@dataclass(frozen=True, slots=True)
class Schedule:
    office: Office
    day: date
    entries: list[schedule_store.DayEntry]
    load: list[Load]


async def day_schedule(pool: asyncpg.Pool, office_id: str, day: date) -> Schedule:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        start, end = local_day_bounds(day, office.zone)
        entries = await schedule_store.day_entries(conn, office.id, start, end)
        capacities = await schedule_store.capacities(conn, office.id, start, end)
    load = load_per_time(((e.booking.starts_at, e.booking.status) for e in entries), capacities)
    return Schedule(office, day, entries, load)


async def change_status(
    pool: asyncpg.Pool,
    office_id: str,
    reference: str,
    target: Status,
    reason: str | None,
    member: StaffMember,
    now: datetime,
    feedback_delay: timedelta = DEFAULT_DELAY,
    rules: bookings.Rules = bookings.DEFAULT_RULES,
) -> Booking:
    """A seat a cancellation frees goes to the waiting list first (`rules`)."""
    async with pool.acquire() as conn:
        return await bookings.set_status_by_office(
            conn, reference, office_id, target, actor_of(member), now, reason,
            feedback_delay=feedback_delay, rules=rules,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BookingHistory:
    office: Office
    booking: Booking
    service: Service | None
    messages: list[asyncpg.Record]
    audit: list[asyncpg.Record]


async def booking_history(pool: asyncpg.Pool, office_id: str, reference: str) -> BookingHistory:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        booking = await booking_store.by_reference(conn, reference)
        if booking is None or booking.office_id != office.id:
            raise errors.NotFound()
        service = await office_store.get_service(conn, office.id, booking.service_id)
        messages = await schedule_store.messages(conn, booking.id)
        trail = await audit.for_booking(conn, booking.id)
    return BookingHistory(office, booking, service, messages, trail)


async def detail_problems(
    pool: asyncpg.Pool, office_id: str, service_id: str, details: RawDetails
) -> dict[str, str]:
    """What is wrong with the details typed, checked as a booking would
    check them, for a form sent without its time: it says every mistake at
    once. Writes nothing."""
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, office_id)
        service = await office_store.get_service(conn, office_id, service_id)
    if office is None or service is None:
        return {}
    try:
        validate_details(details, service, office.country, office.sms_countries)
    except errors.ValidationFailed as invalid:
        return dict(invalid.fields)
    return {}


async def book_for_citizen(
    pool: asyncpg.Pool,
    office_id: str,
    slot_id: int,
    service_id: str,
    details: RawDetails,
    member: StaffMember,
    *,
    secret_key: str,
    now: datetime,
    rules: bookings.Rules = bookings.DEFAULT_RULES,
) -> Booking:
    """The public booking path with staff as the actor; same capacity, window,
    one-per-document and message rules."""
    async with pool.acquire() as conn:
        slot = await slot_store.get_slot(conn, slot_id)
    if slot is None or slot.office_id != office_id:
        raise errors.slot_not_found()
    booked = await bookings.book(
        pool,
        slot_id=slot_id,
        service_id=service_id,
        details=details,
        secret_key=secret_key,
        now=now,
        actor=actor_of(member),
        rules=rules,
    )
    # The manage token is not shown to staff: it is the citizen's, and reaches
    # them in the confirmation message.
    return booked.booking
