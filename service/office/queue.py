"""The waiting room: citizens who checked in wait in the order of their
appointments, an agent calls the next one to their counter, and the office's
display and the citizen's own page show the calls.

A call is not a status change (the citizen stays checked in until done or
absent); it leaves an audit row all the same, and the database, not this
code, makes sure nobody is called twice (calls.booking_id is unique).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain import errors
from service.domain.booking import Status
from service.domain.calendar import local_date, local_day_bounds
from service.domain.errors import N_
from service.domain.fields import parse_int
from service.domain.models import Booking, Office
from service.domain.staff import StaffMember
from service.office.common import actor_of, office_or_404
from service.store import audit
from service.store import calls as call_store
from service.store import offices as office_store
from service.store.calls import Call

# How many calls the display lists (the latest is shown large).
RECENT_CALLS = 6
# Agents calling at once each skip the citizen another is calling; a lost
# race is tried again with the next one, a bounded number of times.
_TRIES = 10


@dataclass(frozen=True, slots=True)
class WaitingRoom:
    office: Office
    waiting: list[str]  # references, first to be called first
    calls: list[Call]  # today's latest first
    counters: int  # numbered 1..counters


def _today(office: Office, now: datetime) -> tuple[datetime, datetime]:
    return local_day_bounds(local_date(now, office.zone), office.zone)


async def _counters(conn: asyncpg.Connection, office: Office) -> int:
    rules = await office_store.hours_rules(conn, office.id)
    return max((r.counters for r in rules), default=1)


async def waiting_room(pool: asyncpg.Pool, office_id: str, now: datetime) -> WaitingRoom:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        start, end = _today(office, now)
        waiting = await call_store.waiting(conn, office.id, start, end)
        calls = await call_store.recent(conn, office.id, start, RECENT_CALLS)
        counters = await _counters(conn, office)
    return WaitingRoom(office, waiting, calls, counters)


def parse_counter(raw: object, counters: int) -> int:
    # A form sends text, the API a JSON number (true and false are not numbers).
    text = raw.strip() if isinstance(raw, str) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        text = str(raw)
    counter = parse_int(text, 1, counters)
    if counter is not None:
        return counter
    raise errors.ValidationFailed(
        {"counter": N_("Choose your counter, from 1 to %(counters)s.")},
        params={"counters": str(counters)},
    )


async def call_next(
    pool: asyncpg.Pool, office_id: str, raw_counter: object, member: StaffMember, now: datetime
) -> Call:
    """Call the first citizen waiting to the counter; Conflict when nobody waits."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        counter = parse_counter(raw_counter, await _counters(conn, office))
        start, end = _today(office, now)
        for _ in range(_TRIES):
            async with conn.transaction():
                found = await call_store.take_next(conn, office.id, start, end)
                if found is None:
                    break
                call_id = await call_store.record(
                    conn, office.id, found["id"], counter, now, member.id
                )
                if call_id is None:
                    continue  # called by a colleague a moment ago: the next one
                await audit.record(
                    conn, found["id"], actor_of(member), "called",
                    Status.CHECKED_IN.value, Status.CHECKED_IN.value, {"counter": counter},
                )  # fmt: skip
                return Call(call_id, found["id"], found["reference"], counter, now)
    raise errors.Conflict(
        "nobody_waiting",
        N_("Nobody is waiting: every citizen who checked in has been called."),
    )


@dataclass(frozen=True, slots=True)
class Place:
    """Where a citizen who checked in stands: `ahead` of them, or their call."""

    ahead: int | None
    call: Call | None


async def place_in_queue(
    pool: asyncpg.Pool, booking: Booking, office: Office, now: datetime
) -> Place | None:
    """None unless the citizen checked in today."""
    if Status(booking.status) is not Status.CHECKED_IN:
        return None
    start, end = _today(office, now)
    if not start <= booking.starts_at < end:
        return None
    async with pool.acquire() as conn:
        call = await call_store.of_booking(conn, booking.id)
        if call is not None:
            return Place(None, call)
        waiting = await call_store.waiting(conn, office.id, start, end)
    if booking.reference not in waiting:
        return None
    return Place(waiting.index(booking.reference), None)
