"""SQL for slots: materialisation, availability, and the guarded seat counter.

`taken` only moves through take_seat / release_seat, called in the same
transaction as the booking row that holds the seat.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from service.domain.calendar import SlotPlan, local_date, local_day_bounds, plan_slots
from service.domain.holidays import holidays_for
from service.domain.models import Office, Slot
from service.store import offices as office_store


def _slot(r: asyncpg.Record) -> Slot:
    return Slot(
        id=r["id"],
        office_id=r["office_id"],
        service_id=r["service_id"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        capacity=r["capacity"],
        taken=r["taken"],
    )


async def get_slot(conn: asyncpg.Connection, slot_id: int) -> Slot | None:
    row = await conn.fetchrow("SELECT * FROM slots WHERE id = $1", slot_id)
    return _slot(row) if row else None


async def take_seat(
    conn: asyncpg.Connection,
    slot_id: int,
    office_id: str,
    service_id: str,
    earliest: datetime,
    latest: datetime,
) -> Slot | None:
    """Take one seat, or None when the slot is full, unknown or out of window.

    The guard sits in the statement itself: concurrent callers queue on the row
    lock and each re-checks `taken < capacity` against the committed value, so
    no interleaving can oversell.
    """
    row = await conn.fetchrow(
        """UPDATE slots SET taken = taken + 1
           WHERE id = $1 AND office_id = $2 AND service_id = $3
             AND taken < capacity AND starts_at >= $4 AND starts_at <= $5
           RETURNING *""",
        slot_id,
        office_id,
        service_id,
        earliest,
        latest,
    )
    return _slot(row) if row else None


async def retake_seat(conn: asyncpg.Connection, slot_id: int) -> bool:
    """Give a seat back to a booking that had one (no-show undone); guarded
    like take_seat, without the booking window."""
    done: str = await conn.execute(
        "UPDATE slots SET taken = taken + 1 WHERE id = $1 AND taken < capacity", slot_id
    )
    return done == "UPDATE 1"


async def lock_for_move(conn: asyncpg.Connection, slot_ids: list[int]) -> None:
    """Lock the slots of a move in id order, so that two citizens swapping
    slots queue instead of deadlocking."""
    await conn.execute(
        "SELECT id FROM slots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", slot_ids
    )


async def release_seat(conn: asyncpg.Connection, slot_id: int) -> None:
    await conn.execute("UPDATE slots SET taken = taken - 1 WHERE id = $1 AND taken > 0", slot_id)


async def available(
    conn: asyncpg.Connection,
    office_id: str,
    service_id: str,
    start: datetime,
    end: datetime,
    earliest: datetime,
    latest: datetime,
) -> list[Slot]:
    """Slots with a free seat starting in [start, end) and inside the booking window."""
    rows = await conn.fetch(
        """SELECT * FROM slots
           WHERE office_id = $1 AND service_id = $2
             AND starts_at >= GREATEST($3::timestamptz, $5::timestamptz)
             AND starts_at < $4 AND starts_at <= $6
             AND taken < capacity
           ORDER BY starts_at""",
        office_id,
        service_id,
        start,
        end,
        earliest,
        latest,
    )
    return [_slot(r) for r in rows]


async def slots_between(
    conn: asyncpg.Connection, office_id: str, service_id: str, start: datetime, end: datetime
) -> list[Slot]:
    """Every slot, full or not, for calendars that show full days as such."""
    rows = await conn.fetch(
        """SELECT * FROM slots WHERE office_id = $1 AND service_id = $2
             AND starts_at >= $3 AND starts_at < $4 AND capacity > 0
           ORDER BY starts_at""",
        office_id,
        service_id,
        start,
        end,
    )
    return [_slot(r) for r in rows]


async def apply_plan(
    conn: asyncpg.Connection,
    office_id: str,
    plans: list[SlotPlan],
    start: datetime,
    end: datetime,
) -> None:
    """Make the slots in [start, end) match `plans`, never losing a booking.

    Planned slots are inserted or get their new capacity; slots no longer
    planned drop to capacity 0 and are deleted only when no booking, active or
    not, points at them. `taken` is never written here.
    """
    # One statement each, whatever the number of slots: arrays in, set logic
    # in Postgres (a row-by-row executemany took seconds per office).
    planned = """SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[],
                                    $4::integer[]) AS p(service_id, starts_at, ends_at, capacity)"""
    columns = (
        [p.service_id for p in plans],
        [p.starts_at for p in plans],
        [p.ends_at for p in plans],
        [p.capacity for p in plans],
    )
    await conn.execute(
        f"""INSERT INTO slots (office_id, service_id, starts_at, ends_at, capacity)
            SELECT $5, service_id, starts_at, ends_at, capacity FROM ({planned}) p
            ON CONFLICT (office_id, service_id, starts_at) DO UPDATE
            SET capacity = EXCLUDED.capacity, ends_at = EXCLUDED.ends_at
            WHERE slots.capacity <> EXCLUDED.capacity OR slots.ends_at <> EXCLUDED.ends_at""",
        *columns,
        office_id,
    )
    stale = f"""slots.office_id = $5 AND slots.starts_at >= $6 AND slots.starts_at < $7
        AND (slots.service_id, slots.starts_at) NOT IN (
            SELECT service_id, starts_at FROM ({planned}) p)"""
    args = (*columns, office_id, start, end)
    await conn.execute(f"UPDATE slots SET capacity = 0 WHERE capacity <> 0 AND {stale}", *args)
    await conn.execute(
        f"""DELETE FROM slots WHERE taken = 0 AND {stale}
            AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.slot_id = slots.id)""",
        *args,
    )


async def regenerate_office(
    conn: asyncpg.Connection, office: Office, now: datetime, horizon_days: int
) -> int:
    """Refresh holiday closures and slots from today (office zone) to the horizon.

    Returns the number of slots planned. Past slots are left as they are.
    """
    # Serialise with a manager's change of hours or closures, which locks the
    # same row: otherwise this run could write back capacities read before it.
    await conn.execute("SELECT 1 FROM offices WHERE id = $1 FOR UPDATE", office.id)
    zone = office.zone
    first = local_date(now, zone)
    last = first + timedelta(days=horizon_days)
    await office_store.sync_holidays(
        conn, office.id, holidays_for(office.holiday_countries, first, last), first, last
    )
    services = await office_store.list_services(conn, office.id)
    rules = await office_store.hours_rules(conn, office.id)
    closed = await office_store.closed_days(conn, office.id, first, last)
    plans = plan_slots(
        rules,
        closed,
        zone,
        {s.id: timedelta(minutes=s.duration_minutes) for s in services},
        first,
        last,
    )
    # Only slots that have not started yet are replanned.
    upcoming = [p for p in plans if p.starts_at > now]
    end = _day_start(last + timedelta(days=1), office)
    await apply_plan(conn, office.id, upcoming, now, end)
    return len(upcoming)


def _day_start(day: date, office: Office) -> datetime:
    return local_day_bounds(day, office.zone)[0]


async def extend_all_offices(
    conn: asyncpg.Connection, now: datetime, horizon_days: int = 84
) -> int:
    """The daily worker cron: keep every office's slots materialised ahead."""
    total = 0
    for office in await office_store.list_offices(conn):
        async with conn.transaction():
            total += await regenerate_office(conn, office, now, horizon_days)
    return total
